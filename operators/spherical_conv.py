"""SphericalConv: spectral convolution on the sphere through spherical harmonic transforms.

Legend: ``B`` batch, ``Cin``/``Cout`` input/output channels, ``H, W`` the latitude and
longitude points of the input grid (``Ho, Wo`` of the output grid), ``L`` degrees
``0 <= l < lmax``, ``M`` orders ``0 <= m < mmax``, ``Kt`` kept ``(l, m)`` pairs with
``m <= l``, ``N`` a flattened batch of real numbers (batch x channels x (re, im)).

A field on an ``(H, W)`` latitude-longitude grid is ``f = sum_l sum_m c_lm Y_lm`` with
orthonormal spherical harmonics ``Y_lm`` (Condon-Shortley phase, as scipy's
``sph_harm_y``), ``c_{l,-m} = (-1)^m conj(c_lm)``; only ``m >= 0`` is stored. The
forward transform is an rfft in longitude (:func:`spectral.fft.truncated_fftn`, orders
``m < mmax``) followed by Legendre quadrature, one ``(L, H) x (H, N)`` matmul per order;
the inverse mirrors it. The Legendre tables come from torch-harmonics. torch-harmonics
0.9 forces ``lmax = mmax = min(lmax, mmax)`` in ``RealSHT``; here the tables are built
square (``lmax`` x ``lmax``) and cut to ``mmax`` orders, and every size is read from
the transform actually built, so any ``mmax <= lmax`` works.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
from einops import rearrange
from torch import nn

from operators.layers import check_field, empty_batch
from spectral.checks import check_bool, check_choice, check_int, check_ints, check_real_dtype, describe
from spectral.complex import as_complex, complex_bmm, init_complex_
from spectral.fft import compute_dtype, fft_precision, truncated_fftn, truncated_ifftn

__all__ = [
    "GRIDS",
    "WEIGHTS",
    "Grid",
    "degree_limit",
    "legendre_table",
    "real_sht",
    "inverse_real_sht",
    "spherical_conv",
    "spherical_resample",
    "LegendreTable",
    "SphericalConv",
]

Grid = Literal["equiangular", "legendre-gauss", "lobatto", "equiangular-trapezoidal"]
GRIDS: tuple[str, ...] = ("equiangular", "legendre-gauss", "lobatto", "equiangular-trapezoidal")
WEIGHTS: tuple[str, ...] = ("dhconv", "full")


def degree_limit(nlat: int, grid: str) -> int:
    """Default ``lmax`` of a grid (torch-harmonics' own default truncation).

    ``nlat`` for Legendre-Gauss, ``nlat - 1`` for Lobatto, ``(nlat + 1) // 2`` for the
    equiangular grids: the transforms of fields of lower degree are exact (to rounding)
    on the first three; "equiangular-trapezoidal" (nodes equispaced in ``cos theta``,
    trapezoidal weights) is only approximate.
    """
    check_choice("grid", grid, GRIDS)
    return {"legendre-gauss": nlat, "lobatto": nlat - 1}.get(grid, (nlat + 1) // 2)


def legendre_table(
    nlat: int, nlon: int, lmax: int, mmax: int, grid: str, *, inverse: bool = False, dtype=None, device=None
) -> torch.Tensor:
    """Quadrature-weighted (forward) or plain (inverse) Legendre table of torch-harmonics.

    Built through ``RealSHT`` / ``InverseRealSHT`` with ``lmax`` degrees and ``lmax``
    orders (0.9 truncates both to their minimum), then cut to the first ``mmax``
    orders. Its shape is the transform actually built: check it, never assume it.

    Returns
    -------
    Tensor
        forward: ``(M, L, H)``, ``2 pi w_k P_lm(cos theta_k)``; inverse: ``(M, H, L)``.
    """
    import torch_harmonics as th  # heavy (seconds): imported by the first layer that needs a table

    cls = th.InverseRealSHT if inverse else th.RealSHT
    built = cls(nlat, nlon, lmax=lmax, mmax=lmax, grid=grid)
    table = built.pct if inverse else built.weights  # (M', H, L') / (M', L', H) float64
    m = min(mmax, built.mmax)
    return table[:m].to(device=device, dtype=dtype or torch.get_default_dtype()).contiguous()


class LegendreTable(nn.Module):
    """Holds one Legendre table as a non-persistent buffer, so several layers can share it.

    Layers on the same grids hold the same ``LegendreTable`` module; ``.to()`` then
    converts the table once. No parameters and nothing in the ``state_dict``.
    """

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table.contiguous(), persistent=False)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.table.shape)}"


def _analysis(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``(P, H, W)`` real -> ``(M, L, P * 2)`` real coefficients (re, im innermost)."""
    xf = truncated_fftn(x, (table.shape[0],))  # (P, H, M) complex
    xr = rearrange(torch.view_as_real(xf), "p h m r -> m h (p r)")
    return torch.bmm(table.to(xr.dtype), xr)  # (M, L, P * 2) real


def _synthesis(y: torch.Tensor, table: torch.Tensor, nlon: int) -> torch.Tensor:
    """``(M, L, P * 2)`` real coefficients -> ``(P, Ho, Wo)`` real field."""
    z = torch.bmm(table.to(y.dtype), y)  # (M, Ho, P * 2) real
    z = rearrange(z, "m h (p r) -> p h m r", r=2).contiguous()
    return truncated_ifftn(torch.view_as_complex(z), (nlon,))  # (P, Ho, Wo) real


def real_sht(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Spherical harmonic coefficients ``c_lm`` (``m >= 0``) of a real field.

    Shape
    -----
    x: (..., H, W) real, table: (M, L, H) -> (..., L, M) complex
    """
    lead = x.shape[:-2]
    y = _analysis(x.reshape(-1, *x.shape[-2:]), table)  # (M, L, P * 2)
    y = rearrange(y, "m l (p r) -> p l m r", r=2).contiguous()
    return torch.view_as_complex(y).reshape(*lead, *y.shape[1:3])


def inverse_real_sht(coeffs: torch.Tensor, table: torch.Tensor, nlon: int) -> torch.Tensor:
    """Real field ``sum_lm c_lm Y_lm`` on ``(Ho, nlon)`` points; the inverse of :func:`real_sht`.

    Shape
    -----
    coeffs: (..., L, M) complex, table: (M, Ho, L) -> (..., Ho, nlon) real
    """
    lead = coeffs.shape[:-2]
    y = rearrange(torch.view_as_real(coeffs.reshape(-1, *coeffs.shape[-2:])), "p l m r -> m l (p r)")
    return _synthesis(y.contiguous(), table, nlon).reshape(*lead, table.shape[1], nlon)


def spherical_resample(x: torch.Tensor, analysis: torch.Tensor, synthesis: torch.Tensor, nlon_out: int) -> torch.Tensor:
    """Band-limited resampling between two grids: the inverse SHT onto one of the SHT on the other.

    Exact for fields of degree below ``lmax`` and order below ``mmax`` when the
    analysis is exact on the input grid (see :func:`degree_limit`).

    Shape
    -----
    x: (..., H, W) real, analysis: (M, L, H), synthesis: (M, Ho, L) -> (..., Ho, Wo) real, dtype of x
    """
    with fft_precision(x):
        y = _analysis(x.to(compute_dtype(x.dtype)).reshape(-1, *x.shape[-2:]), analysis)  # (M, L, P * 2)
        z = _synthesis(y, synthesis, nlon_out)  # (P, Ho, Wo)
    return z.reshape(*x.shape[:-2], *z.shape[-2:]).to(x.dtype)


def spherical_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    analysis: torch.Tensor,
    synthesis: torch.Tensor,
    nlon_out: int,
    *,
    kept: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Functional spherical convolution: SHT, channel mixing per degree (or per mode), inverse SHT.

    Parameters
    ----------
    x : Tensor
        ``(B, Cin, H, W)`` real.
    weight : Tensor
        ``(L, Cin, Cout, 2)`` (one complex matrix per degree, shared over the orders:
        Driscoll-Healy) or, with ``kept``, ``(Kt, Cin, Cout, 2)`` (one per kept mode).
    analysis, synthesis : Tensor
        Legendre tables ``(M, L, H)`` and ``(M, Ho, L)`` (:func:`legendre_table`).
    nlon_out : int
        Longitude points ``Wo`` of the output grid.
    kept : Tensor, optional
        ``(Kt,)`` int64 flat indices ``m * L + l`` of the modes a per-mode weight covers.
    bias : Tensor, optional
        ``(Cout,)`` real, added to the output field.

    Shape
    -----
    x: (B, Cin, H, W) real -> (B, Cout, Ho, Wo) real, dtype of x; ``B = 0`` gives an empty output
    (connected to ``weight`` and ``bias``: zero gradients)
    """
    b, m_orders, n_deg = x.shape[0], analysis.shape[0], analysis.shape[1]
    if b == 0:  # FFT backends reject an empty batch
        params = [weight] + ([] if bias is None else [bias])
        return empty_batch(x, (0, weight.shape[2], synthesis.shape[1], nlon_out), params)  # (0, Cout, Ho, Wo)
    with fft_precision(x):
        y = _analysis(x.to(compute_dtype(x.dtype)).flatten(0, 1), analysis)  # (M, L, B * Cin * 2)
        w = as_complex(weight)
        if kept is None:  # Driscoll-Healy: one batched matmul per degree over (order, batch)
            yc = torch.view_as_complex(rearrange(y, "m l (b i r) -> l (m b) i r", b=b, r=2).contiguous())
            out = complex_bmm(yc, w.to(yc.dtype))  # (L, M * B, Cout) complex
            y = rearrange(torch.view_as_real(out), "l (m b) o r -> m l (b o r)", m=m_orders)
        else:  # one matrix per kept (l, m), gathered from the (M * L) modes and scattered back
            yc = torch.view_as_complex(rearrange(y, "m l (b i r) -> (m l) b i r", b=b, r=2))
            out = complex_bmm(yc.index_select(0, kept), w.to(yc.dtype))  # (Kt, B, Cout)
            full = out.new_zeros(m_orders * n_deg, b, out.shape[-1]).index_copy(0, kept, out)
            y = torch.view_as_real(full).reshape(m_orders, n_deg, -1)
        z = _synthesis(y.contiguous(), synthesis, nlon_out)  # (B * Cout, Ho, Wo) real
    z = z.reshape(b, -1, *z.shape[-2:]).to(x.dtype)
    return z if bias is None else z + bias.to(z.dtype).reshape(-1, 1, 1)


class SphericalConv(nn.Module):
    """Spectral convolution on the sphere: ``y = ISHT(W . SHT(x)) + b``.

    ``yhat[b, o, l, m] = sum_i W[i, o, l] xhat[b, i, l, m]`` (``weights="dhconv"``, the
    Driscoll-Healy form: one complex matrix per degree, shared over the orders) or
    ``sum_i W[i, o, l, m] xhat[b, i, l, m]`` (``"full"``: one per kept mode ``m <= l``),
    for ``l < lmax`` and ``m < mmax``; then the inverse transform onto ``out_shape``
    (another resolution and/or another ``out_grid``). The transforms are built once
    here, for these grids, and held as buffers of the submodules ``sht`` and ``isht``
    (they move with ``.to()``).

    Parameters
    ----------
    in_channels, out_channels : int
    img_shape : (int, int)
        ``(nlat, nlon)`` of the input grid.
    grid : {"equiangular", "legendre-gauss", "lobatto", "equiangular-trapezoidal"}
        Latitudes of the input grid (equiangular grids include both poles).
    lmax, mmax : int, optional
        Keep degrees ``l < lmax`` and orders ``m < mmax`` (``mmax <= lmax``, and
        ``mmax <= (W + 1) // 2`` on both grids: the Nyquist order is never kept).
        Defaults: the smaller :func:`degree_limit` of the two grids, and
        ``min(lmax, (W + 1) // 2, (Wo + 1) // 2)``. The attributes hold the sizes of
        the transform actually built.
    weights : {"dhconv", "full"}
    out_shape : (int, int), optional
        ``(nlat, nlon)`` of the output grid (default ``img_shape``).
    out_grid : str, optional
        Latitudes of the output grid (default ``grid``).
    bias : bool
        Add a learned per-channel constant.
    device, dtype : optional
        Parameters and Legendre tables are created there, in this real dtype.

    Shape
    -----
    x: (B, Cin, H, W) real -> (B, Cout, Ho, Wo) real, dtype of x

    Notes
    -----
    A rotation about the polar axis by whole grid steps (a roll in longitude) commutes
    with the layer exactly, for both weight kinds. With real dhconv weights the layer
    commutes with every rotation on fields of degree below ``lmax`` (``mmax = lmax``);
    the imaginary parts act as a quarter-period shift in longitude and only commute
    with rotations about the pole. Under autocast the transforms run in float32 with
    autocast off and the result is cast back. ``E|W|^2 = 1 / Cin`` at initialisation.

    Examples
    --------
    >>> conv = SphericalConv(3, 4, (16, 32), grid="legendre-gauss", lmax=12, mmax=8)
    >>> conv(torch.randn(2, 3, 16, 32)).shape
    torch.Size([2, 4, 16, 32])
    >>> up = SphericalConv(3, 4, (16, 32), lmax=8, out_shape=(32, 64))
    >>> up(torch.randn(2, 3, 16, 32)).shape
    torch.Size([2, 4, 32, 64])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        img_shape: tuple[int, int],
        *,
        grid: Grid = "equiangular",
        lmax: int | None = None,
        mmax: int | None = None,
        weights: Literal["dhconv", "full"] = "dhconv",
        out_shape: tuple[int, int] | None = None,
        out_grid: Grid | None = None,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_int("in_channels", in_channels), check_int("out_channels", out_channels)
        self.weights = check_choice("weights", weights, WEIGHTS)
        self.img_shape = _check_grid_shape("img_shape", img_shape)
        self.out_shape = self.img_shape if out_shape is None else _check_grid_shape("out_shape", out_shape)
        self.grid = check_choice("grid", grid, GRIDS)
        self.out_grid = grid if out_grid is None else check_choice("out_grid", out_grid, GRIDS)
        bias = check_bool("bias", bias)
        check_real_dtype("dtype", dtype)
        lmax, mmax = _check_degrees(lmax, mmax, self.img_shape, self.out_shape, self.grid, self.out_grid)
        kw = dict(device=device, dtype=dtype)
        analysis = legendre_table(*self.img_shape, lmax, mmax, self.grid, **kw)  # (M, L, H)
        synthesis = legendre_table(*self.out_shape, lmax, mmax, self.out_grid, inverse=True, **kw)  # (M, Ho, L)
        self.mmax = min(analysis.shape[0], synthesis.shape[0])
        self.lmax = min(analysis.shape[1], synthesis.shape[2])
        self.sht = LegendreTable(analysis[: self.mmax, : self.lmax])
        self.isht = LegendreTable(synthesis[: self.mmax, :, : self.lmax])
        if weights == "full":
            m, l = torch.meshgrid(torch.arange(self.mmax), torch.arange(self.lmax), indexing="ij")
            kept = (m * self.lmax + l)[m <= l]  # (Kt,) flat indices m * L + l
            self.register_buffer("kept", kept.to(device), persistent=False)
        else:
            self.kept = None
        n_w = self.lmax if weights == "dhconv" else self.kept.numel()
        self.weight = nn.Parameter(torch.empty(n_w, in_channels, out_channels, 2, **kw))
        self.bias = nn.Parameter(torch.empty(out_channels, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Complex normal weights with ``E|W|^2 = 1 / Cin``; zero bias."""
        init_complex_(self.weight, 1.0 / math.sqrt(self.in_channels))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, output_shape: tuple[int, int] | None = None) -> torch.Tensor:
        """Apply the layer; ``output_shape`` may only repeat the ``out_shape`` it was built for."""
        check_field("SphericalConv", x, self.in_channels, self.img_shape)
        if output_shape is not None and tuple(output_shape) != self.out_shape:
            raise ValueError(
                f"SphericalConv: built for out_shape={self.out_shape}, got output_shape={tuple(output_shape)}; "
                f"build the layer with out_shape to evaluate on another grid"
            )
        return spherical_conv(x, self.weight, self.sht.table, self.isht.table, self.out_shape[1], kept=self.kept, bias=self.bias)

    def extra_repr(self) -> str:
        out = "" if self.out_shape == self.img_shape and self.out_grid == self.grid else (
            f", out_shape={self.out_shape}, out_grid={self.out_grid!r}")
        return (f"{self.in_channels}, {self.out_channels}, img_shape={self.img_shape}, grid={self.grid!r}, "
                f"lmax={self.lmax}, mmax={self.mmax}, weights={self.weights!r}{out}, bias={self.bias is not None}")


def _check_grid_shape(name: str, shape: Any) -> tuple[int, int]:
    """``(nlat, nlon)``: a tuple or list of two ints >= 2 (numpy integers too)."""
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name} must be (nlat, nlon), two ints >= 2, got {describe(shape)}")
    if len(shape) != 2:
        raise ValueError(f"{name} must be (nlat, nlon), two ints >= 2, got {tuple(shape)!r}")
    nlat, nlon = check_ints(name, shape, length=2, min=2)
    return nlat, nlon


