"""The irreducible work of a pruned spectral convolution, and errors against float64.

The limit the ``fno`` and ``fft`` suites measure the library against (issue 20): for a
real field ``(B, Cin, *grid)`` and ``n_modes`` (``|k| < m`` per axis, our mode
convention), the least a pruned spectral convolution must do with plain ``torch.fft``:

1. an rfft of every row along the last axis (bins ``0..m-1`` kept, a view);
2. on each two-sided axis, a full-length FFT of only the kept columns, keeping the
   ``2m - 1`` bins ``0..m-1, -(m-1)..-1`` (fft order, as the library's packed weights);
3. one batched complex matmul over the kept modes (``(Kt, B, Cin) @ (Kt, Cin, Cout)``);
4. the inverses: a zero-filled full-length inverse FFT of the kept columns on each
   two-sided axis, then ``irfft`` (which zero-fills the dropped bins) along the last axis.

The backward does the same minimum by hand (see :func:`irreducible_conv`); gradients
match the library's (tests/benchmarks). ``weight=None`` skips step 3 (the transforms
alone, the limit of the ``fft`` suite's pruned transform pair).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["irreducible_conv", "IrreducibleConv", "max_error_vs_float64"]


def _keep(spec: torch.Tensor, dim: int, m: int) -> torch.Tensor:
    """Bins ``0..m-1`` and ``-(m-1)..-1`` of a two-sided axis, in fft order."""
    n = spec.shape[dim]
    if m == 1:
        return spec.narrow(dim, 0, 1)
    return torch.cat((spec.narrow(dim, 0, m), spec.narrow(dim, n - m + 1, m - 1)), dim=dim)


def _zero_fill(kept: torch.Tensor, dim: int, n: int, m: int) -> torch.Tensor:
    """The kept ``2m - 1`` bins of a two-sided axis written into a zero spectrum of length ``n``."""
    shape = list(kept.shape)
    shape[dim] = n
    full = kept.new_zeros(shape)
    full.narrow(dim, 0, m).copy_(kept.narrow(dim, 0, m))
    if m > 1:
        full.narrow(dim, n - m + 1, m - 1).copy_(kept.narrow(dim, m, m - 1))
    return full


def _transform(x: torch.Tensor, n_modes: Sequence[int]) -> torch.Tensor:
    """Kept coefficients ``(B, C, *K)`` (``norm="forward"``): rfft of every row, then the kept columns only."""
    d = len(n_modes)
    spec = torch.fft.rfft(x, dim=-1, norm="forward").narrow(-1, 0, n_modes[-1])  # every row
    for i in range(d - 2, -1, -1):  # two-sided axes: only the kept columns
        dim = i - d
        spec = _keep(torch.fft.fft(spec, dim=dim, norm="forward"), dim, n_modes[i])
    return spec


def _inverse(spec: torch.Tensor, grid: Sequence[int], n_modes: Sequence[int]) -> torch.Tensor:
    """Zero-filled inverses (no scaling): ifft of the kept columns on each two-sided axis, then irfft."""
    d = len(n_modes)
    for i in range(d - 1):
        dim = i - d
        spec = torch.fft.ifft(_zero_fill(spec, dim, grid[i], n_modes[i]), dim=dim, norm="forward")
    return torch.fft.irfft(spec, n=grid[-1], dim=-1, norm="forward")


def _mix(spec: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, Cin, *K) x (Kt, Cin, Cout) -> (B, Cout, *K)`` as one batched matmul; also the ``(Kt, B, Cin)`` input."""
    b, cin, *kept = spec.shape
    flat = spec.reshape(b, cin, -1).permute(2, 0, 1)  # (Kt, B, Cin)
    return torch.matmul(flat, weight).permute(1, 2, 0).reshape(b, weight.shape[2], *kept), flat


class _PrunedConv(torch.autograd.Function):
    """Forward: transform, mix, invert. Backward: the same minimum, by hand (torch's own backward of the
    forward graph re-lays out and pads more than it must): the adjoint of ``x -> y`` is the same pruned
    conv with ``W^H`` per mode (the mode set is Hermitian, and the rfft's and irfft's bin weightings
    cancel), and ``dW = xhat^H ghat'`` with ``ghat'`` the unnormalised transform of the output
    gradient, rfft bins ``k >= 1`` counted twice (as torch's c2r backward does)."""

    @staticmethod
    def forward(ctx, x, weight, n_modes):
        grid = tuple(x.shape[-len(n_modes):])
        spec = _transform(x, n_modes)
        flat = None
        if weight is not None:
            spec, flat = _mix(spec, weight)
        ctx.n_modes, ctx.grid = n_modes, grid
        ctx.save_for_backward(flat, weight)
        return _inverse(spec, grid, n_modes)

    @staticmethod
    def backward(ctx, grad):
        flat, weight = ctx.saved_tensors
        ghat = _transform(grad, ctx.n_modes)  # (B, Cout, *K), norm="forward"
        grad_x = grad_w = None
        if weight is None:
            return _inverse(ghat, ctx.grid, ctx.n_modes), None, None
        if ctx.needs_input_grad[0]:
            mixed, _ = _mix(ghat, weight.conj().transpose(1, 2))
            grad_x = _inverse(mixed, ctx.grid, ctx.n_modes)
        if ctx.needs_input_grad[1]:
            b, cout = ghat.shape[:2]
            scale = torch.full((ghat.shape[-1],), 2.0 * math.prod(ctx.grid), dtype=grad.dtype, device=grad.device)
            scale[0] = math.prod(ctx.grid)
            g = (ghat * scale).reshape(b, cout, -1).permute(2, 0, 1)  # (Kt, B, Cout)
            grad_w = torch.matmul(flat.conj().transpose(1, 2), g)  # (Kt, Cin, Cout)
        return grad_x, grad_w, None


