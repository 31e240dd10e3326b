"""FourierHead and its functional core against naive sums and numerical integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradgradcheck

from spectral.fourier_head import (
    FourierHead,
    autocorrelate,
    fourier_cdf,
    fourier_density,
    fourier_regularization,
)


def _raw_amplitudes(head: FourierHead, x: torch.Tensor) -> torch.Tensor:
    """The Linear layer's output read as N + 1 complex numbers (interleaved real, imag)."""
    raw = head.proj(x)
    return torch.complex(raw[..., 0::2], raw[..., 1::2])


def _squared_modulus_density(a: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``|sum_j a_j exp(i pi j x)|^2 / (2 sum_j |a_j|^2)`` summed term by term."""
    j = torch.arange(a.shape[-1], dtype=points.dtype)
    waves = torch.exp(1j * math.pi * points[:, None] * j)  # (P, L)
    amp = (a.unsqueeze(-2) * waves).sum(-1)  # (..., P)
    return amp.abs().square() / (2 * a.abs().square().sum(-1, keepdim=True))


@pytest.mark.parametrize("length", [1, 2, 5, 13, 32], ids=lambda n: f"L={n}")
def test_autocorrelate_matches_naive_sum(length, generator):
    a = torch.randn(3, length, dtype=torch.complex128, generator=generator)
    got = autocorrelate(a)
    want = torch.zeros_like(a)
    for k in range(length):
        for j in range(length - k):
            want[:, k] += a[:, j + k] * a[:, j].conj()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got[:, 0].imag, torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_density_is_the_squared_modulus_form(generator):
    a = torch.randn(4, 9, dtype=torch.complex128, generator=generator)
    c = autocorrelate(a)
    x = torch.linspace(-1, 1, 301, dtype=torch.float64)
    got = fourier_density(c[..., 1:] / c[..., :1].real, x)
    torch.testing.assert_close(got, _squared_modulus_density(a, x))


def test_density_nonnegative_and_integrates_to_one(generator):
    head = FourierHead(6, 50, 12, init_scale=1.0, dtype=torch.float64)
    x = torch.randn(5, 6, dtype=torch.float64, generator=generator) * 3
    grid = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    dens = head.density(x, grid)
    assert dens.shape == (5, 20001)
    assert (dens >= -1e-12).all()
    integral = torch.trapezoid(dens, grid, dim=-1)
    torch.testing.assert_close(integral, torch.ones(5, dtype=torch.float64), atol=1e-8, rtol=0)


def test_cdf_matches_numerical_integral(generator):
    a = torch.randn(3, 7, dtype=torch.complex128, generator=generator)
    c = autocorrelate(a)
    coeffs = c[..., 1:] / c[..., :1].real
    grid = torch.linspace(-1, 1, 40001, dtype=torch.float64)
    numeric = torch.cumulative_trapezoid(fourier_density(coeffs, grid), grid, dim=-1)
    got = fourier_cdf(coeffs, grid)[..., 1:]
    torch.testing.assert_close(got, numeric, atol=1e-8, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("batch", [(), (4,), (2, 3)], ids=lambda b: f"batch={b}")
def test_forward_log_probabilities_match_naive(device, dtype, batch):
    head = FourierHead(8, 20, 6, init_scale=1.0, eps=0.0, device=device, dtype=dtype)
    x = torch.randn(*batch, 8, device=device, dtype=dtype)
    logp = head(x)
    assert logp.shape == (*batch, 20) and logp.dtype == dtype and logp.device.type == device.type
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {}
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(batch, dtype=dtype, device=device), **tol)
    centers = torch.linspace(-1, 1, 41, dtype=torch.float64)[1::2]  # midpoints of 20 equal bins
    a = _raw_amplitudes(head, x).cpu().to(torch.complex128)
    dens = _squared_modulus_density(a, centers)
    want = (dens / dens.sum(-1, keepdim=True)).log()
    torch.testing.assert_close(logp.cpu().double(), want, **tol)


def test_eps_mixes_in_a_uniform_floor():
    head = FourierHead(3, 10, 4, eps=1e-3)
    logp = head(torch.randn(7, 3))
    assert (logp >= math.log(1e-3 / 10) - 1e-6).all()
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(7))


def test_output_invariant_to_scaling_the_raw_coefficients():
    head = FourierHead(5, 30, 8, regularization_gamma=1e-3)
    x = torch.randn(6, 5)
    before, reg = head(x), head.regularization(x)
    for scale in (1e-3, 7.5):
        scaled = FourierHead(5, 30, 8, regularization_gamma=1e-3)
        with torch.no_grad():
            scaled.proj.weight.copy_(head.proj.weight * scale)
            scaled.proj.bias.copy_(head.proj.bias * scale)
        torch.testing.assert_close(scaled(x), before, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(scaled.regularization(x), reg, atol=1e-7, rtol=1e-4)


def test_regularization_is_twice_the_derivative_energy(generator):
    gamma = 0.37
    head = FourierHead(4, 16, 5, regularization_gamma=gamma, init_scale=1.0, dtype=torch.float64)
    x = torch.randn(3, 4, dtype=torch.float64, generator=generator)
    grid = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    dens = head.density(x, grid)
    slope = torch.diff(dens, dim=-1) / torch.diff(grid)
    energy = (slope.square() * torch.diff(grid)).sum(-1)  # int |p'|^2 dx
    want = gamma * (2 * energy).mean()
    torch.testing.assert_close(head.regularization(x), want, rtol=1e-4, atol=0)
    # and the formula itself, term by term, on the normalised coefficients
    c = head.normalized_coefficients(x)
    terms = [2 * math.pi**2 * k**2 * c[:, k - 1].abs().square() for k in range(1, 6)]
    torch.testing.assert_close(fourier_regularization(c), torch.stack(terms, -1).sum(-1).mean())


def test_sample_follows_the_density():
    head = FourierHead(4, 20, 6, init_scale=1.0, dtype=torch.float64)
    x = torch.randn(2, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    s = head.sample(x, 2000, generator=gen)
    assert s.shape == (2, 2000) and s.min() >= -1 and s.max() <= 1
    grid = torch.linspace(-1, 1, 4001, dtype=torch.float64)
    cdf = torch.cumulative_trapezoid(head.density(x, grid), grid, dim=-1)  # independent of head.cdf
    for b in range(2):
        empirical = torch.searchsorted(s[b].sort().values, grid[1:]).double() / 2000
        ks = (empirical - cdf[b]).abs().max()
        assert ks < 0.045, float(ks)  # 1% critical value of the KS statistic for n = 2000: 0.036


def test_gradients_flow_with_the_regularizer():
    head = FourierHead(6, 25, 9, regularization_gamma=1e-2)
    x = torch.randn(10, 6, requires_grad=True)
    target = torch.randint(0, 25, (10,))
    loss = F.nll_loss(head(x), target) + head.regularization(x)
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_buffers_are_derived_move_and_state_dict_round_trips():
    head = FourierHead(4, 12, 5)
    assert set(head.state_dict()) == {"proj.weight", "proj.bias"}
    assert {name for name, _ in head.named_buffers()} == {"angle_index"}
    assert head.bin_centers.device.type == "cpu"
    theta = np.pi * np.arange(1, 6)[:, None] * (np.linspace(-1, 1, 13)[:-1] + 1 / 12)  # pi k c_b
    np.testing.assert_allclose(head.basis(torch.float64)[0].numpy(), np.cos(theta), atol=1e-14)
    np.testing.assert_allclose(head.basis(torch.float64)[1].numpy(), np.sin(theta), atol=1e-14)
    edges = np.linspace(-1, 1, 13)
    np.testing.assert_allclose(head.bin_centers.numpy(), (edges[:-1] + edges[1:]) / 2, atol=1e-7)
    other = FourierHead(4, 12, 5)
    other.load_state_dict(head.state_dict())
    x = torch.randn(3, 4)
    torch.testing.assert_close(other(x), head(x))
    head64 = head.to(torch.float64)
    assert head64.basis()[0].dtype == torch.float64 and head64.bin_centers.dtype == torch.float64
    torch.testing.assert_close(head64(x.double()).float(), other(x), atol=1e-5, rtol=1e-4)


def test_bad_arguments_and_input():
    with pytest.raises(ValueError, match="num_bins must be an int >= 2, got 1"):
        FourierHead(4, 1, 3)
    with pytest.raises(ValueError, match="num_frequencies must be an int >= 1, got 0"):
        FourierHead(4, 10, 0)
    with pytest.raises(ValueError, match="regularization_gamma must be >= 0"):
        FourierHead(4, 10, 3, regularization_gamma=-1.0)
    with pytest.raises(ValueError, match=r"eps must be >= 0(\.0)? and < 1(\.0)?, got 1\.0"):
        FourierHead(4, 10, 3, eps=1.0)
    head = FourierHead(4, 10, 3)
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., 4\), got \(2, 3\)"):
        head(torch.randn(2, 3))
    with pytest.raises(TypeError, match="complex64"):
        head(torch.randn(2, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="num_samples must be an int >= 1, got 0"):
        head.sample(torch.randn(2, 4), 0)


@pytest.mark.slow
def test_compile_fullgraph_smoke():
    head = FourierHead(4, 10, 3)
    x = torch.randn(5, 4)
    torch.testing.assert_close(torch.compile(head, fullgraph=True)(x), head(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_head_matches_the_density_of_its_own_linear_output(dtype):
    """A head cast to half precision rounds only its Linear layer: the bin probabilities are
    |sum_j a_j exp(i pi j c_b)|^2, normalised, with a_j read from that layer's half-precision output
    (a basis rounded to bfloat16 moved log-probabilities by up to 7.6)."""
    torch.manual_seed(0)
    head = FourierHead(16, 64, 32, init_scale=1.0).to(dtype)
    x = torch.randn(8, 16).to(dtype)
    with torch.no_grad():
        raw, got = head.proj(x).double().numpy(), head(x).double().numpy()
    a = raw[:, 0::2] + 1j * raw[:, 1::2]  # (8, N + 1), the head's interleaved re/im layout
    centers = (2 * np.arange(64) + 1 - 64) / 64
    p = np.abs(a @ np.exp(1j * np.pi * np.arange(33)[:, None] * centers)) ** 2
    p = (1 - head.eps) * p / p.sum(-1, keepdims=True) + head.eps / 64
    # The log-probabilities are returned in the half dtype: allow its rounding (8 or 11 bits) and float32's.
    bits = 8 if dtype == torch.bfloat16 else 11
    assert np.all(np.abs(got - np.log(p)) <= np.abs(np.log(p)) * 2.0**-bits + 1e-3)


def test_float64_input_to_a_float32_head_is_a_type_error():
    with pytest.raises(TypeError, match=r"FourierHead: got x of dtype torch.float64 but the parameters have torch.float32"):
        FourierHead(4, 10, 3)(torch.randn(2, 4, dtype=torch.float64))


# ------------------------------------------------------ second derivatives, empty batch, meta device
F64 = torch.float64


class _Method(nn.Module):
    """``head.<method>(*args)`` as a forward, so that functional_call can swap the head's parameters."""

    def __init__(self, head: FourierHead, method: str) -> None:
        super().__init__()
        self.head, self.method = head, method

    def forward(self, *args):
        out = getattr(self.head, self.method)(*args)
        return torch.view_as_real(out) if out.is_complex() else out


@pytest.mark.parametrize("method", ["forward", "density", "cdf", "regularization", "normalized_coefficients"])
def test_head_passes_gradgradcheck(method):
    module = _Method(FourierHead(3, 5, 3, regularization_gamma=0.1, init_scale=1.0, dtype=F64), method)
    names, params = zip(*module.named_parameters())
    x = torch.randn(2, 3, dtype=F64)
    extra = (torch.linspace(-0.9, 0.9, 4, dtype=F64),) if method in ("density", "cdf") else ()

    def f(x, *p):
        return torch.func.functional_call(module, dict(zip(names, p)), (x, *extra))

    assert gradgradcheck(f, [t.detach().requires_grad_() for t in (x, *params)])


def test_functions_pass_gradgradcheck():
    a = torch.randn(2, 4, dtype=torch.complex128, requires_grad=True)
    c = torch.randn(2, 3, dtype=torch.complex128, requires_grad=True)
    points = torch.linspace(-0.9, 0.9, 4, dtype=F64, requires_grad=True)
    assert gradgradcheck(autocorrelate, (a,))
    assert gradgradcheck(fourier_density, (c, points))
    assert gradgradcheck(fourier_cdf, (c, points))
    assert gradgradcheck(fourier_regularization, (c,))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_empty_batch_and_meta_device(device):
    head = FourierHead(4, 6, 3, device=device)
    points = torch.linspace(-1, 1, 5, device=device)
    for batch in ((0,), (0, 3), (2,)):
        x = torch.randn(*batch, 4, device=device)
        for out, width in ((head(x), 6), (head.density(x, points), 5), (head.cdf(x, points), 5),
                           (head.normalized_coefficients(x), 3), (head.sample(x, 7), 7)):
            assert out.shape == (*batch, width) and out.device.type == device
    if device == "cpu":
        x = torch.randn(0, 4, requires_grad=True)
        head(x).sum().backward()
        assert x.grad.shape == (0, 4) and head.proj.weight.grad is not None


_BAD = {
    "numpy-x": (lambda: FourierHead(4, 6, 3)(np.ones((2, 4), np.float32)), TypeError,
                r"FourierHead: x must be a torch.Tensor, got numpy.ndarray of shape \(2, 4\) \(convert with torch.as_tensor\)"),
    "numpy-points": (lambda: FourierHead(4, 6, 3).cdf(torch.ones(2, 4), np.linspace(-1, 1, 3)), TypeError,
                     r"FourierHead.cdf: points must be a torch.Tensor, got numpy.ndarray of shape \(3,\)"),
    "size-None": (lambda: FourierHead(4, None, 3), TypeError, r"num_bins must be an int, got NoneType None"),
    "size-str": (lambda: FourierHead(4, 6, "3"), TypeError, r"num_frequencies must be an int, got str '3'"),
    "size-float": (lambda: FourierHead(4.0, 6, 3), TypeError, r"in_features must be an int, got float 4.0"),
    "size-bool": (lambda: FourierHead(True, 6, 3), TypeError, r"in_features must be an int, got bool True"),
    "size-nan": (lambda: FourierHead(4, float("nan"), 3), TypeError, r"num_bins must be an int, got float nan"),
    "init_scale-inf": (lambda: FourierHead(4, 6, 3, init_scale=float("inf")), ValueError,
                       r"init_scale must be finite, got inf"),
    "gamma-inf": (lambda: FourierHead(4, 6, 3, regularization_gamma=float("inf")), ValueError,
                  r"regularization_gamma must be finite, got inf"),
    "gamma-str": (lambda: FourierHead(4, 6, 3, regularization_gamma="0.1"), TypeError,
                  r"regularization_gamma must be a real number, got str '0.1'"),
    "eps-nan": (lambda: FourierHead(4, 6, 3, eps=float("nan")), ValueError, r"eps must be finite, got nan"),
    "dtype-complex": (lambda: FourierHead(4, 6, 3, dtype=torch.complex64), TypeError,
                      r"dtype must be a real floating torch.dtype .*complex64"),
    "num_samples-bool": (lambda: FourierHead(4, 6, 3).sample(torch.ones(2, 4), True), TypeError,
                         r"num_samples must be an int, got bool True"),
}


@pytest.mark.parametrize("case", _BAD)
def test_bad_arguments_name_the_argument_and_value(case):
    build, error, match = _BAD[case]
    with pytest.raises(error, match=match):
        build()
