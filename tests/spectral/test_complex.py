"""Complex weights stored as real tensors, mode-wise contraction and ModReLU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spectral.complex import (
    ModReLU,
    as_complex,
    contract_modes,
    contract_modes_diagonal,
    contract_modes_packed,
    init_complex_,
    modrelu,
    pack_weight,
)


def _crandn(*shape, dtype=torch.complex128):
    return torch.randn(*shape, dtype=dtype)


@pytest.mark.parametrize("kept", [(5,), (7, 4), (3, 5, 2)], ids=lambda k: f"K={k}")
def test_contract_modes_matches_loop_reference(kept):
    x = _crandn(3, 4, *kept)
    w = _crandn(4, 5, *kept)
    xn, wn = x.numpy(), w.numpy()
    ref = np.zeros((3, 5, *kept), dtype=np.complex128)
    for b in range(3):
        for o in range(5):
            for i in range(4):
                ref[b, o] += xn[b, i] * wn[i, o]
    np.testing.assert_allclose(contract_modes(x, w).numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(contract_modes_packed(x, pack_weight(w)).numpy(), ref, atol=1e-12)


def test_contract_diagonal_matches_broadcast_reference():
    x, w = _crandn(2, 3, 7, 4), _crandn(3, 7, 4)
    ref = x.numpy() * w.numpy()[None]
    np.testing.assert_allclose(contract_modes_diagonal(x, w).numpy(), ref, atol=1e-12)


def test_gradcheck_contractions():
    x = _crandn(2, 3, 3, 2).requires_grad_(True)
    w = _crandn(3, 2, 3, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(contract_modes, (x, w))
    wd = _crandn(3, 3, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(contract_modes_diagonal, (x, wd))


def test_contract_errors_show_shapes():
    with pytest.raises(ValueError, match=r"weight \(Cin, Cout, \*K\) = \(4, 5, 7\), got x of shape \(3, 3, 7\)"):
        contract_modes(_crandn(3, 3, 7), _crandn(4, 5, 7))
    with pytest.raises(ValueError, match=r"got x \(3, 4, 7\) and weight \(6, 4, 5\)"):
        contract_modes_packed(_crandn(3, 4, 7), _crandn(6, 4, 5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contract_rejects_real_x_naming_its_dtype(dtype):
    """A real x used to get the weight cast to real (imaginary part dropped) and a real result."""
    x, w = torch.randn(2, 3, 5, dtype=dtype), _crandn(3, 4, 5)
    with pytest.raises(TypeError, match=rf"contract_modes: x must be complex .* got x of dtype {dtype}"):
        contract_modes(x, w)
    with pytest.raises(TypeError, match=rf"contract_modes_packed: x must be complex .* got x of dtype {dtype}"):
        contract_modes_packed(x, pack_weight(w))
    with pytest.raises(TypeError, match=rf"contract_modes_diagonal: x must be complex .* got x of dtype {dtype}"):
        contract_modes_diagonal(x, _crandn(3, 5))


class _Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(3, 4, 2))
        init_complex_(self.weight, std=2.0)


def test_real_storage_survives_double_and_to():
    m = _Holder()
    before = as_complex(m.weight.detach()).clone()
    m.double()
    after = as_complex(m.weight.detach())
    assert after.dtype == torch.complex128
    torch.testing.assert_close(after, before.to(torch.complex128))
    assert after.imag.abs().sum() > 0
    m.to(torch.float32)
    torch.testing.assert_close(as_complex(m.weight.detach()), before)


def test_init_complex_variance():
    w = torch.empty(200, 200, 2)
    init_complex_(w, std=0.5, generator=torch.Generator().manual_seed(0))
    assert abs(as_complex(w).abs().pow(2).mean().item() - 0.25) < 0.01


def test_as_complex_errors():
    with pytest.raises(ValueError, match=r"trailing axis of 2 \(real, imag\), got shape \(3, 4\)"):
        as_complex(torch.zeros(3, 4))


def test_modrelu_formula_and_dead_zone():
    z = torch.tensor([3 + 4j, 0.3 + 0.4j, 0j], dtype=torch.complex128)
    b = torch.tensor(-1.0, dtype=torch.float64)
    out = modrelu(z, b)
    # |3+4i| = 5 -> 4 along the same phase; |0.3+0.4i| = 0.5 -> dead; 0 -> 0
    torch.testing.assert_close(out, torch.tensor([2.4 + 3.2j, 0j, 0j], dtype=torch.complex128))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_modrelu_is_zero_at_zero_for_large_positive_bias(dtype):
    """z = 0 maps to 0 for any bias: relu(b) / (clamped |z|) overflowed to inf for b > ~4 (0 * inf = NaN)."""
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    z = torch.tensor([0j, 1e-3 + 0j, -2j], dtype=dtype, requires_grad=True)
    bias = torch.tensor(4.5, dtype=real)
    out = modrelu(z, bias)
    expected = torch.tensor([0j, 4.501 + 0j, -6.5j], dtype=dtype)  # (|z| + b) z / |z|
    torch.testing.assert_close(out.detach(), expected)
    (grad,) = torch.autograd.grad(out.abs().sum(), z)
    assert torch.isfinite(torch.view_as_real(grad)).all()


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_modrelu_module_keeps_the_input_dtype(dtype):
    """ModReLU(3).double() on complex64 input returned complex128 (the float64 bias promoted z)."""
    z = torch.tensor([[3 + 4j, 0.3 + 0.4j, -2j]], dtype=dtype)
    for act in (ModReLU(3, init_bias=-1.0).double(), ModReLU(3, init_bias=-1.0)):
        out = act(z)
        assert out.dtype == dtype
        # (|z| + b) z / |z| with b = -1: 5 -> 4 along the phase, 0.5 -> dead zone, 2 -> 1
        torch.testing.assert_close(out, torch.tensor([[2.4 + 3.2j, 0j, -1j]], dtype=dtype))


def test_modrelu_module_gradients_and_errors():
    act = ModReLU(4, init_bias=0.1, dtype=torch.float64)
    z = _crandn(3, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, b: modrelu(t, b), (z, act.bias))
    act(z).abs().sum().backward()
    assert act.bias.grad is not None and torch.isfinite(act.bias.grad).all()
    with pytest.raises(ValueError, match=r"expected z of shape \(\.\.\., 4\), got \(3, 5\)"):
        act(_crandn(3, 5))
    with pytest.raises(TypeError, match="modrelu expects a complex tensor, got torch.float32"):
        act(torch.randn(3, 4))
    assert "4, init_bias=0.1" in repr(act)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        (dict(num_features=8, init_bias="1"), TypeError, r"init_bias must be a real number, got str '1'"),
        (dict(num_features=8, init_bias=float("inf")), ValueError, r"init_bias must be finite, got inf"),
        (dict(num_features=8, init_bias=float("nan")), ValueError, r"init_bias must be finite, got nan"),
        (dict(num_features=None), TypeError, r"num_features must be an int, got NoneType None"),
        (dict(num_features=True), TypeError, r"num_features must be an int, got bool True"),
        (dict(num_features="8"), TypeError, r"num_features must be an int, got str '8'"),
        (dict(num_features=0), ValueError, r"num_features must be an int >= 1, got 0"),
        (dict(num_features=4, dtype=torch.complex64), TypeError, r"dtype must be a real floating torch.dtype.*complex64"),
    ],
    ids=["str-bias", "inf-bias", "nan-bias", "none-features", "bool-features", "str-features", "zero", "complex-dtype"],
)
def test_modrelu_constructor_errors_name_the_argument(kwargs, error, pattern):
    """init_bias='1' was a fill_ dump, inf gave NaN outputs, None/str reached a comparison."""
    n = kwargs.pop("num_features")
    with pytest.raises(error, match=pattern):
        ModReLU(n, **kwargs)


def test_modrelu_gradgradcheck_and_empty_and_meta():
    act = ModReLU(3, init_bias=-0.2, dtype=torch.float64)
    z = _crandn(2, 3).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t, b: modrelu(t, b), (z, act.bias))
    out = act(_crandn(0, 3))
    assert out.shape == (0, 3) and out.dtype == torch.complex128
    meta = ModReLU(3, device="meta")
    y = meta(torch.empty(2, 3, dtype=torch.complex64, device="meta"))
    assert y.device.type == "meta" and y.shape == (2, 3) and y.dtype == torch.complex64


def test_contraction_input_errors_name_the_argument():
    x, w = _crandn(2, 3, 5), _crandn(3, 4, 5)
    with pytest.raises(TypeError, match=r"contract_modes: x must be a torch.Tensor, got numpy.ndarray of shape \(2, 3, 5\)"):
        contract_modes(x.numpy(), w)
    with pytest.raises(TypeError, match=r"contract_modes: weight must be a torch.Tensor, got list"):
        contract_modes(x, [[1.0]])
    with pytest.raises(TypeError, match=r"contract_modes_packed: weight must have a floating or complex dtype, got torch.int64"):
        contract_modes_packed(x, torch.zeros(5, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"contract_modes: expected x \(B, Cin, \*K\) matching weight \(Cin, Cout, \*K\) = \(3,\)"):
        contract_modes(x, _crandn(3))
    with pytest.raises(TypeError, match=r"contract_modes_diagonal: weight must be a torch.Tensor, got float"):
        contract_modes_diagonal(x, 2.0)
    with pytest.raises(TypeError, match=r"as_complex: weight must be a torch.Tensor, got numpy.ndarray"):
        as_complex(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"trailing axis of 2 \(real, imag\), got shape \(\)"):
        as_complex(torch.tensor(1.0))
