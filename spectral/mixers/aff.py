"""AFF token mixing for images: an instance-adaptive frequency mask from a complex block MLP.

Legend: ``B`` batch, ``C`` channels, ``H, W`` grid, ``F = W // 2 + 1`` rfft bins,
``nb`` blocks, ``c = C / nb`` channels per block.
"""

from __future__ import annotations

import functools

import torch

from spectral.checks import check_shape, check_tensor
from spectral.fft import FFTNorm, compute_dtype, empty_batch, fft_precision, real_edge_bins, rfft
from spectral.mixers._chunked import chunked_map
from spectral.mixers._common import apply_mask, check_mask
from spectral.mixers.afno import _BlockMLPMixer, complex_block_mlp

__all__ = ["aff_mix", "AFFMixer"]


def aff_mix(x: torch.Tensor, weights: tuple[torch.Tensor, ...], *, norm: FFTNorm = "ortho") -> torch.Tensor:
    """``irfft2(X * MLP_block(X))`` with ``X = rfft2(x)``: adaptive frequency filtering.

    The mask is predicted from the spectrum itself at every frequency, by the
    block-diagonal complex MLP of :func:`~spectral.mixers.afno.complex_block_mlp`.

    Shape
    -----
    x: (B, C, H, W) real, weights (w1, b1, w2, b2) complex -> (B, C, H, W) real
    """
    if x.shape[0] == 0:  # FFT backends reject an empty batch
        return empty_batch(x, x.shape, weights)
    h, w = x.shape[-2:]
    fn = functools.partial(_aff_chunk, norm=norm)
    with fft_precision(x):
        xc = x.to(compute_dtype(x.dtype))
        # samples and whole channel blocks at a time: the weights' first axis is the block
        y = chunked_map(fn, xc, weights, irfft=(w, -1, norm), channel_dim=1, group=weights[0].shape[1],
                        per_channel=h * (w // 2 + 1), param_dims=[(None, 0)] * 4)  # (B, C, H, W) real
    return y.to(x.dtype)


def _aff_chunk(x, w1, b1, w2, b2, *, norm):
    """:func:`aff_mix` up to the last inverse FFT, on samples and whole channel blocks: (b, nb * c, H, W) real -> (b, nb * c, H, F) complex."""
    w = x.shape[-1]
    spec = torch.fft.fft(rfft(x, dim=-1, norm=norm), dim=-2, norm=norm)  # (b, nb * c, H, F) complex
    spec = spec * complex_block_mlp(spec, w1, b1, w2, b2)  # instance-adaptive mask
    # the mask makes the DC (and Nyquist) columns non-Hermitian: project them onto the reals rather than
    # rely on the inverse FFT ignoring their imaginary parts, which not every backend does
    return real_edge_bins(torch.fft.ifft(spec, dim=-2, norm=norm), w, dim=-1)  # (b, nb * c, H, F) complex


class AFFMixer(_BlockMLPMixer):
    """Adaptive frequency filter (AFF) for images: ``y = irfft2(X * M(X))``, ``X = rfft2(x)``.

    ``M(X) = ReLU(X W1 + b1) W2 + b2`` is a block-diagonal complex MLP over channels
    applied at every frequency (ReLU on real and imaginary parts), so the filter is
    semantic-adaptive: a dynamic depthwise convolution with a kernel as large as the
    image, computed in ``O(HW log HW)``. The weights do not depend on the frequency,
    so any ``H, W`` is accepted.

    Parameters
    ----------
    channels : int
        Channels ``C`` (divisible by ``num_blocks``).
    num_blocks : int
        Diagonal blocks of the mask MLP.
    hidden_size_factor : int
        Hidden width per block is ``C / num_blocks * hidden_size_factor``.
    fft_norm : {"ortho", "forward", "backward"}
        Normalisation of the 2-D transform (the scale the mask network sees).
    device, dtype
        Of the parameters (complex values stored as real ``(..., 2)`` tensors).

    Shape
    -----
    x: (B, C, H, W) real, mask: (B, H, W) bool or None -> (B, C, H, W) real, same dtype

    Notes
    -----
    Masked-out pixels (``mask`` False) are zero in the FFT and zero in the output, so
    their values change no other output. The 2-D inverse is an ``ifft`` over ``H`` then
    an ``irfft`` over ``W``; the imaginary parts of the DC (and Nyquist) columns are zeroed
    first (the Hermitian projection), since not every inverse-FFT backend ignores them
    (cuFFT's complex-to-real transform need not). A NaN or inf at one unmasked pixel
    makes the outputs of its channel block NaN at every pixel of that image; other
    blocks and images are unaffected. Half precision runs in float32.

    References
    ----------
    Huang, Zhang, Lan, Zha, Lu, Guo, "Adaptive Frequency Filters As Efficient Global
    Token Mixers", ICCV 2023 (arXiv:2307.14008).

    Examples
    --------
    >>> mixer = AFFMixer(16, num_blocks=4)
    >>> mixer(torch.randn(2, 16, 8, 7)).shape
    torch.Size([2, 16, 8, 7])
    """

    def __init__(
        self,
        channels: int,
        *,
        num_blocks: int = 8,
        hidden_size_factor: int = 1,
        fft_norm: FFTNorm = "ortho",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.channels = self._init_block_mlp(
            "channels", channels, num_blocks, hidden_size_factor, fft_norm, device, dtype
        )
        self.reset_parameters()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_tensor("AFFMixer", "x", x)
        check_shape("AFFMixer", "x", x, ("B", self.channels, "H", "W"))
        check_mask(mask, (x.shape[0], *x.shape[2:]), "AFFMixer")
        m = None if mask is None else mask.unsqueeze(1)  # (B, 1, H, W): broadcast over channels
        y = aff_mix(apply_mask(x, m, feature_dims=0), self.complex_weights(), norm=self.fft_norm)
        return apply_mask(y, m, feature_dims=0)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, num_blocks={self.num_blocks}, "
            f"hidden_size_factor={self.hidden_size_factor}, fft_norm={self.fft_norm!r}"
        )
