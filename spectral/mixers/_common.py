"""Shared pieces of the token mixers: input checks, padding masks, filter resampling.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``L`` the length a filter was
learned on (its ``filter_len``), ``P`` an FFT length, ``F = P // 2 + 1`` rfft bins.

Padding masks are ``(B, N)`` bool, True = real token. Every mixer replaces padded
tokens by zeros before its FFT (``torch.where``, so even NaN padding cannot leak) and
returns zeros at padded positions.

Filter resampling
-----------------
A filter ``W`` learned on ``L`` rfft bins is the frequency response of a real kernel
``h = irfft(W, n=L)`` whose lags are read two-sided, ``-(L-1)//2 .. L//2`` (for even
``L`` the lag ``L/2`` is split in halves between ``+L/2`` and ``-L/2``). Lags are
counted in tokens and keep their meaning at every length:

* ``"wrap"`` (circular mixing on ``P`` tokens): the kernel is periodised on the
  ``P``-circle, so ``W_P[j] = H(j / P)`` with ``H`` the trigonometric interpolant of
  ``W``. Upsampling interpolates ``W`` exactly (``W_{2L}[2j] = W[j]``), downsampling
  samples it (``W_{L/2}[j] = W[2j]``).
* ``"crop"`` (linear convolution of ``n`` tokens zero-padded to ``P >= 2n - 1``):
  the kernel is read with the lags ``|l| < L / 2`` only, ``-(L-1)//2 .. (L-1)//2``
  (for even ``L`` the split lag ``+-L/2`` is dropped at every ``P``: it has no single
  side, and keeping it only when ``P > L`` would switch on a tap that no shorter
  sequence trains). Of those, the lags ``|l| < (P + 1) / 2`` are kept and placed on
  the ``P``-circle without overlap; with ``P >= 2n - 1`` that includes every lag
  ``|l| < n`` that can connect two of the ``n`` tokens, so the FFT convolution is the
  exact linear one.

Hot path
--------
:func:`fft_conv` (filter by FFT) and :func:`rfft` are ``torch.autograd.Function`` s with
hand-written backward passes: the adjoint of an rfft is one inverse real FFT, whereas
torch's generic backward zero-pads to a full complex FFT and copies. On CPU, where these
mixers are memory-bound, that removes about a third of the fwd+bwd time.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "check_sequence",
    "check_mask",
    "apply_mask",
    "masked_mean",
    "resample_filter",
    "filter_kernel",
    "next_fast_len",
    "real_edge_bins",
    "fft_conv",
    "rfft",
    "norm_scale",
    "LagPlacement",
    "LAG_PLACEMENTS",
]

LagPlacement = Literal["wrap", "crop"]
LAG_PLACEMENTS: tuple[str, ...] = ("wrap", "crop")


def check_sequence(x: torch.Tensor, dim: int | None, name: str) -> None:
    """Raise unless ``x`` is a real floating ``(B, N, D)`` tensor (``D == dim`` when given)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.is_complex() or not x.is_floating_point():
        raise TypeError(f"{name}: x must have a real floating dtype, got {x.dtype}")
    want = "(B, N, D)" if dim is None else f"(B, N, {dim})"
    if x.ndim != 3 or (dim is not None and x.shape[-1] != dim) or x.shape[1] < 1:
        raise ValueError(f"{name}: expected x of shape {want}, got {tuple(x.shape)}")


