"""Bad constructor arguments and inputs: a named TypeError / ValueError showing the value or shape, never a raw one."""

from __future__ import annotations

import functools
import math

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

NAN, INF = float("nan"), math.inf


def gf(**kw):
    return GlobalFilterMixer(**{"dim": 8, "max_len": 16, **kw})


def fftnet(**kw):
    return FFTNetMixer(**{"dim": 8, "max_len": 16, "num_heads": 2, **kw})


def afno(**kw):
    return AFNOMixer(**{"dim": 8, "num_blocks": 2, **kw})


def aff(**kw):
    return AFFMixer(**{"channels": 8, "num_blocks": 2, **kw})


def causal(**kw):
    return CausalFourierMixer(**{"dim": 8, "max_len": 16, **kw})


def block(**kw):
    return MixerBlock(**{"dim": 8, "mixer": FNetMixer(), **kw})


def classifier(**kw):
    return SequenceClassifier(**{"vocab_size": 11, "num_classes": 3, "mixer": FNetMixer, "dim": 8, "depth": 1,
                                 "max_len": 16, **kw})


SIZES = [  # (constructor, argument): every size argument of every module
    (gf, "dim"), (gf, "max_len"), (fftnet, "dim"), (fftnet, "max_len"), (fftnet, "num_heads"), (fftnet, "hidden"),
    (afno, "dim"), (afno, "num_blocks"), (afno, "hidden_size_factor"), (aff, "channels"), (aff, "num_blocks"),
    (aff, "hidden_size_factor"), (causal, "dim"), (causal, "max_len"), (block, "dim"), (classifier, "vocab_size"),
    (classifier, "num_classes"), (classifier, "dim"), (classifier, "depth"), (classifier, "max_len"),
]


def _id(case):
    return f"{case[0].__name__}-{case[1]}"


@pytest.mark.parametrize("make,arg", SIZES, ids=[_id(c) for c in SIZES])
@pytest.mark.parametrize(
    "value,pattern",
    [("8", r"got str '8'"), (8.0, r"got float 8\.0"), (True, r"got bool True"), (NAN, r"got float nan")]
    + [(None, r"got NoneType None")],
    ids=["str", "float", "bool", "nan", "none"],
)
def test_sizes_of_the_wrong_kind_are_named_type_errors(make, arg, value, pattern):
    if arg == "hidden" and value is None:  # None means "dim" there
        assert make(hidden=None).hidden == 8
        return
    with pytest.raises(TypeError, match=rf"{arg} must be an int.*{pattern}"):
        make(**{arg: value})


@pytest.mark.parametrize("make,arg", SIZES, ids=[_id(c) for c in SIZES])
def test_sizes_below_one_are_named_value_errors(make, arg):
    with pytest.raises(ValueError, match=rf"{arg} must be an int >= 1, got 0"):
        make(**{arg: 0})


def test_reported_size_cases():
    with pytest.raises(TypeError, match="dim must be an int, got NoneType None"):
        GlobalFilterMixer(None, 8)
    with pytest.raises(ValueError, match="hidden must be an int >= 1, got 0"):
        FFTNetMixer(8, 16, num_heads=2, hidden=0)
    with pytest.raises(TypeError, match="hidden_size_factor must be an int, got bool True"):
        AFNOMixer(8, num_blocks=2, hidden_size_factor=True)
    with pytest.raises(ValueError, match="dim=10 must be a positive multiple of num_blocks=4"):
        AFNOMixer(10, num_blocks=4)
    with pytest.raises(ValueError, match="channels=6 must be a positive multiple of num_blocks=4"):
        AFFMixer(6, num_blocks=4)


