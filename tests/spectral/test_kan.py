"""FourierKANLayer against the materialised Fourier sum, gradients, errors, init, state_dict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral.kan import FourierKANLayer, fourier_kan, fourier_kan_features


def naive(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Direct triple sum with the (M, O, I, K) tensor formed explicitly (independent reference)."""
    k = torch.arange(1, weight.shape[-1] + 1, dtype=x.dtype, device=x.device)
    xs = x.reshape(-1, x.shape[-1])[:, None, :, None]  # (M, 1, I, 1)
    terms = weight[None, :, :, 0] * torch.cos(k * xs) + weight[None, :, :, 1] * torch.sin(k * xs)  # (M, O, I, K)
    y = terms.sum((-2, -1))
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], weight.shape[0])


# (I, O, K): O < 2K takes the rotated-weight backward, O >= 2K the feature-gradient one
SIZES = [(1, 1, 1), (2, 16, 20), (3, 12, 2), (5, 4, 7)]


@pytest.mark.parametrize("lead", [(), (6,), (2, 3)], ids=lambda s: f"lead={s}")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "I{}-O{}-K{}".format(*s))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_matches_materialised_sum(size, lead, bias, device, generator):
    n_in, n_out, n_freq = size
    layer = FourierKANLayer(n_in, n_out, n_freq, bias=bias, device=device, dtype=torch.float64)
    with torch.no_grad():
        if bias:
            layer.bias.normal_()
    x = (torch.rand(*lead, n_in, generator=generator, dtype=torch.float64) * 6 - 3).to(device)
    y = layer(x)
    assert y.shape == (*lead, n_out) and y.dtype == torch.float64 and y.device.type == device.type
    torch.testing.assert_close(y, naive(x, layer.weight, layer.bias), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "I{}-O{}-K{}".format(*s))
