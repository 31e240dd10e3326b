"""FKAN, SIREN, FourierFeatureINR: shapes, reference formulas, init statistics, errors, state_dict."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spectral.inr import FKAN, FKAN_ACTIVATIONS, SIREN, FourierFeatureINR, projection_directions, widening_widths

SMALL = {
    "FKAN": lambda d, o, **kw: FKAN(d, o, num_frequencies=5, hidden_features=12, n_layers=3, **kw),
    "SIREN": lambda d, o, **kw: SIREN(d, o, hidden_features=12, n_layers=3, **kw),
    "FourierFeatureINR": lambda d, o, **kw: FourierFeatureINR(d, o, num_features=6, hidden_features=12, **kw),
}
NAMES = list(SMALL)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("d, lead", [(1, (7,)), (2, (4, 5)), (3, (2, 3, 4)), (2, ())], ids=lambda v: str(v))
@pytest.mark.parametrize("out_features", [1, 3])
def test_output_shapes(name, d, lead, out_features, device):
    model = SMALL[name](d, out_features, device=device)
    x = torch.rand(*lead, d, device=device) * 2 - 1
    y = model(x)
    assert y.shape == (*lead, out_features) and y.dtype == x.dtype and y.device.type == device.type
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_float64_and_every_parameter_gets_a_gradient(name):
    model = SMALL[name](2, 2, dtype=torch.float64)
    x = torch.rand(16, 2, dtype=torch.float64) * 2 - 1
    model(x).square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.dtype == torch.float64
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def _layer_norm_np(h: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = h.mean(-1, keepdims=True)
    var = h.var(-1, keepdims=True)
    return (h - mu) / np.sqrt(var + eps) * weight + bias


def test_fkan_single_layer_matches_numpy_reference():
    """n_layers=1: y = W_out LayerNorm(sum_{i,k} A cos(k x_i) + B sin(k x_i) + b) + b_out."""
    model = FKAN(2, 3, num_frequencies=4, hidden_features=6, n_layers=1, dtype=torch.float64)
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.normal_()
        model.kan.bias.normal_()
    x = np.random.default_rng(0).uniform(-1, 1, size=(10, 2))
    w = model.kan.weight.detach().numpy()  # (H, d, 2, K)
    k = np.arange(1, 5)
    kx = x[:, None, :, None] * k  # (M, 1, d, K)
    h = (w[None, :, :, 0] * np.cos(kx) + w[None, :, :, 1] * np.sin(kx)).sum((-2, -1)) + model.kan.bias.detach().numpy()
    h = _layer_norm_np(h, model.norm.weight.detach().numpy(), model.norm.bias.detach().numpy())
    ref = h @ model.out.weight.detach().numpy().T + model.out.bias.detach().numpy()
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("activation", FKAN_ACTIVATIONS)
def test_fkan_activation_formulas(activation):
    """n_layers=2: one MLP layer between the normalised KAN features and the output."""
    model = FKAN(2, 1, num_frequencies=3, hidden_features=5, n_layers=2, activation=activation, omega_0=7.0,
                 dtype=torch.float64)
    x = torch.rand(8, 2, dtype=torch.float64) * 2 - 1
    z = model.layers[0](model.norm(model.kan(x))).detach().numpy()
    expected = {
        "gated_tanh": (z + np.tanh(7.0 * z)) / (1 + np.exp(-z)),
        "sine": np.sin(7.0 * z),
        "relu": np.maximum(z, 0),
        "gelu": 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2))),
        "silu": z / (1 + np.exp(-z)),
    }[activation]
    ref = expected @ model.out.weight.detach().numpy().T + model.out.bias.detach().numpy()
    np.testing.assert_allclose(model(x).detach().numpy(), ref, rtol=1e-10, atol=1e-12)


def test_fkan_widening_widths_shapes_and_numpy_reference():
    """hidden_features=(H, 2H, 2H, 2H, 4H): layer shapes, fan-in SIREN init bounds, forward = naive numpy."""
    assert widening_widths(3) == (3, 6, 6, 6, 12)
    torch.manual_seed(0)
    model = FKAN(2, 2, num_frequencies=4, hidden_features=widening_widths(8), dtype=torch.float64)
    assert model.n_layers == 5 and model.widths == (8, 16, 16, 16, 32)
    assert model.kan.weight.shape[0] == 8 and tuple(model.norm.normalized_shape) == (8,)
    assert [tuple(lin.weight.shape) for lin in model.layers] == [(16, 8), (16, 16), (16, 16), (32, 16)]
    assert tuple(model.out.weight.shape) == (2, 32)
    for linear in [*model.layers, model.out]:
        assert linear.weight.abs().max().item() <= math.sqrt(6 / linear.in_features) / 30.0
    assert FKAN(2, 1, hidden_features=[5, 7], n_layers=2).widths == (5, 7)  # n_layers may repeat the length
    assert FKAN(2, 1, hidden_features=6).widths == (6, 6, 6)  # int: the old default of 3 layers
    x = np.random.default_rng(3).uniform(-1, 1, size=(7, 2))
    w, k = model.kan.weight.detach().numpy(), np.arange(1, 5)
    kx = x[:, None, :, None] * k
    h = (w[None, :, :, 0] * np.cos(kx) + w[None, :, :, 1] * np.sin(kx)).sum((-2, -1)) + model.kan.bias.detach().numpy()
    h = _layer_norm_np(h, model.norm.weight.detach().numpy(), model.norm.bias.detach().numpy())
    for lin in model.layers:
        z = h @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
        h = (z + np.tanh(30 * z)) / (1 + np.exp(-z))
    ref = h @ model.out.weight.detach().numpy().T + model.out.bias.detach().numpy()
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), ref, rtol=1e-10, atol=1e-12)
    y = model(torch.rand(3, 4, 2, dtype=torch.float64) * 2 - 1)
    assert y.shape == (3, 4, 2)


def test_fkan_coordinate_derivatives_match_finite_differences():
    """Autograd through the recomputing Fourier-KAN backward, first and second order."""
    model = FKAN(2, 1, num_frequencies=6, hidden_features=8, n_layers=2, dtype=torch.float64)
    x = (torch.rand(5, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (hess_row,) = torch.autograd.grad(grad[:, 0].sum(), x)  # d/dx (du/dx0)
    eps = 1e-5
    e0 = torch.tensor([eps, 0.0], dtype=torch.float64)
    with torch.no_grad():
        fd = (model(x + e0) - model(x - e0))[:, 0] / (2 * eps)
        fd2 = (model(x + e0) - 2 * model(x) + model(x - e0))[:, 0] / eps**2
    torch.testing.assert_close(grad[:, 0].detach(), fd, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(hess_row[:, 0], fd2, rtol=1e-3, atol=1e-3)


def test_fourier_features_match_numpy_reference():
    model = FourierFeatureINR(3, 2, num_features=5, sigma=2.0, hidden_features=7, n_layers=1, dtype=torch.float64)
    x = np.random.default_rng(1).uniform(-1, 1, size=(6, 3))
    b = model.frequencies.numpy()  # (R, d)
    emb = np.concatenate([np.sin(2 * np.pi * x @ b.T), np.cos(2 * np.pi * x @ b.T)], axis=-1)
    lin, out = model.layers[0], model.out
    h = np.maximum(emb @ lin.weight.detach().numpy().T + lin.bias.detach().numpy(), 0)
    ref = h @ out.weight.detach().numpy().T + out.bias.detach().numpy()
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), ref, rtol=1e-10, atol=1e-12)


def test_fourier_feature_matrix_is_a_fixed_buffer_with_std_sigma():
    torch.manual_seed(0)
    model = FourierFeatureINR(2, 1, num_features=4096, sigma=3.0, hidden_features=4, n_layers=1)
    assert model.frequencies.shape == (4096, 2)
    assert model.frequencies.std().item() == pytest.approx(3.0, rel=0.03)
    assert "frequencies" in model.state_dict()
    assert all(p is not model.frequencies for p in model.parameters())


def test_siren_init_statistics():
    torch.manual_seed(0)
    d, hidden, omega = 3, 512, 30.0
    model = SIREN(d, 1, hidden_features=hidden, n_layers=3, omega_0=omega)
    first = model.layers[0].weight
    assert first.abs().max().item() <= 1 / d
    assert first.std().item() == pytest.approx((1 / d) / math.sqrt(3), rel=0.05)
    bound = math.sqrt(6 / hidden) / omega
    for linear in [*model.layers[1:], model.out]:
        assert linear.weight.abs().max().item() <= bound
        assert linear.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    # The point of the init: omega_0 W h has unit variance for h = sin(.) with E h^2 = 1/2.
    h = torch.sin(torch.rand(4000, hidden) * 2 * math.pi)
    z = omega * h @ model.layers[1].weight.t()
    assert z.std().item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    torch.manual_seed(0)
    a = SMALL[name](2, 3)
    torch.manual_seed(1)
    b = SMALL[name](2, 3)
    x = torch.rand(5, 2) * 2 - 1
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_coordinate_dimension_shows_the_shape(name):
    model = SMALL[name](2, 1)
    with pytest.raises(ValueError, match=rf"{name}: expected coordinates of shape \(\.\.\., 2\), got \(4, 4, 3\)"):
        model(torch.zeros(4, 4, 3))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.int32, torch.complex64], ids=str)
def test_non_floating_coordinates_are_a_type_error(name, dtype):
    with pytest.raises(TypeError, match=str(dtype).replace("torch.", "")):
        SMALL[name](2, 1)(torch.zeros(3, 2, dtype=dtype))


_BAD_CONSTRUCTOR_ARGUMENTS = {
    "activation": (lambda: FKAN(2, 1, activation="tanh"), ValueError,
                   r"activation must be one of \('gated_tanh', 'sine', .*got str 'tanh'"),
    "K": (lambda: FKAN(2, 1, num_frequencies=0), ValueError, r"num_frequencies must be an int >= 1, got 0"),
    "K-str": (lambda: FKAN(2, 1, num_frequencies="8"), TypeError, r"num_frequencies must be an int, got str '8'"),
    "n_layers": (lambda: FKAN(2, 1, n_layers=0), ValueError, r"n_layers must be an int >= 1, got 0"),
    "n_layers-bool": (lambda: SIREN(2, 1, n_layers=True), TypeError, r"n_layers must be an int, got bool True"),
    "widths-empty": (lambda: FKAN(2, 1, hidden_features=()), ValueError,
                     r"hidden_features must be an int or a non-empty sequence"),
    "widths-zero": (lambda: FKAN(2, 1, hidden_features=(8, 0, 4)), ValueError,
                    r"hidden_features\[1\] must be an int >= 1, got 0"),
    "widths-n_layers": (lambda: FKAN(2, 1, hidden_features=[8, 16], n_layers=3), ValueError,
                        r"n_layers must equal len\(hidden_features\) = 2 .*got n_layers=3 and hidden_features=\(8, 16\)"),
    "widths-float": (lambda: FKAN(2, 1, hidden_features=8.0), TypeError, r"hidden_features must be an int, got float 8.0"),
    "widths-none": (lambda: FKAN(2, 1, hidden_features=None), TypeError,
                    r"hidden_features must be an int, got NoneType None"),
    "widening": (lambda: widening_widths(0), ValueError, r"hidden_features must be an int >= 1, got 0"),
    "omega_0": (lambda: SIREN(2, 1, omega_0=-1.0), ValueError, r"omega_0 must be > 0(\.0)?, got -1.0"),
    "omega_0-inf": (lambda: FKAN(2, 1, omega_0=float("inf")), ValueError, r"omega_0 must be finite, got inf"),
    "omega_0-str": (lambda: SIREN(2, 1, omega_0="30"), TypeError, r"omega_0 must be a real number, got str '30'"),
    "in_features": (lambda: SIREN(0, 1), ValueError, r"in_features must be an int >= 1, got 0"),
    "out_features-nan": (lambda: FourierFeatureINR(2, float("nan")), TypeError, r"out_features must be an int, got float nan"),
    "sigma": (lambda: FourierFeatureINR(2, 1, sigma=0.0), ValueError, r"sigma must be > 0(\.0)?, got 0.0"),
    "sigma-nan": (lambda: FourierFeatureINR(2, 1, sigma=float("nan")), ValueError, r"sigma must be finite, got nan"),
    "num_features": (lambda: FourierFeatureINR(2, 1, num_features=2.0), TypeError,
                     r"num_features must be an int, got float 2.0"),
    "directions-str": (lambda: FKAN(2, 1, directions="4"), TypeError, r"directions must be an int or None, got str '4'"),
    "smooth_init": (lambda: FKAN(2, 1, smooth_init="no"), TypeError, r"smooth_init must be a bool, got str 'no'"),
    "dtype-complex": (lambda: SIREN(2, 1, dtype=torch.complex64), TypeError,
                      r"dtype must be a real floating torch.dtype .*complex64"),
    "dtype-str": (lambda: FKAN(2, 1, dtype="float32"), TypeError, r"dtype must be a real floating torch.dtype .*'float32'"),
}


@pytest.mark.parametrize("case", _BAD_CONSTRUCTOR_ARGUMENTS)
def test_bad_constructor_arguments(case):
    build, error, match = _BAD_CONSTRUCTOR_ARGUMENTS[case]
    with pytest.raises(error, match=match):
        build()


def test_projection_directions_are_unit_vectors_at_the_documented_angles():
    u = projection_directions(2, 6, dtype=torch.float64)  # (2, 6)
    theta = np.arange(6) * np.pi / 6
    np.testing.assert_allclose(u.numpy(), np.stack([np.cos(theta), np.sin(theta)]), atol=1e-15)
    assert u[1, 0] == 0 and u[0, 3] == 0  # the axes exactly
    for d, n in [(1, 1), (3, 3), (3, 7), (5, 9)]:
        v = projection_directions(d, n, dtype=torch.float64)
        assert v.shape == (d, n)
        torch.testing.assert_close(v.norm(dim=0), torch.ones(n, dtype=torch.float64))
        torch.testing.assert_close(v[:, :d], torch.eye(d, dtype=torch.float64))  # the axes first
        assert torch.equal(v, projection_directions(d, n, dtype=torch.float64))  # same directions every time


def test_fkan_directions_equal_to_the_axes_is_the_plain_fkan():
    """``directions = d`` projects onto the axes themselves: same output as the paper's FKAN."""
    plain = FKAN(2, 2, num_frequencies=4, hidden_features=8, n_layers=2, dtype=torch.float64)
    projected = FKAN(2, 2, num_frequencies=4, hidden_features=8, n_layers=2, directions=2, dtype=torch.float64)
    projected.load_state_dict(plain.state_dict())  # the buffer is not persistent: same keys
    x = torch.rand(20, 2, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(projected(x), plain(x), rtol=0, atol=1e-14)


@pytest.mark.parametrize("n_dir", [3, 4, 8])
def test_fkan_directions_rotate_with_the_input(n_dir):
    """Rotating x by pi / D shifts the projections by one direction: u_m . (R x) = u_{m-1} . x, and
    u_{-1} = -u_{D-1}, whose series is the same with its sine coefficients negated. So the model at
    R x equals the model with the series weights rolled by one direction at x (an independent
    reconstruction from the formula; it fails if the angles, their order or the sign are wrong)."""
    torch.manual_seed(0)
    model = FKAN(2, 1, num_frequencies=5, hidden_features=7, n_layers=2, directions=n_dir, dtype=torch.float64)
    rolled = FKAN(2, 1, num_frequencies=5, hidden_features=7, n_layers=2, directions=n_dir, dtype=torch.float64)
    rolled.load_state_dict(model.state_dict())
    with torch.no_grad():
        w = model.kan.weight  # (H, D, 2, K)
        new = torch.roll(w, shifts=-1, dims=1).clone()
        new[:, -1, 1] = -w[:, 0, 1]  # the wrapped direction is -u_{D-1}: sin(-t) = -sin(t)
        rolled.kan.weight.copy_(new)
    a = math.pi / n_dir
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    x = torch.rand(30, 2, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(model(x @ rot.T), rolled(x), rtol=1e-10, atol=1e-10)
    assert not torch.allclose(model(x @ rot.T), model(x))  # the check is not vacuous


def test_fkan_directions_parameters_and_errors():
    base = FKAN(2, 1, num_frequencies=4, hidden_features=8, n_layers=1)
    wide = FKAN(2, 1, num_frequencies=4, hidden_features=8, n_layers=1, directions=6)
    assert wide.kan.weight.shape == (8, 6, 2, 4) and base.kan.weight.shape == (8, 2, 2, 4)
    assert "directions=6" in repr(wide) and "directions" not in repr(base)
    assert wide.double().directions_matrix.dtype == torch.float64
    with pytest.raises(ValueError, match=r"directions must be at least in_features=3, got 2"):
        FKAN(3, 1, directions=2)
    with pytest.raises(ValueError, match=r"directions must be 1 for in_features=1, got 4"):
        FKAN(1, 1, directions=4)
    with pytest.raises(ValueError, match=r"directions must be an int >= 1, got 0"):
        FKAN(2, 1, directions=0)
    with pytest.raises(ValueError, match=r"expected coordinates of shape \(\.\.\., 2\), got \(5, 6\)"):
        wide(torch.zeros(5, 6))  # the projections' width is not an input width


def test_reprs_name_the_configuration():
    assert "activation='gated_tanh'" in repr(FKAN(2, 1, hidden_features=4))
    assert "omega_0=30.0" in repr(SIREN(2, 1, hidden_features=4))
    assert "sigma=10.0" in repr(FourierFeatureINR(2, 1, num_features=4, hidden_features=4))


def _example_module():
    examples = Path(__file__).resolve().parents[2] / "examples"
    spec = importlib.util.spec_from_file_location("inr_image_example", examples / "inr_image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # loaded by its path: the example imports only the library
    return module


def test_example_ssim_matches_a_naive_windowed_reference():
    ssim = _example_module().ssim
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, size=(16, 15))
    b = np.clip(a + rng.normal(0, 0.1, size=a.shape), 0, 1)
    assert ssim(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(1.0, abs=1e-12)
    g = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    vals = []
    for i in range(16 - 10):
        for j in range(15 - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append((2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    assert ssim(torch.from_numpy(b), torch.from_numpy(a)) == pytest.approx(np.mean(vals), abs=1e-10)


@pytest.mark.slow
def test_fkan_torch_compile_fullgraph():
    model = SMALL["FKAN"](2, 1)
    x = torch.rand(9, 2) * 2 - 1
    torch.testing.assert_close(torch.compile(model, fullgraph=True)(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_float64_coordinates_to_a_float32_model_are_a_type_error(name):
    model = SMALL[name](2, 1)
    with pytest.raises(TypeError, match=rf"{name}: got coordinates of dtype torch.float64 but the parameters have"):
        model(torch.zeros(3, 2, dtype=torch.float64))
    assert model.double()(torch.zeros(3, 2, dtype=torch.float64)).dtype == torch.float64


# ------------------------------------------------------ second derivatives, empty batch, meta device
TINY = {
    **{f"FKAN-{act}": (lambda act=act, **kw: FKAN(2, 1, num_frequencies=3, hidden_features=4, n_layers=2,
                                                   activation=act, omega_0=2.0, **kw)) for act in FKAN_ACTIVATIONS},
    "FKAN-directions": lambda **kw: FKAN(2, 1, num_frequencies=2, hidden_features=(4, 3), directions=3, **kw),
    "SIREN": lambda **kw: SIREN(2, 1, hidden_features=4, n_layers=2, omega_0=3.0, **kw),
    "FourierFeatureINR": lambda **kw: FourierFeatureINR(2, 1, num_features=3, hidden_features=4, n_layers=2,
                                                        sigma=1.0, **kw),
}


@pytest.mark.parametrize("name", TINY)
def test_gradgradcheck_over_coordinates_and_parameters(name):
    """Exact second derivatives: PDE residuals and gradient penalties on an INR need them."""
    model = TINY[name](dtype=torch.float64)
    names, params = zip(*model.named_parameters())
    x = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def f(x_, *p):
        return torch.func.functional_call(model, dict(zip(names, p)), (x_,))

    assert torch.autograd.gradgradcheck(f, [t.detach().requires_grad_() for t in (x, *params)])


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", TINY)
def test_empty_batch_and_meta_device(name, device):
    model = TINY[name](device=device)
    for lead in ((0,), (3, 0), (5,)):
        y = model(torch.rand(*lead, 2, device=device))
        assert y.shape == (*lead, 1) and y.device.type == device
    if device == "cpu":
        x = torch.rand(0, 2, requires_grad=True)
        model(x).sum().backward()
        assert x.grad.shape == (0, 2)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_coordinates_are_a_type_error_naming_the_array(name):
    with pytest.raises(TypeError, match=rf"{name}: coordinates must be a torch.Tensor, got numpy.ndarray of shape "
                                        r"\(4, 2\) \(convert with torch.as_tensor\)"):
        SMALL[name](2, 1)(np.zeros((4, 2), np.float32))
