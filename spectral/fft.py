"""Every Fourier transform of the library: truncated ("pruned") n-d transforms and their inverse
to any grid, resampling, and the token-axis rfft and FFT convolution of the mixers.

Legend: ``B`` batch, ``C`` channels, ``*grid`` the last ``d`` axes (``d`` = 1, 2, 3),
``H, W`` a 2-D grid, ``K`` kept bins per axis (see :mod:`spectral.modes`),
``F = W // 2 + 1`` rfft bins; for the mixers ``N`` tokens, ``D`` embedding, ``P`` an
FFT length.

The forward transform returns only the kept wavenumbers ``|k| < n_modes[i]`` in the
compact layout of :mod:`spectral.modes`. It transforms one axis at a time, starting
with the last (an rfft for real data), and drops the unkept bins before the next
axis, so the work on every later axis shrinks. The inverse mirrors it: the two-sided
axes are inverted first while the last axis still holds only its kept bins, and the
last axis is expanded by ``irfft(n=W)``. No full-size zero-padded spectrum is ever
built, and the output grid is a free argument.

Autograd
--------
Every step is a ``torch.autograd.Function`` (in ``spectral/_fft_autograd.py``) whose
backward is its exact adjoint written as another such Function: the adjoint of an
rfft is one inverse real FFT of the kept bins, where torch's generic backward
zero-pads to a full complex FFT (on CPU, where the mixers are memory-bound, that
removes about a third of their fwd+bwd time). Backward passes are differentiable
again, so second derivatives (gradient penalties, Hessian-vector products) are exact.

Precision policy
----------------
float16 / bfloat16 inputs are transformed in float32 (cuFFT's half precision needs
power-of-two sizes and no FFT library has bfloat16), with autocast disabled inside the
transform; float64 / complex128 stay in double precision. The forward transform
returns complex64 for half inputs; the inverse returns ``out_dtype`` when given.

An empty batch (a leading axis of size 0, which FFT backends reject) gives an empty
result of the right shape and dtype; tensors on the ``meta`` device give meta results.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Literal

import torch

from spectral._fft_autograd import (
    DUAL_NORM,
    _FFTConv,
    _FftKeep,
    _IfftPad,
    _IrfftPad,
    _RFFT,
    _RfftKeep,
    _scale_rfft_bins as scale_rfft_bins,
    dc_scale,
    empty_batch,
    norm_scale,
    real_edge_bins,
    rfft_bin_weights,
)
from spectral.checks import autocast_enabled, check_bool, check_int, check_ints, check_tensor, describe
from spectral.modes import as_n_modes, check_grid, kept_shape, max_modes, modes_from_kept_shape

__all__ = [
    "FFT_NORMS",
    "FFTNorm",
    "check_norm",
    "compute_dtype",
    "fft_precision",
    "truncated_fftn",
    "truncated_ifftn",
    "truncated_fftn_backward",
    "truncated_ifftn_backward",
    "dc_scale",
    "resample",
    "rfft",
    "fft_conv",
    "real_edge_bins",
    "norm_scale",
    "empty_batch",
]

FFTNorm = Literal["forward", "backward", "ortho"]
FFT_NORMS: tuple[str, ...] = ("forward", "backward", "ortho")

_HALF = (torch.float16, torch.bfloat16)
_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is one of :data:`FFT_NORMS`, else raise ValueError."""
    if not isinstance(norm, str) or norm not in FFT_NORMS:
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
    """Context for an FFT region: autocast off on ``x``'s device type (a no-op elsewhere).

    Devices without autocast (``meta``: shape inference) get a no-op context.
    """
    if autocast_enabled(x.device.type):  # False on meta (torch.is_autocast_enabled("meta") raises)
        return torch.autocast(device_type=x.device.type, enabled=False)
    return nullcontext()


def _check_field(x: torch.Tensor, d: int, complex_data: bool, owner: str, name: str = "x") -> None:
    check_tensor(owner, name, x, kind="floating")
    if x.ndim < d:
        raise ValueError(
            f"{owner}: {name}: expected at least {d} dims (..., {', '.join('N%d' % i for i in range(d))}) "
            f"for {d} transformed axes, got shape {tuple(x.shape)}"
        )
    if x.is_complex() and not complex_data:
        raise TypeError(
            f"{owner}: {name} has complex dtype {x.dtype}; pass complex_data=True to transform "
            f"complex fields (full FFT on every axis)"
        )