def test_gradients_match_materialised_sum(size, generator):
    n_in, n_out, n_freq = size
    layer = FourierKANLayer(n_in, n_out, n_freq, dtype=torch.float64)
    x = (torch.rand(9, n_in, generator=generator, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    g = torch.randn(9, n_out, generator=generator, dtype=torch.float64)
    params = (x, layer.weight, layer.bias)
    ours = torch.autograd.grad((layer(x) * g).sum(), params)
    ref = torch.autograd.grad((naive(x, layer.weight, layer.bias) * g).sum(), params)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("size", [(2, 3, 4), (3, 9, 2)], ids=lambda s: "I{}-O{}-K{}".format(*s))
def test_gradcheck_and_gradgradcheck(size, generator):
    n_in, n_out, n_freq = size
    x = (torch.rand(4, n_in, generator=generator, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    w = torch.randn(n_out, n_in, 2, n_freq, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n_out, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fourier_kan, (x, w, b))
    assert torch.autograd.gradgradcheck(fourier_kan, (x, w, b))
    assert torch.autograd.gradcheck(lambda x_: fourier_kan(x_, w.detach()), (x,))  # weight frozen


def test_features_are_cos_then_sin(generator):
    x = torch.rand(3, 2, generator=generator, dtype=torch.float64)
    feats = fourier_kan_features(x, 4)
    k = torch.arange(1, 5, dtype=torch.float64)
    assert feats.shape == (3, 2, 2, 4)
    torch.testing.assert_close(feats[..., 0, :], torch.cos(x[..., None] * k), rtol=0, atol=1e-15)
    torch.testing.assert_close(feats[..., 1, :], torch.sin(x[..., None] * k), rtol=0, atol=1e-15)


def test_float32_close_to_float64(generator):
    layer = FourierKANLayer(2, 32, 64)
    x = torch.rand(50, 2, generator=generator) * 2 - 1
    ref = naive(x.double(), layer.weight.double(), layer.bias.double())
    torch.testing.assert_close(layer(x).double(), ref, rtol=1e-4, atol=1e-4)


def test_every_parameter_gets_a_finite_gradient(generator):
    layer = FourierKANLayer(3, 5, 6)
    layer(torch.randn(8, 3, generator=generator)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_autocast_bfloat16_runs_and_keeps_float32_gradients(generator):
    layer = FourierKANLayer(2, 8, 10)
    x = torch.rand(16, 2, generator=generator).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.float().square().sum().backward()
    assert layer.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
    ref = torch.autograd.grad(naive(x, layer.weight, layer.bias).float().square().sum(), x)[0]
    torch.testing.assert_close(x.grad, ref, rtol=0.1, atol=0.1 * ref.abs().max().item())


def test_wrong_in_features_shows_the_shape():
    layer = FourierKANLayer(2, 4, 3)
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., 2\), got \(4, 3\)"):
        layer(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"got \(\)"):
        layer(torch.tensor(0.5))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64], ids=str)
def test_non_floating_input_is_a_type_error(dtype):
    layer = FourierKANLayer(2, 4, 3)
    with pytest.raises(TypeError, match=str(dtype).replace("torch.", "")):
        layer(torch.zeros(4, 2, dtype=dtype))


def test_dtype_mismatch_is_a_type_error():
    layer = FourierKANLayer(2, 4, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"float32.*float64"):
        layer(torch.zeros(4, 2))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_frequencies": 0}, ValueError, r"num_frequencies must be an int >= 1, got 0"),
        ({"num_frequencies": -3}, ValueError, r"num_frequencies must be an int >= 1, got -3"),
        ({"num_frequencies": 2.5}, TypeError, r"num_frequencies must be an int, got float 2.5"),
        ({"num_frequencies": float("nan")}, TypeError, r"num_frequencies must be an int, got float nan"),
        ({"num_frequencies": "4"}, TypeError, r"num_frequencies must be an int, got str '4'"),
        ({"in_features": 0}, ValueError, r"in_features must be an int >= 1, got 0"),
        ({"in_features": None}, TypeError, r"in_features must be an int, got NoneType None"),
        ({"out_features": True}, TypeError, r"out_features must be an int, got bool True"),
        ({"bias": "yes"}, TypeError, r"bias must be a bool, got str 'yes'"),
        ({"smooth_init": 1}, TypeError, r"smooth_init must be a bool, got int 1"),
        ({"dtype": torch.complex64}, TypeError, r"dtype must be a real floating torch.dtype.*complex64"),
    ],
    ids=lambda v: str(v),
)
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"in_features": 2, "out_features": 3, "num_frequencies": 4} | kwargs
    with pytest.raises(error, match=match):
        FourierKANLayer(args.pop("in_features"), args.pop("out_features"), args.pop("num_frequencies"), **args)


def test_bad_weight_shape_in_functional_form():
    with pytest.raises(ValueError, match=r"\(O, I, 2, K\), got \(3, 2, 4\)"):
        fourier_kan(torch.zeros(5, 2), torch.zeros(3, 2, 4))


def test_init_statistics():
    torch.manual_seed(0)
    n_in, n_freq = 4, 50
    plain = FourierKANLayer(n_in, 200, n_freq)
    assert plain.weight.std().item() == pytest.approx(1 / math.sqrt(n_in * n_freq), rel=0.03)
    assert torch.count_nonzero(plain.bias) == 0
    smooth = FourierKANLayer(n_in, 200, n_freq, smooth_init=True)
    k = torch.arange(1, n_freq + 1, dtype=torch.float32)
    scaled = smooth.weight * k.square() * math.sqrt(n_in)  # should be standard normal
    assert scaled.std().item() == pytest.approx(1.0, rel=0.03)
    assert scaled.mean().abs().item() < 0.02
    # unit-variance output for uniform inputs on [-pi, pi] (E cos^2 = E sin^2 = 1/2, 2K terms per input)
    y = plain(torch.rand(4000, n_in) * 2 * math.pi - math.pi)
    assert y.var().item() == pytest.approx(1.0, rel=0.1)


