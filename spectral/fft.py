"""Truncated ("pruned") n-d Fourier transforms, their inverse to any grid, and resampling.

Legend: ``B`` batch, ``C`` channels, ``*grid`` the last ``d`` axes (``d`` = 1, 2, 3),
``H, W`` a 2-D grid, ``K`` kept bins per axis (see :mod:`spectral.modes`),
``F = W // 2 + 1`` rfft bins.

The forward transform returns only the kept wavenumbers ``|k| < n_modes[i]`` in the
compact layout of :mod:`spectral.modes`. It transforms one axis at a time, starting
with the last (an rfft for real data), and drops the unkept bins before the next
axis, so the work on every later axis shrinks. The inverse mirrors it: the two-sided
axes are inverted first while the last axis still holds only its kept bins, and the
last axis is expanded by ``irfft(n=W)``. No full-size zero-padded spectrum is ever
built, and the output grid is a free argument.

Precision policy
----------------
float16 / bfloat16 inputs are transformed in float32 (cuFFT's half precision needs
power-of-two sizes and no FFT library has bfloat16), with autocast disabled inside the
transform; float64 / complex128 stay in double precision. The forward transform
returns complex64 for half inputs; the inverse returns ``out_dtype`` when given.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Literal

import torch

from spectral.modes import as_n_modes, check_grid, max_modes, modes_from_kept_shape

__all__ = [
    "FFT_NORMS",
    "FFTNorm",
    "check_norm",
    "compute_dtype",
    "fft_precision",
    "truncated_fftn",
    "truncated_ifftn",
    "resample",
]

FFTNorm = Literal["forward", "backward", "ortho"]
FFT_NORMS: tuple[str, ...] = ("forward", "backward", "ortho")

_HALF = (torch.float16, torch.bfloat16)


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is one of :data:`FFT_NORMS`, else raise ValueError."""
    if norm not in FFT_NORMS:
        raise ValueError(f"norm must be one of {FFT_NORMS}, got {norm!r}")
    return norm


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype an FFT of ``dtype`` data runs in: half precisions go to 32-bit."""
    if dtype in _HALF:
        return torch.float32
    if dtype == torch.complex32:
        return torch.complex64
    return dtype


def fft_precision(x: torch.Tensor):
    """Context for an FFT region: autocast off on ``x``'s device type (a no-op elsewhere)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return nullcontext()


