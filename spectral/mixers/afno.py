"""AFNO token mixing: a block-diagonal complex MLP over channels at every kept frequency.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``nb`` blocks, ``c = D / nb`` channels
per block, ``e = c * hidden_size_factor`` hidden channels per block,
``F = N // 2 + 1`` rfft bins, ``K`` kept bins (the lowest ``|k|``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from einops import rearrange
from torch import nn

from spectral.checks import check_choice, check_int, check_number, check_real_dtype
from spectral.complex import as_complex, init_complex_
from spectral.fft import FFT_NORMS, FFTNorm, compute_dtype, empty_batch, fft_precision, real_edge_bins, rfft
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
    n = x.shape[1]
    if x.shape[0] == 0:  # FFT backends reject an empty batch
        return empty_batch(x, x.shape, weights)
    with fft_precision(x):
        spec = rfft(x.to(compute_dtype(x.dtype)), dim=1, norm=norm)  # (B, F, D) complex
        k = kept_bins(spec.shape[1], hard_thresholding_fraction)
        if k < spec.shape[1]:
            spec = spec.narrow(1, 0, k)
        modes = rearrange(spec, "b k d -> b d k")  # (B, D, K): a view of torch's FFT layout
        del spec
        # the output gradient reaches the MLP as real_edge_bins' fresh product: reused for dL/dz
        out = _BlockMLP.apply(modes, *weights, sparsity_threshold, True)  # (B, D, K) complex
        del modes
        # the MLP makes the DC (and Nyquist) bins complex: project them onto the reals (the Hermitian part)
        # rather than rely on the inverse FFT ignoring their imaginary parts, which not every backend does
        spec = real_edge_bins(rearrange(out, "b d k -> b k d"), n, dim=1)  # (B, K, D) complex
        del out
        y = torch.fft.irfft(spec, n=n, dim=1, norm=norm)  # (B, N, D) real; bins >= K zero
    return y.to(x.dtype)


# Spectrum elements the MLP of afno_mix runs on at once: batch chunks bound its hidden activations.
_CHUNK_ELEMENTS = 2**18


class _BlockMLP(torch.autograd.Function):
    """:func:`complex_block_mlp` that keeps only its input and weights for backward.

    The hidden activations (``o`` and the pre-shrinkage output, each as large as ``z``)
    are not kept: the backward recomputes them a few samples at a time and
    differentiates that recomputation (with ``create_graph`` when grad mode is on, so
    higher derivatives are exact). Forward and backward run in batch chunks, so their
    temporaries stay small. With ``reuse_grad`` (for callers whose output gradient is a
    fresh buffer that nothing else reads, as in :func:`afno_mix`) the first-order input
    gradient is written into the incoming gradient's buffer, chunk by chunk after
    reading it, instead of a new one.
    """

    @staticmethod
    def forward(ctx, z, w1, b1, w2, b2, sparsity_threshold, reuse_grad=False):
        ctx.save_for_backward(z, w1, b1, w2, b2)
        ctx.thr, ctx.reuse_grad = sparsity_threshold, reuse_grad
        out = torch.empty_like(z)
        for i in _batch_chunks(z):
            out[i] = complex_block_mlp(z[i], w1, b1, w2, b2, sparsity_threshold=sparsity_threshold)
        return out

    @staticmethod
    def backward(ctx, g):
        saved = ctx.saved_tensors
        needs = ctx.needs_input_grad[:5]
        if torch.is_grad_enabled():  # create_graph=True: differentiate a differentiable recomputation
            inputs = [t for t, need in zip(saved, needs) if need]
            out = complex_block_mlp(*saved, sparsity_threshold=ctx.thr)
            got = iter(torch.autograd.grad(out, inputs, g, create_graph=True, allow_unused=True))
            return (*(next(got) if need else None for need in needs), None, None)
        z, w1, b1, w2, b2 = saved
        nb, c, e = w1.shape
        dt = z.dtype
        a1, a2 = w1.to(dt).transpose(1, 2), w2.to(dt).transpose(1, 2)  # (nb, e, c), (nb, c, e)
        a1h, a2h = a1.conj().transpose(1, 2), a2.conj().transpose(1, 2)  # (nb, c, e), (nb, e, c)
        bias1, bias2 = b1.to(dt).unsqueeze(-1), b2.to(dt).unsqueeze(-1)
        g = g.resolve_conj()
        reuse = ctx.reuse_grad and g.dtype == z.dtype and g.shape == z.shape and _dense(g)
        gz = (g if reuse else torch.empty_like(z)) if needs[0] else None
        acc = [torch.zeros((nb, c, e), dtype=dt, device=z.device), torch.zeros((nb, e), dtype=dt, device=z.device),
               torch.zeros((nb, e, c), dtype=dt, device=z.device), torch.zeros((nb, c), dtype=dt, device=z.device)]
        for i in _batch_chunks(z):
            zi = z[i]
            zb = zi.reshape(zi.shape[0], nb, c, -1)  # (b, nb, c, Kt)
            gb = g[i].reshape(zb.shape)
            o = torch.matmul(a1, zb).add_(bias1)  # (b, nb, e, Kt): the forward again
            torch.view_as_real(o).relu_()
            if ctx.thr is not None and ctx.thr > 0:  # soft-shrinkage passes the gradient where |v| > thr
                pre = torch.matmul(a2, o).add_(bias2)
                gb = torch.view_as_complex(torch.view_as_real(gb) * (torch.view_as_real(pre).abs() > ctx.thr))
                del pre
            if needs[4]:
                acc[3].add_(gb.sum((0, -1)))
            if needs[3]:  # dL/d(W2^T) = sum_b G o^H
                acc[2].add_(torch.matmul(gb, o.conj().transpose(-1, -2)).sum(0).transpose(1, 2))
            go = torch.matmul(a2h, gb)  # (b, nb, e, Kt)
            go = torch.view_as_complex(torch.view_as_real(go) * (torch.view_as_real(o) > 0))  # ReLU
            del o
            if needs[2]:
                acc[1].add_(go.sum((0, -1)))
            if needs[1]:  # dL/d(W1^T) = sum_b G_o z^H
                acc[0].add_(torch.matmul(go, zb.conj().transpose(-1, -2)).sum(0).transpose(1, 2))
            if needs[0]:
                gz[i] = torch.matmul(a1h, go).reshape(zi.shape)
        gws = [a.to(w.dtype) if need else None for a, w, need in zip(acc, (w1, b1, w2, b2), needs[1:])]
        return (gz, *gws, None, None)


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t``'s elements fill its storage span exactly once (any dimension order)."""
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride()), key=lambda p: p[1]):
        if size > 1 and stride != expected:
            return False
        expected *= size
    return True


def _batch_chunks(z: torch.Tensor) -> list[tuple[slice, ...]]:
    """Index tuples over the batch and the flattened modes of ``z`` (B, D, *K), about ``_CHUNK_ELEMENTS`` each.

    The MLP acts on every mode separately, so a chunk may also take a range of modes
    (1-D ``K`` only).
    """
    b, per = z.shape[0], z[:1].numel()
    if per <= _CHUNK_ELEMENTS or z.ndim != 3:
        step = max(1, _CHUNK_ELEMENTS // max(per, 1))
        return [(slice(i, i + step),) for i in range(0, b, step)]
    k = z.shape[-1]
    width = max(1, _CHUNK_ELEMENTS // max(z.shape[1], 1))
    return [(slice(i, i + 1), slice(None), slice(j, j + width)) for i in range(b) for j in range(0, k, width)]


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
