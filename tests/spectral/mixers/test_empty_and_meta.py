"""An empty batch (B = 0) and the meta device: right shapes, no FFT backend error, gradients still flow."""

from __future__ import annotations

import functools

import pytest
import torch

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
from spectral.mixers.aff import aff_mix
from spectral.mixers.afno import afno_mix
from spectral.mixers.causal import causal_conv
from spectral.mixers.fnet import fnet_mix
from spectral.mixers.global_filter import global_filter

D = 8
MIXERS = {
    "fnet": lambda **kw: FNetMixer(),
    "gfnet": lambda **kw: GlobalFilterMixer(D, 16, **kw),
    "gfnet-zero": lambda **kw: GlobalFilterMixer(D, 16, boundary="zero", **kw),
    "fftnet": lambda **kw: FFTNetMixer(D, 16, num_heads=2, **kw),
    "afno": lambda **kw: AFNOMixer(D, num_blocks=2, **kw),
    "afno-half": lambda **kw: AFNOMixer(D, num_blocks=2, hard_thresholding_fraction=0.5, **kw),
    "causal": lambda **kw: CausalFourierMixer(D, 16, **kw),
    "aff": lambda **kw: AFFMixer(D, num_blocks=2, **kw),
    "block": lambda **kw: MixerBlock(D, FFTNetMixer(D, 16, num_heads=2, **kw), **kw),
}


def inputs(name: str, b: int, n: int = 10, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and a mask for it: (B, N, D) and (B, N), or (B, D, 3, N) and (B, 3, N) for AFF."""
    if name == "aff":
        return torch.randn(b, D, 3, n, **kw), torch.ones(b, 3, n, dtype=torch.bool, device=kw.get("device"))
    return torch.randn(b, n, D, **kw), torch.ones(b, n, dtype=torch.bool, device=kw.get("device"))


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", list(MIXERS))
def test_empty_batch_gives_an_empty_output_connected_to_the_parameters(name, dtype, masked):
    m = MIXERS[name]().to(dtype)
    x, mask = inputs(name, 0, dtype=dtype)
    x.requires_grad_(True)
    y = m(x, mask if masked else None)
    assert y.shape == x.shape and y.dtype == dtype
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    for pname, p in m.named_parameters():
        assert p.grad is not None and (p.grad == 0).all(), pname


@pytest.mark.parametrize("pool", ["mean", "last", "none"])
def test_sequence_classifier_on_an_empty_batch(pool):
    model = SequenceClassifier(11, 3, functools.partial(CausalFourierMixer, D, 16), dim=D, depth=2, max_len=16,
                               pool=pool)
    tokens = torch.zeros(0, 7, dtype=torch.long)
    out = model(tokens, torch.ones(0, 7, dtype=torch.bool))
    assert out.shape == ((0, 7, 3) if pool == "none" else (0, 3))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_public_functions_on_an_empty_batch():
    x = torch.zeros(0, 6, 4)
    w = torch.randn(5, 4, dtype=torch.complex64, requires_grad=True)
    assert fnet_mix(x).shape == (0, 6, 4)
    for boundary in ("circular", "zero"):
        assert global_filter(x, w, 8, boundary=boundary).shape == (0, 6, 4)
    assert causal_conv(x, torch.randn(3, 4)).shape == (0, 6, 4)
    m = AFNOMixer(4, num_blocks=2)
    assert afno_mix(x, m.complex_weights()).shape == (0, 6, 4)
    assert aff_mix(torch.zeros(0, 4, 3, 5), AFFMixer(4, num_blocks=2).complex_weights()).shape == (0, 4, 3, 5)


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("b", [2, 0])
@pytest.mark.parametrize("name", list(MIXERS))
def test_meta_device_maps_a_meta_input_to_a_meta_output(name, b, masked):
    m = MIXERS[name](device="meta")
    assert all(p.is_meta for p in m.parameters())
    for n in (10, 7, 40):  # resampled filters (shorter and longer than max_len), even and odd N
        x, mask = inputs(name, b, n, device="meta")
        y = m(x, mask if masked else None)
        assert y.is_meta and y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("pool", ["mean", "last", "none"])
def test_sequence_classifier_on_the_meta_device(pool):
    model = SequenceClassifier(
        11, 3, functools.partial(GlobalFilterMixer, D, 16, boundary="zero", device="meta"), dim=D, depth=2,
        max_len=16, pool=pool, device="meta",
    )
    out = model(torch.zeros(4, 9, dtype=torch.long, device="meta"), torch.ones(4, 9, dtype=torch.bool, device="meta"))
    assert out.is_meta and out.shape == ((4, 9, 3) if pool == "none" else (4, 3))
