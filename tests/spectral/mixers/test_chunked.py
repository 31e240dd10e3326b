"""Chunked recomputation (AFNO, AFF) and the kernel convolution (causal): exact, in any chunking, keeping no spectrum.

References: the numpy per-frequency loops of ``test_afno_aff`` and ``np.convolve``;
gradients by finite differences (gradcheck, gradgradcheck) with the chunk budget made
tiny, so chunks split both the samples and the channel groups.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

import spectral._fft_autograd as fft_autograd
import spectral.mixers._chunked as chunked
from spectral._fft_autograd import kernel_conv
from spectral.mixers import AFFMixer, AFNOMixer, CausalFourierMixer, FFTNetMixer
from tests.spectral.mixers.test_afno_aff import aff_reference, afno_reference, scaled
from tests.spectral.mixers.test_causal import direct_causal

F64 = {"dtype": torch.float64}


def _scale_and_shift(x, p, q, *, channel_dim, group, dim):
    """rfft(x * P + Q) along ``dim``: P per sample and group (B, G), Q per group (G, 1), broadcast to channels."""
    shape = [1] * x.ndim
    shape[0], shape[channel_dim] = x.shape[0], x.shape[channel_dim]
    scale = p.repeat_interleave(group, dim=1).reshape(shape)
    shape[0] = 1
    shift = q.repeat_interleave(group, dim=0).reshape(shape)
    return torch.fft.rfft(x * scale + shift, dim=dim)


@pytest.mark.parametrize("budget", [1, 7, 40, 10**6])
@pytest.mark.parametrize("shape, channel_dim, group", [((3, 5, 12), -1, 4), ((3, 12, 5), 1, 4), ((2, 6, 3, 4), 1, 2), ((4, 5, 9), -1, 1)])
def test_chunks_cover_every_sample_and_channel_group_with_their_parameters(monkeypatch, budget, shape, channel_dim, group):
    """chunked_map of rfft(x * P + Q) with P per (sample, group) and Q per group: x * P + Q, gradients by finite differences."""
    monkeypatch.setattr(chunked, "_CHUNK_ELEMENTS", budget)
    torch.manual_seed(0)
    groups = shape[channel_dim] // group
    x = torch.randn(shape, **F64, requires_grad=True)
    p = torch.randn(shape[0], groups, **F64, requires_grad=True)
    q = torch.randn(groups, 1, **F64, requires_grad=True)
    dim = 1 if channel_dim % len(shape) == len(shape) - 1 else -1  # a token axis
    fn = functools.partial(_scale_and_shift, channel_dim=channel_dim % len(shape), group=group, dim=dim)

    def mapped(x, p, q):
        return chunked.chunked_map(fn, x, [p, q], irfft=(shape[dim], dim, "backward"), channel_dim=channel_dim,
                                   group=group, per_channel=2, param_dims=[(0, 1), (None, 0)])

    view = [1] * len(shape)
    view[0], view[channel_dim] = shape[0], shape[channel_dim]
    want = x.detach() * p.detach().repeat_interleave(group, 1).reshape(view)
    want += q.detach().repeat_interleave(group, 0).reshape([1 if v == shape[0] and i == 0 else v for i, v in enumerate(view)])
    torch.testing.assert_close(mapped(x, p, q), want, rtol=0, atol=1e-12)
    assert gradcheck(mapped, (x, p, q), eps=1e-6, atol=1e-7, fast_mode=True)


def _mixers():
    return {
        "afno": lambda: scaled(AFNOMixer(8, num_blocks=4, sparsity_threshold=0.3, **F64)),
        "afno-kept": lambda: scaled(AFNOMixer(8, num_blocks=2, hard_thresholding_fraction=0.5, hidden_size_factor=2, **F64)),
        "aff": lambda: scaled(AFFMixer(8, num_blocks=4, **F64)),
    }


def _input(name: str) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn((3, 8, 5, 6) if name == "aff" else (3, 14, 8), **F64)


def _reference(name: str, m, x: torch.Tensor) -> np.ndarray:
    return (aff_reference if name == "aff" else afno_reference)(m, x.numpy())


@pytest.mark.parametrize("budget", [1, 20, 10**6])
@pytest.mark.parametrize("name", list(_mixers()))
def test_chunked_mixers_match_the_per_frequency_loop_and_finite_differences(monkeypatch, name, budget):
    monkeypatch.setattr(chunked, "_CHUNK_ELEMENTS", budget)
    torch.manual_seed(0)
    m = _mixers()[name]()
    x = _input(name)
    np.testing.assert_allclose(m(x).detach().numpy(), _reference(name, m, x), atol=1e-10)
    params = dict(m.named_parameters())
    fn = lambda x, *ps: functional_call(m, dict(zip(params, ps)), (x,))  # noqa: E731
    assert gradcheck(fn, (x.requires_grad_(), *params.values()), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("name", list(_mixers()))
def test_chunked_second_derivatives_with_several_chunks(monkeypatch, name):
    monkeypatch.setattr(chunked, "_CHUNK_ELEMENTS", 20)
    m = _mixers()[name]()
    x = _input(name)[:2, ..., :4].contiguous() if name == "aff" else _input(name)[:2, :6]
    params = dict(m.named_parameters())
    fn = lambda x, *ps: functional_call(m, dict(zip(params, ps)), (x,))  # noqa: E731
    assert gradgradcheck(fn, (x.requires_grad_(), *params.values()), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("name", ["afno", "aff", "causal", "fftnet"])
def test_backward_keeps_only_the_input_and_the_parameters(name):
    """What autograd saves for backward during the forward: nothing as large as a spectrum (``x.numel() / 2`` bins).

    FFTNet also keeps its context MLP's activations and per-sample filters, ``(B, h, F)``.
    """
    torch.manual_seed(0)
    m, x = {
        "afno": lambda: (AFNOMixer(16, num_blocks=4), torch.randn(2, 64, 16)),
        "aff": lambda: (AFFMixer(16, num_blocks=4), torch.randn(2, 16, 8, 8)),
        "causal": lambda: (CausalFourierMixer(16, 64), torch.randn(2, 64, 16)),
        "fftnet": lambda: (FFTNetMixer(16, 64, num_heads=2, hidden=8), torch.randn(2, 64, 16)),
    }[name]()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append((t.numel(), t.is_complex())) or t, lambda t: t):
        m(x.requires_grad_())
    spectra = [n for n, is_complex in saved if is_complex and n >= x.numel() // 4]
    assert not spectra, f"complex tensors of {spectra} elements saved (x has {x.numel()})"
    budget = x.numel() + sum(p.numel() for p in m.parameters()) + x.numel() // 4
    assert sum(n for n, _ in saved) <= budget, f"saved {sorted(saved)}, input + parameters {budget}"


@pytest.mark.parametrize("budget", [1, 50, 10**6])
@pytest.mark.parametrize("n, taps, p", [(9, 4, 12), (16, 16, 31), (5, 1, 5)])
def test_kernel_conv_is_the_linear_convolution_in_any_chunking(monkeypatch, budget, n, taps, p):
    monkeypatch.setattr(fft_autograd, "_KERNEL_CHUNK_ELEMENTS", budget)
    torch.manual_seed(0)
    x = torch.randn(3, n, 5, **F64, requires_grad=True)
    k = torch.randn(taps, 5, **F64, requires_grad=True)
    y = kernel_conv(x, k, p)
    want = direct_causal(x.detach().numpy(), k.detach().numpy())
    if p < n + taps - 1:  # a circle too short for the linear convolution: the circular one
        full = np.stack([np.fft.irfft(np.fft.rfft(x.detach().numpy(), p, axis=1) * np.fft.rfft(k.detach().numpy(), p, axis=0),
                                      p, axis=1)])[0]
        want = full[:, :n]
    np.testing.assert_allclose(y.detach().numpy(), want, atol=1e-12)
    assert gradcheck(lambda x, k: kernel_conv(x, k, p), (x, k), eps=1e-6, atol=1e-6, fast_mode=True)
    assert gradgradcheck(lambda x, k: kernel_conv(x, k, p), (x, k), eps=1e-6, atol=1e-6, fast_mode=True)
