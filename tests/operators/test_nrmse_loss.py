"""NRMSELoss against the numpy formula (per sample and channel RMS ratio, averaged over channels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from operators.losses import LpLoss, NRMSELoss


def _nrmse(pred: np.ndarray, target: np.ndarray, ndim: int) -> np.ndarray:
    """Per-sample NRMSE, float64: mean over channels of sqrt(mean e^2) / sqrt(mean y^2)."""
    axes = tuple(range(-ndim, 0))
    ratio = np.sqrt(np.mean((pred - target) ** 2, axis=axes)) / np.sqrt(np.mean(target**2, axis=axes))
    return ratio.reshape(len(pred), -1).mean(axis=1)


@pytest.mark.parametrize("shape, ndim", [((4, 1, 16), 1), ((3, 2, 8, 9), 2), ((2, 2, 3, 5, 6), 2),
                                         ((2, 1, 4, 5, 6), 3)])
def test_matches_numpy(shape, ndim, generator):
    pred = torch.randn(*shape, generator=generator, dtype=torch.float64)
    target = torch.randn(*shape, generator=generator, dtype=torch.float64) * torch.linspace(0.5, 2, shape[1]).view(
        1, -1, *[1] * (len(shape) - 2)).double()
    per_sample = _nrmse(pred.numpy(), target.numpy(), ndim)
    assert float(NRMSELoss(ndim)(pred, target)) == pytest.approx(per_sample.mean(), rel=1e-12)
    assert float(NRMSELoss(ndim, reduction="sum")(pred, target)) == pytest.approx(per_sample.sum(), rel=1e-12)


def test_one_channel_equals_relative_l2(generator):
    pred, target = torch.randn(2, 5, 1, 12, 10, generator=generator, dtype=torch.float64).unbind(0)
    torch.testing.assert_close(NRMSELoss(2)(pred, target), LpLoss(2)(pred, target), rtol=1e-12, atol=0)


def test_channels_weigh_equally_unlike_pooled_l2():
    target = torch.stack([torch.ones(4, 4), 100 * torch.ones(4, 4)])[None]  # (1, 2, 4, 4)
    pred = target.clone()
    pred[0, 0] += 0.5  # 50% error on the small channel, none on the large one
    assert float(NRMSELoss(2)(pred, target)) == pytest.approx(0.25)
    assert float(LpLoss(2)(pred, target)) < 0.01


def test_gradient_is_finite_at_zero_error(generator):
    target = torch.randn(2, 1, 8, 8, generator=generator, dtype=torch.float64)
    pred = target.clone().requires_grad_(True)
    NRMSELoss()(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and float(pred.grad.abs().max()) == 0.0
    assert torch.autograd.gradcheck(lambda p: NRMSELoss()(p, target), (target + 0.1).requires_grad_(True))


def test_bad_input():
    with pytest.raises(ValueError, match="ndim"):
        NRMSELoss(4)
    with pytest.raises(ValueError, match="reduction"):
        NRMSELoss(reduction="max")
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\) vs \(2, 1, 8, 7\)"):
        NRMSELoss()(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 7))
    with pytest.raises(ValueError, match="got shape"):
        NRMSELoss(2)(torch.zeros(8, 8), torch.zeros(8, 8))
    with pytest.raises(TypeError):
        NRMSELoss()(torch.zeros(2, 1, 8, 8, dtype=torch.int64), torch.zeros(2, 1, 8, 8, dtype=torch.int64))
