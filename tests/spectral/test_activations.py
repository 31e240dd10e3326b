"""The activation registry against torch.nn.functional and finite differences."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

from spectral.activations import ACTIVATIONS, activation_grad, get_activation

_REFERENCE = {"gelu": F.gelu, "relu": torch.relu, "silu": F.silu, "tanh": torch.tanh, "identity": lambda t: t}


def _away_from_kink(n: int = 7) -> torch.Tensor:
    # relu's derivative jumps at 0: keep finite differences away from it.
    x = torch.linspace(-2.0, 2.0, n, dtype=torch.float64)
    return (x + 0.1 * torch.sign(x) + 0.05).requires_grad_()


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_get_activation_matches_torch(name):
    x = torch.randn(4, 5)
    torch.testing.assert_close(get_activation(name)(x), _REFERENCE[name](x))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_grad_is_the_derivative(name):
    x = _away_from_kink()
    grad = torch.randn(x.shape, dtype=torch.float64)
    (expected,) = torch.autograd.grad(get_activation(name)(x), x, grad)
    with torch.no_grad():
        torch.testing.assert_close(activation_grad(name, grad, x.detach()), expected)
        torch.testing.assert_close(activation_grad(name, grad, x.detach(), get_activation(name)(x)), expected)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_grad_is_twice_differentiable(name):
    # aten.silu_backward has no derivative: activation_grad must take a differentiable path.
    x = _away_from_kink()
    grad = torch.randn(x.shape, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda g, t: activation_grad(name, g, t), (grad, x))
    assert gradgradcheck(lambda g, t: activation_grad(name, g, t), (grad, x))


@pytest.mark.parametrize("bad", ["GELU", "softplus", None, 3])
def test_unknown_activation_lists_the_names(bad):
    with pytest.raises(ValueError, match=r"activation must be one of \('gelu', 'relu'.*got"):
        get_activation(bad)
    with pytest.raises(ValueError, match=r"activation must be one of"):
        activation_grad(bad, torch.ones(2), torch.ones(2))


def test_old_import_paths_still_work():
    from spectral import fan

    assert fan.ACTIVATIONS is ACTIVATIONS


def _compiled_ops(fn, *args):
    """Run ``fn`` compiled (fullgraph, aot_eager) and return its result and the graph's call targets."""
    ops: list[str] = []

    def backend(gm, example_inputs):
        ops.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)

    torch._dynamo.reset()
    return torch.compile(fn, backend=backend, fullgraph=True)(*args), ops


def test_compiled_gelu_on_cpu_is_the_aten_kernel_behind_one_op():
    """Compiled on CPU, GELU is the opaque spectral_operators::gelu: F.gelu's values and gradient."""
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    y, ops = _compiled_ops(lambda t: get_activation("gelu")(t) * 2.0, x)
    assert ops.count("spectral_operators.gelu.default") == 1 and not any("aten.gelu" in op for op in ops), ops
    torch.testing.assert_close(y, 2.0 * F.gelu(x), rtol=0, atol=0)
    g = torch.randn(y.shape, dtype=torch.float64)
    (got,) = torch.autograd.grad(y, x, g)
    (want,) = torch.autograd.grad(2.0 * F.gelu(x), x, g)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_gelu_op_gradcheck_opcheck_and_no_double_backward():
    from spectral.activations import _gelu_backward_op, _gelu_op

    x = _away_from_kink()
    assert gradcheck(_gelu_op, (x,))
    torch.library.opcheck(_gelu_op, (x,))
    torch.library.opcheck(_gelu_backward_op, (torch.randn(7, dtype=torch.float64), x.detach()))
    (gx,) = torch.autograd.grad(_gelu_op(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"differentiable once .* without torch.compile for second derivatives"):
        gx.sum().backward()


def test_eager_gelu_keeps_exact_second_derivatives():
    x = _away_from_kink()
    assert gradgradcheck(get_activation("gelu"), (x,))
