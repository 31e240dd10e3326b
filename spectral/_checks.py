"""Input checks shared by the layers of :mod:`spectral` (private)."""

from __future__ import annotations

import torch


def check_dtype_matches(owner: str, x: torch.Tensor, weight: torch.Tensor, name: str = "x") -> None:
    """TypeError unless ``x`` has the parameters' dtype.

    Autocast casts by itself, so a mismatch under autocast is accepted, unless one side is
    float64: autocast never casts float64 tensors, so the layer's matmuls would fail inside torch.
    """
    if x.dtype == weight.dtype:
        return
    if torch.is_autocast_enabled(x.device.type) and torch.float64 not in (x.dtype, weight.dtype):
        return
    hint = " (autocast does not cast float64)" if torch.is_autocast_enabled(x.device.type) else ""
    raise TypeError(f"{owner}: got {name} of dtype {x.dtype} but the parameters have {weight.dtype}{hint}; "
                    f"cast one of them (e.g. module.to({x.dtype}))")
