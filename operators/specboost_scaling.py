"""Scaled SpecBoost stages: a stage that predicts ``scale * G(z)``, so that ``G`` fits a unit-variance residual.

Legend: ``n`` samples, ``B`` batch, ``Cz`` stage input channels, ``Cout`` output channels,
``*grid`` the spatial axes.

A later SpecBoost stage fits the residual ``r = y - P_m`` of the stages before it, which
is much smaller than ``y``. Qin et al. (arXiv:2404.07200) train each residual stage on
``r / s`` with ``s`` the residual's standard deviation, and add ``s`` times its output.
:class:`ScaledStage` holds ``s`` as a buffer and multiplies the wrapped stage's output by
it, so the ensemble stays the plain sum of its stages; training the wrapper on ``r`` with
a relative loss (the Trainer's default relative L2, or :class:`~operators.losses.NRMSELoss`)
is exactly training ``G`` on ``r / s``, since ``||s G - r|| / ||r|| = ||G - r/s|| / ||r/s||``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import nn

from spectral.checks import check_number, describe
from spectral.fft import resample

__all__ = ["ScaledStage", "residual_scale"]


def residual_scale(residual: torch.Tensor) -> float:
    """The standard deviation of all entries of ``residual`` (population, ``ddof = 0``), as a float.

    Dividing the residual by it gives unit-variance targets.

    Shape
    -----
    residual: (n, Cout, *grid) real -> float

    Raises
    ------
    TypeError
        ``residual`` is not a real floating tensor.
    ValueError
        Fewer than two entries, a NaN/inf, or a zero standard deviation (nothing left to fit).

    Examples
    --------
    >>> residual_scale(torch.tensor([[1.0, -1.0, 1.0, -1.0]]))
    1.0
    """
    if not isinstance(residual, torch.Tensor) or not residual.is_floating_point():
        raise TypeError(f"residual must be a real floating tensor, got {describe(residual)}")
    if residual.numel() < 2:
        raise ValueError(f"residual must hold at least 2 entries, got shape {tuple(residual.shape)}")
    std = float(residual.double().std(correction=0))
    if not std > 0 or std == float("inf"):
        raise ValueError(f"residual must have a finite positive standard deviation, got {std}")
    return std


class ScaledStage(nn.Module):
    """A stage ``z -> scale * stage(z)``; ``scale`` is a persistent buffer, not trained.

    Parameters
    ----------
    stage : nn.Module
        The operator ``G``, ``(B, Cz, *grid) -> (B, Cout, *grid)``; its ``in_channels``,
        ``out_channels`` and ``config`` are exposed unchanged.
    scale : float
        ``s > 0``, typically :func:`residual_scale` of the residual the stage is to fit
        (:meth:`operators.specboost.SpecBoost.residual_scale`).

    Shape
    -----
    z: (B, Cz, *grid) real -> (B, Cout, *out) real; ``*out`` = ``output_shape`` or ``*grid``.

    Notes
    -----
    ``forward(z, output_shape)`` passes ``output_shape`` on where ``stage.forward``
    accepts it, and Fourier-resamples the output otherwise (periodic grids).

    Examples
    --------
    >>> from operators.fno import FNO
    >>> g = FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1)
    >>> z = torch.randn(2, 1, 16, 16)
    >>> bool(torch.allclose(ScaledStage(g, 0.25)(z), 0.25 * g(z)))
    True
    """

    def __init__(self, stage: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        if not isinstance(stage, nn.Module):
            raise TypeError(f"stage must be an nn.Module, got {describe(stage)}")
        scale = check_number("scale", scale, min=0.0, min_open=True)
        self.stage = stage
        ref = next(iter(stage.parameters()), None)
        dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.get_default_dtype()
        self.register_buffer("scale", torch.tensor(scale, dtype=dtype, device=None if ref is None else ref.device))
        params = inspect.signature(stage.forward).parameters
        self._shape_aware = "output_shape" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())

    @property
    def in_channels(self) -> int | None:
        return getattr(self.stage, "in_channels", None)

    @property
    def out_channels(self) -> int | None:
        return getattr(self.stage, "out_channels", None)

    @property
    def config(self):
        return getattr(self.stage, "config", None)

    def reset_parameters(self) -> None:
        self.stage.reset_parameters()

    def extra_repr(self) -> str:
        return f"scale={float(self.scale):.6g}"

    def forward(self, z: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        if output_shape is None:
            y = self.stage(z)  # (B, Cout, *grid)
        elif self._shape_aware:
            y = self.stage(z, output_shape=output_shape)  # (B, Cout, *out)
        else:
            y = resample(self.stage(z), tuple(output_shape))  # (B, Cout, *out)
        return y * self.scale.to(y.dtype)
