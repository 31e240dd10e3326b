"""AFNO token mixing: a block-diagonal complex MLP over channels at every kept frequency.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``nb`` blocks, ``c = D / nb`` channels
per block, ``e = c * hidden_size_factor`` hidden channels per block,
``F = N // 2 + 1`` rfft bins, ``K`` kept bins (the lowest ``|k|``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as nnf
from torch import nn

from spectral.checks import check_choice, check_int, check_number, check_real_dtype
from spectral.complex import as_complex, init_complex_
from spectral.fft import FFT_NORMS, FFTNorm, compute_dtype, empty_batch, fft_precision, real_edge_bins, rfft
from spectral.mixers._chunked import chunked_map
from spectral.mixers._common import apply_mask, check_mask, check_sequence

__all__ = ["complex_block_mlp", "kept_bins", "afno_mix", "AFNOMixer"]


def complex_block_mlp(
    z: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    *,
    sparsity_threshold: float | None = None,
) -> torch.Tensor:
    """Two-layer complex MLP with block-diagonal weights over the channel axis of ``z``, at every mode.

    ``o = ReLU(W1^T z + b1)`` (ReLU on real and imaginary parts), ``out = W2^T o + b2``,
    then soft-shrinkage of the real and imaginary parts by ``sparsity_threshold``
    when given. Each block of ``c`` channels has its own weights.

    Channels first, like :func:`spectral.complex.contract_modes`: each block is one
    batched complex matmul ``(e, c) @ (c, K)`` over the modes, which reads the modes in
    whatever layout the FFT left them (no transposing copy), and ReLU acts in place on
    the real view of the fresh matmul output.

    Shape
    -----
    z: (B, nb * c, *K) complex, w1: (nb, c, e), b1: (nb, e), w2: (nb, e, c), b2: (nb, c) complex
    -> (B, nb * c, *K) complex
    """
    nb = w1.shape[0]
    zb = z.reshape(z.shape[0], nb, w1.shape[1], -1)  # (B, nb, c, Kt) complex, a view for FFT layouts
    o = torch.matmul(w1.to(z.dtype).transpose(1, 2), zb).add_(b1.to(z.dtype).unsqueeze(-1))  # (B, nb, e, Kt)
    torch.view_as_real(o).relu_()
    out = torch.matmul(w2.to(z.dtype).transpose(1, 2), o).add_(b2.to(z.dtype).unsqueeze(-1))  # (B, nb, c, Kt)
    if sparsity_threshold is not None and sparsity_threshold > 0:
        out = torch.view_as_complex(nnf.softshrink(torch.view_as_real(out), sparsity_threshold))
    return out.reshape(z.shape)


def kept_bins(n_bins: int, fraction: float) -> int:
    """Number of lowest rfft bins hard thresholding keeps: ``max(1, int(n_bins * fraction))``."""
    return max(1, int(n_bins * fraction))


def afno_mix(
    x: torch.Tensor,
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    sparsity_threshold: float = 0.01,
    hard_thresholding_fraction: float = 1.0,
    norm: FFTNorm = "ortho",
) -> torch.Tensor:
    """rfft over tokens -> keep the ``K`` lowest bins -> block MLP + soft-shrink -> irfft.

    Bins above ``K`` are zero in the output spectrum; the MLP never runs on them.

    Shape
    -----
    x: (B, N, D) real, weights (w1, b1, w2, b2) complex as in :func:`complex_block_mlp`
    -> (B, N, D) real
    """
    if x.shape[0] == 0:  # FFT backends reject an empty batch
        return empty_batch(x, x.shape, weights)
    fn = functools.partial(
        _afno_chunk, sparsity_threshold=sparsity_threshold, fraction=hard_thresholding_fraction, norm=norm
    )
    with fft_precision(x):
        xc = x.to(compute_dtype(x.dtype))
        # samples and whole channel blocks at a time: the weights' first axis is the block
        y = chunked_map(fn, xc, weights, irfft=(x.shape[1], 1, norm), channel_dim=-1, group=weights[0].shape[1],
                        per_channel=x.shape[1] // 2 + 1, param_dims=[(None, 0)] * 4)  # (B, N, D) real
    return y.to(x.dtype)


def _afno_chunk(x, w1, b1, w2, b2, *, sparsity_threshold, fraction, norm):
    """:func:`afno_mix` up to the inverse FFT, on samples and whole channel blocks: (b, N, nb * c) real -> (b, K, nb * c) complex."""
    n = x.shape[1]
    spec = rfft(x, dim=1, norm=norm)  # (b, F, nb * c) complex
    k = kept_bins(spec.shape[1], fraction)
    if k < spec.shape[1]:
        spec = spec.narrow(1, 0, k)
    out = complex_block_mlp(spec.transpose(1, 2), w1, b1, w2, b2, sparsity_threshold=sparsity_threshold)
    # the MLP makes the DC (and Nyquist) bins complex: project them onto the reals (the Hermitian part)
    # rather than rely on the inverse FFT ignoring their imaginary parts, which not every backend does
    return real_edge_bins(out.transpose(1, 2), n, dim=1)  # (b, K, nb * c) complex; bins >= K are zero


class _BlockMLPMixer(nn.Module):
    """The block-diagonal complex MLP's parameters ``w1, b1, w2, b2`` and checks (AFNO and AFF share them)."""

    def _init_block_mlp(self, width_name: str, width, num_blocks, hidden_size_factor, fft_norm, device, dtype) -> int:
        """Check the shared arguments, set them and create ``w1, b1, w2, b2``; return the checked ``width``."""
        width, num_blocks = check_int(width_name, width), check_int("num_blocks", num_blocks)
        if width % num_blocks:
            raise ValueError(
                f"{type(self).__name__}: {width_name}={width} must be a positive multiple of num_blocks={num_blocks}"
            )
        self.num_blocks, self.hidden_size_factor = num_blocks, check_int("hidden_size_factor", hidden_size_factor)
        self.fft_norm = check_choice("fft_norm", fft_norm, FFT_NORMS)
        c = width // num_blocks
        e = c * self.hidden_size_factor
        kw = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
        self.w1 = nn.Parameter(torch.empty(num_blocks, c, e, 2, **kw))
        self.b1 = nn.Parameter(torch.empty(num_blocks, e, 2, **kw))
        self.w2 = nn.Parameter(torch.empty(num_blocks, e, c, 2, **kw))
        self.b2 = nn.Parameter(torch.empty(num_blocks, c, 2, **kw))
        return width

    def reset_parameters(self) -> None:
        """All weights and biases complex normal with ``E|w|^2 = 0.02^2`` (AFNO's scale)."""
        for p in (self.w1, self.b1, self.w2, self.b2):
            init_complex_(p, 0.02)

    def complex_weights(self) -> tuple[torch.Tensor, ...]:
        """``(w1, b1, w2, b2)`` viewed as complex."""
        return tuple(as_complex(p) for p in (self.w1, self.b1, self.w2, self.b2))