def test_state_dict_round_trip(generator):
    a, b = FourierKANLayer(3, 5, 7), FourierKANLayer(3, 5, 7)
    x = torch.randn(4, 3, generator=generator)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    assert set(a.state_dict()) == {"weight", "bias"}
    assert a.state_dict()["weight"].shape == (5, 3, 2, 7)


def test_reset_parameters_and_repr():
    layer = FourierKANLayer(2, 3, 4, bias=False, smooth_init=True)
    before = layer.weight.detach().clone()
    layer.reset_parameters()
    assert not torch.equal(before, layer.weight) and layer.bias is None
    assert repr(layer) == "FourierKANLayer(2, 3, num_frequencies=4, bias=False, smooth_init=True)"


@pytest.mark.slow
def test_torch_compile_fullgraph(generator):
    layer = FourierKANLayer(2, 8, 6)
    x = torch.rand(10, 2, generator=generator).requires_grad_(True)
    compiled = torch.compile(layer, fullgraph=True)
    y = compiled(x)
    torch.testing.assert_close(y, layer(x))
    (gx,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(gx, torch.autograd.grad(layer(x).sum(), x)[0])


@pytest.mark.parametrize("size", [(2, 3, 4), (3, 9, 2)], ids=lambda s: "I{}-O{}-K{}".format(*s))
@pytest.mark.parametrize("wrt", ["x", "weight", "layer"])
def test_gradgradcheck_on_each_backward_path(size, wrt, generator):
    """Both backward paths (O < 2K rotated, O >= 2K feature-gradient) for every input subset and the Module."""
    n_in, n_out, n_freq = size
    x = torch.rand(4, n_in, generator=generator, dtype=torch.float64) * 2 - 1
    w = torch.randn(n_out, n_in, 2, n_freq, generator=generator, dtype=torch.float64)
    if wrt == "x":
        assert torch.autograd.gradgradcheck(lambda x_: fourier_kan(x_, w), (x.requires_grad_(),))
    elif wrt == "weight":
        assert torch.autograd.gradgradcheck(lambda w_: fourier_kan(x, w_), (w.requires_grad_(),))
    else:
        layer = FourierKANLayer(n_in, n_out, n_freq, dtype=torch.float64)
        names, params = zip(*layer.named_parameters())

        def f(x_, *p):
            return torch.func.functional_call(layer, dict(zip(names, p)), (x_.reshape(2, 2, n_in),))

        assert torch.autograd.gradgradcheck(f, [t.detach().requires_grad_() for t in (x, *params)])


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_empty_batch_and_meta_device(device):
    layer = FourierKANLayer(3, 5, 4, device=device)
    for lead in ((0,), (2, 0), (4,)):
        y = layer(torch.randn(*lead, 3, device=device))
        assert y.shape == (*lead, 5) and y.device.type == device
    if device == "cpu":
        x = torch.randn(0, 3, requires_grad=True)
        layer(x).sum().backward()
        assert x.grad.shape == (0, 3) and layer.weight.grad.shape == layer.weight.shape


def test_bad_tensors_in_the_functional_form():
    w = torch.zeros(3, 2, 2, 4)
    with pytest.raises(TypeError, match=r"fourier_kan: x must be a torch.Tensor, got numpy.ndarray of shape \(5, 2\)"):
        fourier_kan(np.zeros((5, 2), np.float32), w)
    with pytest.raises(TypeError, match=r"FourierKANLayer: x must be a torch.Tensor, got list"):
        FourierKANLayer(2, 3, 4)([[0.0, 1.0]])
    with pytest.raises(TypeError, match=r"fourier_kan: weight must be a torch.Tensor, got numpy.ndarray"):
        fourier_kan(torch.zeros(5, 2), np.zeros((3, 2, 2, 4)))
    with pytest.raises(ValueError, match=r"fourier_kan: expected bias of shape \(3,\), got \(4,\)"):
        fourier_kan(torch.zeros(5, 2), w, torch.zeros(4))