def check_mask(mask: torch.Tensor | None, shape: tuple[int, ...], name: str) -> None:
    """Raise unless ``mask`` is None or a bool tensor of ``shape`` (the token axes of x)."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name}: mask must be a bool tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name}: mask must have dtype torch.bool (True = real token), got {mask.dtype}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name}: expected mask of shape {tuple(shape)} (True = real token), got {tuple(mask.shape)}")


def apply_mask(x: torch.Tensor, mask: torch.Tensor | None, feature_dims: int = 1) -> torch.Tensor:
    """Zeros at padded positions; ``mask`` covers the axes before the last ``feature_dims``."""
    if mask is None:
        return x
    m = mask.reshape(*mask.shape, *([1] * feature_dims))
    return torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the token axis of real tokens only: ``(B, N, D) -> (B, D)``.

    A sequence without any real token gets a zero mean (no division by zero).
    """
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype).unsqueeze(-1)  # (B, N, 1)
    return (apply_mask(x, mask) * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def next_fast_len(n: int) -> int:
    """Smallest ``m >= n`` whose only prime factors are 2, 3 and 5 (fast for every FFT library)."""
    if n < 1:
        raise ValueError(f"next_fast_len: n must be >= 1, got {n}")
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _two_sided_lags(h: torch.Tensor, n_src: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel values and their signed lags: a length-``n_src`` circular kernel read two-sided.

    For even ``n_src`` the lag ``n_src/2`` appears twice (``+`` and ``-``) with half its value.
    """
    lags = torch.arange(n_src, device=h.device)
    lags = torch.where(lags > n_src // 2, lags - n_src, lags)
    if n_src % 2 == 0:
        half = 0.5 * h.narrow(dim, n_src // 2, 1)
        h = torch.cat(
            [h.narrow(dim, 0, n_src // 2), half, half, h.narrow(dim, n_src // 2 + 1, n_src // 2 - 1)], dim=dim
        )
        lags = torch.cat([lags[: n_src // 2 + 1], lags.new_tensor([-(n_src // 2)]), lags[n_src // 2 + 1 :]])
    return h, lags


def filter_kernel(h: torch.Tensor, n_src: int, n_dst: int, placement: LagPlacement, *, dim: int = 0) -> torch.Tensor:
    """Place a circular kernel of ``n_src`` lags on an ``n_dst``-circle (module docstring).

    "wrap" keeps every lag (an even ``n_src``'s lag ``n_src/2`` in halves at ``+-n_src/2``);
    "crop" keeps the lags ``|l| < min(n_src / 2, (n_dst + 1) / 2)``.

    Shape
    -----
    h: (..., n_src, ...) real -> (..., n_dst, ...) real, along ``dim``
    """
    if placement not in LAG_PLACEMENTS:
        raise ValueError(f"placement must be one of {LAG_PLACEMENTS}, got {placement!r}")
    dim = dim % h.ndim
    if placement == "wrap" and n_dst == n_src:
        return h
    vals, lags = _two_sided_lags(h, n_src, dim)
    if placement == "crop":
        # |lag| < n_src / 2 (no split lag n_src/2) and < (P + 1) / 2 (P >= 2n - 1: every |lag| < n)
        keep = ((2 * lags.abs() < n_src) & (lags.abs() < (n_dst + 1) // 2)).nonzero().squeeze(-1)
        vals, lags = vals.index_select(dim, keep), lags[keep]
    shape = list(h.shape)
    shape[dim] = n_dst
    return h.new_zeros(shape).index_add(dim, torch.remainder(lags, n_dst), vals)


def resample_filter(
    w: torch.Tensor, n_src: int, n_dst: int, placement: LagPlacement = "wrap", *, dim: int = 0
) -> torch.Tensor:
    """Frequency response learned on ``n_src`` points, moved to an ``n_dst``-point FFT.

    ``w`` holds ``n_src // 2 + 1`` rfft bins along ``dim``; the result holds
    ``n_dst // 2 + 1``. "wrap" gives ``W_P[j] = H(j / P)``, the trigonometric
    interpolant of ``w`` sampled on the new grid; "crop" is for linear convolution
    (module docstring). Real ``w`` is read as a zero-phase response and stays real.

    Shape
    -----
    w: (n_src // 2 + 1, D) complex -> (n_dst // 2 + 1, D) complex (along ``dim``)
    """
    if w.shape[dim] != n_src // 2 + 1:
        raise ValueError(
            f"resample_filter: expected {n_src // 2 + 1} rfft bins for n_src={n_src} on dim {dim}, "
            f"got shape {tuple(w.shape)}"
        )
    if placement == "wrap" and n_src == n_dst:
        return w
    was_real = not w.is_complex()
    w_c = real_edge_bins(w.to(torch.promote_types(w.dtype, torch.complex64)), n_src, dim)  # Hermitian part: not
    h = torch.fft.irfft(w_c, n=n_src, dim=dim)  # every backend drops Im of DC / Nyquist itself; (.., n_src, ..) real
    out = torch.fft.rfft(filter_kernel(h, n_src, n_dst, placement, dim=dim), dim=dim)
    return out.real if was_real else out


def real_edge_bins(y: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """New tensor with the imaginary parts of the DC and (even ``n``) Nyquist rfft bins zeroed.

    Built with ``torch.complex`` (no in-place writes on views), so the gradient of those
    parts is zero instead of depending on the inverse FFT backend's convention.
    """
    f = y.shape[dim]
    keep = torch.ones(f, dtype=y.real.dtype, device=y.device)
    keep[0] = 0
    if n % 2 == 0 and f == n // 2 + 1:
        keep[-1] = 0
    keep = keep.reshape([f] + [1] * (y.ndim - 1 - (dim % y.ndim)))
    return torch.complex(y.real, y.imag * keep)


class _FFTConv(torch.autograd.Function):
    """``y = irfft(rfft(x, n=P) * w, n=P)[:, :N]`` with a hand-written backward.

    Backward: ``gx = irfft(rfft(g, n=P) * conj(w))[:, :N]`` (the adjoint, a correlation)
    and ``gw_k = c_k / P * sum_b conj(X_bk) G_bk`` (``c_k = 2``, or 1 at DC and Nyquist
    whose imaginary parts the real inverse ignores). Compared with autograd through
    ``rfft``/``irfft`` this skips the full complex FFT that the ``rfft`` backward runs
    and works in place on the spectra; the spectrum of ``x`` is kept only when ``w``
    needs a gradient. The transforms run on the ``(B, D, N)`` view, where the token axis
    is contiguous in memory (this is also the layout torch's own FFT over ``dim=1``
    returns), and the zero padding to ``P`` happens inside the FFT.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, p: int) -> torch.Tensor:
        b, n, d = x.shape
        ctx.p = p
        spec = torch.fft.rfft(x.transpose(1, 2), n=p, dim=-1)  # (B, D, F) complex
        ctx.save_for_backward(spec if w.requires_grad else None, w)
        prod = spec * w.t() if w.requires_grad else spec.mul_(w.t())
        out = torch.empty_strided(
            (b, n, d), (n * d, 1, n), dtype=x.dtype, device=x.device
        )  # (B, N, D), stored as (B, D, N)
        if p == n:
            torch.fft.irfft(prod, n=p, dim=-1, out=out.transpose(1, 2))
        else:
            out.transpose(1, 2).copy_(torch.fft.irfft(prod, n=p, dim=-1).narrow(-1, 0, n))
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        spec, w = ctx.saved_tensors
        p, n = ctx.p, g.shape[1]
        g_spec = torch.fft.rfft(g.transpose(1, 2), n=p, dim=-1)  # (B, D, F) complex
        gw = None
        if ctx.needs_input_grad[1]:
            gw = spec[0].conj() * g_spec[0]  # (D, F): sum_b conj(X) G, one batch slice at a time
            for i in range(1, spec.shape[0]):
                gw.addcmul_(spec[i].conj(), g_spec[i])
            scale = torch.full((w.shape[0],), 2.0 / p, dtype=gw.real.dtype, device=gw.device)
            scale[0] = 1.0 / p
            if p % 2 == 0:
                scale[-1] = 1.0 / p
            gw = real_edge_bins(gw.mul_(scale).t(), p, dim=0)  # (F, D)
        gx = None
        if ctx.needs_input_grad[0]:
            gx = torch.fft.irfft(g_spec.mul_(w.t().conj()), n=p, dim=-1).narrow(-1, 0, n).transpose(1, 2)
        return gx, gw, None


def fft_conv(x: torch.Tensor, w: torch.Tensor, p: int) -> torch.Tensor:
    """Filter the token axis of ``x`` by the response ``w`` on a ``P``-point circle, keep ``N`` outputs.

    ``y = irfft(rfft(x, n=P) * w, n=P)[:, :N]``: a circular convolution for ``P = N``, a
    linear one when ``P >= 2N - 1`` and ``w`` holds a kernel placed without overlap.
    ``w`` must have real DC (and even-``P`` Nyquist) bins (:func:`real_edge_bins`).

    Shape
    -----
    x: (B, N, D) real, w: (P // 2 + 1, D) complex -> (B, N, D) real
    """
    if w.shape != (p // 2 + 1, x.shape[-1]) or x.ndim != 3 or p < x.shape[1]:
        raise ValueError(
            f"fft_conv: expected x (B, N, D), w (P // 2 + 1, D) with P >= N; "
            f"got x {tuple(x.shape)}, w {tuple(w.shape)}, P={p}"
        )
    return _FFTConv.apply(x, w.to(torch.promote_types(x.dtype, torch.complex64)), p)


_DUAL_NORM = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def norm_scale(norm: str, n: int) -> float:
    """Factor ``s`` of a forward transform of length ``n`` under ``norm``: 1, ``1/n`` or ``1/sqrt(n)``."""
    return {"backward": 1.0, "forward": 1.0 / n, "ortho": n**-0.5}[norm]


class _RFFT(torch.autograd.Function):
    """``torch.fft.rfft`` with its adjoint written as one inverse real FFT.

    For ``X_k = s sum_t x_t e^{-2 pi i k t / n}`` (``k < n // 2 + 1``, ``s`` from ``norm``),
    ``dL/dx_t = s sum_k Re(G_k e^{2 pi i k t / n})``, which is half of ``irfft(G)`` in the
    dual normalisation plus the DC and Nyquist terms that ``irfft`` counts once instead
    of twice. torch's own backward zero-pads to a full complex FFT instead.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, n: int, dim: int, norm: str) -> torch.Tensor:
        ctx.meta = (n, dim % x.ndim, norm, x.shape[dim % x.ndim])
        return torch.fft.rfft(x, n=n, dim=dim, norm=norm)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        n, dim, norm, length = ctx.meta
        gx = torch.fft.irfft(g, n=n, dim=dim, norm=_DUAL_NORM[norm]).mul_(0.5)  # (..., n, ...) real
        alpha = 0.5 * norm_scale(norm, n)
        gx.add_(g.narrow(dim, 0, 1).real, alpha=alpha)  # DC: counted once by irfft, needs twice
        if n % 2 == 0:  # Nyquist: + on even t, - on odd t (strided in-place adds, no (..., n, ...) temporary)
            g_nyq = g.narrow(dim, n // 2, 1).real
            lead = (slice(None),) * dim
            gx[lead + (slice(0, None, 2),)].add_(g_nyq, alpha=alpha)
            gx[lead + (slice(1, None, 2),)].sub_(g_nyq, alpha=alpha)
        if length > n:  # forward truncated x to n samples: the dropped ones get zero gradient
            shape = list(gx.shape)
            shape[dim] = length - n
            gx = torch.cat([gx, gx.new_zeros(shape)], dim=dim)  # (..., length, ...) real
        elif length < n:  # forward zero-padded x to n samples
            gx = gx.narrow(dim, 0, length)
        return gx, None, None, None


def rfft(x: torch.Tensor, *, n: int | None = None, dim: int = 1, norm: str = "backward") -> torch.Tensor:
    """``torch.fft.rfft(x, n, dim, norm)`` whose backward is one ``irfft`` (no full complex FFT).

    Shape
    -----
    x: (B, N, D) real -> (B, n // 2 + 1, D) complex (for ``dim=1``)
    """
    return _RFFT.apply(x, x.shape[dim] if n is None else n, dim, norm)
