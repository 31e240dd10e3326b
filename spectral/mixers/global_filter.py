"""Global filter token mixing (GFNet, FMLP-Rec): a learnable complex filter per frequency and channel.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``L`` the filter's learned length
(``filter_len``), ``P`` the FFT length (``N`` circular; the smallest 2-3-5-smooth ``P >= 2N - 1`` for
the zero boundary),
``F = P // 2 + 1`` rfft bins.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from spectral.checks import check_choice, check_int, check_number, check_real_dtype
from spectral.complex import as_complex, init_complex_
from spectral.fft import compute_dtype, empty_batch, fft_conv, fft_precision, real_edge_bins
from spectral.mixers._common import apply_mask, check_mask, check_sequence, next_fast_len, resample_filter

__all__ = ["Boundary", "BOUNDARIES", "global_filter", "GlobalFilterMixer"]

Boundary = Literal["circular", "zero"]
BOUNDARIES: tuple[str, ...] = ("circular", "zero")


def global_filter(
    x: torch.Tensor, weight: torch.Tensor, filter_len: int, *, boundary: Boundary = "circular"
) -> torch.Tensor:
    """Filter the token axis of ``x`` with the frequency response ``weight`` learned on ``filter_len`` points.

    "circular": ``y = irfft(rfft(x) * W_N)``, a circular convolution over the ``N``
    tokens, with ``W_N`` the learned response resampled to ``N`` points
    (:func:`~spectral.mixers._common.resample_filter`, "wrap"). "zero": the tokens are
    zero-extended and convolved linearly, by an FFT of a 2-3-5-smooth length
    ``P >= 2N - 1``, with the kernel ``h = irfft(weight, n=filter_len)`` read at the lags
    ``|l| < filter_len / 2`` only (``"crop"``: for even ``filter_len`` the lag
    ``+-filter_len / 2`` is dropped at every ``N``).

    Shape
    -----
    x: (B, N, D) real, weight: (filter_len // 2 + 1, D) complex -> (B, N, D) real
    """
    check_choice("boundary", boundary, BOUNDARIES)
    # FFT backends reject an empty batch
    if x.shape[0] == 0:
        return empty_batch(x, x.shape, [weight])
    n = x.shape[1]
    p = n if boundary == "circular" else next_fast_len(2 * n - 1)
    with fft_precision(x):
        xc = x.to(compute_dtype(x.dtype))
        w = weight.to(torch.promote_types(weight.dtype, torch.complex64))
        # "zero" with p == L (so n <= L / 2) places the kernel unchanged: its split lag L/2, which
        # "crop" drops, lands on index L/2 of the P-circle, which links no two of the n tokens
        if p != filter_len:
            w = resample_filter(w, filter_len, p, "wrap" if boundary == "circular" else "crop")
        w = real_edge_bins(w, p, dim=0)  # (F, D) complex; DC / Nyquist real, as for a real kernel
        y = fft_conv(xc, w, p)  # (B, N, D) real
    return y.to(x.dtype)


class GlobalFilterMixer(nn.Module):
    """Learnable global filter over tokens: ``y = irfft(rfft(x) * W)``, a complex ``W[k, d]`` per frequency, channel.

    Equivalent to a depthwise convolution with a kernel as long as the sequence,
    in ``O(N log N)``. The filter is learned on ``max_len`` tokens and works at any
    length ``N``: it is the response of a kernel whose lags are counted in tokens, so a
    different ``N`` samples its trigonometric interpolant on the new frequency grid
    (exact at the shared frequencies) instead of tying the layer to one length.

    Parameters
    ----------
    dim : int
        Embedding size ``D``.
    max_len : int
        Length the filter is learned on; any ``N`` is accepted.
    boundary : {"circular", "zero"}
        "circular" (GFNet, FMLP-Rec; default): the ``N`` tokens are one period, the
        mixer is equivariant to circular shifts. "zero": the sequence is zero-extended
        and convolved linearly (FFT length ``P >= 2N - 1``); the kernel then spans lags
        ``-(max_len - 1) .. max_len - 1`` at every ``N`` and is learned on ``2 max_len``
        points (``max_len + 1`` rfft bins). Its lag ``max_len`` (the Nyquist lag of the
        ``2 max_len``-point kernel) is never used: it could connect no two tokens of a
        sequence of up to ``max_len`` tokens, so it would get no gradient there.
    init_std : float
        Standard deviation of the complex filter values at initialisation (GFNet: 0.02).
    device, dtype
        Of the filter, stored as a real ``(filter_len // 2 + 1, dim, 2)`` tensor.

    Shape
    -----
    x: (B, N, D) real, mask: (B, N) bool or None -> (B, N, D) real, same dtype

    Notes
    -----
    Padded tokens (``mask`` False) are set to zero before the FFT and the outputs there
    are zero, so padded values never change an unmasked output. With
    ``boundary="zero"`` a padded sequence also gives exactly the outputs of the
    unpadded one (padding at either end or both: a linear convolution of zeros adds
    nothing). With "circular" the outputs are those of the length-``N`` period whose
    padded tokens are zeros. A NaN or inf in one real token makes the outputs of its
    channel NaN at every token of that sample (the FFT mixes all tokens, even those
    that "zero" would not connect); other channels and samples are unaffected. Half-precision
    inputs are filtered in float32 and cast back.

    References
    ----------
    Rao et al., "Global Filter Networks for Image Classification", NeurIPS 2021.
    Zhou et al., "Filter-enhanced MLP is All You Need for Sequential Recommendation"
    (FMLP-Rec), WWW 2022.

    Examples
    --------
    >>> mixer = GlobalFilterMixer(8, 64)
    >>> mixer(torch.randn(2, 17, 8)).shape
    torch.Size([2, 17, 8])
    """

    def __init__(
        self,
        dim: int,
        max_len: int,
        *,
        boundary: Boundary = "circular",
        init_std: float = 0.02,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.dim, self.max_len = check_int("dim", dim), check_int("max_len", max_len)
        self.boundary = check_choice("boundary", boundary, BOUNDARIES)
        self.init_std = check_number("init_std", init_std, min=0)
        dtype = check_real_dtype("dtype", dtype)
        self.filter_len = self.max_len if boundary == "circular" else 2 * self.max_len
        self.weight = nn.Parameter(torch.empty(self.filter_len // 2 + 1, self.dim, 2, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_complex_(self.weight, self.init_std)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_sequence(x, self.dim, "GlobalFilterMixer")
        check_mask(mask, x.shape[:2], "GlobalFilterMixer")
        y = global_filter(apply_mask(x, mask), as_complex(self.weight), self.filter_len, boundary=self.boundary)
        return apply_mask(y, mask)

    def extra_repr(self) -> str:
        return f"{self.dim}, {self.max_len}, boundary={self.boundary!r}, filter_len={self.filter_len}"
