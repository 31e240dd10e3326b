"""Every public module and function: exact second derivatives, empty batches, the meta device.

One table of tiny configurations, one case per public name (and per variant whose code path
differs), checked three ways:

* ``gradgradcheck`` in float64 against finite differences of the analytic gradient, over the
  inputs and every parameter (a custom backward that uses tensors outside the autograd graph
  returns wrong second derivatives without a word; this is the test that catches it);
* a batch of size 0 gives an empty output of the shape a non-empty batch implies, and a
  backward pass through it works;
* built with ``device="meta"``, a meta input gives a meta output of the right shape (shape
  inference, deferred initialisation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn
from torch.func import functional_call

import operators
import spectral
from operators import layers
from operators.datasets import Normalizer
from spectral import mixers

F64 = torch.float64


@dataclass
class Case:
    """A module factory ``make(device, dtype)`` and an input factory ``inputs(batch, device, dtype, gen)``."""

    id: str
    make: Callable[..., nn.Module]
    inputs: Callable[..., tuple]
    grad_inputs: bool = True  # the inputs are differentiable (token ids are not)
    batch_dim: int = 0
    skip_meta: str | None = None
    skip_empty: str | None = None
    gradgrad_kwargs: dict = field(default_factory=dict)


def _real(*shape):
    def make(b, device, dtype, gen):
        return (torch.randn(b, *shape, generator=gen, dtype=F64).to(device=device, dtype=dtype),)
    return make


def _complex(*shape):
    def make(b, device, dtype, gen):
        z = torch.randn(b, *shape, 2, generator=gen, dtype=F64)
        cdt = torch.complex128 if dtype == F64 else torch.complex64
        return (torch.view_as_complex(z).to(device=device, dtype=cdt),)
    return make


def _sphere_grid(n_lat: int, n_lon: int, channels: int):
    return _real(channels, n_lat, n_lon)


def _pair(*shape):
    def make(b, device, dtype, gen):
        return _real(*shape)(b, device, dtype, gen) + _real(*shape)(b, device, dtype, gen)
    return make


def _tokens(vocab: int, n: int):
    def make(b, device, dtype, gen):
        return (torch.randint(0, vocab, (b, n), generator=gen).to(device),)
    return make


def _coords(d: int):
    def make(b, device, dtype, gen):
        return ((2 * torch.rand(b, d, generator=gen, dtype=F64) - 1).to(device=device, dtype=dtype),)
    return make


def _seq_classifier(device, dtype):
    return mixers.SequenceClassifier(11, 3, lambda: mixers.GlobalFilterMixer(8, 6, device=device, dtype=dtype),
                                     dim=8, depth=1, max_len=6, mlp_ratio=1.0, device=device, dtype=dtype)


def _specboost(device, dtype):
    stages = [operators.FNO(1, 1, (3, 3), hidden_channels=4, n_layers=1, device=device, dtype=dtype) for _ in range(2)]
    return operators.SpecBoost(stages)


CASES = [
    # spectral: layers
    Case("ModReLU", lambda device, dtype: spectral.ModReLU(4, init_bias=-0.1, device=device, dtype=dtype), _complex(4)),
    Case("FANLayer", lambda device, dtype: spectral.FANLayer(4, 8, device=device, dtype=dtype), _real(4)),
    Case("FANLayer-gated", lambda device, dtype: spectral.FANLayer(4, 8, gated=True, activation="tanh",
                                                                   device=device, dtype=dtype), _real(4)),
    Case("FAN", lambda device, dtype: spectral.FAN(3, 2, hidden_features=8, n_layers=2, device=device, dtype=dtype),
         _real(3)),
    Case("FANAttention", lambda device, dtype: spectral.FANAttention(8, 2, device=device, dtype=dtype), _real(5, 8)),
    Case("FourierHead", lambda device, dtype: spectral.FourierHead(4, 6, 3, device=device, dtype=dtype), _real(4)),
    Case("FourierKANLayer", lambda device, dtype: spectral.FourierKANLayer(3, 4, 3, device=device, dtype=dtype),
         _real(3)),
    Case("FKAN", lambda device, dtype: spectral.FKAN(2, 1, num_frequencies=3, hidden_features=6, device=device,
                                                      dtype=dtype), _coords(2)),
    Case("SIREN", lambda device, dtype: spectral.SIREN(2, 1, hidden_features=6, n_layers=2, device=device,
                                                        dtype=dtype), _coords(2)),
    Case("FourierFeatureINR", lambda device, dtype: spectral.FourierFeatureINR(2, 1, num_features=4,
                                                                               hidden_features=6, n_layers=2,
                                                                               device=device, dtype=dtype),
         _coords(2)),
    # spectral: token mixers
    Case("FNetMixer", lambda device, dtype: mixers.FNetMixer(), _real(6, 4)),
    Case("GlobalFilterMixer", lambda device, dtype: mixers.GlobalFilterMixer(4, 6, device=device, dtype=dtype),
         _real(6, 4)),
    Case("GlobalFilterMixer-zero", lambda device, dtype: mixers.GlobalFilterMixer(4, 6, boundary="zero",
                                                                                  device=device, dtype=dtype),
         _real(5, 4)),
    Case("FFTNetMixer", lambda device, dtype: mixers.FFTNetMixer(4, 6, num_heads=2, device=device, dtype=dtype),
         _real(6, 4)),
    Case("AFNOMixer", lambda device, dtype: mixers.AFNOMixer(4, num_blocks=2, device=device, dtype=dtype),
         _real(6, 4)),
    Case("AFFMixer", lambda device, dtype: mixers.AFFMixer(4, num_blocks=2, device=device, dtype=dtype),
         _real(4, 5, 6)),
    Case("CausalFourierMixer", lambda device, dtype: mixers.CausalFourierMixer(4, 6, device=device, dtype=dtype),
         _real(6, 4)),
    Case("MixerBlock", lambda device, dtype: mixers.MixerBlock(4, mixers.GlobalFilterMixer(4, 6, device=device,
                                                                                            dtype=dtype),
                                                                mlp_ratio=1.0, device=device, dtype=dtype),
         _real(6, 4)),
    Case("SequenceClassifier", _seq_classifier, _tokens(11, 6), grad_inputs=False),
    # operators
    Case("SpectralConv", lambda device, dtype: operators.SpectralConv(2, 3, (3, 3), device=device, dtype=dtype),
         _real(2, 6, 5)),
    Case("SpectralConv-1d", lambda device, dtype: operators.SpectralConv(2, 2, 3, device=device, dtype=dtype),
         _real(2, 7)),
    Case("SpectralConv-separable", lambda device, dtype: operators.SpectralConv(2, 2, (3, 3), separable=True,
                                                                                device=device, dtype=dtype),
         _real(2, 6, 5)),
    Case("SpectralConv-cp", lambda device, dtype: operators.SpectralConv(2, 3, (3, 3), rank=2, device=device,
                                                                         dtype=dtype), _real(2, 6, 5)),
    Case("SpectralConv-complex", lambda device, dtype: operators.SpectralConv(2, 2, (2, 2), complex_data=True,
                                                                              device=device, dtype=dtype),
         _complex(2, 4, 4)),
    Case("FNO", lambda device, dtype: operators.FNO(1, 1, (3, 3), hidden_channels=4, n_layers=2, device=device,
                                                     dtype=dtype), _real(1, 6, 6)),
    Case("FNO-padded-1d", lambda device, dtype: operators.FNO(1, 2, 3, hidden_channels=4, n_layers=1,
                                                               domain_padding=0.25, norm="group",
                                                               skip="soft-gating", mlp_skip="linear",
                                                               device=device, dtype=dtype), _real(1, 8)),
    Case("SphericalConv", lambda device, dtype: operators.SphericalConv(2, 2, (6, 12), device=device, dtype=dtype),
         _sphere_grid(6, 12, 2)),
    Case("SFNO", lambda device, dtype: operators.SFNO(1, 1, (6, 12), hidden_channels=4, n_layers=1, device=device,
                                                       dtype=dtype), _sphere_grid(6, 12, 1)),
    Case("SpecBoost", _specboost, _real(1, 6, 6)),
    Case("LpLoss", lambda device, dtype: operators.LpLoss(2), _pair(1, 6, 6)),
    Case("SphereLoss", lambda device, dtype: operators.SphereLoss(), _pair(1, 6, 12)),
    Case("Normalized", lambda device, dtype: operators.Normalized(
        operators.FNO(1, 1, (3, 3), hidden_channels=4, n_layers=1, device=device, dtype=dtype),
        Normalizer(1, device=device, dtype=dtype), Normalizer(1, device=device, dtype=dtype)), _real(1, 6, 6)),
    # operators.layers: the building blocks
    Case("ChannelLinear", lambda device, dtype: layers.ChannelLinear(3, 4, device=device, dtype=dtype), _real(3, 5)),
    Case("ChannelMLP", lambda device, dtype: layers.ChannelMLP(3, 2, 4, activation="silu", device=device,
                                                               dtype=dtype), _real(3, 4, 5)),
    Case("SoftGating", lambda device, dtype: layers.SoftGating(3, device=device, dtype=dtype), _real(3, 4, 5)),
    Case("GridEmbedding", lambda device, dtype: layers.GridEmbedding(2), _real(1, 4, 5)),
    Case("DomainPadding", lambda device, dtype: layers.DomainPadding(0.25), _real(2, 8, 6)),
    Case("FourierBlock", lambda device, dtype: layers.FourierBlock(
        operators.SpectralConv(3, 3, (2, 2), device=device, dtype=dtype), norm="instance", device=device,
        dtype=dtype), _real(3, 4, 5)),
    Case("LiftBlocksProject", lambda device, dtype: operators.FNO(2, 1, 2, hidden_channels=3, n_layers=1,
                                                                   positional_embedding=False, device=device,
                                                                   dtype=dtype), _real(2, 6)),
    Case("H1Loss", lambda device, dtype: operators.H1Loss(2), _pair(1, 6, 6)),
]


def _first(out):
    """FANAttention returns ``(output, weights)`` like nn.MultiheadAttention: the output is what is checked."""
    return out[0] if isinstance(out, tuple) else out


def _ids(cases):
    return [c.id for c in cases]


def _build(case: Case, device: str, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    module = case.make(device, dtype)
    return module.eval()


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_gradgradcheck(case):
    module = _build(case, "cpu", F64)
    gen = torch.Generator().manual_seed(1)
    inputs = case.inputs(2, "cpu", F64, gen)
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    params = [module.get_parameter(n).detach().clone().requires_grad_(True) for n in names]
    inputs = tuple(x.detach().clone().requires_grad_(case.grad_inputs and (x.is_floating_point() or x.is_complex()))
                   for x in inputs)
    n_in = len(inputs)

    def fn(*args):
        return _first(functional_call(module, dict(zip(names, args[n_in:])), args[:n_in]))

    differentiable = tuple(x for x in inputs) + tuple(params)
    assert torch.autograd.gradgradcheck(fn, differentiable, fast_mode=True, **case.gradgrad_kwargs)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_empty_batch_gives_an_empty_output_of_the_right_shape(case):
    if case.skip_empty:
        pytest.skip(case.skip_empty)
    module = _build(case, "cpu", torch.float32)
    gen = torch.Generator().manual_seed(1)
    full = _first(module(*case.inputs(2, "cpu", torch.float32, gen)))
    empty_inputs = case.inputs(0, "cpu", torch.float32, gen)
    empty_inputs = tuple(x.requires_grad_(case.grad_inputs and x.is_floating_point()) for x in empty_inputs)
    out = _first(module(*empty_inputs))
    if full.ndim == 0:  # a reduced loss: a 0-d result for the empty batch too
        assert out.ndim == 0
    else:
        assert out.shape == (0, *full.shape[1:]), (tuple(out.shape), tuple(full.shape))
        assert out.dtype == full.dtype
        (out.real if out.is_complex() else out).sum().backward()  # the empty result is part of the graph


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_meta_device_maps_meta_inputs_to_meta_outputs(case):
    if case.skip_meta:
        pytest.skip(case.skip_meta)
    gen = torch.Generator().manual_seed(1)
    reference = _first(_build(case, "cpu", torch.float32)(*case.inputs(2, "cpu", torch.float32, gen)))
    module = _build(case, "meta", torch.float32)
    assert all(p.device.type == "meta" for p in module.parameters())
    inputs = tuple(x.to("meta") for x in case.inputs(2, "cpu", torch.float32, gen))
    out = _first(module(*inputs))
    assert out.device.type == "meta"
    assert out.shape == reference.shape and out.dtype == reference.dtype


def test_every_public_module_has_a_case():
    """A new public nn.Module without a row in CASES fails here (so it gets the three checks)."""
    covered = {c.id.split("-")[0] for c in CASES}
    public = set()
    for package in (spectral, mixers, operators, layers):
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, type) and issubclass(obj, nn.Module):
                public.add(name)
    assert public <= covered, sorted(public - covered)
