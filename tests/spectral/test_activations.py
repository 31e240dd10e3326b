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