def _check_field(x: torch.Tensor, d: int, complex_data: bool, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < d:
        raise ValueError(
            f"{name}: expected at least {d} dims (..., {', '.join('N%d' % i for i in range(d))}) "
            f"for {d} transformed axes, got shape {tuple(x.shape)}"
        )
    if x.is_complex():
        if not complex_data:
            raise TypeError(
                f"{name} has complex dtype {x.dtype}; pass complex_data=True to transform "
                f"complex fields (full FFT on every axis)"
            )
    elif not x.is_floating_point():
        raise TypeError(f"{name} must have a floating or complex dtype, got {x.dtype}")


def _keep_two_sided(y: torch.Tensor, m: int, dim: int) -> torch.Tensor:
    """Keep bins ``0..m-1`` and ``-(m-1)..-1`` of a full FFT axis, compact order."""
    n = y.shape[dim]
    if m == 1:
        return y.narrow(dim, 0, 1)
    return torch.cat([y.narrow(dim, 0, m), y.narrow(dim, n - m + 1, m - 1)], dim=dim)


def _pad_two_sided(y: torch.Tensor, m: int, n: int, dim: int) -> torch.Tensor:
    """Place a compact two-sided axis of ``2m - 1`` bins into ``n`` FFT bins (zeros between)."""
    if 2 * m - 1 == n:
        return y
    shape = list(y.shape)
    shape[dim] = n - (2 * m - 1)
    zeros = y.new_zeros(shape)
    return torch.cat([y.narrow(dim, 0, m), zeros, y.narrow(dim, m, m - 1)], dim=dim)


def truncated_fftn(
    x: torch.Tensor,
    n_modes: int | Sequence[int],
    *,
    complex_data: bool = False,
    norm: FFTNorm = "forward",
) -> torch.Tensor:
    """Fourier coefficients of ``x`` on its last ``d = len(n_modes)`` axes, kept modes only.

    Parameters
    ----------
    x : Tensor
        Real field ``(..., *grid)``; complex only with ``complex_data=True``.
    n_modes : int or sequence of int
        ``n_modes[i] = m`` keeps ``|k| < m`` on axis ``i`` (README, "The mode convention"):
        rfft bins ``0..m-1`` on the last axis of real data, ``2m - 1`` bins elsewhere.
    complex_data : bool
        Transform complex fields with a full FFT on every axis.
    norm : {"forward", "backward", "ortho"}
        As in ``torch.fft``. "forward" (default) divides by the grid size so the
        coefficients do not depend on the resolution.

    Returns
    -------
    Tensor
        ``(..., *K)`` complex; ``K = (2m_0 - 1, ..., m_{d-1})`` for real data.

    Shape
    -----
    x: (B, C, H, W) real -> (B, C, 2 m_0 - 1, m_1) complex

    Raises
    ------
    ValueError
        Too few dims, a grid that does not admit ``n_modes``, an unknown ``norm``.
    TypeError
        Complex ``x`` without ``complex_data=True``, or a non-floating dtype.

    Examples
    --------
    >>> x = torch.randn(2, 3, 16, 16)
    >>> truncated_fftn(x, (4, 4)).shape
    torch.Size([2, 3, 7, 4])
    """
    modes = as_n_modes(n_modes)
    check_norm(norm)
    d = len(modes)
    _check_field(x, d, complex_data)
    check_grid(x.shape[-d:], modes, shape=x.shape)
    with fft_precision(x):
        y = x.to(compute_dtype(x.dtype))
        if complex_data:
            y = _FftKeep.apply(y, modes[-1], -1, norm)
        else:
            y = _RfftKeep.apply(y, modes[-1], norm)  # (..., N, m) complex
        for dim in range(-2, -d - 1, -1):
            y = _FftKeep.apply(y, modes[dim], dim, norm)  # (..., 2m - 1, ..., m) complex
    return y


def truncated_ifftn(
    modes: torch.Tensor,
    grid: int | Sequence[int],
    *,
    complex_data: bool = False,
    norm: FFTNorm = "forward",
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Field on ``grid`` from compact kept modes: the inverse of :func:`truncated_fftn`.

    ``grid`` may differ from the grid the modes came from (super- or sub-resolution)
    as long as it admits the modes. For real data the result is Hermitian-safe: the
    imaginary part of the DC bin of the last (rfft) axis is dropped explicitly (the
    Nyquist bin is never kept, see :mod:`spectral.modes`).

    Parameters
    ----------
    modes : Tensor
        ``(..., *K)`` complex, compact layout.
    grid : int or sequence of int
        Output size of each of the ``d`` transformed axes.
    complex_data : bool
        Return a complex field (two-sided last axis) instead of a real one.
    norm : {"forward", "backward", "ortho"}
        Must match the forward transform.
    out_dtype : torch.dtype, optional
        Cast the result to this dtype (e.g. back to float16 after a half-precision input).

    Returns
    -------
    Tensor
        ``(..., *grid)``, real unless ``complex_data``.

    Shape
    -----
    modes: (B, C, 2 m_0 - 1, m_1) complex -> (B, C, H, W) real

    Examples
    --------
    >>> x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    >>> c = truncated_fftn(x, (8, 8))
    >>> truncated_ifftn(c, (32, 32)).shape
    torch.Size([2, 3, 32, 32])
    """
    grid_t = (grid,) if isinstance(grid, int) else tuple(grid)
    d = len(grid_t)
    check_norm(norm)
    if not isinstance(modes, torch.Tensor) or not modes.is_complex():
        got = modes.dtype if isinstance(modes, torch.Tensor) else type(modes).__name__
        raise TypeError(f"modes must be a complex tensor, got {got}")
    if modes.ndim < d:
        raise ValueError(f"modes: expected at least {d} dims for grid {grid_t}, got shape {tuple(modes.shape)}")
    n_modes = modes_from_kept_shape(modes.shape[-d:], complex_data=complex_data)
    check_grid(grid_t, n_modes, name="grid")
    with fft_precision(modes):
        y = modes.to(compute_dtype(modes.dtype))
        two_sided = range(-d, 0) if complex_data else range(-d, -1)
        for dim in two_sided:
            y = _IfftPad.apply(y, grid_t[dim], dim, norm)  # (..., N, ..., m) complex
        if not complex_data:
            y = _IrfftPad.apply(y, grid_t[-1], norm)  # (..., H, W) real
    return y if out_dtype is None else y.to(out_dtype)


# Each axis step is an autograd.Function whose backward is the adjoint transform of the
# kept bins only: the adjoint of "rfft, keep m bins" is an irfft of those m bins (half the
# cost of autograd's full-length c2c on a zero-padded gradient), and the adjoint of a
# two-sided keep is a two-sided pad followed by one c2c. The adjoint of a transform with
# norm a carries the scale of the opposite convention, hence _DUAL.
_DUAL = {"forward": "backward", "backward": "forward", "ortho": "ortho"}


def _bin_weights(m: int, edge: float, rest: float, like: torch.Tensor) -> torch.Tensor:
    w = torch.full((m,), rest, dtype=like.real.dtype, device=like.device)
    w[0] = edge
    return w


def _drop_dc_imag(y: torch.Tensor) -> torch.Tensor:
    """New tensor with the imaginary part of bin 0 of the last axis set to zero."""
    return torch.complex(y.real, y.imag * _bin_weights(y.shape[-1], 0.0, 1.0, y))


class _RfftKeep(torch.autograd.Function):
    """``rfft(x, dim=-1)[..., :m]``; backward: ``irfft`` of the ``m`` gradient bins."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, m: int, norm: str) -> torch.Tensor:
        ctx.n, ctx.norm = x.shape[-1], norm
        return torch.fft.rfft(x, dim=-1, norm=norm).narrow(-1, 0, m)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # Re(sum_k g_k e^{+2 pi i k n / N}) = irfft(h) with h_0 = g_0, h_k = g_k / 2 (no Nyquist kept).
        h = grad * _bin_weights(grad.shape[-1], 1.0, 0.5, grad)
        return torch.fft.irfft(h, n=ctx.n, dim=-1, norm=_DUAL[ctx.norm]), None, None


class _IrfftPad(torch.autograd.Function):
    """``irfft(y, n, dim=-1)`` of ``m`` kept bins (DC imaginary part dropped); backward: ``rfft`` kept bins."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, n: int, norm: str) -> torch.Tensor:
        ctx.m, ctx.norm = y.shape[-1], norm
        return torch.fft.irfft(_drop_dc_imag(y), n=n, dim=-1, norm=norm)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = torch.fft.rfft(grad, dim=-1, norm=_DUAL[ctx.norm]).narrow(-1, 0, ctx.m)
        return g * _bin_weights(ctx.m, 1.0, 2.0, g), None, None


class _FftKeep(torch.autograd.Function):
    """``fft`` along ``dim`` keeping the two-sided bins ``|k| < m``; backward: pad + ``ifft``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, m: int, dim: int, norm: str) -> torch.Tensor:
        ctx.n, ctx.m, ctx.dim, ctx.norm, ctx.real_input = x.shape[dim], m, dim, norm, not x.is_complex()
        return _keep_two_sided(torch.fft.fft(x, dim=dim, norm=norm), m, dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = torch.fft.ifft(_pad_two_sided(grad, ctx.m, ctx.n, ctx.dim), dim=ctx.dim, norm=_DUAL[ctx.norm])
        return (g.real if ctx.real_input else g), None, None, None


class _IfftPad(torch.autograd.Function):
    """``ifft`` along ``dim`` onto ``n`` points from two-sided kept bins; backward: ``fft`` + keep."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, n: int, dim: int, norm: str) -> torch.Tensor:
        ctx.m, ctx.dim, ctx.norm = (y.shape[dim] + 1) // 2, dim, norm
        return torch.fft.ifft(_pad_two_sided(y, ctx.m, n, dim), dim=dim, norm=norm)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _keep_two_sided(torch.fft.fft(grad, dim=ctx.dim, norm=_DUAL[ctx.norm]), ctx.m, ctx.dim), None, None, None


def resample(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Fourier interpolation of a periodic field on its last ``len(size)`` axes.

    Each axis is resampled by zero-padding (up) or truncating (down) its spectrum,
    with the Nyquist bin of an even grid split evenly between ``+N/2`` and ``-N/2``
    when upsampling and folded back when downsampling, the same semantics as
    ``scipy.signal.resample`` applied axis by axis. Amplitudes are preserved.

    Exact for band-limited inputs: a field whose wavenumbers satisfy ``|k| < N'/2``
    on a target axis of ``N'`` points is reproduced exactly at the new sample points.
    When the target grid is too small for the field's band, the result is the
    sampling of the field's low-pass projection (wavenumbers above the target's
    Nyquist are discarded, not aliased).

    Parameters
    ----------
    x : Tensor
        ``(..., *grid)`` real or complex; the output has the same dtype.
    size : int or sequence of int
        New size of each of the last ``len(size)`` axes (1 to 3 axes).

    Shape
    -----
    x: (B, C, H, W) -> (B, C, H', W')

    Examples
    --------
    >>> t = torch.arange(8, dtype=torch.float64) / 8
    >>> y = resample(torch.sin(2 * torch.pi * t), 32)
    >>> bool(torch.allclose(y, torch.sin(2 * torch.pi * torch.arange(32, dtype=torch.float64) / 32), atol=1e-12))
    True
    """
    size_t = (size,) if isinstance(size, int) else tuple(size)
    if not 1 <= len(size_t) <= 3 or any(not isinstance(s, int) or s < 1 for s in size_t):
        raise ValueError(f"size must be 1 to 3 positive ints, got {size!r}")
    d = len(size_t)
    _check_field(x, d, complex_data=True)
    with fft_precision(x):
        y = x.to(compute_dtype(x.dtype))
        for dim in range(-d, 0):
            y = _resample_axis(y, size_t[dim], dim)
    return y.to(x.dtype)


def _resample_axis(x: torch.Tensor, n_new: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    if n_new == n:
        return x
    nk = min(n, n_new)
    even = nk % 2 == 0
    factor = 2.0 if n_new < n else 0.5  # fold (down) or split (up) the Nyquist bin
    if not x.is_complex():
        spec = torch.fft.rfft(x, dim=dim, norm="forward").narrow(dim, 0, nk // 2 + 1)
        if even:
            scale = torch.ones(nk // 2 + 1, dtype=x.dtype, device=x.device)
            scale[-1] = factor
            spec = spec * scale.view([-1] + [1] * (-dim - 1))
            if n_new < n:  # the folded bin is the new Nyquist: keep 2 Re (its Hermitian part), do not leave
                last = spec.narrow(dim, nk // 2, 1)  # the imaginary part to the backend (cuFFT need not drop it)
                spec = torch.cat((spec.narrow(dim, 0, nk // 2), torch.complex(last.real, torch.zeros_like(last.real))),
                                 dim=dim)
        return torch.fft.irfft(spec, n=n_new, dim=dim, norm="forward")
    spec = torch.fft.fft(x, dim=dim, norm="forward")
    n_pos = nk // 2 + 1 if even else max_modes(nk)  # bins 0..nk//2 (even) or 0..(nk-1)/2
    n_neg = nk - n_pos
    pos = spec.narrow(dim, 0, n_pos)
    neg = spec.narrow(dim, n - n_neg, n_neg)
    parts = [pos]
    if even and n_new < n:  # the target's Nyquist bin collects +nk/2 and -nk/2
        nyq = spec.narrow(dim, nk // 2, 1) + spec.narrow(dim, n - nk // 2, 1)
        parts = [pos.narrow(dim, 0, n_pos - 1), nyq]
    elif even:  # split the source Nyquist bin between +n/2 and -n/2
        half = 0.5 * pos.narrow(dim, n_pos - 1, 1)
        parts = [pos.narrow(dim, 0, n_pos - 1), half]
        neg = torch.cat([half, neg], dim=dim)
    gap = n_new - sum(p.shape[dim] for p in parts) - neg.shape[dim]
    if gap:
        shape = list(x.shape)
        shape[dim] = gap
        parts.append(x.new_zeros(shape, dtype=spec.dtype))
    return torch.fft.ifft(torch.cat(parts + [neg], dim=dim), dim=dim, norm="forward")
