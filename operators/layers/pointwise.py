"""Pointwise channel layers: a linear map or an MLP of the channels at every grid point.

Legend: ``B`` batch, ``Cin``/``Cout`` channels in/out, ``*grid`` any number of spatial
axes, ``N = prod(grid)``.

Channels-first ``(B, C, *grid)``, like the operators. The activation before a layer and
a residual after it are fused into the layer's matmul (:func:`channel_linear`), and the
activation is recomputed in backward instead of stored.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from operators.layers.inputs import check_channels
from spectral.activations import ACTIVATIONS, Activation, activation_grad, get_activation
from spectral.checks import check_bool, check_choice, check_int, check_real_dtype

__all__ = ["channel_linear", "ChannelLinear", "ChannelMLP", "pointwise_mlp"]


class _ActLinear(torch.autograd.Function):
    """``W act(x) + b (+ residual)`` keeping only ``x`` for backward: ``act(x)`` is recomputed there.

    Saves one activation-sized tensor per call against plain autograd, which keeps both
    ``x`` (for the activation) and ``act(x)`` (for the matmul). The backward is made of
    differentiable ops on the saved inputs, so under ``create_graph=True`` it is itself
    recorded and double backward is exact.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, residual, activation: str):  # x (B, Cin, N), residual (B, Cout, N)
        a = get_activation(activation)(x)
        w = weight.expand(x.shape[0], *weight.shape)
        y = torch.baddbmm(residual, w, a) if residual is not None else torch.bmm(w, a)
        if bias is not None:
            y = y.add_(bias.unsqueeze(-1))
        ctx.save_for_backward(x, weight)
        ctx.activation, ctx.has_bias, ctx.has_residual = activation, bias is not None, residual is not None
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.residual_dtype = None if residual is None else residual.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        # Under autocast the forward matmul ran in a lower precision: the gradient arrives in
        # that dtype; the matmuls follow it and each result is cast back to its input's dtype.
        x, weight = ctx.saved_tensors
        a = get_activation(ctx.activation)(x)
        grad_w = grad_x = grad_b = grad_r = None
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(grad, a.to(grad.dtype).transpose(1, 2)).sum(0).to(weight.dtype)
        if ctx.needs_input_grad[0]:
            wt = weight.to(grad.dtype).t()
            grad_a = torch.bmm(wt.expand(grad.shape[0], *wt.shape), grad)  # (B, Cin, N)
            grad_x = activation_grad(ctx.activation, grad_a.to(x.dtype), x, a)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2)).to(ctx.bias_dtype)
        if ctx.has_residual and ctx.needs_input_grad[3]:
            grad_r = grad.to(ctx.residual_dtype)
        return grad_x, grad_w, grad_b, grad_r, None


def channel_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    residual: torch.Tensor | None = None,
    activation: Activation | None = None,
) -> torch.Tensor:
    """``W act(x) + b + residual`` at every grid point (each of act, b, residual optional).

    The residual add is fused into the matmul (``baddbmm``). With ``activation``, the
    activation is recomputed in backward instead of stored (one tensor less kept); the
    result is twice differentiable either way.

    Parameters
    ----------
    x : Tensor
        Input field.
    weight : Tensor
        ``(Cout, Cin)`` channel matrix.
    bias : Tensor, optional
        ``(Cout,)``.
    residual : Tensor, optional
        Added to the output, ``(B, Cout, *grid)``.
    activation : {"gelu", "relu", "silu", "tanh", "identity"}, optional
        Applied to ``x`` first (see :mod:`spectral.activations`).

    Shape
    -----
    x: (B, Cin, *grid), weight: (Cout, Cin), bias: (Cout,), residual: (B, Cout, *grid) -> (B, Cout, *grid)

    Examples
    --------
    >>> x, w = torch.randn(2, 3, 8, 8), torch.randn(5, 3)
    >>> torch.allclose(channel_linear(x, w), torch.einsum("oi,bihw->bohw", w, x), atol=1e-6)
    True
    """
    b, grid, cout = x.shape[0], x.shape[2:], weight.shape[0]
    n = math.prod(grid)  # not -1: a reshape cannot infer it when B = 0
    flat = x.reshape(b, x.shape[1], n)  # (B, Cin, N)
    res = None if residual is None else residual.reshape(b, cout, n)  # (B, Cout, N)
    if activation is not None and check_choice("activation", activation, ACTIVATIONS) != "identity":
        if not torch.compiler.is_compiling():
            return _ActLinear.apply(flat, weight, bias, res, activation).reshape(b, cout, *grid)
        flat = get_activation(activation)(flat)  # compiled: the compiler's own partitioner chooses what to keep
    w = weight.expand(b, *weight.shape)  # (B, Cout, Cin), a view
    if res is not None:
        y = torch.baddbmm(res, w, flat)
        y = y if bias is None else y + bias.unsqueeze(-1)
    elif bias is not None:
        y = torch.baddbmm(bias.unsqueeze(-1), w, flat)
    else:
        y = torch.bmm(w, flat)
    return y.reshape(b, cout, *grid)  # (B, Cout, *grid)


