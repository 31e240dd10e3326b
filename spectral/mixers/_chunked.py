"""Chunked recomputation: a per-channel spectral map that keeps none of its intermediates.

Legend: ``B`` batch, ``D`` channels, ``g`` channels per group (a block of a
block-diagonal MLP, a head, or 1), ``F`` rfft bins.

AFNO, AFF and FFTNet each compute ``y = irfft(fn(x, *params))`` where every sample and
every group of channels is independent: a transform along the token axes, a map at
every frequency acting within the group, then the inverse real FFT. Autograd through
``fn`` would keep its spectra and hidden activations for backward (each about as large
as ``x``); :func:`chunked_map` keeps only ``x`` and the parameters, runs a chunk of
samples and channel groups at a time in forward, and in backward recomputes each
chunk's ``fn`` (not the inverse FFT, whose adjoint it applies to the incoming gradient
directly) and differentiates it on its own, writing the input gradient straight into
its final buffer. The peak is then the output, the input gradient and one chunk's
temporaries (chunks of about ``_CHUNK_ELEMENTS`` spectrum elements), for one more pass
of ``fn``'s forward per backward; the small chunks stay in cache, which more than pays
for it on CPU.

Under ``create_graph=True`` the backward differentiates one recomputation on the whole
input, so higher derivatives are those of ``fn`` itself: exact at every order. Under
``torch.compile`` the map runs unchunked and the compiler chooses what to keep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from spectral._fft_autograd import DUAL_NORM, rfft_bin_weights

__all__ = ["chunked_map", "channel_chunks"]

# Elements of the largest intermediate (a spectrum) one chunk may hold: 2 MiB at complex64.
_CHUNK_ELEMENTS = 2**18


def channel_chunks(shape: Sequence[int], *, channel_dim: int, group: int, per_channel: int) -> list[tuple[slice, slice]]:
    """``(samples, groups)`` slices covering the samples and the channel groups of ``x``.

    Chunks take whole groups of ``group`` channels, and all samples while one group of
    the whole batch stays within ``_CHUNK_ELEMENTS`` (so a per-group quantity is
    computed once per group and pass), else single samples or a few.
    """
    b, groups = shape[0], shape[channel_dim] // group
    per_group = max(per_channel * group, 1)
    width = max(1, _CHUNK_ELEMENTS // (per_group * b))
    samples = b if width * per_group * b <= _CHUNK_ELEMENTS or b == 1 else max(1, _CHUNK_ELEMENTS // per_group)
    if samples < b:  # one group of the whole batch is too large: split the batch as well
        width = 1
    return [(slice(i, i + samples), slice(j, j + width)) for i in range(0, b, samples) for j in range(0, groups, width)]


def chunked_map(
    fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    params: Sequence[torch.Tensor],
    *,
    irfft: tuple[int, int, str],
    channel_dim: int,
    group: int,
    per_channel: int,
    param_dims: Sequence[tuple[int | None, int]],
) -> torch.Tensor:
    """``irfft(fn(x, *params), n, dim, norm)`` a chunk of samples and channel groups at a time, keeping only ``x`` and ``params``.

    ``fn`` maps the samples and channel groups of a chunk of ``x`` (whole groups of
    ``group`` consecutive channels along ``channel_dim``), with the same samples and
    groups of every parameter, to the chunk's rfft spectrum along ``dim``: its first
    ``K <= n // 2 + 1`` bins, the rest zero, with real DC (and Nyquist) bins. It must be
    differentiable at every order. ``irfft = (n, dim, norm)`` is the inverse that makes
    the output (``x``'s shape and real dtype); the backward applies that inverse's
    adjoint to the incoming gradient instead of recomputing the inverse.
    ``param_dims[k] = (batch_dim, group_dim)`` says where parameter ``k`` holds the
    samples (None: shared by all) and the groups (one entry per group). ``per_channel``
    is the element count of one channel's largest intermediate in one sample, which
    sizes the chunks (:func:`channel_chunks`).

    Shape
    -----
    x: (B, ..., D at channel_dim, ...) real, params: any -> x.shape real
    """
    n, dim, norm = irfft
    if torch.compiler.is_compiling():  # the compiler plans what to keep and recompute itself
        return torch.fft.irfft(fn(x, *params), n=n, dim=dim, norm=norm)
    channel_dim %= x.ndim
    chunks = []
    for samples, groups in channel_chunks(x.shape, channel_dim=channel_dim, group=group, per_channel=per_channel):
        channels = slice(groups.start * group, groups.stop * group)
        x_index = (samples,) + (slice(None),) * (channel_dim - 1) + (channels,)
        p_index = []
        for p, (batch_dim, group_dim) in zip(params, param_dims):
            index = [slice(None)] * p.ndim
            index[group_dim] = groups
            if batch_dim is not None:
                index[batch_dim] = samples
            p_index.append(tuple(index))
        chunks.append((x_index, p_index))
    return _ChunkedMap.apply(fn, (n, dim % x.ndim, norm), chunks, x, *params)


class _ChunkedMap(torch.autograd.Function):
    """:func:`chunked_map`'s Function: forward in chunks without a graph, backward a chunk's graph at a time."""

    @staticmethod
    def forward(ctx, fn, inverse, chunks, x, *params):
        ctx.fn, ctx.inverse, ctx.chunks = fn, inverse, chunks
        ctx.save_for_backward(x, *params)
        n, dim, norm = inverse
        out = torch.empty_like(x)
        for i, js in chunks:
            out[i] = torch.fft.irfft(fn(x[i], *(p[j] for p, j in zip(params, js))), n=n, dim=dim, norm=norm)
        return out

    @staticmethod
    def backward(ctx, g):
        x, *params = ctx.saved_tensors
        needs = ctx.needs_input_grad[3:]
        n, dim, norm = ctx.inverse
        inputs = [t for t, need in zip((x, *params), needs) if need]
        if torch.is_grad_enabled():  # create_graph=True: differentiate one differentiable recomputation
            y = torch.fft.irfft(ctx.fn(x, *params), n=n, dim=dim, norm=norm)
            got = iter(torch.autograd.grad(y, inputs, g, create_graph=True, allow_unused=True))
            return (None, None, None, *(next(got) if need else None for need in needs))
        gx = torch.empty_like(x) if needs[0] else None
        gp = [torch.zeros_like(p) if need else None for p, need in zip(params, needs[1:])]
        for i, js in ctx.chunks:
            with torch.enable_grad():
                xi = x[i].detach().requires_grad_(needs[0])
                pj = [p[j].detach().requires_grad_(need) for p, j, need in zip(params, js, needs[1:])]
                spec = ctx.fn(xi, *pj)
                leaves = [t for t, need in zip((xi, *pj), needs) if need]
                got = iter(torch.autograd.grad(spec, leaves, _irfft_adjoint(g[i], spec.shape[dim], n, dim, norm),
                                               allow_unused=True))
            if needs[0]:
                gx[i] = next(got)
            for acc, j, need in zip(gp, js, needs[1:]):
                if need:
                    grad = next(got)
                    if grad is not None:
                        acc[j] += grad
        return (None, None, None, gx, *gp)


def _irfft_adjoint(g: torch.Tensor, bins: int, n: int, dim: int, norm: str) -> torch.Tensor:
    """The gradient of ``irfft(z, n, dim, norm)`` with respect to its ``bins`` input bins, for the output gradient ``g``.

    ``irfft`` counts bin ``k`` twice (``z_k`` and its mirror) except DC and Nyquist, so
    ``dL/dz_k = c_k rfft(g)_k`` with ``c_k = 2`` or 1 there, ``rfft`` in the dual normalisation.
    """
    spec = torch.fft.rfft(g, dim=dim, norm=DUAL_NORM[norm]).narrow(dim, 0, bins)
    return spec.mul_(rfft_bin_weights(bins, n, dc=1.0, nyquist=1.0, rest=2.0, like=spec, dim=dim))
