"""AFF token mixing for images: an instance-adaptive frequency mask from a complex block MLP.

Legend: ``B`` batch, ``C`` channels, ``H, W`` grid, ``F = W // 2 + 1`` rfft bins,
``nb`` blocks, ``c = C / nb`` channels per block.
"""

from __future__ import annotations

import torch
from torch import nn

from spectral.complex import as_complex, init_complex_
from spectral.fft import FFTNorm, check_norm, compute_dtype, fft_precision
from spectral.mixers._common import apply_mask, check_mask, real_edge_bins, rfft
from spectral.mixers.afno import complex_block_mlp

__all__ = ["aff_mix", "AFFMixer"]


def aff_mix(x: torch.Tensor, weights: tuple[torch.Tensor, ...], *, norm: FFTNorm = "ortho") -> torch.Tensor:
    """``irfft2(X * MLP_block(X))`` with ``X = rfft2(x)``: adaptive frequency filtering.

    The mask is predicted from the spectrum itself at every frequency, by the
    block-diagonal complex MLP of :func:`~spectral.mixers.afno.complex_block_mlp`.

    Shape
    -----
    x: (B, C, H, W) real, weights (w1, b1, w2, b2) complex -> (B, C, H, W) real
    """
    h, w = x.shape[-2:]
    with fft_precision(x):
        xc = x.to(compute_dtype(x.dtype))
        spec = torch.fft.fft(rfft(xc, dim=-1, norm=norm), dim=-2, norm=norm)  # (B, C, H, F) complex
        spec = spec * complex_block_mlp(spec, *weights)  # instance-adaptive mask, (B, C, H, F) complex
        # the mask makes the DC (and Nyquist) columns non-Hermitian: project them onto the reals rather than
        # rely on the inverse FFT ignoring their imaginary parts, which not every backend does
        cols = real_edge_bins(torch.fft.ifft(spec, dim=-2, norm=norm), w, dim=-1)  # (B, C, H, F) complex
        y = torch.fft.irfft(cols, n=w, dim=-1, norm=norm)  # (B, C, H, W) real
    return y.to(x.dtype)


class AFFMixer(nn.Module):
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
    (cuFFT's complex-to-real transform need not). Half precision runs in float32.

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
        if channels < 1 or num_blocks < 1 or channels % num_blocks:
            raise ValueError(f"AFFMixer: channels={channels} must be a positive multiple of num_blocks={num_blocks}")
        if hidden_size_factor < 1:
            raise ValueError(f"AFFMixer: hidden_size_factor must be >= 1, got {hidden_size_factor}")
        self.channels, self.num_blocks = channels, num_blocks
        self.hidden_size_factor, self.fft_norm = hidden_size_factor, check_norm(fft_norm)
        c = channels // num_blocks
        e = c * hidden_size_factor
        kw = {"device": device, "dtype": dtype}
        self.w1 = nn.Parameter(torch.empty(num_blocks, c, e, 2, **kw))
        self.b1 = nn.Parameter(torch.empty(num_blocks, e, 2, **kw))
        self.w2 = nn.Parameter(torch.empty(num_blocks, e, c, 2, **kw))
        self.b2 = nn.Parameter(torch.empty(num_blocks, c, 2, **kw))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Complex normal weights with ``E|w|^2 = 0.02^2``, as AFNO."""
        for p in (self.w1, self.b1, self.w2, self.b2):
            init_complex_(p, 0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.is_complex() or not x.is_floating_point():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"AFFMixer: x must be a real floating tensor, got {got}")
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"AFFMixer: expected x of shape (B, {self.channels}, H, W), got {tuple(x.shape)}")
        check_mask(mask, (x.shape[0], *x.shape[2:]), "AFFMixer")
        m = None if mask is None else mask.unsqueeze(1)  # (B, 1, H, W): broadcast over channels
        weights = tuple(as_complex(p) for p in (self.w1, self.b1, self.w2, self.b2))
        y = aff_mix(apply_mask(x, m, feature_dims=0), weights, norm=self.fft_norm)
        return apply_mask(y, m, feature_dims=0)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, num_blocks={self.num_blocks}, "
            f"hidden_size_factor={self.hidden_size_factor}, fft_norm={self.fft_norm!r}"
        )