class ChannelLinear(nn.Module):
    """Pointwise linear map of the channels (a 1x1 convolution in any dimension).

    ``y[b, o, p] = sum_i W[o, i] act(x)[b, i, p] + b[o] (+ residual[b, o, p])`` at every grid
    point ``p``; ``act`` (optional, see :func:`channel_linear`) is recomputed in backward.

    Parameters
    ----------
    in_channels, out_channels : int
        ``Cin`` and ``Cout``.
    bias : bool
        Learn a bias ``b``. Initialised like :class:`torch.nn.Linear`.
    device, dtype : optional
        Where and in which real dtype the parameters are created.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *grid) real

    Examples
    --------
    >>> ChannelLinear(3, 5)(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 5, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        kw = dict(device=device, dtype=check_real_dtype("dtype", dtype))
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, **kw))
        self.bias = nn.Parameter(torch.empty(self.out_channels, **kw)) if check_bool("bias", bias) else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, *, activation: Activation | None = None
    ) -> torch.Tensor:
        """``W act(x) + b``, plus ``residual`` ``(B, Cout, *grid)`` when given, fused into the matmul."""
        check_channels(type(self).__name__, x, self.in_channels, self.weight)
        return channel_linear(x, self.weight, self.bias, residual=residual, activation=activation)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"


class ChannelMLP(nn.Module):
    """Pointwise MLP over the channels: ``Linear -> act -> ... -> Linear`` at every grid point.

    Parameters
    ----------
    in_channels, out_channels : int
        ``Cin`` and ``Cout``.
    hidden_channels : int
        Width of the hidden layers.
    n_layers : int
        Number of linear layers (1 gives a single :class:`ChannelLinear`).
    activation : {"gelu", "relu", "silu", "tanh", "identity"}
        Between layers (not after the last).
    device, dtype : optional
        Where and in which real dtype the parameters are created.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *grid) real

    Examples
    --------
    >>> ChannelMLP(3, 1, 16)(torch.randn(2, 3, 32)).shape
    torch.Size([2, 1, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        *,
        n_layers: int = 2,
        activation: Activation = "gelu",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        n_layers = check_int("n_layers", n_layers)
        hidden_channels = check_int("hidden_channels", hidden_channels)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.act = get_activation(activation)
        widths = [check_int("in_channels", in_channels)] + [hidden_channels] * (n_layers - 1)
        widths.append(check_int("out_channels", out_channels))
        self.layers = nn.ModuleList(
            ChannelLinear(a, b, device=device, dtype=dtype) for a, b in zip(widths[:-1], widths[1:])
        )

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, *, pre_activation: bool = False
    ) -> torch.Tensor:
        """The MLP (of ``act(x)`` if ``pre_activation``), plus ``residual`` fused into the last layer.

        Activations are applied inside the next layer's matmul call and recomputed in
        backward, so no activation output is stored.
        """
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            act = self.activation if (i > 0 or pre_activation) else None
            x = layer(x, residual if i == n - 1 else None, activation=act)
        return x

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


def pointwise_mlp(
    in_channels: int, out_channels: int, hidden_channels: int, *, activation: Activation = "gelu", device=None, dtype=None
) -> ChannelMLP | ChannelLinear:
    """The lifting / projection of an operator: a two-layer :class:`ChannelMLP` of width
    ``hidden_channels``, or one :class:`ChannelLinear` when ``hidden_channels`` is 0.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *grid) real

    Examples
    --------
    >>> type(pointwise_mlp(3, 8, 0)).__name__, type(pointwise_mlp(3, 8, 16)).__name__
    ('ChannelLinear', 'ChannelMLP')
    """
    if check_int("hidden_channels", hidden_channels, min=0) > 0:
        return ChannelMLP(in_channels, out_channels, hidden_channels, activation=activation, device=device, dtype=dtype)
    check_choice("activation", activation, ACTIVATIONS)
    return ChannelLinear(in_channels, out_channels, device=device, dtype=dtype)
