"""The one activation registry of :mod:`spectral` and :mod:`operators`.

Legend: ``...`` any shape; every function here is elementwise.

Layers that take an ``activation="gelu"`` option (FAN, FNO, SFNO, the operator blocks)
look the name up here, so the allowed names, the error for an unknown one and the
derivative used by fused autograd Functions are written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from spectral.checks import check_choice

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "activation_grad"]

Activation = Literal["gelu", "relu", "silu", "tanh", "identity"]
ACTIVATIONS: tuple[str, ...] = ("gelu", "relu", "silu", "tanh", "identity")


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


# Under torch.compile on CPU the exact GELU and its gradient run as ATen's kernels behind opaque custom
# operators: inductor's generated erf code is slower (gradient 3.2 against 1.2 ns per element on one
# core, forward 1.3 against 0.9), and the GELU kernels it no longer generates were a third of an FNO
# step's C++ compile time. Differentiable once, like every compiled graph.
@torch.library.custom_op("spectral_operators::gelu", mutates_args=())
def _gelu_op(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x)


@torch.library.custom_op("spectral_operators::gelu_backward", mutates_args=())
def _gelu_backward_op(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.gelu_backward(grad, x)


@_gelu_op.register_fake
def _(x):
    return torch.empty_like(x)


@_gelu_backward_op.register_fake
def _(grad, x):
    return torch.empty_like(x)


def _save_input(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0])


def _gelu_op_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    return _gelu_backward_op(grad, x)


def _refuse_double_backward(ctx, *grads):
    raise RuntimeError("GELU under torch.compile is differentiable once (compiled graphs have no double backward); "
                       "run without torch.compile for second derivatives")


_gelu_op.register_autograd(_gelu_op_backward, setup_context=_save_input)
_gelu_backward_op.register_autograd(_refuse_double_backward, setup_context=lambda ctx, inputs, output: None)


def _gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact (erf) GELU; under ``torch.compile`` on CPU the opaque ATen kernels above (not under ``torch.export``)."""
    if torch.compiler.is_compiling() and not torch.compiler.is_exporting() and x.device.type == "cpu":
        return _gelu_op(x)
    return F.gelu(x)


_ACT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": _gelu,
    "relu": F.relu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "identity": _identity,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise function called ``name``.

    Parameters
    ----------
    name : {"gelu", "relu", "silu", "tanh", "identity"}
        One of :data:`ACTIVATIONS`; ``"gelu"`` is the exact (erf) GELU.

    Returns
    -------
    Callable
        ``act(x)``, shape and dtype preserved.

    Raises
    ------
    ValueError
        For a name not in :data:`ACTIVATIONS` (the message lists them).

    Shape
    -----
    x: (...) real -> (...) real

    Examples
    --------
    >>> get_activation("relu")(torch.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    return _ACT_FNS[check_choice("activation", name, ACTIVATIONS)]


def activation_grad(
    name: str, grad: torch.Tensor, x: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``grad * act'(x)``: the backward of :func:`get_activation` ``(name)``.

    For fused autograd Functions that recompute the activation in their backward.
    The result is itself differentiable in ``grad`` and ``x`` whenever autograd is
    recording (double backward, ``create_graph=True``): GELU uses
    ``aten.gelu_backward``, which has a derivative; SiLU's ``aten.silu_backward`` has
    none, so while recording it is written out as ``grad * s (1 + x (1 - s))``,
    ``s = sigmoid(x)``, and the fused kernel runs otherwise.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    grad : Tensor
        Gradient with respect to ``act(x)``.
    x : Tensor
        The activation's input.
    out : Tensor, optional
        ``act(x)`` if already computed (saves a ``tanh``); for double backward it must be
        computed from ``x`` under autograd.

    Raises
    ------
    ValueError
        For a name not in :data:`ACTIVATIONS`.

    Shape
    -----
    grad: (...), x: (...) real -> (...) real
    """
    check_choice("activation", name, ACTIVATIONS)
    if name == "gelu":
        return torch.ops.aten.gelu_backward(grad, x)
    if name == "silu":
        if torch.is_grad_enabled() and (grad.requires_grad or x.requires_grad):
            s = torch.sigmoid(x)
            return grad * s * (1 + x * (1 - s))
        return torch.ops.aten.silu_backward(grad, x)
    if name == "relu":
        return grad * (x > 0)
    if name == "tanh":
        a = torch.tanh(x) if out is None else out
        return grad * (1 - a * a)
    return grad
