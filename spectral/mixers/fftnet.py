"""FFTNet token mixing: an input-adaptive spectral filter per head, then modReLU on the coefficients.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``h`` heads, ``c = D / h`` channels
per head, ``L`` the learned length (``max_len``), ``F = N // 2 + 1`` rfft bins,
``F_L = L // 2 + 1``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from einops import rearrange
from torch import nn

from spectral.checks import check_choice, check_int, check_real_dtype
from spectral.fft import FFT_NORMS, FFTNorm, compute_dtype, empty_batch, fft_precision, rfft
from spectral.mixers._chunked import chunked_map
from spectral.mixers._common import apply_mask, check_mask, check_sequence, resample_filter

__all__ = ["fftnet_mix", "FFTNetMixer"]


def _magnitude(z: torch.Tensor) -> torch.Tensor:
    """``|z|`` as ``sqrt(re^2 + im^2)`` in two vectorised passes (faster than complex ``abs`` on CPU)."""
    return z.real.square().addcmul_(z.imag, z.imag).sqrt_()


def _modrelu_scale(mag: torch.Tensor, filt: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``q = sgn(f) relu(|f| |z| + b) / |z|`` and the active set ``|f| |z| + b > 0``; ``mag`` is clamped in place."""
    q = torch.addcmul(bias, mag, filt.abs())  # (B, F, h, c) real: |f z| + b
    active = q > 0
    zero = mag == 0  # q = 0 there: relu(b) / (clamped |z|) overflows to inf for b > ~4, and 0 * inf = NaN
    q = q.relu_().div_(mag.clamp_min_(torch.finfo(mag.dtype).tiny)).mul_(filt.sign()).masked_fill_(zero, 0.0)
    return q, active


