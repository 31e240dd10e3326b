"""The dense real-data spectral convolution as one opaque operator under ``torch.compile``.

Legend: ``B`` batch, ``Cin``/``Cout`` channels, ``*grid`` the input's ``d`` spatial axes,
``*out`` the output grid, ``*K`` the kept bins, ``Kt`` their product.

Inductor generates no code for complex tensors: traced through, the layer's FFTs and its
complex matmuls stay library calls anyway, with copies and small kernels between them that
cost compile time and step time. :func:`spectral_conv_dense` is a ``torch.library`` custom
operator instead: the compiled graph calls the eager implementation (the pruned transforms of
:mod:`spectral.fft`, one batched complex matmul) once per layer, its backward is a second
operator written from the adjoints (:func:`spectral.fft.truncated_fftn_backward`), and only the
kept spectrum of ``x`` is saved for backward. Fake implementations give the output shapes
from symbolic sizes, so ``dynamic=True`` traces one graph for every grid.

:func:`operators.spectral_conv._spectral_conv` routes here only while compiling (not under
``torch.export``), for ``factorization="dense"``, real data, ``x`` in the weights' dtype
(float32 or float64) and autocast off; every other case is traced as in eager mode. The
operators are differentiable once (compiled graphs do not support double backward); eager mode
keeps the twice differentiable autograd Functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spectral.complex import as_complex
from spectral.fft import dc_scale, truncated_fftn, truncated_fftn_backward, truncated_ifftn, truncated_ifftn_backward
from spectral.modes import kept_shape

__all__ = ["spectral_conv_dense", "spectral_conv_dense_backward", "use_compiled_op"]

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def use_compiled_op(x: torch.Tensor, weight: torch.Tensor, factorization: str, complex_data: bool) -> bool:
    """Whether :func:`~operators.spectral_conv._spectral_conv` should call :func:`spectral_conv_dense`.

    Only under ``torch.compile``: ``torch.export`` traces the eager path, so an exported program
    holds only ATen operators (AOTInductor and other runtimes cannot call Python operators).
    """
    return (torch.compiler.is_compiling() and not torch.compiler.is_exporting() and factorization == "dense" and not complex_data
            and x.dtype == weight.dtype and x.dtype in _COMPLEX and not torch.is_autocast_enabled(x.device.type))


def _grid_rescale(norm: str, in_grid: Sequence[int], grid: Sequence[int]) -> float:
    """Coefficients computed on ``in_grid`` to the scale of ``grid``'s inverse (1 for "forward" or equal sizes)."""
    return float(dc_scale(norm, grid) / dc_scale(norm, in_grid))


def _mode_major(z: torch.Tensor) -> torch.Tensor:
    """``(B, C, *K)`` -> contiguous ``(Kt, B, C)``: the batched matmul's layout."""
    return z.reshape(z.shape[0], z.shape[1], -1).permute(2, 0, 1).contiguous()