@pytest.mark.parametrize(
    "make,kw,exc,pattern",
    [
        (block, {"mlp_ratio": "1"}, TypeError, r"mlp_ratio must be a real number, got str '1'"),
        (classifier, {"mlp_ratio": "1"}, TypeError, r"mlp_ratio must be a real number, got str '1'"),
        (block, {"mlp_ratio": 0.0}, ValueError, r"mlp_ratio must be > 0, got 0\.0"),
        (block, {"mlp_ratio": 0.05}, ValueError, r"dim \* mlp_ratio >= 1, got dim=8, mlp_ratio=0\.05"),
        (block, {"mlp_ratio": INF}, ValueError, r"mlp_ratio must be finite, got inf"),
        (block, {"dropout": 1.5}, ValueError, r"dropout must be >= 0 and <= 1, got 1\.5"),
        (block, {"dropout": NAN}, ValueError, r"dropout must be finite, got nan"),
        (gf, {"init_std": INF}, ValueError, r"init_std must be finite, got inf"),
        (gf, {"init_std": -0.1}, ValueError, r"init_std must be >= 0, got -0\.1"),
        (gf, {"init_std": "0.02"}, TypeError, r"init_std must be a real number, got str '0\.02'"),
        (afno, {"sparsity_threshold": NAN}, ValueError, r"sparsity_threshold must be finite, got nan"),
        (afno, {"sparsity_threshold": -1.0}, ValueError, r"sparsity_threshold must be >= 0, got -1\.0"),
        (afno, {"hard_thresholding_fraction": 0.0}, ValueError, r"hard_thresholding_fraction must be > 0 and <= 1"),
        (afno, {"hard_thresholding_fraction": INF}, ValueError, r"hard_thresholding_fraction must be finite"),
        (afno, {"hard_thresholding_fraction": True}, TypeError, r"hard_thresholding_fraction must be a real number"),
    ],
)
def test_non_finite_or_non_numeric_floats_are_named(make, kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make(**kw)


@pytest.mark.parametrize("make", [gf, fftnet, afno, aff, causal, block, classifier])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64, "float32"], ids=str)
def test_real_only_modules_refuse_a_complex_or_non_float_dtype(make, dtype):
    with pytest.raises(TypeError, match=r"dtype must be a real floating torch.dtype.*got"):
        make(dtype=dtype)


@pytest.mark.parametrize(
    "make,arg,allowed",
    [
        (gf, "boundary", r"\('circular', 'zero'\)"),
        (classifier, "pool", r"\('mean', 'last', 'none'\)"),
        (lambda **kw: FNetMixer(**kw), "fft_norm", r"\('forward', 'backward', 'ortho'\)"),
        (fftnet, "fft_norm", r"\('forward', 'backward', 'ortho'\)"),
        (afno, "fft_norm", r"\('forward', 'backward', 'ortho'\)"),
        (aff, "fft_norm", r"\('forward', 'backward', 'ortho'\)"),
    ],
)
@pytest.mark.parametrize("value,shown", [("bogus", "str 'bogus'"), (None, "NoneType None"), (1, "int 1")])
def test_every_choice_lists_the_allowed_values(make, arg, allowed, value, shown):
    with pytest.raises(ValueError, match=rf"{arg} must be one of {allowed}, got {shown}"):
        make(**{arg: value})


def test_mixer_block_checks_its_arguments_and_input():
    with pytest.raises(TypeError, match=r"MixerBlock: mixer must be an nn.Module, got type"):
        MixerBlock(8, FNetMixer)
    m = MixerBlock(8, GlobalFilterMixer(8, 16))
    with pytest.raises(ValueError, match=r"MixerBlock: expected x of shape \(B, N, 8\), got \(2, 5, 7\)"):
        m(torch.zeros(2, 5, 7))
    with pytest.raises(ValueError, match=r"MixerBlock: expected x of shape \(B, N, 8\), got \(5, 8\)"):
        m(torch.zeros(5, 8))
    with pytest.raises(TypeError, match=r"MixerBlock: x must have a real floating dtype, got torch.int64"):
        m(torch.zeros(2, 5, 8, dtype=torch.long))
    with pytest.raises(TypeError, match=r"MixerBlock: got x of dtype torch.float64 but the parameters have torch.float32"):
        m(torch.zeros(2, 5, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"MixerBlock: expected mask of shape \(2, 5\).*got \(2, 4\)"):
        m(torch.zeros(2, 5, 8), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"MixerBlock: x must be a torch.Tensor"):
        m([[0.0] * 8])


def test_sequence_classifier_checks_its_arguments_and_tokens():
    with pytest.raises(TypeError, match=r"mixer must be a factory called once per block.*got FNetMixer"):
        classifier(mixer=FNetMixer())
    with pytest.raises(TypeError, match=r"mixer must be a factory.*got str 'fnet'"):
        classifier(mixer="fnet")
    m = classifier(mixer=functools.partial(GlobalFilterMixer, 8, 16))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 11\).*got ids from 0 to 11 in tokens of shape \(2, 5\)"):
        m(torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 11]]))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 11\).*got ids from -1 to 4"):
        m(torch.tensor([[0, 1, 2, 3, 4], [-1, 1, 2, 3, 4]]))
    with pytest.raises(TypeError, match=r"tokens must be an integer tensor, got list"):
        m([[0, 1, 2]])
    with pytest.raises(TypeError, match=r"tokens must be an integer tensor, got torch.bool"):
        m(torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected tokens of shape \(B, N\) with N <= 16, got \(2, 3, 4\)"):
        m(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"mask must have dtype torch.bool"):
        m(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 5))