class _FilterModReLU(torch.autograd.Function):
    """``modrelu(z * f, b) = z * q`` with a real filter ``f``, in few passes and a hand-written backward.

    On the active set ``out = f z + sgn(f) b z / |z|``, so with ``G`` the incoming gradient and
    ``p = Re(conj(z) G) / |z|``: ``dL/dz = q G - sgn(f) b p z / |z|^2``,
    ``dL/df = sum_c |z| p`` and ``dL/db = sum_{B, F} sgn(f) p`` (all zero off the active set).
    Only ``z, f, b`` are kept for backward: ``|z|``, ``q`` and the active set are cheap
    elementwise passes, recomputed there. :func:`fftnet_mix` applies it a chunk of
    samples and heads at a time (:func:`~spectral.mixers._chunked.chunked_map`), so its
    temporaries stay small.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, filt: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z, filt, bias)
        q, _ = _modrelu_scale(_magnitude(z), filt, bias)
        return z * q

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        z, filt, bias = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: the same formulas, differentiable (double backward)
            return _filter_modrelu_grads(z, filt, bias, g, ctx.needs_input_grad)
        g = g.resolve_conj()
        need_z, need_f, need_b = ctx.needs_input_grad
        mag = _magnitude(z)
        q, active = _modrelu_scale(mag, filt, bias)  # mag is now clamped away from 0
        p = (z.real * g.real).addcmul_(z.imag, g.imag).mul_(active)  # Re(conj(z) G) on the active set
        del active
        g_filt = p.sum(-1, keepdim=True) if need_f else None  # (B, F, h, 1)
        p = p.div_(mag).mul_(filt.sign())  # sgn(f) p
        g_bias = p.sum((0, 1)) if need_b else None  # (h, c)
        g_z = None
        if need_z:
            g_z = g * q
            # sgn(f) b p / |z|^2, dividing twice: |z| is clamped to the smallest normal float, whose
            # square underflows to 0 (0 / 0 = NaN at an exactly zero coefficient)
            coef = p.mul_(bias).div_(mag).div_(mag)
            torch.view_as_real(g_z).addcmul_(torch.view_as_real(z), coef.unsqueeze(-1), value=-1.0)
        return g_z, g_filt, g_bias


def _filter_modrelu_grads(
    z: torch.Tensor, filt: torch.Tensor, bias: torch.Tensor, g: torch.Tensor, needs: tuple[bool, ...]
) -> tuple[torch.Tensor | None, ...]:
    """:class:`_FilterModReLU`'s backward with out-of-place ops on its inputs, so autograd can differentiate it.

    ``|z|``, ``q`` and the active set are recomputed from ``z, filt, bias`` (the ones saved in
    forward are outside the graph). At an exact zero ``|z|`` is read as 1 and ``q`` as 0,
    with no ``inf`` anywhere, so no ``0 * inf`` reaches the second derivatives either.
    """
    mag2 = z.real.square() + z.imag.square()  # (B, F, h, c) real
    zero = mag2 == 0
    mag = torch.where(zero, torch.ones_like(mag2), mag2).sqrt()  # |z|, 1 at z = 0
    lin = bias + mag * filt.abs()  # |f| |z| + b
    sign = filt.sign()
    q = torch.where(zero, torch.zeros_like(lin), sign * lin.relu() / mag)
    p = (z.real * g.real + z.imag * g.imag) * (lin > 0)  # Re(conj(z) G) on the active set
    s = sign * p / mag
    g_z = g * q - z * (s * bias / mag / mag) if needs[0] else None
    g_filt = p.sum(-1, keepdim=True) if needs[1] else None  # (B, F, h, 1)
    g_bias = s.sum((0, 1)) if needs[2] else None  # (h, c)
    return g_z, g_filt, g_bias


def fftnet_mix(
    x: torch.Tensor,
    context_filter: Callable[[torch.Tensor], torch.Tensor],
    bias: torch.Tensor,
    max_len: int,
    mask: torch.Tensor | None = None,
    *,
    norm: FFTNorm = "ortho",
) -> torch.Tensor:
    """rfft over tokens -> per-head filter from the context -> modReLU -> irfft.

    ``context_filter`` maps the mean of the real tokens ``(B, D)`` to real zero-phase
    responses ``(B, h, max_len // 2 + 1)``, resampled to ``N`` (trigonometric
    interpolation, "wrap"). The mean is the token sum over the real token count (padded
    tokens are zero); its backward is a broadcast, where the DC bin's would fill a
    zero ``(B, F, D)`` spectrum. The filter product and
    modReLU run as one fused step equal to ``spectral.complex.modrelu(X * f, bias)``.

    Shape
    -----
    x: (B, N, D) real (padded tokens already zero), mask: (B, N) bool or None -> (B, N, D) real
    """
    n = x.shape[1]
    if x.shape[0] == 0:  # FFT backends reject an empty batch; keep the context MLP in the graph
        return empty_batch(x, x.shape, [bias, context_filter(x.new_zeros(0, x.shape[-1]))])
    with fft_precision(x):
        xc = x.to(compute_dtype(x.dtype))
        count = n if mask is None else mask.sum(1, keepdim=True).clamp_min(1).to(xc.dtype)
        # the token sum rather than the DC bin: the bin's backward would scatter into a (B, F, D) zero spectrum
        filt = context_filter(xc.sum(1) / count)  # (B, h, F_L) real
        heads = filt.shape[1]
        filt = resample_filter(filt.to(xc.dtype), max_len, n, "wrap", dim=-1)  # (B, h, F) real
        f = rearrange(filt, "b h f -> b f h 1")
        fn = functools.partial(_fftnet_chunk, norm=norm)
        # samples and whole heads at a time: the filters hold samples on axis 0 and heads on 2, the bias heads on 0
        y = chunked_map(fn, xc, [f, bias.to(xc.dtype).view(heads, -1)], irfft=(n, 1, norm), channel_dim=-1,
                        group=xc.shape[-1] // heads, per_channel=n // 2 + 1, param_dims=[(0, 2), (None, 0)])  # (B, N, D)
    return y.to(x.dtype)


def _fftnet_chunk(x: torch.Tensor, filt: torch.Tensor, bias: torch.Tensor, *, norm: FFTNorm) -> torch.Tensor:
    """:func:`fftnet_mix` from the context to the inverse FFT: x (b, N, h * c) real, filt (b, F, h, 1), bias (h, c) -> (b, F, h * c) complex."""
    spec = rearrange(rfft(x, dim=1, norm=norm), "b f (h c) -> b f h c", h=bias.shape[0])  # (b, F, h, c) complex
    # DC and Nyquist stay real: rfft makes them real and the scale q is real
    return rearrange(_FilterModReLU.apply(spec, filt, bias), "b f h c -> b f (h c)")


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
    and whose context is the mean of its real tokens. A NaN or inf in one real token
    makes every output of that sample NaN (through the FFT and the context mean); other
    samples are unaffected. Half precision runs in float32.

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
        dim, max_len = check_int("dim", dim), check_int("max_len", max_len)
        num_heads = check_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"FFTNetMixer: dim={dim} must be divisible by num_heads={num_heads}")
        self.dim, self.max_len, self.num_heads = dim, max_len, num_heads
        self.hidden = dim if hidden is None else check_int("hidden", hidden)
        self.fft_norm = check_choice("fft_norm", fft_norm, FFT_NORMS)
        self.n_freq = max_len // 2 + 1
        kw = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
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

    def filters(self, context: torch.Tensor) -> torch.Tensor:
        """Per-sample filters at ``max_len`` from the token mean: ``(B, D) -> (B, h, max_len // 2 + 1)`` real."""
        adapt = torch.tanh(self.context(context.to(self.base_filter.dtype)))
        return self.base_filter + adapt.view(-1, self.num_heads, self.n_freq)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_sequence(x, self.dim, "FFTNetMixer")
        check_mask(mask, x.shape[:2], "FFTNetMixer")
        x = apply_mask(x, mask)
        y = fftnet_mix(x, self.filters, self.bias, self.max_len, mask, norm=self.fft_norm)
        return apply_mask(y, mask)

    def extra_repr(self) -> str:
        return (
            f"{self.dim}, {self.max_len}, num_heads={self.num_heads}, hidden={self.hidden}, fft_norm={self.fft_norm!r}"
        )
