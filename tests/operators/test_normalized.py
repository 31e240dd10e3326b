"""Normalized: encode -> model -> decode in physical units, fitted from data, trained with the Trainer
(physical or normalised loss), saved and reloaded with identical outputs.

References: numpy statistics of the data, the wrapped model called on hand-standardised inputs,
the targets of a known linear map, the original model's outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from operators import FNO, Trainer
from operators.datasets import PDEData
from operators.datasets.normalizer import Normalizer
from operators.losses import LpLoss
from operators.normalized import Normalized
from operators.saving import load_model, model_spec, save_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _pairs(n=24, grid=(12, 12), seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, *grid, generator=g) * torch.tensor([3.0, 0.1]).view(1, 2, 1, 1) + 7.0
    y = torch.randn(n, 1, *grid, generator=g) * 250.0 - 1000.0
    return x, y


def _stats(t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    a = t.double().numpy()
    return a.mean(axis=(0, 2, 3)), a.std(axis=(0, 2, 3))


def test_forward_is_decode_model_encode():
    x, y = _pairs()
    inner = FNO(2, 1, (4, 4), hidden_channels=8, n_layers=2)
    model = Normalized(inner, Normalizer.fit(x), Normalizer.fit(y))
    (mx, sx), (my, sy) = _stats(x), _stats(y)
    z = (x.double().numpy() - mx.reshape(1, -1, 1, 1)) / sx.reshape(1, -1, 1, 1)
    ref = inner(torch.from_numpy(z).float()).double() * sy[0] + my[0]
    torch.testing.assert_close(model(x).double(), ref, rtol=1e-4, atol=1e-3)
    fine = model(x, output_shape=(24, 24))  # extra arguments reach the wrapped model
    assert fine.shape == (24, 1, 24, 24)
    only_inputs = Normalized(inner, Normalizer.fit(x), None)
    torch.testing.assert_close(only_inputs(x).double(), (ref - my[0]) / sy[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("source", ["tensors", "list", "pdedata", "dataset", "loader"])
def test_from_data_statistics_equal_numpy(source):
    x, y = _pairs(n=21)
    data = {"tensors": (x, y), "list": [x, y], "pdedata": PDEData(x, y), "dataset": TensorDataset(x, y),
            "loader": DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)}[source]
    model = Normalized.from_data(FNO(2, 1, (4, 4), hidden_channels=8, n_layers=1).double(), data, batch_size=5)
    for norm, t in ((model.input_normalizer, x), (model.target_normalizer, y)):
        assert norm.mean.dtype == torch.float64  # the model's dtype
        mean, std = _stats(t)
        np.testing.assert_allclose(norm.mean.numpy(), mean, rtol=1e-12)
        np.testing.assert_allclose(norm.std.numpy(), std, rtol=1e-12)


def test_normalized_loss_is_the_inner_loss_on_encoded_targets():
    x, y = _pairs()
    model = Normalized(FNO(2, 1, (4, 4), hidden_channels=8, n_layers=2), Normalizer.fit(x), Normalizer.fit(y))
    mse = nn.MSELoss()
    (mx, sx), (my, sy) = _stats(x), _stats(y)
    z = torch.from_numpy((x.double().numpy() - mx.reshape(1, -1, 1, 1)) / sx.reshape(1, -1, 1, 1)).float()
    y_encoded = torch.from_numpy((y.double().numpy() - my[0]) / sy[0]).float()
    expected = mse(model.model(z), y_encoded)
    torch.testing.assert_close(model.normalized_loss(mse)(model(x), y), expected, rtol=1e-4, atol=1e-6)
    assert model.normalized_loss()(model(x), y).ndim == 0  # default: relative L2


@pytest.mark.parametrize("normalized_units", [True, False], ids=["normalized-loss", "physical-loss"])
def test_trainer_learns_physical_units(normalized_units):
    """y = 400 x0 - 30 x1 + 900: a 1x1 conv can fit it exactly in normalised units."""
    x, _ = _pairs(n=64, grid=(4, 4))
    y = 400 * x[:, :1] - 30 * x[:, 1:] + 900
    model = Normalized.from_data(nn.Conv2d(2, 1, 1), (x, y))
    loss = model.normalized_loss(nn.MSELoss()) if normalized_units else LpLoss(1, 2.0, periodic=True)
    trainer = Trainer(model, epochs=60, batch_size=16, lr=0.05, loss=loss, device="cpu", verbose=False)
    trainer.fit((x, y))
    pred = model(x).detach()
    assert (pred - y).abs().max() < 0.02 * y.abs().mean()


def test_save_load_round_trip(tmp_path):
    x, y = _pairs()
    model = Normalized.from_data(FNO(2, 1, (4, 4), hidden_channels=8, n_layers=2), (x, y))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(model, tmp_path / "normalized.pt")
    again = load_model(tmp_path / "normalized.pt")
    assert isinstance(again, Normalized) and isinstance(again.model, FNO)
    assert torch.equal(again(x), model(x))
    for name, t in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], t), name
    spec = model_spec(model)
    assert spec["class"] == "Normalized" and spec["config"]["model"]["class"] == "FNO"
    assert spec["config"]["target_normalizer"] == {"channels": 1, "eps": 1e-6}
    blob = torch.load(tmp_path / "normalized.pt", weights_only=True)  # no pickled code
    assert blob["spec"] == spec

    half = Normalized(FNO(2, 1, (4, 4), hidden_channels=8, n_layers=1), None, Normalizer.fit(y, eps=1e-3)).double()
    save_model(half, tmp_path / "half.pt")
    again = load_model(tmp_path / "half.pt")
    assert again.input_normalizer is None and again.target_normalizer.eps == 1e-3
    assert again.target_normalizer.mean.dtype == torch.float64
    assert torch.equal(again(x.double()), half(x.double()))


def test_trainer_checkpoint_rebuilds_normalized(tmp_path):
    x, y = _pairs(n=8)
    model = Normalized.from_data(FNO(2, 1, (4, 4), hidden_channels=8, n_layers=1), (x, y))
    Trainer(model, epochs=1, batch_size=4, device="cpu", verbose=False, checkpoint_dir=tmp_path).fit((x, y))
    again = load_model(tmp_path / "checkpoint.pt")
    assert isinstance(again, Normalized)
    assert torch.equal(again(x), model(x))


def test_bad_arguments_are_named():
    x, y = _pairs()
    with pytest.raises(TypeError, match="Normalized: model must be an nn.Module, got function"):
        Normalized(lambda t: t)
    with pytest.raises(TypeError, match="Normalized: target_normalizer must be a Normalizer or None, got Tensor"):
        Normalized(nn.Identity(), None, y)
    model = Normalized(nn.Identity(), Normalizer.fit(x))
    with pytest.raises(ValueError, match=r"Normalizer.encode: expected x of shape \(B, 2, \*grid\), got \(24, 1, 12"):
        model(y)
    with pytest.raises(ValueError, match=r"element=1 does not index batch 0, a list of 1"):
        Normalized.from_data(nn.Identity(), TensorDataset(x))
    with pytest.raises(TypeError, match="loss must be callable, got str"):
        model.normalized_loss("mse")
