"""Fourier Kolmogorov-Arnold layer: a learnable truncated Fourier series on every edge.

Legend: ``...`` any leading (batch) dims, ``M`` their product, ``I`` in_features,
``O`` out_features, ``K`` num_frequencies (wavenumbers ``k = 1..K``).

The layer computes ``y_j = b_j + sum_i sum_k (A_jik cos(k x_i) + B_jik sin(k x_i))``.
Written as features ``phi(x) = [cos(k x_i), sin(k x_i)]`` of shape ``(M, I, 2, K)``
followed by one matmul with the ``(O, I * 2 * K)`` coefficient matrix, it never forms
the ``(M, O, I, K)`` tensor of the direct sum. :func:`fourier_kan` goes one step further:
a custom autograd function keeps only ``x`` for the backward pass and recomputes the
features there, so the activation memory is ``O(M I)`` instead of ``O(M I K)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from spectral.checks import check_bool, check_dtype_matches, check_int, check_real_dtype, check_tensor

__all__ = ["fourier_kan_features", "fourier_kan", "FourierKANLayer"]


def _wavenumbers(num_frequencies: int, like: torch.Tensor) -> torch.Tensor:
    return torch.arange(1, num_frequencies + 1, dtype=like.dtype, device=like.device)  # (K,)


def fourier_kan_features(x: torch.Tensor, num_frequencies: int) -> torch.Tensor:
    """Fourier features ``[cos(k x_i), sin(k x_i)]`` for ``k = 1..K``.

    Shape
    -----
    x: (..., I) real -> (..., I, 2, K) real, index 0 of the ``2`` axis is cosine, 1 is sine.
    """
    k = _wavenumbers(num_frequencies, x)
    if torch.compiler.is_compiling() or (torch.is_grad_enabled() and x.requires_grad):
        # Differentiable form (double backward); under torch.compile the compiler fuses it.
        kx = x.unsqueeze(-1) * k  # (..., I, K)
        return torch.stack((torch.cos(kx), torch.sin(kx)), dim=-2)
    # Outside autograd: build k x in the sine half of one buffer, take its cosine into the
    # other half, then the sine in place (no temporaries beyond the output).
    out = x.new_empty(*x.shape, 2, num_frequencies)
    sin_half = out[..., 1, :]
    torch.mul(x.unsqueeze(-1), k, out=sin_half)
    torch.cos(sin_half, out=out[..., 0, :])
    sin_half.sin_()
    return out


class _FourierKANFunction(torch.autograd.Function):
    """``phi(x) @ W^T + b`` that saves ``x`` (not ``phi(x)``) and recomputes the features in backward.

    The backward pass is written with differentiable torch ops, so double backward
    (gradients of input gradients, e.g. PDE residual losses on an INR) also works.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        feats = fourier_kan_features(x, weight.shape[-1])  # (M, I, 2, K)
        ctx.save_for_backward(x, weight)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return F.linear(feats.flatten(1), weight.flatten(1), bias)  # (M, O)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        dtype = torch.promote_types(x.dtype, weight.dtype)  # full precision even after autocast
        g = grad_out.to(dtype)  # (M, O)
        if ctx.needs_input_grad[0] and weight.shape[0] < 2 * weight.shape[-1]:
            grad_x, grad_w = _backward_rotated(x.to(dtype), weight.to(dtype), g, ctx.needs_input_grad[1])
        else:
            grad_x, grad_w = _backward_feature_grad(x.to(dtype), weight.to(dtype), g, ctx.needs_input_grad)
        grad_x = None if grad_x is None else grad_x.to(x.dtype)
        grad_w = None if grad_w is None else grad_w.to(weight.dtype)
        grad_b = None
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_b = g.sum(0).to(ctx.bias_dtype)  # (O,)
        return grad_x, grad_w, grad_b