class AFNOMixer(_BlockMLPMixer):
    """Adaptive Fourier Neural Operator mixing (1-D): a shared block-diagonal complex MLP at each frequency.

    ``y = irfft(S_lambda(MLP_block(rfft(x)[k < K])))`` with ``MLP_block(z) = ReLU(z W1 + b1) W2 + b2``
    (block-diagonal ``W1, W2``, ReLU on real and imaginary parts) and ``S_lambda`` the
    soft-shrinkage of real and imaginary parts. The weights do not depend on the
    frequency, so the mixer has no length parameter and works for any ``N``.

    Parameters
    ----------
    dim : int
        Embedding size ``D`` (divisible by ``num_blocks``).
    num_blocks : int
        Diagonal blocks ``nb`` of the channel MLP.
    sparsity_threshold : float
        ``lambda`` of the soft-shrinkage (0 disables it).
    hard_thresholding_fraction : float
        In ``(0, 1]``: keep the ``max(1, int(F * fraction))`` lowest frequencies
        ``k = 0, 1, ...`` of the ``F`` rfft bins and zero the rest. (The original 2-D
        code slices the centre of the unshifted FFT axis, i.e. the highest ``|k|``,
        on one axis; here the lowest ``|k|`` are kept.)
    hidden_size_factor : int
        Hidden width of each block is ``c * hidden_size_factor``.
    fft_norm : {"ortho", "forward", "backward"}
        Normalisation of the transforms (the scale ``lambda`` acts on); AFNO uses "ortho".
    device, dtype
        Of the parameters (complex values stored as real ``(..., 2)`` tensors).

    Shape
    -----
    x: (B, N, D) real, mask: (B, N) bool or None -> (B, N, D) real, same dtype

    Notes
    -----
    Padded tokens are zero in the FFT and outputs at padded positions are zero, so
    padded values change no output; the outputs are those of the length-``N``
    sequence whose padded tokens are zeros. A NaN or inf in one real token makes the
    outputs of its channel block NaN at every token of that sample; other blocks and
    samples are unaffected. Half precision runs in float32.

    References
    ----------
    Guibas et al., "Adaptive Fourier Neural Operators: Efficient Token Mixers for
    Transformers", ICLR 2022 (arXiv:2111.13587).

    Examples
    --------
    >>> mixer = AFNOMixer(16, num_blocks=4)
    >>> mixer(torch.randn(2, 9, 16)).shape
    torch.Size([2, 9, 16])
    """

    def __init__(
        self,
        dim: int,
        *,
        num_blocks: int = 8,
        sparsity_threshold: float = 0.01,
        hard_thresholding_fraction: float = 1.0,
        hidden_size_factor: int = 1,
        fft_norm: FFTNorm = "ortho",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.sparsity_threshold = check_number("sparsity_threshold", sparsity_threshold, min=0)
        self.hard_thresholding_fraction = check_number(
            "hard_thresholding_fraction", hard_thresholding_fraction, min=0, min_open=True, max=1
        )
        self.dim = self._init_block_mlp("dim", dim, num_blocks, hidden_size_factor, fft_norm, device, dtype)
        self.reset_parameters()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_sequence(x, self.dim, "AFNOMixer")
        check_mask(mask, x.shape[:2], "AFNOMixer")
        y = afno_mix(
            apply_mask(x, mask),
            self.complex_weights(),
            sparsity_threshold=self.sparsity_threshold,
            hard_thresholding_fraction=self.hard_thresholding_fraction,
            norm=self.fft_norm,
        )
        return apply_mask(y, mask)

    def extra_repr(self) -> str:
        return (
            f"{self.dim}, num_blocks={self.num_blocks}, sparsity_threshold={self.sparsity_threshold}, "
            f"hard_thresholding_fraction={self.hard_thresholding_fraction}, "
            f"hidden_size_factor={self.hidden_size_factor}, fft_norm={self.fft_norm!r}"
        )
