"""The FFT autograd Functions of :mod:`spectral.fft`: every forward transform paired with its exact adjoint.

Legend: ``B`` batch, ``N`` tokens / points on the transformed axis, ``D`` embedding,
``m`` kept bins, ``P`` an FFT length, ``F = P // 2 + 1`` rfft bins.

Each Function is a linear map (``_FFTConv`` is bilinear) whose backward is written
with the adjoint Function itself: the backward of "rfft, keep ``m`` bins" is an
"irfft of ``m`` bins" Function whose own backward is "rfft, keep ``m`` bins", and so
on. The adjoint of a transform with norm ``a`` carries the scale of the opposite
convention (:data:`DUAL_NORM`). So backward passes are themselves differentiable, with
exact adjoints at every order (``gradgradcheck`` passes), and first-order training
runs the same few FFTs as before. Public names are re-exported by :mod:`spectral.fft`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "DUAL_NORM",
    "norm_scale",
    "dc_scale",
    "rfft_bin_weights",
    "real_edge_bins",
    "zero_edge_imag_",
    "kernel_conv",
    "keep_two_sided",
    "pad_two_sided",
    "empty_batch",
]

# The adjoint of a transform normalised by ``norm`` is the inverse transform under DUAL_NORM[norm].
DUAL_NORM = {"forward": "backward", "backward": "forward", "ortho": "ortho"}


def norm_scale(norm: str, n: int) -> float:
    """Factor ``s`` of a forward transform of length ``n`` under ``norm``: 1, ``1/n`` or ``1/sqrt(n)``."""
    return {"backward": 1.0, "forward": 1.0 / n, "ortho": n**-0.5}[norm]


def dc_scale(norm: str, grid: Sequence[int]) -> float:
    """The k = 0 coefficient of the constant 1 on ``grid`` under ``norm``: 1 ("forward"), ``N`` or ``sqrt(N)``.

    Coefficients computed on one grid and inverted on another are the same function after
    multiplying by ``dc_scale(norm, out_grid) / dc_scale(norm, in_grid)``.
    """
    n = math.prod(grid)
    return 1.0 if norm == "forward" else n if norm == "backward" else math.sqrt(n)  # n: int, or a symbolic size


def _nyquist_kept(f: int, n: int) -> bool:
    """Whether ``f`` rfft bins of an ``n``-point axis include a Nyquist bin (even ``n``, all bins kept).

    Parity is tested last, so a size traced by ``torch.compile`` is not specialised on it.
    """
    return f > 1 and f == n // 2 + 1 and n % 2 == 0


def rfft_bin_weights(
    f: int, n: int, *, dc: float, nyquist: float, rest: float, like: torch.Tensor, dim: int = -1
) -> torch.Tensor:
    """Real per-bin weights of ``f`` rfft bins of an ``n``-point axis, shaped to broadcast along ``dim``.

    ``dc`` on bin 0, ``nyquist`` on bin ``n / 2`` when ``n`` is even and kept
    (``f == n // 2 + 1``), ``rest`` elsewhere; in ``like``'s real dtype and device.
    """
    w = torch.full((f,), rest, dtype=like.real.dtype if like.is_complex() else like.dtype, device=like.device)
    w[0] = dc
    if _nyquist_kept(f, n):
        w[-1] = nyquist
    return w.reshape([f] + [1] * (like.ndim - 1 - (dim % like.ndim)))


def _edge_split(y: torch.Tensor, n: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The DC bin, the bins between, and the (kept, even-``n``) Nyquist bin or None of rfft axis ``dim``: views."""
    f = y.shape[dim]
    nyquist = _nyquist_kept(f, n)
    return y.narrow(dim, 0, 1), y.narrow(dim, 1, f - 1 - int(nyquist)), y.narrow(dim, f - 1, 1) if nyquist else None


def _scale_rfft_bins(y: torch.Tensor, n: int, rest: float) -> torch.Tensor:
    """``y * rest`` along the last (rfft) axis with the DC and (kept, even-``n``) Nyquist bins left at scale 1.

    A scalar multiply and in-place fixes of the edge bins of the new tensor: no weight
    tensor is built. Under ``torch.compile`` the bins are concatenated instead (inductor
    turns in-place edits of complex views into kernels of their own; a complex ``cat`` stays
    one library call).
    """
    if torch.compiler.is_compiling():
        dc, mid, nyquist = _edge_split(y, n, -1)
        return torch.cat([dc, mid * rest, *([] if nyquist is None else [nyquist])], dim=-1)
    out = y * rest
    dc, _, nyquist = _edge_split(out, n, -1)
    dc.mul_(1.0 / rest)
    if nyquist is not None:
        nyquist.mul_(1.0 / rest)
    return out


def zero_edge_imag_(y: torch.Tensor, n: int, dim: int = -1) -> torch.Tensor:
    """Zero, in place and outside autograd, the imaginary parts of the DC and even-``n`` Nyquist bins of ``y``'s rfft axis ``dim``.

    For a buffer of one's own (a gradient being built, a spectrum about to be
    transformed back); :func:`real_edge_bins` is the autograd-safe form. Returns ``y``,
    or under ``torch.compile`` a cleaned copy: use the returned tensor.
    """
    if torch.compiler.is_compiling():
        # out of place when compiled: inductor's dynamic-shape code for the in-place zeroing of a narrow
        # imaginary view bakes in the strides of the grid it was traced on (a later grid fails its asserts)
        return real_edge_bins(y, n, dim)
    with torch.no_grad():
        dc, _, nyquist = _edge_split(y.detach().imag, n, dim)
        dc.zero_()
        if nyquist is not None:
            nyquist.zero_()
    return y


def real_edge_bins(y: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """New tensor with the imaginary parts of the DC and (even ``n``) Nyquist rfft bins zeroed.

    The Hermitian clean-up before every inverse real FFT: one multiply of the ``(..., 2)``
    real view by a constant 0/1 mask (no in-place writes on views), so the result does not
    depend on whether the inverse FFT backend ignores those parts (cuFFT need not), their
    gradient is zero, and autograd keeps only the mask (``torch.complex`` would keep both
    parts of ``y``). Under ``torch.compile`` it concatenates the real edge bins with the
    others instead: no mask is built (inductor compiles a kernel to build it and one to
    apply it; a complex ``cat`` stays one library call).

    Shape
    -----
    y: (..., F, ...) complex along ``dim`` -> same
    """
    dim = dim % y.ndim
    if torch.compiler.is_compiling():
        dc, mid, nyquist = _edge_split(y, n, dim)
        return torch.cat([dc.real.to(y.dtype), mid, *([] if nyquist is None else [nyquist.real.to(y.dtype)])], dim=dim)
    keep = rfft_bin_weights(y.shape[dim], n, dc=0.0, nyquist=0.0, rest=1.0, like=y, dim=dim)  # imaginary parts
    keep = torch.stack([torch.ones_like(keep), keep], dim=-1)  # (..., F, ..., 2): real parts kept
    out = torch.view_as_real(y.resolve_conj()) * keep  # in y's layout
    if out.stride(-1) != 1 or any(st % 2 for st in out.stride()[:-1]):
        out = out.contiguous()
    return torch.view_as_complex(out)


def keep_two_sided(y: torch.Tensor, m: int, dim: int) -> torch.Tensor:
    """Keep bins ``0..m-1`` and ``-(m-1)..-1`` of a full FFT axis, compact order."""
    n = y.shape[dim]
    if m == 1:
        return y.narrow(dim, 0, 1)
    return torch.cat([y.narrow(dim, 0, m), y.narrow(dim, n - m + 1, m - 1)], dim=dim)


def pad_two_sided(y: torch.Tensor, m: int, n: int, dim: int) -> torch.Tensor:
    """Place a compact two-sided axis of ``2m - 1`` bins into ``n`` FFT bins (zeros between)."""
    if 2 * m - 1 == n:
        return y
    shape = list(y.shape)
    shape[dim] = n - (2 * m - 1)
    zeros = y.new_zeros(shape)
    return torch.cat([y.narrow(dim, 0, m), zeros, y.narrow(dim, m, m - 1)], dim=dim)


def empty_batch(
    x: torch.Tensor, shape: Sequence[int], tensors: Iterable[torch.Tensor | None] = (), *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Zeros of ``shape`` (an empty batch, ``shape[0] == 0``) in the autograd graph of ``x`` and ``tensors``.

    FFT backends reject a batch of 0 (MKL: "Inconsistent configuration parameters"), so
    every spectral layer and transform returns this instead of transforming. Like torch's
    own layers on ``B = 0``, the result stays connected to its input and parameters (real
    or complex), which then receive zero gradients instead of None.

    Parameters
    ----------
    x : Tensor
        The (empty) input: gives the device, and the dtype unless ``dtype`` is given.
    shape : sequence of int
        The output shape.
    tensors : iterable of Tensor or None
        Parameters (or other inputs) to keep in the graph; None entries are skipped.
    dtype : torch.dtype, optional
        The output dtype (default ``x.dtype``).

    Shape
    -----
    x: (0, ...) -> shape, on x's device

    Examples
    --------
    >>> w = torch.ones(3, requires_grad=True)
    >>> y = empty_batch(torch.zeros(0, 2, 8), (0, 3, 16), [w])
    >>> y.shape, y.requires_grad
    (torch.Size([0, 3, 16]), True)
    """
    dtype = x.dtype if dtype is None else dtype
    out = torch.zeros(tuple(shape), dtype=dtype, device=x.device)
    for t in (x, *tensors):
        if t is not None and t.requires_grad:
            anchor = t.sum() * 0  # a 0-dim addend: keeps the output's shape and dtype
            if anchor.is_complex() and not out.is_complex():
                anchor = anchor.real
            out = out + anchor.to(dtype)
    return out


class _RfftKeep(torch.autograd.Function):
    """``rfft(x, dim=-1)[..., :m]`` (``m <= (N + 1) // 2``); backward: :class:`_IrfftPad` of the ``m`` bins."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, m: int, norm: str) -> torch.Tensor:
        ctx.n, ctx.norm = x.shape[-1], norm
        return torch.fft.rfft(x, dim=-1, norm=norm).narrow(-1, 0, m)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # Re(sum_k g_k e^{+2 pi i k t / N}) = irfft(h) with h_0 = g_0, h_k = g_k / 2 (no Nyquist kept).
        h = _scale_rfft_bins(grad, ctx.n, 0.5)
        if torch.is_grad_enabled():  # create_graph=True: the adjoint Function, differentiable again
            return _IrfftPad.apply(h, ctx.n, DUAL_NORM[ctx.norm]), None, None
        h = zero_edge_imag_(h, ctx.n)  # first order: _IrfftPad's Hermitian clean-up, in place on our own h
        return torch.fft.irfft(h, n=ctx.n, dim=-1, norm=DUAL_NORM[ctx.norm]), None, None


class _IrfftPad(torch.autograd.Function):
    """``irfft(y, n, dim=-1)`` of ``m`` kept bins (DC imaginary part dropped); backward: :class:`_RfftKeep`."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, n: int, norm: str) -> torch.Tensor:
        ctx.m, ctx.n, ctx.norm = y.shape[-1], n, norm
        return torch.fft.irfft(zero_edge_imag_(y.clone(), n), n=n, dim=-1, norm=norm)  # Hermitian clean-up

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = _RfftKeep.apply(grad, ctx.m, DUAL_NORM[ctx.norm])
        return _scale_rfft_bins(g, ctx.n, 2.0), None, None


class _FftKeep(torch.autograd.Function):
    """``fft`` along ``dim`` keeping the two-sided bins ``|k| < m``; backward: :class:`_IfftPad`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, m: int, dim: int, norm: str) -> torch.Tensor:
        ctx.n, ctx.dim, ctx.norm, ctx.real_input = x.shape[dim], dim, norm, not x.is_complex()
        return keep_two_sided(torch.fft.fft(x, dim=dim, norm=norm), m, dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = _IfftPad.apply(grad, ctx.n, ctx.dim, DUAL_NORM[ctx.norm])
        return (g.real if ctx.real_input else g), None, None, None


class _IfftPad(torch.autograd.Function):
    """``ifft`` along ``dim`` onto ``n`` points from two-sided kept bins; backward: :class:`_FftKeep`."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, n: int, dim: int, norm: str) -> torch.Tensor:
        ctx.m, ctx.dim, ctx.norm = (y.shape[dim] + 1) // 2, dim, norm
        return torch.fft.ifft(pad_two_sided(y, ctx.m, n, dim), dim=dim, norm=norm)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _FftKeep.apply(grad, ctx.m, ctx.dim, DUAL_NORM[ctx.norm]), None, None, None


class _RFFT(torch.autograd.Function):
    """``torch.fft.rfft(x, n, dim, norm)``; backward: :class:`_RfftAdjoint`, one inverse real FFT.

    For ``X_k = s sum_t x_t e^{-2 pi i k t / n}`` (``k < n // 2 + 1``, ``s`` from ``norm``),
    ``dL/dx_t = s sum_k Re(G_k e^{2 pi i k t / n})``, which is half of ``irfft(G)`` in the
    dual normalisation plus the DC and Nyquist terms that ``irfft`` counts once instead
    of twice. torch's own backward zero-pads to a full complex FFT instead.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, n: int, dim: int, norm: str) -> torch.Tensor:
        ctx.set_materialize_grads(False)  # _FFTConv routes no gradient through the spectrum it is given
        ctx.meta = (n, dim % x.ndim, norm, x.shape[dim % x.ndim])
        return torch.fft.rfft(x, n=n, dim=dim, norm=norm)

    @staticmethod
    def backward(ctx, g: torch.Tensor | None):
        if g is None:
            return None, None, None, None
        return _RfftAdjoint.apply(g, *ctx.meta), None, None, None


class _RfftAdjoint(torch.autograd.Function):
    """The adjoint of :class:`_RFFT` (``F`` bins -> ``length`` real samples); backward: :class:`_RFFT`."""

    @staticmethod
    def forward(ctx, g: torch.Tensor, n: int, dim: int, norm: str, length: int) -> torch.Tensor:
        ctx.meta = (n, dim, norm)
        gx = torch.fft.irfft(g, n=n, dim=dim, norm=DUAL_NORM[norm]).mul_(0.5)  # (..., n, ...) real
        alpha = 0.5 * norm_scale(norm, n)
        gx.add_(g.narrow(dim, 0, 1).real, alpha=alpha)  # DC: counted once by irfft, needs twice
        if n % 2 == 0:  # Nyquist: + on even t, - on odd t (strided in-place adds, no (..., n, ...) temporary)
            g_nyq = g.narrow(dim, n // 2, 1).real
            lead = (slice(None),) * dim
            gx[lead + (slice(0, None, 2),)].add_(g_nyq, alpha=alpha)
            gx[lead + (slice(1, None, 2),)].sub_(g_nyq, alpha=alpha)
        if length > n:  # the forward truncated x to n samples: the dropped ones get zero gradient
            shape = list(gx.shape)
            shape[dim] = length - n
            gx = torch.cat([gx, gx.new_zeros(shape)], dim=dim)  # (..., length, ...) real
        elif length < n:  # the forward zero-padded x to n samples
            gx = gx.narrow(dim, 0, length)
        return gx

    @staticmethod
    def backward(ctx, gg: torch.Tensor):
        n, dim, norm = ctx.meta
        return _RFFT.apply(gg, n, dim, norm), None, None, None, None


# Spectrum elements transformed at once by _FFTConv: chunks of samples and channels bound its complex
# temporaries (4 MiB at complex64) instead of holding the (B, D, F) spectra of the whole batch.
_CHUNK_ELEMENTS = 2**19


def _chunks(b: int, d: int, f: int) -> list[tuple[slice, slice]]:
    """(batch, channel) slices covering ``(B, D)`` whose spectra hold about ``_CHUNK_ELEMENTS`` each."""
    rows = max(1, _CHUNK_ELEMENTS // max(f, 1))
    if rows >= d:
        step = rows // d
        return [(slice(i, i + step), slice(0, d)) for i in range(0, b, step)]
    return [(slice(i, i + 1), slice(j, j + rows)) for i in range(b) for j in range(0, d, rows)]


class _FFTConv(torch.autograd.Function):
    """``y = irfft(rfft(x, n=P) * w, n=P)[:, :N]`` with a hand-written backward.

    First-order backward: ``gx = irfft(rfft(g, n=P) * conj(w))[:, :N]`` (the adjoint, a
    correlation: :class:`_FFTConv` with ``conj(w)``) and ``gw_k = c_k / P sum_b conj(X_bk) G_bk``
    (``c_k = 2``, or 1 at DC and Nyquist whose imaginary parts the real inverse ignores).
    Compared with autograd through ``rfft``/``irfft`` this skips the full complex FFT that
    the ``rfft`` backward runs and works in place on the spectra. No spectrum is kept for
    backward: when ``w`` needs a gradient, ``x`` itself is saved (it is alive anyway) and
    ``X`` is recomputed there. Forward and backward run a few samples at a time
    (``_CHUNK_ELEMENTS``), so the complex temporaries stay small whatever ``B``. The
    transforms run on the ``(B, D, N)`` view, where the token axis is contiguous in
    memory, and the zero padding to ``P`` happens inside the FFT.

    ``spec`` is None, or ``X = rfft(x, n=P)`` already computed by :class:`_RFFT` (in the
    graph of ``x``; the correlation in :func:`_fft_conv_backward_differentiable` passes
    one), kept when ``w`` needs a gradient. The whole gradient of ``x`` is returned through
    the ``x`` input (none through ``spec``). Under ``create_graph=True`` (grad mode on
    inside backward) the gradients are built from :class:`_RFFT` (recomputing ``X`` from
    the saved ``x`` in its graph) and :class:`_FFTConv` themselves, so they are exact at
    every order.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, spec: torch.Tensor | None, w: torch.Tensor, p: int) -> torch.Tensor:
        b, n, d = x.shape
        ctx.p = p
        given = spec is not None
        ctx.save_for_backward(spec if given and w.requires_grad else None, w, x if not given and w.requires_grad else None)
        wt = w.t()  # (D, F)
        out = torch.empty_strided(
            (b, n, d), (n * d, 1, n), dtype=x.dtype, device=x.device
        )  # (B, N, D), stored as (B, D, N)
        for bs, cs in _chunks(b, d, wt.shape[-1]):
            if given:
                prod = spec[bs, cs] * wt[cs]  # spec is in the graph: not overwritten
            else:
                prod = torch.fft.rfft(x[bs, :, cs].transpose(1, 2), n=p, dim=-1).mul_(wt[cs])  # (b, c, F)
            _irfft_into(prod, p, out[bs, :, cs].transpose(1, 2))
            del prod
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        spec, w, x = ctx.saved_tensors
        if torch.is_grad_enabled():
            if x is not None:  # the spectrum of x again, this time in x's graph
                spec = _RFFT.apply(x.transpose(1, 2), ctx.p, -1, "backward")
            return _fft_conv_backward_differentiable(ctx, g, spec, w)
        p, (b, n, d) = ctx.p, g.shape
        need_gx, need_gw = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        wt_conj = w.t().conj()  # (D, F)
        gx = torch.empty_strided((b, n, d), (n * d, 1, n), dtype=g.dtype, device=g.device) if need_gx else None
        gw = torch.zeros(wt_conj.shape, dtype=w.dtype, device=w.device) if need_gw else None  # (D, F): sum_b conj(X) G
        for bs, cs in _chunks(b, d, wt_conj.shape[-1]):
            g_spec = torch.fft.rfft(g[bs, :, cs].transpose(1, 2), n=p, dim=-1)  # (b, c, F) complex
            if need_gw:
                if spec is not None:
                    x_spec = spec[bs, cs]
                else:
                    x_spec = torch.fft.rfft(x[bs, :, cs].transpose(1, 2), n=p, dim=-1)
                for j in range(g_spec.shape[0]):  # one batch slice at a time
                    gw[cs].addcmul_(x_spec[j].conj(), g_spec[j])
                del x_spec
            if need_gx:
                _irfft_into(g_spec.mul_(wt_conj[cs]), p, gx[bs, :, cs].transpose(1, 2))
            del g_spec
        if need_gw:
            scale = rfft_bin_weights(w.shape[0], p, dc=1.0 / p, nyquist=1.0 / p, rest=2.0 / p, like=gw)
            gw = zero_edge_imag_(gw.mul_(scale), p, dim=1).t()  # (F, D), our own buffer: cleaned in place
        return gx, None, gw, None


def _irfft_into(spec: torch.Tensor, p: int, out: torch.Tensor) -> None:
    """Write the first ``out.shape[-1]`` samples of ``irfft(spec, n=p)`` into ``out``."""
    if p == out.shape[-1] and out.is_contiguous():
        torch.fft.irfft(spec, n=p, dim=-1, out=out)
    else:
        out.copy_(torch.fft.irfft(spec, n=p, dim=-1).narrow(-1, 0, out.shape[-1]))


def _fft_conv_backward_differentiable(ctx, g: torch.Tensor, spec: torch.Tensor | None, w: torch.Tensor):
    """The gradients of :class:`_FFTConv` as differentiable functions of ``g``, ``x`` (via ``spec``) and ``w``."""
    p = ctx.p
    g_spec = _RFFT.apply(g.transpose(1, 2), p, -1, "backward")  # (B, D, F) complex, in the graph of g
    gw = gx = None
    if ctx.needs_input_grad[2]:
        scale = rfft_bin_weights(w.shape[0], p, dc=1.0 / p, nyquist=1.0 / p, rest=2.0 / p, like=w, dim=0)
        gw = real_edge_bins((spec.conj() * g_spec).sum(0).t() * scale, p, dim=0)  # (F, D) complex
    if ctx.needs_input_grad[0]:
        gx = _FFTConv.apply(g, g_spec, w.conj(), p)  # (B, N, D) real: the correlation with w
    return gx, None, gw, None


def kernel_conv(x: torch.Tensor, kernel: torch.Tensor, p: int) -> torch.Tensor:
    """``y = irfft(rfft(x, n=P) * rfft(kernel, n=P), n=P)[:, :N]``: filter by a real kernel, keeping no spectrum.

    The kernel's spectrum is computed a group of channels at a time, in forward and again
    in backward, and its gradient is formed in the kernel's own (lag) domain, so neither
    ``(F, D)`` spectrum nor its gradient is ever held whole (:class:`_KernelConv`).
    A linear convolution when ``P >= N + T - 1``.

    Shape
    -----
    x: (B, N, D) real, kernel: (T, D) real, T <= P -> (B, N, D) real
    """
    return _KernelConv.apply(x, kernel, p)


# Spectrum elements per chunk of _KernelConv (2 MiB at complex64): a chunk holds about seven such
# temporaries (the kernel's and the signals' spectra, the gradient sum, the zero-padded copies FFTs make)
_KERNEL_CHUNK_ELEMENTS = 2**18


def _channel_major_chunks(b: int, d: int, f: int) -> list[tuple[slice, list[slice]]]:
    """Channel slices, each with the batch slices covering ``(B, D)`` at about ``_KERNEL_CHUNK_ELEMENTS`` bins each."""
    rows = max(1, _KERNEL_CHUNK_ELEMENTS // max(f, 1))
    width, step = min(d, rows), max(1, rows // d)
    return [(slice(j, j + width), [slice(i, i + step) for i in range(0, b, step)]) for j in range(0, d, width)]


def _kernel_spectrum(kernel: torch.Tensor, channels: slice, p: int) -> torch.Tensor:
    """``rfft`` of the kernel's ``channels`` on a ``P``-point circle, DC and Nyquist exactly real: (T, D) -> (c, F)."""
    # transformed as (c, T), where the lag axis is contiguous
    return zero_edge_imag_(torch.fft.rfft(kernel[:, channels].t(), n=p, dim=-1), p)


class _KernelConv(torch.autograd.Function):
    """:func:`kernel_conv`; saves ``x`` and the kernel only.

    First-order backward, a group of channels at a time: ``W = rfft(k, n=P)`` again,
    ``gx = irfft(rfft(g, n=P) * conj(W))[:, :N]`` (the correlation with the kernel) and
    ``gk = irfft(sum_b conj(X_b) G_b, n=P)[:T]`` (the correlation of ``g`` with ``x``, exact
    for every lag ``< T`` since both are zero-padded to ``P``). Under ``create_graph=True``
    the gradients are those of :class:`_RFFT` and :class:`_FFTConv` composed, exact at every order.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, p: int) -> torch.Tensor:
        ctx.p = p
        ctx.save_for_backward(x, kernel)
        b, n, d = x.shape
        out = torch.empty_strided((b, n, d), (n * d, 1, n), dtype=x.dtype, device=x.device)  # stored (B, D, N)
        for cs, batches in _channel_major_chunks(b, d, p // 2 + 1):
            w = _kernel_spectrum(kernel, cs, p)  # (c, F) complex
            for bs in batches:
                prod = torch.fft.rfft(x[bs, :, cs].transpose(1, 2), n=p, dim=-1).mul_(w)  # (b, c, F)
                _irfft_into(prod, p, out[bs, :, cs].transpose(1, 2))
                del prod
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, kernel = ctx.saved_tensors
        p = ctx.p
        need_gx, need_gk = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled():  # create_graph=True: the differentiable composition
            w = real_edge_bins(_RFFT.apply(kernel.t(), p, -1, "backward"), p, dim=-1).t()  # (F, D) complex
            inputs = [t for t, need in zip((x, kernel), (need_gx, need_gk)) if need]
            got = iter(torch.autograd.grad(_FFTConv.apply(x, None, w, p), inputs, g, create_graph=True))
            return (next(got) if need_gx else None), (next(got) if need_gk else None), None
        (b, n, d), taps = g.shape, kernel.shape[0]
        gx = torch.empty_strided((b, n, d), (n * d, 1, n), dtype=g.dtype, device=g.device) if need_gx else None
        gk = torch.empty_like(kernel) if need_gk else None  # (T, D)
        for cs, batches in _channel_major_chunks(b, d, p // 2 + 1):
            w_conj = _kernel_spectrum(kernel, cs, p).conj_physical_()  # (c, F)
            acc = torch.zeros_like(w_conj) if need_gk else None  # sum_b conj(X_b) G_b, (c, F)
            for bs in batches:
                g_spec = torch.fft.rfft(g[bs, :, cs].transpose(1, 2), n=p, dim=-1)  # (b, c, F) complex
                if need_gk:
                    x_spec = torch.fft.rfft(x[bs, :, cs].transpose(1, 2), n=p, dim=-1)
                    for j in range(g_spec.shape[0]):  # one sample at a time: no (b, c, F) product
                        acc.addcmul_(x_spec[j].conj(), g_spec[j])
                    del x_spec
                if need_gx:
                    _irfft_into(g_spec.mul_(w_conj), p, gx[bs, :, cs].transpose(1, 2))
                del g_spec
            if need_gk:
                gk[:, cs] = torch.fft.irfft(acc, n=p, dim=-1).narrow(-1, 0, taps).t()
        return gx, gk, None
