"""FNet token mixing: the real part of the 2-D DFT over tokens and features.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``F = D // 2 + 1`` rfft bins over
the features.
"""

from __future__ import annotations

import torch
from torch import nn

from spectral.checks import check_choice
from spectral.fft import FFT_NORMS, FFTNorm, compute_dtype, empty_batch, fft_precision
from spectral.mixers._common import apply_mask, check_mask, check_sequence

__all__ = ["fnet_mix", "FNetMixer"]


def fnet_mix(x: torch.Tensor, *, norm: FFTNorm = "ortho") -> torch.Tensor:
    """``Re(FFT_N(FFT_D(x)))`` computed with one rfft over ``D`` and one fft over ``N``.

    The bins ``d > D/2`` are read from the Hermitian symmetry of a real input's 2-D
    spectrum, ``Z[t, d] = conj(Z[-t, D - d])``, so the full complex 2-D transform is
    never formed. The map is ``s C x`` with ``C[k, l; t, d] = cos(2 pi (k t / N + l d / D))``
    symmetric, so it is its own adjoint: the backward is the same mix of the output
    gradient, and nothing is kept from the forward (no spectrum is saved).

    Shape
    -----
    x: (B, N, D) real -> (B, N, D) real (same dtype; half precision runs in float32)
    """
    if x.shape[0] == 0:  # FFT backends reject an empty batch
        return empty_batch(x, x.shape)
    with fft_precision(x):
        r = _FNetMix.apply(x.to(compute_dtype(x.dtype)), norm)
    return r.to(x.dtype)


# Spectrum elements transformed at once: batch chunks bound the complex temporaries (8 MiB at complex64).
_CHUNK_ELEMENTS = 2**20


def _fnet_forward(x: torch.Tensor, norm: str) -> torch.Tensor:
    """``Re(FFT_N(FFT_D(x)))`` written straight into the ``(B, N, D)`` output, a few samples at a time.

    The complex ``(b, N, F)`` spectra exist for one batch chunk at a time, so the
    temporaries stay near ``_CHUNK_ELEMENTS`` instead of twice the size of ``x``.
    """
    b, n, d = x.shape
    f, e = d // 2 + 1, d - (d // 2 + 1)
    out = x.new_empty(b, n, d)
    step = max(1, _CHUNK_ELEMENTS // max(n * f, 1))
    for i in range(0, b, step):
        z = torch.fft.fft(torch.fft.rfft(x[i : i + step], dim=-1, norm=norm), dim=-2, norm=norm)  # (b, N, F)
        r, o = z.real, out[i : i + step]
        o[..., :f].copy_(r)
        if e > 0:  # bins d >= F: Z[t, d] = conj(Z[-t, D - d]), real part r[(-t) mod N, D - d]
            o[:, 0, f:].copy_(r[:, 0, 1 : e + 1].flip(-1))
            if n > 1:
                o[:, 1:, f:].copy_(r[:, 1:, 1 : e + 1].flip(-2, -1))
        del z, r
    return out


class _FNetMix(torch.autograd.Function):
    """:func:`fnet_mix` on the compute dtype; self-adjoint, so its backward is itself (exact at every order)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, norm: str) -> torch.Tensor:
        ctx.norm = norm
        return _fnet_forward(x, norm)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        return _FNetMix.apply(g, ctx.norm), None


class FNetMixer(nn.Module):
    """Parameter-free Fourier token mixing (FNet): ``y = Re(DFT_tokens(DFT_features(x)))``.

    Parameters
    ----------
    fft_norm : {"ortho", "forward", "backward"}
        Normalisation of both transforms. "ortho" (default) keeps the output on the
        scale of the input, which suits the pre-norm residual block; the paper's
        unnormalised transform ("backward") scales outputs by ``sqrt(N D)`` and
        relies on a post-norm.

    Shape
    -----
    x: (B, N, D) real, mask: (B, N) bool or None -> (B, N, D) real, same dtype

    Notes
    -----
    Padded tokens (``mask`` False) are replaced by zeros before the transform, so their
    values change no output, and the outputs at padded positions are zero. The result
    is that of the length-``N`` sequence whose padded tokens are zeros: the DFT over
    ``N`` tokens depends on ``N``, so it differs from the unpadded shorter sequence.
    A NaN or inf in one real token makes every output of that sample NaN (the 2-D DFT
    mixes every token and channel); other samples are unaffected, and padded tokens are
    never read. Half-precision inputs are transformed in float32 (autocast off) and cast back.

    References
    ----------
    Lee-Thorp, Ainslie, Eckstein, Ontanon, "FNet: Mixing Tokens with Fourier
    Transforms", NAACL 2022 (arXiv:2105.03824).

    Examples
    --------
    >>> mixer = FNetMixer()
    >>> mixer(torch.randn(2, 10, 8)).shape
    torch.Size([2, 10, 8])
    """

    def __init__(self, *, fft_norm: FFTNorm = "ortho") -> None:
        super().__init__()
        self.fft_norm = check_choice("fft_norm", fft_norm, FFT_NORMS)

    def reset_parameters(self) -> None:
        """No parameters: nothing to reset."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_sequence(x, None, "FNetMixer")
        check_mask(mask, x.shape[:2], "FNetMixer")
        return apply_mask(fnet_mix(apply_mask(x, mask), norm=self.fft_norm), mask)

    def extra_repr(self) -> str:
        return f"fft_norm={self.fft_norm!r}"
