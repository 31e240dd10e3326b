"""LpLoss and H1Loss: relative or absolute function-space norms of an error, grid-independent.

Legend: ``B`` batch, ``C`` channels (any number of axes between batch and grid),
``*grid`` the last ``ndim`` axes, ``h_j`` the spacing of axis ``j``, ``L_j`` its extent.

Norms are quadratures of the continuous ones over ``[0, L_1] x ... x [0, L_d]``:

* periodic grids (``periodic=True``): points ``i L / N``, equal weights ``L / N``
  (exact for trigonometric polynomials below the Nyquist frequency);
* otherwise the ``N`` points span ``[0, L]`` including both ends (``h = L / (N - 1)``)
  and the weights are the trapezoidal rule's.

Each sample's norm sums over all its channels and grid points; the batch is then
reduced with ``mean`` or ``sum``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from spectral.fft import truncated_fftn, truncated_ifftn
from spectral.modes import compact_wavenumbers, max_modes

__all__ = ["LpLoss", "H1Loss", "REDUCTIONS"]

REDUCTIONS: tuple[str, ...] = ("mean", "sum")
Reduction = Literal["mean", "sum"]


def _root_zero_safe(s: torch.Tensor, root: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``root(s)`` for ``s >= 0``, with gradient 0 instead of NaN where ``s == 0``.

    ``s ** (1/p)`` has an infinite derivative at 0, and the chain rule then multiplies it by the
    zero derivative of ``|u|^p`` at ``u = 0``: ``inf * 0 = NaN``. The value is unchanged (``root(0)``
    is 0); the gradient at 0 is the norm's natural subgradient 0.
    """
    zero = s == 0
    return torch.where(zero, 0.0, root(torch.where(zero, 1.0, s)))