@torch.library.custom_op("spectral_operators::spectral_conv_dense", mutates_args=())
def spectral_conv_dense(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, n_modes: Sequence[int], grid: Sequence[int], norm: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``SpectralConv`` (dense, real data) on ``x``, evaluated on ``grid``; also the kept spectrum of ``x``.

    Shape
    -----
    x: (B, Cin, *grid_in) real, weight: (Kt, Cin, Cout, 2), bias: (Cout,) or None
    -> (B, Cout, *grid) real, (B, Cin, *K) complex (saved for backward)
    """
    xk = truncated_fftn(x, n_modes, norm=norm).contiguous()  # (B, Cin, *K) complex, the fake's layout
    w = as_complex(weight)  # (Kt, Cin, Cout), copied only if weight is not laid out as complex
    yk = torch.bmm(_mode_major(xk), w)  # (Kt, B, Cout)
    scale = _grid_rescale(norm, x.shape[2:], grid)
    if scale != 1.0:
        yk.mul_(scale)
    if bias is not None:  # a constant field: its only coefficient is k = 0, row 0 of the compact layout
        yk[0].add_(bias.to(yk.dtype), alpha=dc_scale(norm, grid))
    yk = yk.permute(1, 2, 0).reshape(x.shape[0], w.shape[2], *xk.shape[2:])  # (B, Cout, *K)
    return truncated_ifftn(yk, list(grid), norm=norm), xk


@spectral_conv_dense.register_fake
def _(x, weight, bias, n_modes, grid, norm):
    kept = kept_shape(tuple(n_modes))
    return x.new_empty((x.shape[0], weight.shape[2], *grid)), x.new_empty((x.shape[0], x.shape[1], *kept), dtype=_COMPLEX[x.dtype])


@torch.library.custom_op("spectral_operators::spectral_conv_dense_backward", mutates_args=())
def spectral_conv_dense_backward(
    grad: torch.Tensor, xk: torch.Tensor, weight: torch.Tensor, n_modes: Sequence[int], in_grid: Sequence[int], norm: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`spectral_conv_dense` for x, weight and bias, from the output's gradient.

    Each step is the adjoint of a forward step (:func:`spectral.fft.truncated_ifftn_backward`,
    the conjugated mode contraction, :func:`spectral.fft.truncated_fftn_backward`).

    Shape
    -----
    grad: (B, Cout, *grid) real, xk: (B, Cin, *K) complex, weight: (Kt, Cin, Cout, 2)
    -> (B, Cin, *in_grid), (Kt, Cin, Cout, 2), (Cout,)
    """
    grid = grad.shape[2:]
    gk = truncated_ifftn_backward(grad, n_modes, norm=norm)  # (B, Cout, *K) complex
    g = _mode_major(gk)  # (Kt, B, Cout)
    grad_b = g[0].real.sum(0) * dc_scale(norm, grid)  # (Cout,)
    scale = _grid_rescale(norm, in_grid, grid)
    if scale != 1.0:
        g.mul_(scale)
    w = as_complex(weight)  # (Kt, Cin, Cout), copied only if weight is not laid out as complex
    # bmm copies a conjugated operand first: conjugate the small (Kt, B, C) factors, never w or the result
    grad_w = torch.view_as_real(torch.bmm(_mode_major(xk).conj_physical().mT, g))  # xk^H g: (Kt, Cin, Cout, 2)
    gxk = torch.bmm(g.conj_physical(), w.mT).conj_physical_()  # g w^H: (Kt, B, Cin)
    gxk = gxk.permute(1, 2, 0).reshape(xk.shape)  # (B, Cin, *K)
    return truncated_fftn_backward(gxk, in_grid, norm=norm), grad_w, grad_b


@spectral_conv_dense_backward.register_fake
def _(grad, xk, weight, n_modes, in_grid, norm):
    return grad.new_empty((grad.shape[0], xk.shape[1], *in_grid)), weight.new_empty(weight.shape), grad.new_empty((weight.shape[2],))


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, n_modes, _, norm = inputs
    ctx.save_for_backward(output[1], weight)
    ctx.meta = (tuple(n_modes), tuple(x.shape[2:]), norm, bias is not None)


def _backward(ctx, grad, _grad_xk):
    xk, weight = ctx.saved_tensors
    n_modes, in_grid, norm, has_bias = ctx.meta
    grad_x, grad_w, grad_b = spectral_conv_dense_backward(grad, xk, weight, n_modes, in_grid, norm)
    return grad_x, grad_w, grad_b if has_bias else None, None, None, None


def _no_double_backward(ctx, *grads):
    raise RuntimeError(
        "SpectralConv under torch.compile is differentiable once (compiled graphs have no double backward); "
        "run the model without torch.compile for second derivatives (the eager layer is exact to second order)"
    )


spectral_conv_dense.register_autograd(_backward, setup_context=_setup_context)
spectral_conv_dense_backward.register_autograd(_no_double_backward, setup_context=lambda ctx, inputs, output: None)