def irreducible_conv(x: torch.Tensor, weight: torch.Tensor | None, n_modes: Sequence[int]) -> torch.Tensor:
    """Pruned spectral convolution with plain ``torch.fft`` ops (``norm="forward"``, no bias).

    Forward and backward each do only the irreducible work: the backward transforms the
    output gradient once (kept modes), mixes it with ``W^H`` and inverts it for ``dx``, and
    takes ``dW`` from the saved kept input modes (one more batched matmul).

    Parameters
    ----------
    x : Tensor
        ``(B, Cin, *grid)`` real, ``d = len(n_modes)`` transformed axes.
    weight : Tensor or None
        ``(Kt, Cin, Cout)`` complex, ``Kt`` the kept modes flattened in C order over
        ``(2 m_0 - 1, ..., m_{d-1})`` (the library's dense layout, as a complex tensor);
        None for the transforms alone (output channels = input channels).
    n_modes : sequence of int
        ``|k| < m`` kept per axis.

    Returns
    -------
    Tensor
        ``(B, Cout, *grid)`` real, ``x``'s dtype.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *grid) real

    Raises
    ------
    ValueError
        ``n_modes`` of the wrong length or too large for the grid, or ``weight`` of the
        wrong shape.
    """
    n_modes = tuple(int(m) for m in n_modes)
    d = len(n_modes)
    if d < 1 or x.ndim != d + 2:
        raise ValueError(f"x must be (B, C, *grid) with {d} grid axes, got shape {tuple(x.shape)}")
    grid = tuple(x.shape[-d:])
    if any(m < 1 or m > (n + 1) // 2 for m, n in zip(n_modes, grid)):
        raise ValueError(f"grid {grid} does not admit n_modes {n_modes}")
    if weight is not None:
        kt = math.prod(2 * m - 1 for m in n_modes[:-1]) * n_modes[-1]
        if weight.ndim != 3 or tuple(weight.shape[:2]) != (kt, x.shape[1]):
            raise ValueError(f"weight must be ({kt}, {x.shape[1]}, Cout) complex, got shape {tuple(weight.shape)}")
    return _PrunedConv.apply(x, weight, n_modes)


class IrreducibleConv(nn.Module):
    """:func:`irreducible_conv` with a copy of a dense :class:`~operators.spectral_conv.SpectralConv`'s
    weights and bias (real data, ``fft_norm="forward"``), so fwd+bwd computes the same gradients.

    Parameters
    ----------
    conv : SpectralConv
        A dense, real-data layer with ``fft_norm="forward"``.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *grid) real
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        if getattr(conv, "factorization", None) != "dense" or conv.complex_data or conv.fft_norm != "forward":
            raise ValueError("IrreducibleConv needs a dense, real-data SpectralConv with fft_norm='forward'")
        self.n_modes = tuple(conv.n_modes)
        self.weight = nn.Parameter(conv.weight.detach().clone())  # (Kt, Cin, Cout, 2)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the pruned convolution (and the bias, a broadcast add)."""
        out = irreducible_conv(x, torch.view_as_complex(self.weight), self.n_modes)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, *([1] * (x.ndim - 2)))
        return out


def max_error_vs_float64(
    ours: torch.Tensor, reference: Callable[..., torch.Tensor], *inputs: torch.Tensor
) -> float:
    """Max absolute error of ``ours`` against ``reference`` evaluated on float64 copies of ``inputs``.

    Real floating inputs go to float64, complex ones to complex128; others pass unchanged.

    Parameters
    ----------
    ours : Tensor
        Our output (any floating dtype).
    reference : callable
        ``reference(*inputs64) -> Tensor``, the same operation.
    *inputs : Tensor
        What ``ours`` was computed from.

    Returns
    -------
    float
        ``max |ours - reference(inputs in float64)|``, computed in float64.

    Raises
    ------
    ValueError
        If the reference's output is not float64/complex128 or its shape differs from ``ours``.
    """
    def up(t):
        if not isinstance(t, torch.Tensor):
            return t
        if t.is_complex():
            return t.detach().to(torch.complex128)
        return t.detach().to(torch.float64) if t.is_floating_point() else t

    with torch.no_grad():
        ref = reference(*(up(t) for t in inputs))
        if ref.dtype not in (torch.float64, torch.complex128):
            raise ValueError(f"the reference must compute in float64, got {ref.dtype}")
        if ref.shape != ours.shape:
            raise ValueError(f"reference shape {tuple(ref.shape)} differs from ours {tuple(ours.shape)}")
        return (up(ours) - ref).abs().max().item()
