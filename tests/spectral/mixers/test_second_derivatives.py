"""Exact second derivatives: gradgradcheck (float64, finite differences) on every mixer, block and classifier.

Every input and parameter requires grad, so the mixed terms such as ``d(dL/dw)/dx`` are
checked too (a backward pass that used a spectrum from outside the autograd graph got
GlobalFilterMixer's ``d(dL/dw)/dx`` as 0.0228 against 5.517 by finite differences).
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

from spectral.mixers import (
    AFFMixer,
    AFNOMixer,
    CausalFourierMixer,
    FFTNetMixer,
    FNetMixer,
    GlobalFilterMixer,
    MixerBlock,
    SequenceClassifier,
)
from spectral.mixers.fftnet import _FilterModReLU

D = 4
F64 = {"dtype": torch.float64}
MIXERS = {  # tiny sizes; filters learned on a length other than N, so the resampling is checked too
    "fnet": lambda: FNetMixer(),
    "fnet-forward": lambda: FNetMixer(fft_norm="forward"),
    "gfnet": lambda: GlobalFilterMixer(D, 6, init_std=0.5, **F64),
    "gfnet-zero": lambda: GlobalFilterMixer(D, 4, boundary="zero", init_std=0.5, **F64),
    "fftnet": lambda: FFTNetMixer(D, 6, num_heads=2, hidden=3, **F64),
    "afno": lambda: AFNOMixer(D, num_blocks=2, sparsity_threshold=0.0, **F64),
    "afno-shrink": lambda: AFNOMixer(D, num_blocks=2, sparsity_threshold=0.01, hard_thresholding_fraction=0.6, **F64),
    "causal": lambda: CausalFourierMixer(D, 3, **F64),
    "causal-long": lambda: CausalFourierMixer(D, 8, **F64),
    "aff": lambda: AFFMixer(D, num_blocks=2, **F64),
}


def make(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    m = MIXERS[name]()
    with torch.no_grad():  # away from the near-identity / near-zero starts, so every term matters
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    if isinstance(m, FFTNetMixer):
        with torch.no_grad():  # modReLU bias well inside the active set (no kink within eps)
            m.bias.fill_(0.05)
    return m


def sample(name: str, n: int = 5) -> torch.Tensor:
    shape = (2, D, 3, n) if name == "aff" else (2, n, D)
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def token_mask(name: str, x: torch.Tensor) -> torch.Tensor:
    shape = (x.shape[0], *x.shape[2:]) if name == "aff" else x.shape[:2]
    mask = torch.ones(shape, dtype=torch.bool)
    mask.view(x.shape[0], -1)[0, -2:] = False
    mask.view(x.shape[0], -1)[1, 0] = False
    return mask


def check_twice(module: torch.nn.Module, inputs: tuple, *args) -> None:
    """gradcheck and gradgradcheck of ``module(*inputs, *args)`` in its inputs and every parameter."""
    names = [k for k, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in module.named_parameters())
    k = len(inputs)

    def fn(*ts):
        return functional_call(module, dict(zip(names, ts[k:])), (*ts[:k], *args))

    assert gradcheck(fn, (*inputs, *params), eps=1e-6, atol=1e-5, fast_mode=True)
    assert gradgradcheck(fn, (*inputs, *params), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("name", list(MIXERS))
def test_mixer_second_derivatives(name, masked):
    m = make(name)
    x = sample(name)
    check_twice(m, (x,), token_mask(name, x) if masked else None)


@pytest.mark.parametrize("n", [4, 7])
def test_global_filter_mixed_second_derivative_matches_finite_differences(n):
    """The reported case: d/dx of <dL/dw, v> against a central difference of dL/dw along a direction of x."""
    m = make("gfnet")
    x = torch.randn(1, n, D, dtype=torch.float64)
    dx, v, g = torch.randn_like(x), torch.randn_like(m.weight), torch.randn_like(x)

    def grad_w(x_):
        return torch.autograd.grad(m(x_), m.weight, g, create_graph=True)[0]

    xr = x.clone().requires_grad_(True)
    exact = torch.autograd.grad((grad_w(xr) * v).sum(), xr)[0]
    h = 1e-6
    fd = ((grad_w(x + h * dx) - grad_w(x - h * dx)) * v).sum() / (2 * h)
    torch.testing.assert_close((exact * dx).sum(), fd.detach(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mixer", ["fnet", "gfnet-zero", "fftnet", "causal"])
def test_mixer_block_second_derivatives(mixer):
    torch.manual_seed(0)
    block = MixerBlock(D, make(mixer), mlp_ratio=1.5, **F64)
    x = sample(mixer)
    check_twice(block, (x,), token_mask(mixer, x))


@pytest.mark.parametrize("pool", ["mean", "last", "none"])
@pytest.mark.parametrize("mixer", ["gfnet", "fftnet", "causal", "afno"])
def test_sequence_classifier_second_derivatives_with_mask(mixer, pool):
    """Tokens are integers: second derivatives in every parameter, with a padding mask."""
    factory = functools.partial(make, mixer)
    torch.manual_seed(0)
    model = SequenceClassifier(7, 3, factory, dim=D, depth=1, max_len=6, pool=pool, mlp_ratio=1.0, **F64)
    tokens = torch.randint(0, 7, (2, 5))
    check_twice(model, (), tokens, token_mask(mixer, sample(mixer)))


def test_fused_filter_modrelu_second_derivatives():
    torch.manual_seed(0)
    z = torch.randn(2, 3, 2, 3, dtype=torch.complex128, requires_grad=True)
    filt = torch.randn(2, 3, 2, 1, dtype=torch.float64, requires_grad=True)
    bias = (0.3 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_(True)
    assert gradgradcheck(_FilterModReLU.apply, (z, filt, bias), eps=1e-6, atol=1e-5)


def test_fused_filter_modrelu_double_backward_gives_the_first_order_gradients_and_stays_finite_at_zero():
    """The create_graph branch returns the fast branch's gradients, also at exactly zero coefficients."""
    torch.manual_seed(0)
    z = torch.randn(2, 4, 1, 3, dtype=torch.complex128)
    z[0, 0] = 0
    z.requires_grad_(True)
    filt = torch.randn(2, 4, 1, 1, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor([[-0.1, 0.2, 5.0]], dtype=torch.float64, requires_grad=True)
    out = _FilterModReLU.apply(z, filt, bias)
    g = torch.randn_like(out)
    fast = torch.autograd.grad(out, (z, filt, bias), g, retain_graph=True)
    exact = torch.autograd.grad(out, (z, filt, bias), g, create_graph=True)
    for a, b in zip(fast, exact):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    penalty = sum(torch.view_as_real(t).square().sum() if t.is_complex() else t.square().sum() for t in exact)
    for t in torch.autograd.grad(penalty, (z, filt, bias)):
        assert torch.isfinite(torch.view_as_real(t) if t.is_complex() else t).all()