def _spectrum_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype of the spectrum of ``dtype`` data (half precisions in 64-bit complex)."""
    dt = compute_dtype(dtype)
    return _COMPLEX_OF.get(dt, dt)


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
    complex_data = check_bool("complex_data", complex_data)
    d = len(modes)
    _check_field(x, d, complex_data, "truncated_fftn")
    check_grid(x.shape[-d:], modes, shape=x.shape)
    if x.numel() == 0:  # an empty batch: FFT backends reject it
        shape = (*x.shape[:-d], *kept_shape(modes, complex_data=complex_data))
        return empty_batch(x, shape, dtype=_spectrum_dtype(x.dtype))
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
        Cast the result to this dtype (e.g. back to float16 after a half-precision input);
        a floating or complex dtype, complex for ``complex_data=True``.

    Returns
    -------
    Tensor
        ``(..., *grid)``, real unless ``complex_data``.

    Shape
    -----
    modes: (B, C, 2 m_0 - 1, m_1) complex -> (B, C, H, W) real

    Raises
    ------
    ValueError
        ``grid`` empty, with more than 3 entries or non-positive ones, a spectrum shape
        no ``n_modes`` gives, a grid that does not admit the modes, an unknown ``norm``.
    TypeError
        Non-complex ``modes``, non-int ``grid`` entries, an ``out_dtype`` that is not a
        floating or complex ``torch.dtype`` (a real one for ``complex_data=True``).

    Examples
    --------
    >>> x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    >>> c = truncated_fftn(x, (8, 8))
    >>> truncated_ifftn(c, (32, 32)).shape
    torch.Size([2, 3, 32, 32])
    """
    grid_t = check_ints("grid", grid)
    d = len(grid_t)
    if d > 3:
        raise ValueError(f"grid must have 1 to 3 entries (one per transformed axis), got {grid!r}")
    check_norm(norm)
    complex_data = check_bool("complex_data", complex_data)
    check_tensor("truncated_ifftn", "modes", modes, kind="complex")
    if out_dtype is not None and (not isinstance(out_dtype, torch.dtype) or not (
            out_dtype.is_complex or (out_dtype.is_floating_point and not complex_data))):
        want = "a complex torch.dtype" if complex_data else "a floating or complex torch.dtype"
        raise TypeError(f"truncated_ifftn: out_dtype must be None or {want}, got {describe(out_dtype)}")
    if modes.ndim < d:
        raise ValueError(f"modes: expected at least {d} dims for grid {grid_t}, got shape {tuple(modes.shape)}")
    n_modes = modes_from_kept_shape(modes.shape[-d:], complex_data=complex_data)
    check_grid(grid_t, n_modes, name="grid")
    if modes.numel() == 0:  # an empty batch: FFT backends reject it
        dtype = _spectrum_dtype(modes.dtype)
        y = empty_batch(modes, (*modes.shape[:-d], *grid_t), dtype=dtype if complex_data else _REAL_OF[dtype])
    else:
        with fft_precision(modes):
            y = modes.to(compute_dtype(modes.dtype))
            two_sided = range(-d, 0) if complex_data else range(-d, -1)
            for dim in two_sided:
                y = _IfftPad.apply(y, grid_t[dim], dim, norm)  # (..., N, ..., m) complex
            if not complex_data:
                y = _IrfftPad.apply(y, grid_t[-1], norm)  # (..., H, W) real
    return y if out_dtype is None else y.to(out_dtype)


def truncated_fftn_backward(
    grad: torch.Tensor, grid: int | Sequence[int], *, complex_data: bool = False, norm: FFTNorm = "forward"
) -> torch.Tensor:
    """The gradient with respect to ``x`` of :func:`truncated_fftn` ``(x, n_modes)`` whose output has gradient ``grad``.

    For hand-written backward passes: what autograd computes through :func:`truncated_fftn`,
    without its graph. The adjoint of a transform under ``norm`` is the inverse transform under
    the dual norm; for real data the rfft bins after DC are halved first (each stands for
    itself and its conjugate).

    Parameters
    ----------
    grad : Tensor
        ``(..., *K)`` complex, the compact layout of :func:`truncated_fftn`'s output.
    grid : int or sequence of int
        The ``d`` sizes of the transformed axes of ``x``.
    complex_data, norm
        As given to :func:`truncated_fftn`.

    Returns
    -------
    Tensor
        ``(..., *grid)``, real unless ``complex_data``.

    Examples
    --------
    >>> x = torch.randn(2, 3, 16, 15, dtype=torch.float64, requires_grad=True)
    >>> g = torch.randn(2, 3, 7, 4, dtype=torch.complex128)
    >>> (auto,) = torch.autograd.grad(truncated_fftn(x, (4, 4)), x, g)
    >>> torch.allclose(truncated_fftn_backward(g, (16, 15)), auto)
    True
    """
    grid_t = check_ints("grid", grid)
    check_norm(norm)
    if check_bool("complex_data", complex_data):
        return truncated_ifftn(grad, grid_t, complex_data=True, norm=DUAL_NORM[norm])
    return truncated_ifftn(scale_rfft_bins(grad, grid_t[-1], 0.5), grid_t, norm=DUAL_NORM[norm])


