"""Scaled SpecBoost stages: residual_scale against numpy, ScaledStage undone exactly, training equivalence, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from operators.fno import FNO
from operators.losses import LpLoss, NRMSELoss
from operators.specboost import SpecBoost
from operators.specboost_scaling import ScaledStage, residual_scale
from operators.training import fit_specboost_stage


def _fno(cin: int = 1, seed: int = 0) -> FNO:
    torch.manual_seed(seed)
    return FNO(cin, 1, (3, 3), hidden_channels=4, n_layers=1, dtype=torch.float64)


def test_residual_scale_is_the_population_std(generator):
    r = torch.randn(5, 2, 6, 7, generator=generator, dtype=torch.float64) * 0.3 + 0.1
    assert residual_scale(r) == pytest.approx(float(np.std(r.numpy(), ddof=0)), rel=1e-12)
    assert residual_scale(r.float()) == pytest.approx(float(np.std(r.numpy(), ddof=0)), rel=1e-6)
    # dividing by it gives unit variance
    assert float(np.var((r / residual_scale(r)).numpy())) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("bad, error", [(torch.ones(3, 4), ValueError), (torch.tensor([1.0]), ValueError),
                                        (torch.tensor([1.0, float("nan")]), ValueError),
                                        (torch.arange(4), TypeError), ([1.0, 2.0], TypeError)])
def test_residual_scale_rejects_bad_residuals(bad, error):
    with pytest.raises(error, match="residual"):
        residual_scale(bad)


def test_scaled_stage_multiplies_the_output(generator):
    g = _fno()
    x = torch.randn(3, 1, 12, 12, generator=generator, dtype=torch.float64)
    stage = ScaledStage(g, 0.37)
    with torch.no_grad():
        ref = 0.37 * g(x).numpy()
        np.testing.assert_allclose(stage(x).numpy(), ref, rtol=1e-15, atol=0)
        ref20 = 0.37 * g(x, output_shape=(20, 20)).numpy()  # FNO takes output_shape: passed on
        np.testing.assert_allclose(stage(x, output_shape=(20, 20)).numpy(), ref20, rtol=1e-15, atol=0)
    assert (stage.in_channels, stage.out_channels, stage.config) == (1, 1, g.config)
    assert stage.scale.dtype == torch.float64 and not stage.scale.requires_grad
    assert [name for name, _ in stage.named_parameters()] == [f"stage.{n}" for n, _ in g.named_parameters()]


class _Pointwise(nn.Module):
    """A stage without ``output_shape``: its output is Fourier-resampled."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, dtype=torch.float64)

    def forward(self, x):
        return self.conv(x)


def test_scaled_stage_resamples_a_stage_without_output_shape():
    torch.manual_seed(0)
    g = _Pointwise()
    # a band-limited input: its 1x1-conv image is band-limited, so Fourier resampling is exact
    t = torch.arange(8, dtype=torch.float64) / 8
    x = (torch.cos(2 * math.pi * t)[:, None] + torch.sin(4 * math.pi * t)[None, :])[None, None]
    t16 = torch.arange(16, dtype=torch.float64) / 16
    x16 = (torch.cos(2 * math.pi * t16)[:, None] + torch.sin(4 * math.pi * t16)[None, :])[None, None]
    with torch.no_grad():
        got = ScaledStage(g, 2.0)(x, output_shape=(16, 16))
        torch.testing.assert_close(got, 2.0 * g(x16), rtol=0, atol=1e-12)


