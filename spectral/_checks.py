"""Input checks shared by the layers of :mod:`spectral` (private)."""

from __future__ import annotations

import torch


def check_dtype_matches(owner: str, x: torch.Tensor, weight: torch.Tensor, name: str = "x") -> None:
    """TypeError unless ``x`` has the parameters' dtype (autocast casts by itself, so it is exempt)."""
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{owner}: got {name} of dtype {x.dtype} but the parameters have {weight.dtype}; "
                        f"cast one of them (e.g. module.to({x.dtype}))")
