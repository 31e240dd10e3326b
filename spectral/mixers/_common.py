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

The transforms themselves (:func:`spectral.fft.rfft`, :func:`spectral.fft.fft_conv`,
:func:`spectral.fft.real_edge_bins`) live in :mod:`spectral.fft`.
"""

from __future__ import annotations

from typing import Literal

import torch

from spectral.checks import check_choice, check_int
from spectral.fft import real_edge_bins

__all__ = [
    "check_sequence",
    "check_mask",
    "apply_mask",
    "masked_mean",
    "resample_filter",
    "filter_kernel",
    "next_fast_len",
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
    m = check_int("n", n, min=1)
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
    The lags are CPU index bookkeeping (no device sync; works for meta ``h``).
    """
    lags = torch.arange(n_src)
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
    check_choice("placement", placement, LAG_PLACEMENTS)
    dim = dim % h.ndim
    if placement == "wrap" and n_dst == n_src:
        return h
    vals, lags = _two_sided_lags(h, n_src, dim)
    if placement == "crop":
        # |lag| < n_src / 2 (no split lag n_src/2) and < (P + 1) / 2 (P >= 2n - 1: every |lag| < n)
        keep = ((2 * lags.abs() < n_src) & (lags.abs() < (n_dst + 1) // 2)).nonzero().squeeze(-1)  # CPU
        vals, lags = vals.index_select(dim, keep.to(h.device)), lags[keep]
    shape = list(h.shape)
    shape[dim] = n_dst
    return h.new_zeros(shape).index_add(dim, torch.remainder(lags, n_dst).to(h.device), vals)


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
    n_src, n_dst = check_int("n_src", n_src), check_int("n_dst", n_dst)
    check_choice("placement", placement, LAG_PLACEMENTS)
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