def test_scaling_is_undone_exactly_in_the_ensemble(generator):
    x = torch.randn(6, 1, 10, 10, generator=generator, dtype=torch.float64)
    y = torch.randn(6, 1, 10, 10, generator=generator, dtype=torch.float64)
    boost = SpecBoost([_fno(seed=0)])
    with torch.no_grad():
        p0 = boost.stages[0](x).numpy()
    s = boost.residual_scale(x, y, batch_size=4)
    assert s == pytest.approx(float(np.std(y.numpy() - p0, ddof=0)), rel=1e-12)
    g = _fno(seed=1)
    boost.add_stage(g, scale=s)
    assert isinstance(boost.stages[1], ScaledStage) and boost.stages[1].stage is g
    with torch.no_grad():
        np.testing.assert_allclose(boost(x).numpy(), p0 + s * g(x).numpy(), rtol=1e-13, atol=1e-13)
        # the residual target of stage 1 is y - P_1: the stage predicts s * g, so g fits it divided by s
        z, r = boost.residual_targets(1, x, y)
        np.testing.assert_allclose(r.numpy(), y.numpy() - p0, rtol=1e-13, atol=1e-13)
    assert float(np.var((r / s).numpy())) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("loss", [LpLoss(2), NRMSELoss(2)], ids=["rel-l2", "nrmse"])
def test_a_scaled_stage_trains_as_its_stage_on_the_scaled_residual(loss, generator):
    """With a relative loss, loss(s G(z), r) == loss(G(z), r / s): same value, same gradients."""
    z = torch.randn(4, 1, 8, 8, generator=generator, dtype=torch.float64)
    r = 0.05 * torch.randn(4, 1, 8, 8, generator=generator, dtype=torch.float64)
    s = residual_scale(r)
    g = _fno(seed=2)
    scaled_loss = loss(ScaledStage(g, s)(z), r)
    grads = torch.autograd.grad(scaled_loss, list(g.parameters()))
    plain_loss = loss(g(z), r / s)
    plain = torch.autograd.grad(plain_loss, list(g.parameters()))
    torch.testing.assert_close(scaled_loss, plain_loss, rtol=1e-12, atol=0)
    for a, b in zip(grads, plain):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-15)


def test_fit_specboost_stage_trains_the_wrapped_stage_not_the_scale(generator):
    x = torch.randn(8, 1, 8, 8, generator=generator, dtype=torch.float64)
    y = torch.randn(8, 1, 8, 8, generator=generator, dtype=torch.float64)
    boost = SpecBoost([_fno(seed=0)])
    first = [p.detach().clone() for p in boost.stages[0].parameters()]
    boost.add_stage(_fno(seed=1), scale=0.5)
    before = [p.detach().clone() for p in boost.stages[1].stage.parameters()]
    fit_specboost_stage(boost, 1, (x, y), epochs=2, batch_size=4, device="cpu", verbose=False)
    assert float(boost.stages[1].scale) == 0.5
    assert all(torch.equal(a, b) for a, b in zip(first, boost.stages[0].parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before, boost.stages[1].stage.parameters()))


@pytest.mark.parametrize("mode", ["input", "input+previous"])
def test_save_load_keeps_the_scale(tmp_path, mode, generator):
    extra = 1 if mode == "input+previous" else 0
    boost = SpecBoost([_fno(seed=0)], stage_input=mode)
    boost.add_stage(_fno(1 + extra, seed=1), scale=0.125)
    boost.add_stage(_fno(1 + extra, seed=2))  # unscaled stages mix with scaled ones
    boost.save(tmp_path / "b.pt")
    back = SpecBoost.load(tmp_path / "b.pt", dtype=torch.float64)
    assert isinstance(back.stages[1], ScaledStage) and not isinstance(back.stages[2], ScaledStage)
    assert float(back.stages[1].scale) == 0.125
    x = torch.randn(2, 1, 8, 8, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(back(x), boost(x), rtol=0, atol=0)


def test_bad_scales_and_stages():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            ScaledStage(_fno(), bad)
    with pytest.raises(TypeError, match="scale"):
        ScaledStage(_fno(), "1")
    with pytest.raises(TypeError, match="stage"):
        ScaledStage(lambda z: z, 1.0)
    boost = SpecBoost([_fno()])
    with pytest.raises(ValueError, match="scale"):
        boost.add_stage(_fno(), scale=0.0)
    assert len(boost.stages) == 1
    with pytest.raises(ValueError, match="targets"):
        boost.residual_scale(torch.zeros(2, 1, 8, 8), torch.zeros(3, 1, 8, 8))