def _backward_feature_grad(x, weight, g, needs):
    """Backward through ``dL/dphi = g W`` of shape ``(M, I, 2, K)`` (cheapest when ``O >= 2K``)."""
    num_frequencies = weight.shape[-1]
    feats = fourier_kan_features(x, num_frequencies)  # (M, I, 2, K)
    grad_x = grad_w = None
    if needs[1]:
        grad_w = (g.t() @ feats.flatten(1)).view(weight.shape)  # (O, I, 2, K)
    if needs[0]:
        gf = (g @ weight.flatten(1)).view(feats.shape)  # (M, I, 2, K) dL/dphi
        # d cos(kx)/dx = -k sin(kx), d sin(kx)/dx = k cos(kx)
        tangent = torch.addcmul(gf[..., 1, :] * feats[..., 0, :], gf[..., 0, :], feats[..., 1, :], value=-1.0)
        grad_x = tangent @ _wavenumbers(num_frequencies, tangent)  # (M, I)
    return grad_x, grad_w


def _backward_rotated(x, weight, g, need_weight):
    """Backward with the derivative folded into the weight: ``(I, M, O)`` temporaries (``O < 2K``).

    ``dphi/dx`` is ``phi`` with its halves swapped, one negated and scaled by ``k``, so
    ``dy_o/dx_i = sum_{s,k} W'_{o,i,s,k} phi_{i,s,k}`` with ``W'_{.,.,0,k} = k B``,
    ``W'_{.,.,1,k} = -k A``: one batched matmul per input feature, no ``(M, I, 2, K)`` gradient.
    """
    (m, n_in), (n_out, _, _, num_frequencies) = x.shape, weight.shape
    feats = fourier_kan_features(x.t().unsqueeze(-1), num_frequencies).view(n_in, m, 2 * num_frequencies)
    grad_w = None
    if need_weight:
        grad_w = torch.bmm(g.t().expand(n_in, n_out, m), feats)  # (I, O, 2K)
        grad_w = grad_w.view(n_in, n_out, 2, num_frequencies).transpose(0, 1)  # (O, I, 2, K)
    k = _wavenumbers(num_frequencies, weight)[:, None]  # (K, 1)
    w = weight.permute(1, 2, 3, 0)  # (I, 2, K, O)
    w_rot = torch.stack((w[:, 1] * k, w[:, 0] * -k), dim=1).reshape(n_in, 2 * num_frequencies, n_out)
    dy_dx = torch.bmm(feats, w_rot)  # (I, M, O): dy_o / dx_i per point
    prod = dy_dx.mul_(g) if not torch.is_grad_enabled() else dy_dx * g
    return prod.sum(-1).t(), grad_w  # (M, I)


