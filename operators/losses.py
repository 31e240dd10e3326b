"""LpLoss and H1Loss: relative or absolute function-space norms of an error, grid-independent.

Legend: ``B`` batch, ``C`` channels (any number of axes between batch and grid),
``*grid`` the last ``ndim`` axes, ``h_j`` the spacing of axis ``j``, ``L_j`` its extent.

Norms are quadratures of the continuous ones over ``[0, L_1] x ... x [0, L_d]``:

* periodic grids (``periodic=True``): points ``i L / N``, equal weights ``L / N``
  (exact for trigonometric polynomials below the Nyquist frequency);
* otherwise the ``N`` points span ``[0, L]`` including both ends (``h = L / (N - 1)``)
  and the weights are the trapezoidal rule's.

Each sample's norm sums over all its channels and grid points; the batch is then
reduced with ``mean`` or ``sum``. :class:`SphereLoss` does the same on a latitude-longitude
grid of the unit sphere (``H`` latitudes, ``W`` longitudes), with the area weights of the
grid's quadrature. An empty batch (``B = 0``) follows torch's losses:
``mean`` over no samples is NaN, ``sum`` is 0.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from operators.spherical_conv import GRIDS, Grid
from spectral.checks import check_bool, check_choice, check_int, check_number, check_tensor, describe
from spectral.fft import truncated_fftn, truncated_ifftn
from spectral.modes import compact_wavenumbers, max_modes

__all__ = ["LpLoss", "H1Loss", "NRMSELoss", "SphereLoss", "sphere_weights", "REDUCTIONS"]

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


def _per_sample(u: torch.Tensor) -> torch.Tensor:
    """``(B, ...) -> (B, n)``; not ``reshape(B, -1)``, which cannot infer ``n`` when ``B = 0``."""
    return u.reshape(u.shape[0], math.prod(u.shape[1:]))


def _check_extent(extent: Any, ndim: int) -> tuple[float, ...]:
    """``extent`` as ``ndim`` finite lengths > 0 (one number is used for every axis)."""
    if isinstance(extent, (str, bytes)) or not isinstance(extent, (Sequence, numbers.Real, torch.Tensor)):
        raise TypeError(f"extent must be a positive number or {ndim} of them, got {describe(extent)}")
    if not isinstance(extent, Sequence):
        return (check_number("extent", extent, min=0, min_open=True),) * ndim
    if len(extent) != ndim:
        raise ValueError(f"extent must be a positive number or {ndim} of them, got {extent!r}")
    return tuple(check_number(f"extent[{i}]", e, min=0, min_open=True) for i, e in enumerate(extent))


def _check_order(p: Any) -> float:
    """``p >= 1`` as a float, or ``math.inf``."""
    if isinstance(p, numbers.Real) and not isinstance(p, bool) and p == math.inf:
        return math.inf
    try:
        return check_number("p", p, min=1)
    except ValueError:
        raise ValueError(f"p must be >= 1 (or math.inf), got {p!r}") from None


class _FunctionNormLoss(nn.Module):
    """Shared part of the losses: validated options, quadrature and ``forward``; subclasses define ``norm``."""

    def __init__(
        self,
        ndim: int = 2,
        *,
        relative: bool = True,
        reduction: Reduction = "mean",
        periodic: bool = True,
        extent: float | Sequence[float] = 1.0,
    ) -> None:
        super().__init__()
        self.ndim = check_int("ndim", ndim, min=1, max=3)
        self.relative, self.periodic = check_bool("relative", relative), check_bool("periodic", periodic)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.extent = _check_extent(extent, self.ndim)

    def norm(self, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every loss defines it
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``pred`` against ``target``, reduced over the batch."""
        self._check(pred, target)
        err = self.norm(pred - target)
        return self._ratio(err, self.norm(target) if self.relative else err)

    def _check(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        name = type(self).__name__
        check_tensor(name, "pred", pred, kind="floating")
        check_tensor(name, "target", target, kind="floating")
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
        return _per_sample(f * weights).sum(-1)

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
        Domain length of each axis (finite, > 0).

    Shape
    -----
    pred, target: (B, ..., *grid) real or complex -> () real; ``B = 0``: NaN for "mean" (as torch's
    losses), 0 for "sum"

    Raises
    ------
    TypeError
        A bool, string or None for a number (``LpLoss(True)``), a non-bool flag; at call
        time a non-tensor or an integer tensor.
    ValueError
        ``ndim`` outside 1..3, ``p < 1`` or NaN, a non-finite or non-positive ``extent``,
        an unknown ``reduction``; at call time mismatched or too small shapes.

    Examples
    --------
    >>> loss = LpLoss(2)
    >>> t = torch.ones(4, 1, 8, 8)
    >>> float(loss(2 * t, t))
    1.0
    """

    def __init__(self, ndim: int = 2, p: float = 2.0, *, relative: bool = True, reduction: Reduction = "mean",
                 periodic: bool = True, extent: float | Sequence[float] = 1.0) -> None:
        super().__init__(ndim, relative=relative, reduction=reduction, periodic=periodic, extent=extent)
        self.p = _check_order(p)

    def norm(self, u: torch.Tensor) -> torch.Tensor:
        """Per-sample Lp norm ``(B,)`` of ``u (B, ..., *grid)``."""
        if math.isinf(self.p):
            return _per_sample(u.abs()).amax(-1)
        w = self._weights(u.shape[-self.ndim:], u)
        return _root_zero_safe(self._integrate(u.abs().pow(self.p), w), lambda s: s.pow(1.0 / self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}, " + super().extra_repr()


class H1Loss(_FunctionNormLoss):
    """H1 distance ``sqrt(||e||^2 + sum_j ||d_j e||^2)`` of ``e = pred - target`` (relative by default).

    Derivatives: spectral (``i 2 pi k / L`` on every mode below Nyquist) when
    ``periodic``, second-order finite differences (central inside, one-sided at the
    ends, ``torch.gradient``) otherwise. Quadrature weights as in :class:`LpLoss`.

    Parameters
    ----------
    ndim, relative, reduction, extent
        As in :class:`LpLoss` (``relative`` divides by the H1 norm of the target).
    periodic : bool
        Periodic data (spectral derivatives) or not (finite differences).

    Shape
    -----
    pred, target: (B, ..., *grid) real or complex -> () real; ``B = 0``: NaN for "mean", 0 for "sum"

    Examples
    --------
    >>> loss = H1Loss(1)
    >>> x = torch.arange(16) / 16
    >>> t = torch.sin(2 * torch.pi * x)[None]
    >>> float(loss(t, t))
    0.0
    """

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


class NRMSELoss(nn.Module):
    """Normalised RMSE per sample and channel, ``sqrt(mean_x e^2) / sqrt(mean_x y^2)``, averaged over channels.

    ``e = pred - target``, ``y = target``, means over the grid points of one channel of one
    sample; the ratios are averaged over the channel axes and reduced over the batch. This
    is PDEBench's nRMSE and the loss of SpecB-FNO (Qin et al., arXiv:2404.07200). With one
    channel on a uniform periodic grid it equals ``LpLoss(ndim, 2)``; with several channels
    it weighs each channel's relative error equally instead of pooling their energy.

    Parameters
    ----------
    ndim : int
        Number of trailing grid axes (1 to 3).
    reduction : {"mean", "sum"}
        Over the batch.

    Shape
    -----
    pred, target: (B, ..., *grid) real -> () real; ``B = 0``: NaN for "mean", 0 for "sum"

    Raises
    ------
    TypeError
        A non-tensor or an integer tensor.
    ValueError
        ``ndim`` outside 1..3, an unknown ``reduction``; at call time mismatched shapes or
        fewer than ``ndim + 1`` axes.

    Examples
    --------
    >>> t = torch.ones(2, 3, 8, 8)
    >>> float(NRMSELoss()(1.5 * t, t))
    0.5
    """

    def __init__(self, ndim: int = 2, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.ndim = check_int("ndim", ndim, min=1, max=3)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``pred`` against ``target``, reduced over the batch."""
        check_tensor("NRMSELoss", "pred", pred, kind="floating")
        check_tensor("NRMSELoss", "target", target, kind="floating")
        if pred.shape != target.shape:
            raise ValueError(f"NRMSELoss: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        if pred.ndim < self.ndim + 1:
            raise ValueError(f"NRMSELoss: expected (B, ..., *grid) with {self.ndim} grid axes, got shape {tuple(pred.shape)}")
        axes = tuple(range(-self.ndim, 0))
        err = _root_zero_safe((pred - target).abs().pow(2).mean(axes), torch.sqrt)  # (B, ...)
        ref = target.abs().pow(2).mean(axes).sqrt()  # (B, ...)
        ratio = _per_sample(err / ref.clamp_min(torch.finfo(ref.dtype).tiny))  # (B, channels)
        per_sample = ratio.mean(-1) if ratio.shape[-1] else ratio.sum(-1)  # (B,)
        return per_sample.mean() if self.reduction == "mean" else per_sample.sum()

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}, reduction={self.reduction!r}"


def sphere_weights(nlat: int, nlon: int, grid: Grid = "equiangular", *, dtype: torch.dtype = torch.float64,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Area weights ``(H, W)`` of a latitude-longitude grid on the unit sphere; they sum to ``4 pi``.

    ``w[i, j] = 2 pi / W * q_i`` with torch-harmonics' latitude quadrature weights ``q``
    (Clenshaw-Curtis for "equiangular", Gauss for "legendre-gauss", ...; latitudes from
    the north pole), so ``(w * f).sum()`` integrates ``f`` over the sphere.

    >>> round(float(sphere_weights(8, 16).sum() / (4 * math.pi)), 12)
    1.0
    """
    nlat, nlon = check_int("nlat", nlat, min=2), check_int("nlon", nlon)
    q = _latitude_weights(nlat, check_choice("grid", grid, GRIDS))  # (H,) float64, sums to 2
    return (q * (2 * math.pi / nlon)).reshape(-1, 1).expand(nlat, nlon).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _latitude_weights(nlat: int, grid: str) -> torch.Tensor:
    """torch-harmonics' quadrature weights of the latitudes, computed once per grid (a loss calls this each step)."""
    from torch_harmonics.quadrature import precompute_latitudes  # heavy: imported when first needed

    return precompute_latitudes(nlat, grid)[1].to(torch.float64)


class SphereLoss(nn.Module):
    """Latitude-weighted Lp distance on the sphere, ``||pred - target||_p`` (relative: over ``||target||_p``).

    ``||u||_p = (sum_ij w_ij |u_ij|^p)^(1/p)`` with the area weights of
    :func:`sphere_weights` (unit sphere), summed over every channel: grid cells near the
    poles count for their small area, unlike in a planar :class:`LpLoss`; ``p = inf`` is
    the maximum. The weights follow the grid of the data (any ``H, W``).

    Parameters
    ----------
    grid : {"equiangular", "legendre-gauss", "lobatto", "equiangular-trapezoidal"}
        Latitudes of the data (as in :class:`operators.SFNO`).
    p : float
        Order, ``>= 1`` or ``math.inf``.
    relative : bool
        Divide each sample's error norm by its target norm.
    reduction : {"mean", "sum"}
        Over the batch.

    Shape
    -----
    pred, target: (B, ..., H, W) real or complex -> () real

    Examples
    --------
    >>> loss = SphereLoss()
    >>> t = torch.ones(2, 3, 8, 16)
    >>> float(loss(3 * t, t))
    2.0
    """

    def __init__(self, grid: Grid = "equiangular", p: float = 2.0, *, relative: bool = True,
                 reduction: Reduction = "mean") -> None:
        super().__init__()
        self.grid = check_choice("grid", grid, GRIDS)
        self.p = _check_order(p)
        self.relative = check_bool("relative", relative)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def weights(self, u: torch.Tensor) -> torch.Tensor:
        """Area weights ``(H, W)`` for the grid of ``u (..., H, W)``, in ``u``'s real dtype and device."""
        return sphere_weights(u.shape[-2], u.shape[-1], self.grid, dtype=u.real.dtype, device=u.device)

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """Area-weighted mean over the sphere, ``(B, ..., H, W) -> (B, ...)``: ``integral / (4 pi)``."""
        self._check("f", f)
        return (f * self.weights(f)).sum((-2, -1)) / (4 * math.pi)

    def norm(self, u: torch.Tensor) -> torch.Tensor:
        """Per-sample Lp norm ``(B,)`` of ``u (B, ..., H, W)`` on the unit sphere."""
        self._check("u", u)
        if math.isinf(self.p):
            return _per_sample(u.abs()).amax(-1)
        s = _per_sample(u.abs().pow(self.p) * self.weights(u)).sum(-1)
        return _root_zero_safe(s, lambda v: v.pow(1.0 / self.p))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``pred`` against ``target``, reduced over the batch."""
        self._check("pred", pred)
        self._check("target", target)
        if pred.shape != target.shape:
            raise ValueError(f"SphereLoss: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        err = self.norm(pred - target)
        if self.relative:
            err = err / self.norm(target).clamp_min(torch.finfo(err.dtype).tiny)
        return err.mean() if self.reduction == "mean" else err.sum()

    def _check(self, name: str, u: torch.Tensor) -> None:
        check_tensor("SphereLoss", name, u, kind="floating")
        if u.ndim < 3 or u.shape[-2] < 2:
            raise ValueError(f"SphereLoss: expected {name} of shape (B, ..., H, W) with H >= 2 latitudes, "
                             f"got {tuple(u.shape)}")

    def extra_repr(self) -> str:
        return f"grid={self.grid!r}, p={self.p}, relative={self.relative}, reduction={self.reduction!r}"