def _check_degrees(lmax, mmax, img_shape, out_shape, grid, out_grid) -> tuple[int, int]:
    """Validate (or default) ``lmax`` and ``mmax`` against both grids; see :class:`SphericalConv`."""
    (nlat, nlon), (_, nlon_out) = img_shape, out_shape
    lmax = check_int("lmax", lmax, min=None, allow_none=True)  # the range, with its reason, below
    mmax = check_int("mmax", mmax, min=None, allow_none=True)
    if lmax is None:
        lmax = min(degree_limit(nlat, grid), degree_limit(out_shape[0], out_grid))
    elif not 1 <= lmax <= nlat:
        raise ValueError(f"lmax must be an int in [1, {nlat}] (the latitudes of img_shape={img_shape}), got {lmax!r}")
    m_limit = min((nlon + 1) // 2, (nlon_out + 1) // 2)
    if mmax is None:
        mmax = min(lmax, m_limit)
    elif not 1 <= mmax <= min(lmax, m_limit):
        raise ValueError(
            f"mmax must be an int in [1, {min(lmax, m_limit)}]: mmax <= lmax={lmax} and mmax <= (W + 1) // 2 "
            f"for img_shape={img_shape} and out_shape={out_shape} (Nyquist excluded), got {mmax!r}"
        )
    if lmax > degree_limit(nlat, grid):
        warnings.warn(f"lmax={lmax} exceeds degree_limit({nlat}, {grid!r}) = {degree_limit(nlat, grid)}: the "
                      f"quadrature of img_shape={img_shape} is not exact at these degrees, so even band-limited "
                      f"fields are aliased (use a Legendre-Gauss grid or a smaller lmax)", stacklevel=2)
    return lmax, mmax