def fourier_kan(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the Fourier-KAN map ``y_j = b_j + sum_{i,k} A_jik cos(k x_i) + B_jik sin(k x_i)``.

    Parameters
    ----------
    x : Tensor
        Real input, last axis of size ``I``.
    weight : Tensor
        Coefficients ``(O, I, 2, K)``: ``weight[:, :, 0] = A`` (cosine), ``weight[:, :, 1] = B`` (sine).
    bias : Tensor or None
        ``(O,)``.

    Returns
    -------
    Tensor
        ``(..., O)``, dtype of ``F.linear`` on ``x`` and ``weight``.

    Raises
    ------
    TypeError
        If ``x`` or ``weight`` is not a real floating tensor (numpy arrays included), or
        (outside autocast) ``x``'s dtype is not ``weight``'s.
    ValueError
        If ``weight`` is not 4-D with a size-2 third axis, or ``x``'s last axis is not ``I``.

    Shape
    -----
    x: (..., I) real, weight: (O, I, 2, K), bias: (O,) -> (..., O) real

    Notes
    -----
    Peak activation memory is one ``(M, I, 2, K)`` feature buffer at a time (forward
    and backward); nothing of size ``K`` is kept between them.
    """
    _check_input("fourier_kan", x, weight, bias)
    return _fourier_kan(x, weight, bias)


def _fourier_kan(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    lead = x.shape[:-1]
    out = _FourierKANFunction.apply(x.reshape(-1, x.shape[-1]), weight, bias)  # (M, O)
    return out.reshape(*lead, weight.shape[0])


def _check_input(owner: str, x: object, weight: object, bias: object) -> None:
    """``x`` real ``(..., I)``, ``weight`` real ``(O, I, 2, K)``, ``bias`` None or ``(O,)``; one dtype (autocast aside)."""
    check_tensor(owner, "x", x)
    check_tensor(owner, "weight", weight)
    if weight.ndim != 4 or weight.shape[2] != 2:
        raise ValueError(f"{owner}: expected weight of shape (O, I, 2, K), got {tuple(weight.shape)}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{owner}: expected x of shape (..., {weight.shape[1]}), got {tuple(x.shape)}")
    if bias is not None:
        check_tensor(owner, "bias", bias)
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"{owner}: expected bias of shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    check_dtype_matches(owner, x, weight)


class FourierKANLayer(nn.Module):
    """Kolmogorov-Arnold layer whose edge functions are truncated Fourier series.

    ``y_j = b_j + sum_{i=1..I} sum_{k=1..K} (A_jik cos(k x_i) + B_jik sin(k x_i))``

    Every input-output edge ``(i, j)`` carries its own learnable 1-D function of ``x_i``;
    the constant term of each series is folded into the bias ``b_j``. Coefficients are
    drawn as ``randn / sqrt(I K)`` (each output then has about unit variance), or with
    ``smooth_init=True`` as ``randn / (sqrt(I) k^2)`` so the initial edge functions are
    smooth whatever ``K`` is.

    Parameters
    ----------
    in_features : int
        ``I``, size of the last input axis.
    out_features : int
        ``O``, size of the last output axis.
    num_frequencies : int
        ``K >= 1``: the wavenumbers ``1..K`` of every edge function (the series has period
        ``2 pi`` in each input; inputs in ``[-1, 1]`` see no wrap-around).
    bias : bool
        Learn ``b`` (initialised to zero).
    smooth_init : bool
        Attenuate the initial coefficients as ``1 / k^2`` instead of ``1 / sqrt(K)``.
    device, dtype
        Where and in which dtype to create the parameters.

    Attributes
    ----------
    weight : Parameter
        ``(O, I, 2, K)``: ``weight[..., 0, :]`` cosine, ``weight[..., 1, :]`` sine coefficients.
    bias : Parameter or None
        ``(O,)``.

    Raises
    ------
    ValueError
        At construction for counts below 1; in ``forward`` for a last axis other than ``I``.
    TypeError
        At construction for a count that is not an int, a flag that is not a bool or a
        non-real ``dtype``; in ``forward`` for an input that is not a real floating tensor.

    Shape
    -----
    x: (..., I) real -> (..., O) real, same dtype and device.

    Notes
    -----
    Computed by :func:`fourier_kan`: features ``(M, I, 2, K)`` and one matmul, with the
    features recomputed in backward. For ``I=2, O=128, K=270`` on 4096 points the direct
    ``(M, O, I, K)`` sum needs over 1 GB; see ``python -m benchmarks kan``.

    References
    ----------
    Liu et al., "KAN: Kolmogorov-Arnold Networks", 2024; Mehrabian et al., "Implicit
    Neural Representations with Fourier Kolmogorov-Arnold Networks", ICASSP 2025.

    Examples
    --------
    >>> layer = FourierKANLayer(2, 8, 16)
    >>> layer(torch.rand(5, 3, 2)).shape
    torch.Size([5, 3, 8])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_frequencies: int,
        *,
        bias: bool = True,
        smooth_init: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        self.num_frequencies = check_int("num_frequencies", num_frequencies)
        self.smooth_init = check_bool("smooth_init", smooth_init)
        factory = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
        shape = (self.out_features, self.in_features, 2, self.num_frequencies)
        self.weight = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(self.out_features, **factory)) if check_bool("bias", bias) else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_()
            if self.smooth_init:
                k = _wavenumbers(self.num_frequencies, self.weight)
                self.weight.div_(math.sqrt(self.in_features) * k.square())
            else:
                self.weight.div_(math.sqrt(self.in_features * self.num_frequencies))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("FourierKANLayer", x, self.weight, self.bias)
        return _fourier_kan(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, num_frequencies={self.num_frequencies}, "
            f"bias={self.bias is not None}, smooth_init={self.smooth_init}"
        )