def truncated_ifftn_backward(
    grad: torch.Tensor, n_modes: int | Sequence[int], *, complex_data: bool = False, norm: FFTNorm = "forward"
) -> torch.Tensor:
    """The gradient with respect to ``modes`` of :func:`truncated_ifftn` ``(modes, grid)`` whose output has gradient ``grad``.

    For hand-written backward passes: the forward transform under the dual norm, with the
    rfft bins after DC doubled for real data.

    Parameters
    ----------
    grad : Tensor
        ``(..., *grid)``, real unless ``complex_data``.
    n_modes : int or sequence of int
        The kept modes of the spectrum ``modes``.
    complex_data, norm
        As given to :func:`truncated_ifftn`.

    Returns
    -------
    Tensor
        ``(..., *K)`` complex.

    Examples
    --------
    >>> c = torch.randn(2, 3, 7, 4, dtype=torch.complex128, requires_grad=True)
    >>> g = torch.randn(2, 3, 16, 15, dtype=torch.float64)
    >>> (auto,) = torch.autograd.grad(truncated_ifftn(c, (16, 15)), c, g)
    >>> torch.allclose(truncated_ifftn_backward(g, (4, 4)), auto)
    True
    """
    check_norm(norm)
    if check_bool("complex_data", complex_data):
        return truncated_fftn(grad, n_modes, complex_data=True, norm=DUAL_NORM[norm])
    return scale_rfft_bins(truncated_fftn(grad, n_modes, norm=DUAL_NORM[norm]), grad.shape[-1], 2.0)


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
    size_t = check_ints("size", size)
    if len(size_t) > 3:
        raise ValueError(f"size must be 1 to 3 positive ints, got {size!r}")
    d = len(size_t)
    _check_field(x, d, True, "resample")
    if x.numel() == 0:  # an empty batch: FFT backends reject it
        return empty_batch(x, (*x.shape[:-d], *size_t))
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
        if even:  # the Nyquist bin of the smaller grid, folded (down) or split (up); after folding it is the
            spec = spec * rfft_bin_weights(nk // 2 + 1, nk, dc=1.0, nyquist=factor, rest=1.0, like=spec, dim=dim)
            if n_new < n:  # target's Nyquist: keep its Hermitian part (cuFFT need not drop the imaginary part)
                spec = real_edge_bins(spec, n_new, dim)
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


def rfft(x: torch.Tensor, *, n: int | None = None, dim: int = 1, norm: FFTNorm = "backward") -> torch.Tensor:
    """``torch.fft.rfft(x, n, dim, norm)`` whose backward is one ``irfft`` (no full complex FFT).

    The backward is itself differentiable (exact second derivatives). FFT mixing is
    global: a NaN or inf anywhere along ``dim`` of ``x`` spreads to every output bin of
    that slice (and, after an inverse transform, to every token of that sample).

    Shape
    -----
    x: (B, N, D) real -> (B, n // 2 + 1, D) complex (for ``dim=1``); an empty ``x`` gives
    an empty spectrum of that shape

    Raises
    ------
    TypeError
        ``x`` not a real floating tensor, ``n`` or ``dim`` not an int.
    ValueError
        ``dim`` out of range, ``n < 1``, an unknown ``norm``.
    """
    check_tensor("rfft", "x", x, kind="real")
    if x.ndim == 0:
        raise ValueError(f"rfft: x must have at least 1 dim, got shape {tuple(x.shape)}")
    dim = check_int("dim", dim, min=-x.ndim, max=x.ndim - 1)
    n = x.shape[dim] if n is None else n
    n = check_int("n", n, min=1)
    check_norm(norm)
    if x.numel() == 0:  # an empty batch: FFT backends reject it
        shape = list(x.shape)
        shape[dim] = n // 2 + 1
        return empty_batch(x, shape, dtype=_spectrum_dtype(x.dtype))
    return _RFFT.apply(x, n, dim, norm)


def fft_conv(x: torch.Tensor, w: torch.Tensor, p: int) -> torch.Tensor:
    """Filter the token axis of ``x`` by the response ``w`` on a ``P``-point circle, keep ``N`` outputs.

    ``y = irfft(rfft(x, n=P) * w, n=P)[:, :N]``: a circular convolution for ``P = N``, a
    linear one when ``P >= 2N - 1`` and ``w`` holds a kernel placed without overlap.
    ``w`` must have real DC (and even-``P`` Nyquist) bins (:func:`real_edge_bins`).
    Both gradients are exact at every order (``create_graph=True`` works).

    FFT mixing is global: a NaN or inf in one token of a sample spreads to every token
    of that sample's output (other samples are not affected).

    Shape
    -----
    x: (B, N, D) real, w: (P // 2 + 1, D) complex -> (B, N, D) real

    Raises
    ------
    TypeError
        ``x`` not a real floating tensor, ``w`` not a tensor, ``p`` not an int.
    ValueError
        Shapes that disagree (the message shows both), ``P < N``.
    """
    check_tensor("fft_conv", "x", x, kind="real")
    check_tensor("fft_conv", "w", w, kind="floating")
    p = check_int("p", p, min=1)
    if w.shape != (p // 2 + 1, x.shape[-1]) or x.ndim != 3 or p < x.shape[1]:
        raise ValueError(
            f"fft_conv: expected x (B, N, D), w (P // 2 + 1, D) with P >= N; "
            f"got x {tuple(x.shape)}, w {tuple(w.shape)}, P={p}"
        )
    w = w.to(torch.promote_types(x.dtype, torch.complex64))
    if x.numel() == 0:  # an empty batch: FFT backends reject it
        return empty_batch(x, x.shape, [w])
    # no spectrum is kept for backward: x is saved and its spectrum recomputed there
    return _FFTConv.apply(x, None, w, p)