class _FunctionNormLoss(nn.Module):
    def __init__(self, ndim: int, *, relative: bool, reduction: str, periodic: bool, extent: float | Sequence[float]) -> None:
        super().__init__()
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        ext = (extent,) * ndim if isinstance(extent, (int, float)) else tuple(extent)
        if len(ext) != ndim or any(not isinstance(e, (int, float)) or not e > 0 for e in ext):
            raise ValueError(f"extent must be a positive number or {ndim} of them, got {extent!r}")
        self.ndim, self.relative, self.reduction, self.periodic = ndim, bool(relative), reduction, bool(periodic)
        self.extent = tuple(float(e) for e in ext)

    def _check(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        name = type(self).__name__
        for arg, t in (("pred", pred), ("target", target)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}: {arg} must be a torch.Tensor, got {type(t).__name__}")
            if not (t.is_floating_point() or t.is_complex()):
                raise TypeError(f"{name}: {arg} must be a floating or complex tensor, got dtype {t.dtype}")
        if pred.shape != target.shape:
            raise ValueError(f"{name}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        if pred.ndim < self.ndim + 1:
            raise ValueError(f"{name}: expected (B, ..., *grid) with {self.ndim} grid axes, got shape {tuple(pred.shape)}")
        min_points = 2 if self.periodic else 3
        if any(n < min_points for n in pred.shape[-self.ndim:]):
            raise ValueError(f"{name}: every grid axis needs at least {min_points} points, got shape {tuple(pred.shape)}")

    def _spacing(self, n: int, axis: int) -> float:
        return self.extent[axis] / (n if self.periodic else n - 1)

    def _weights(self, grid: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """Quadrature weights ``(*grid)``: a product of 1-D rules."""
        w = torch.ones((), dtype=like.real.dtype, device=like.device)
        for axis, n in enumerate(grid):
            wj = torch.full((n,), self._spacing(n, axis), dtype=w.dtype, device=w.device)
            if not self.periodic:
                wj[0] = wj[-1] = wj[0] / 2
            w = w.unsqueeze(-1) * wj
        return w

    def _reduce(self, per_sample: torch.Tensor) -> torch.Tensor:
        return per_sample.mean() if self.reduction == "mean" else per_sample.sum()

    def _integrate(self, f: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Per-sample quadrature of ``f (B, ..., *grid) >= 0``: sum over channels and grid."""
        return (f * weights).reshape(f.shape[0], -1).sum(-1)

    def _ratio(self, err: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if not self.relative:
            return self._reduce(err)
        return self._reduce(err / ref.clamp_min(torch.finfo(ref.dtype).tiny))

    def extra_repr(self) -> str:
        return (f"ndim={self.ndim}, relative={self.relative}, reduction={self.reduction!r}, "
                f"periodic={self.periodic}, extent={self.extent}")


class LpLoss(_FunctionNormLoss):
    """Lp distance ``||pred - target||_p`` (relative: divided by ``||target||_p``), per sample.

    ``||u||_p = (sum_x w_x |u(x)|^p)^(1/p)`` with quadrature weights ``w`` (module
    docstring), so the absolute value approximates the continuous norm and does not
    depend on the grid size; ``p = inf`` is the maximum.

    Parameters
    ----------
    ndim : int
        Number of trailing grid axes (1 to 3).
    p : float
        Order, ``>= 1`` or ``math.inf``.
    relative : bool
        Divide each sample's error norm by its target norm.
    reduction : {"mean", "sum"}
        Over the batch.
    periodic : bool
        Periodic grid (equal weights) or grid with both end points (trapezoid).
    extent : float or sequence of float
        Domain length of each axis.

    Shape
    -----
    pred, target: (B, ..., *grid) real or complex -> () real

    Examples
    --------
    >>> loss = LpLoss(2)
    >>> t = torch.ones(4, 1, 8, 8)
    >>> float(loss(2 * t, t))
    1.0
    """

    def __init__(
        self,
        ndim: int = 2,
        p: float = 2.0,
        *,
        relative: bool = True,
        reduction: Reduction = "mean",
        periodic: bool = True,
        extent: float | Sequence[float] = 1.0,
    ) -> None:
        super().__init__(ndim, relative=relative, reduction=reduction, periodic=periodic, extent=extent)
        if not isinstance(p, (int, float)) or not p >= 1:
            raise ValueError(f"p must be >= 1 (or math.inf), got {p!r}")
        self.p = float(p)

    def norm(self, u: torch.Tensor) -> torch.Tensor:
        """Per-sample Lp norm ``(B,)`` of ``u (B, ..., *grid)``."""
        if math.isinf(self.p):
            return u.abs().reshape(u.shape[0], -1).amax(-1)
        w = self._weights(u.shape[-self.ndim:], u)
        return _root_zero_safe(self._integrate(u.abs().pow(self.p), w), lambda s: s.pow(1.0 / self.p))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(pred, target)
        err = self.norm(pred - target)
        return self._ratio(err, self.norm(target) if self.relative else err)

    def extra_repr(self) -> str:
        return f"p={self.p}, " + super().extra_repr()


class H1Loss(_FunctionNormLoss):
    """H1 distance ``sqrt(||e||^2 + sum_j ||d_j e||^2)`` of ``e = pred - target`` (relative by default).

    Derivatives: spectral (``i 2 pi k / L`` on every mode below Nyquist) when
    ``periodic``, second-order finite differences (central inside, one-sided at the
    ends, ``torch.gradient``) otherwise. Quadrature weights as in :class:`LpLoss`.

    Parameters
    ----------
    ndim : int
        Number of trailing grid axes (1 to 3).
    relative : bool
        Divide by the H1 norm of the target.
    reduction : {"mean", "sum"}
    periodic : bool
        Periodic data (spectral derivatives) or not (finite differences).
    extent : float or sequence of float
        Domain length of each axis.

    Shape
    -----
    pred, target: (B, ..., *grid) real or complex -> () real

    Examples
    --------
    >>> loss = H1Loss(1)
    >>> x = torch.arange(16) / 16
    >>> t = torch.sin(2 * torch.pi * x)[None]
    >>> float(loss(t, t))
    0.0
    """

    def __init__(
        self,
        ndim: int = 2,
        *,
        relative: bool = True,
        reduction: Reduction = "mean",
        periodic: bool = True,
        extent: float | Sequence[float] = 1.0,
    ) -> None:
        super().__init__(ndim, relative=relative, reduction=reduction, periodic=periodic, extent=extent)

    def gradient(self, u: torch.Tensor) -> list[torch.Tensor]:
        """``[d_1 u, ..., d_d u]``, each shaped like ``u``."""
        d = self.ndim
        grid = u.shape[-d:]
        if not self.periodic:
            spacing = [self._spacing(n, j) for j, n in enumerate(grid)]
            return list(torch.gradient(u, spacing=spacing, dim=list(range(-d, 0)), edge_order=2))
        complex_data = u.is_complex()
        modes = tuple(max_modes(n) for n in grid)  # every mode but the Nyquist bin
        coeffs = truncated_fftn(u, modes, complex_data=complex_data)  # (..., *K) complex
        out = []
        for j, k in enumerate(compact_wavenumbers(modes, complex_data=complex_data, device=u.device)):
            ik = (2j * math.pi / self.extent[j]) * k.to(coeffs.dtype)
            shape = [-1] + [1] * (d - 1 - j)
            out.append(truncated_ifftn(coeffs * ik.reshape(shape), grid, complex_data=complex_data, out_dtype=u.dtype))
        return out

    def norm(self, u: torch.Tensor) -> torch.Tensor:
        """Per-sample H1 norm ``(B,)`` of ``u (B, ..., *grid)``."""
        w = self._weights(u.shape[-self.ndim:], u)
        sq = self._integrate(u.abs().square(), w)
        for du in self.gradient(u):
            sq = sq + self._integrate(du.abs().square(), w)
        return _root_zero_safe(sq, torch.sqrt)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(pred, target)
        err = self.norm(pred - target)
        return self._ratio(err, self.norm(target) if self.relative else err)
