"""FFTNet token mixing: an input-adaptive spectral filter per head, then modReLU on the coefficients.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``h`` heads, ``c = D / h`` channels
per head, ``L`` the learned length (``max_len``), ``F = N // 2 + 1`` rfft bins,
``F_L = L // 2 + 1``.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from spectral.complex import modrelu
from spectral.fft import FFTNorm, check_norm, compute_dtype, fft_precision
from spectral.mixers._common import apply_mask, check_mask, check_sequence, irfft_real, masked_mean, resample_filter

__all__ = ["fftnet_mix", "FFTNetMixer"]


def fftnet_mix(
    x: torch.Tensor, filt: torch.Tensor, bias: torch.Tensor, max_len: int, *, norm: FFTNorm = "ortho"
) -> torch.Tensor:
    """Scale the rfft of each head by its (per-sample) filter, apply modReLU, invert.

    ``filt`` is a real zero-phase response per sample, head and frequency, learned on
    ``max_len`` points and resampled to ``N`` (trigonometric interpolation, "wrap").

    Shape
    -----
    x: (B, N, D) real, filt: (B, h, L // 2 + 1) real, bias: (D,) real -> (B, N, D) real
    """
    n, heads = x.shape[1], filt.shape[1]
    with fft_precision(x):
        xc = x.to(compute_dtype(x.dtype))
        filt = resample_filter(filt.to(xc.dtype), max_len, n, "wrap", dim=-1)  # (B, h, F) real
        spec = rearrange(torch.fft.rfft(xc, dim=1, norm=norm), "b f (h c) -> b f h c", h=heads)  # (B, F, h, c) complex
        spec = spec * rearrange(filt, "b h f -> b f h 1")
        spec = modrelu(rearrange(spec, "b f h c -> b f (h c)"), bias.to(xc.dtype))  # (B, F, D) complex
        y = irfft_real(spec, n, dim=1, norm=norm)  # (B, N, D) real
    return y.to(x.dtype)


class FFTNetMixer(nn.Module):
    """Adaptive spectral filtering (FFTNet): ``y = irfft(modReLU(rfft(x) * (W_base + tanh(MLP(mean(x))))))``.

    Per head ``j`` and frequency ``k`` the rfft over tokens is scaled by the real
    filter ``W_base[j, k] + tanh(MLP(c)[j, k])``, where the context ``c`` is the mean of
    the real tokens, so the filter adapts to each input. modReLU (one bias per
    channel, :func:`spectral.complex.modrelu`) then shrinks small coefficients before
    the inverse transform.

    Parameters
    ----------
    dim : int
        Embedding size ``D`` (divisible by ``num_heads``).
    max_len : int
        Length the filters are learned on (the MLP predicts ``max_len // 2 + 1`` bins
        per head); any ``N`` is accepted and the filter is resampled to it.
    num_heads : int
        Heads ``h``; each has its own filter, shared by its ``D / h`` channels.
    hidden : int, optional
        Width of the context MLP (default ``dim``).
    fft_norm : {"ortho", "forward", "backward"}
        Normalisation of the transforms; it sets the scale the modReLU bias acts on.
    device, dtype
        Of the parameters.

    Shape
    -----
    x: (B, N, D) real, mask: (B, N) bool or None -> (B, N, D) real, same dtype

    Notes
    -----
    Padded tokens (``mask`` False) are zero in the FFT and excluded from the context
    mean; outputs at padded positions are zero, so padded values change no output.
    Outputs equal those of the length-``N`` sequence whose padded tokens are zeros
    and whose context is the mean of its real tokens. Half precision runs in float32.

    References
    ----------
    Fein-Ashley, Kannan, Prasanna, "The FFT Strikes Back: An Efficient Alternative
    to Self-Attention", arXiv:2502.18394, 2025.

    Examples
    --------
    >>> mixer = FFTNetMixer(16, 32, num_heads=4)
    >>> mixer(torch.randn(2, 20, 16)).shape
    torch.Size([2, 20, 16])
    """

    def __init__(
        self,
        dim: int,
        max_len: int,
        *,
        num_heads: int = 8,
        hidden: int | None = None,
        fft_norm: FFTNorm = "ortho",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if dim < 1 or max_len < 1 or num_heads < 1:
            raise ValueError(f"FFTNetMixer: dim, max_len, num_heads must be >= 1, got {dim}, {max_len}, {num_heads}")
        if dim % num_heads:
            raise ValueError(f"FFTNetMixer: dim={dim} must be divisible by num_heads={num_heads}")
        self.dim, self.max_len, self.num_heads = dim, max_len, num_heads
        self.hidden = dim if hidden is None else hidden
        self.fft_norm = check_norm(fft_norm)
        self.n_freq = max_len // 2 + 1
        kw = {"device": device, "dtype": dtype}
        self.base_filter = nn.Parameter(torch.empty(num_heads, self.n_freq, **kw))
        self.context = nn.Sequential(
            nn.Linear(dim, self.hidden, **kw), nn.GELU(), nn.Linear(self.hidden, num_heads * self.n_freq, **kw)
        )
        self.bias = nn.Parameter(torch.empty(dim, **kw))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Identity filter (``W_base = 1``), a small adaptive part (std 0.02), modReLU bias 0."""
        nn.init.ones_(self.base_filter)
        self.context[0].reset_parameters()
        nn.init.normal_(self.context[2].weight, std=0.02)
        nn.init.zeros_(self.context[2].bias)
        nn.init.zeros_(self.bias)

    def filters(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The per-sample filters at ``max_len``: ``(B, N, D) -> (B, h, max_len // 2 + 1)`` real."""
        ctx = masked_mean(x, mask)  # (B, D)
        adapt = torch.tanh(self.context(ctx.to(self.base_filter.dtype)))
        return self.base_filter + adapt.view(-1, self.num_heads, self.n_freq)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_sequence(x, self.dim, "FFTNetMixer")
        check_mask(mask, x.shape[:2], "FFTNetMixer")
        x = apply_mask(x, mask)
        y = fftnet_mix(x, self.filters(x, mask), self.bias, self.max_len, norm=self.fft_norm)
        return apply_mask(y, mask)

    def extra_repr(self) -> str:
        return f"{self.dim}, {self.max_len}, num_heads={self.num_heads}, hidden={self.hidden}, fft_norm={self.fft_norm!r}"
