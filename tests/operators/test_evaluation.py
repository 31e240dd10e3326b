"""operators.evaluation against independent references: analytic k-step maps, hand-written loops, numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from operators.datasets import PDEData
from operators.evaluation import (
    format_table,
    mean_spectrum,
    plot_prediction,
    predict,
    relative_errors,
    resolution_study,
    rollout,
)
from operators.fno import FNO

F64 = torch.float64


class ChannelMap(nn.Module):
    """``u -> A u`` per grid point: a linear one-step model ``(B, hC, *grid) -> (B, C, *grid)``."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        self.matrix = nn.Parameter(matrix)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,bc...->bo...", self.matrix, u)


def test_rollout_history_1_is_the_matrix_power(generator):
    a = torch.randn(3, 3, generator=generator, dtype=F64) / 2
    u0 = torch.randn(5, 3, 4, 6, generator=generator, dtype=F64)
    traj = rollout(ChannelMap(a), u0, 4, batch_size=2)  # batches of 2, 2 and 1 trajectories
    assert traj.shape == (5, 4, 3, 4, 6)
    a_np, u_np = a.numpy(), u0.numpy()
    for k in range(1, 5):
        expected = np.einsum("oc,bchw->bohw", np.linalg.matrix_power(a_np, k), u_np)
        np.testing.assert_allclose(traj[:, k - 1].numpy(), expected, rtol=1e-12, atol=1e-12)


def test_rollout_history_2_linear_extrapolation_has_the_analytic_k_step_map(generator):
    """``u(t+1) = 2 u(t) - u(t-1)`` continues the last change: ``u(t+k) = u(t) + k (u(t) - u(t-1))``."""
    c = 2  # two channels per state, window [u(t-1) (2 channels), u(t) (2 channels)]
    eye = torch.eye(c, dtype=F64)
    model = ChannelMap(torch.cat([-eye, 2 * eye], dim=1))  # (C, 2C)
    prev, last = torch.randn(2, 3, c, 8, generator=generator, dtype=F64)
    traj = rollout(model, torch.cat([prev, last], 1), 5, history=2)
    assert traj.shape == (3, 5, c, 8)
    for k in range(1, 6):
        np.testing.assert_allclose(traj[:, k - 1].numpy(), (last + k * (last - prev)).numpy(), atol=1e-12)


def test_rollout_feeds_predictions_back():
    """A model ``next = w(t-1) + w(t)`` rolled out from (1, 1) gives the Fibonacci numbers."""
    model = nn.Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    out = rollout(model, torch.ones(3, 2, 4, 4), 5, history=2, batch_size=2)
    expected = torch.tensor([2.0, 3.0, 5.0, 8.0, 13.0])
    torch.testing.assert_close(out, expected[None, :, None, None, None].expand(3, 5, 1, 4, 4))


def test_rollout_equals_a_hand_written_loop_with_a_nonlinear_model(generator):
    torch.manual_seed(0)
    model = FNO(6, 2, (3, 3), hidden_channels=4, n_layers=1).double()  # history 3 of 2-channel states
    init = torch.randn(4, 6, 8, 8, generator=generator, dtype=F64)
    model.train()
    traj = rollout(model, init, 3, history=3, batch_size=3)
    assert model.training  # mode restored
    model.eval()
    window, states = init.clone(), []
    with torch.no_grad():
        for _ in range(3):
            nxt = model(window)
            states.append(nxt)
            window = torch.cat([window[:, 2:], nxt], 1)
    np.testing.assert_allclose(traj.numpy(), torch.stack(states, 1).numpy(), rtol=1e-12, atol=1e-12)


def test_rollout_bad_input_names_the_shapes():
    model = ChannelMap(torch.eye(2, dtype=F64))
    with pytest.raises(ValueError, match=r"history=2, got shape \(1, 3, 4\)"):
        rollout(model, torch.zeros(1, 3, 4, dtype=F64), 2, history=2)
    with pytest.raises(ValueError, match=r"maps a window of shape \(1, 2, 4\) to \(1, 2, 4\); with history=2"):
        rollout(model, torch.zeros(1, 2, 4, dtype=F64), 2, history=2)
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        rollout(model, torch.zeros(1, 2, 4, dtype=F64), 0)
    with pytest.raises(TypeError, match="initial must be a torch.Tensor"):
        rollout(model, np.zeros((1, 2, 4)), 1)
    assert rollout(model, torch.zeros(0, 2, 4, dtype=F64), 3).shape == (0, 3, 2, 4)


def test_relative_errors_match_numpy(generator):
    pred, target = torch.randn(2, 6, 3, 8, 8, generator=generator, dtype=F64)
    d, t = (pred - target).numpy().reshape(6, -1), target.numpy().reshape(6, -1)
    np.testing.assert_allclose(relative_errors(pred, target).numpy(), np.linalg.norm(d, axis=1) /
                               np.linalg.norm(t, axis=1), rtol=1e-12)
    np.testing.assert_allclose(relative_errors(pred.float(), target.float(), p=1).numpy(),
                               np.abs(d).sum(1) / np.abs(t).sum(1), rtol=1e-5)
    np.testing.assert_allclose(relative_errors(pred, target, p=math.inf).numpy(),
                               np.abs(d).max(1) / np.abs(t).max(1), rtol=1e-12)
    out = relative_errors(pred, target, norm=lambda u: u.flatten(1).abs().sum(1))
    assert out.dtype == F64 and out.shape == (6,)
    np.testing.assert_allclose(out.numpy(), np.abs(d).sum(1) / np.abs(t).sum(1), rtol=1e-12)


def test_relative_errors_bad_input():
    with pytest.raises(ValueError, match=r"got \(2, 3\) and \(2, 4\)"):
        relative_errors(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="target must have a floating or complex dtype, got torch.int64"):
        relative_errors(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="p must be >= 1"):
        relative_errors(torch.zeros(2, 3), torch.ones(2, 3), p=0.5)


def test_resolution_study_scores_every_grid_and_flags_zero_shot(generator):
    torch.manual_seed(0)
    model = FNO(1, 1, (3, 3), hidden_channels=4, n_layers=1).double()
    data = {r: PDEData(torch.randn(3, 1, r, r, generator=generator, dtype=F64),
                       torch.randn(3, 1, r, r, generator=generator, dtype=F64)) for r in (16, 8)}
    data[32] = (torch.randn(2, 1, 32, 32, generator=generator, dtype=F64),) * 2  # a plain pair
    study = resolution_study(model, data, train_resolution=8, batch_size=2)
    assert list(study.errors) == [8, 16, 32]
    with torch.no_grad():
        for r in (8, 16, 32):
            x, y = (data[r].inputs, data[r].targets) if r != 32 else data[r]
            p, t = model(x).numpy().reshape(len(x), -1), y.numpy().reshape(len(x), -1)
            np.testing.assert_allclose(study.errors[r].numpy(), np.linalg.norm(p - t, axis=1) /
                                       np.linalg.norm(t, axis=1), rtol=1e-10)
    rows = study.rows()
    assert [r[:3] for r in rows] == [("8x8", "training grid", 3), ("16x16", "zero-shot (2x)", 3),
                                     ("32x32", "zero-shot (4x)", 2)]
    assert rows[0][3] == f"{study.errors[8].numpy().mean():.3%}"
    assert "zero-shot (4x)" in str(study) and study.table().splitlines()[0].startswith("grid")
    assert study.mean()["16"] == pytest.approx(study.errors[16].numpy().mean())


def test_resolution_study_refusals():
    model = FNO(1, 1, 3, hidden_channels=4, n_layers=1)
    with pytest.raises(ValueError, match=r"train_resolution=64 is not one of the grids \[16\]"):
        resolution_study(model, {16: (torch.zeros(1, 1, 16), torch.zeros(1, 1, 16))}, train_resolution=64)
    with pytest.raises(TypeError, match=r"data_by_resolution\[16\] must be an \(inputs, targets\) pair"):
        resolution_study(model, {16: torch.zeros(1, 1, 16)})
    with pytest.raises(ValueError, match=r"returns \(1, 1, 16\) for targets of shape \(1, 2, 16\)"):
        resolution_study(model, {16: (torch.zeros(1, 1, 16), torch.zeros(1, 2, 16))})


def test_predict_batches_and_restores_mode():
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    x = torch.randn(7, 3)
    out = predict(model, x, batch_size=3)
    assert model.training
    torch.testing.assert_close(out, model[0](x).detach())  # dropout off: eval mode


def test_format_table_aligns_columns():
    text = format_table(("name", "error"), [("a", "1.5%"), ("long name", "12.25%")])
    assert text.splitlines() == ["name        error", "---------  ------", "a            1.5%",
                                 "long name  12.25%"]
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        format_table(("a", "b"), [("x",)])


def test_mean_spectrum_sums_to_the_mean_square(generator):
    field = torch.randn(4, 2, 16, 12, generator=generator, dtype=F64)
    k, energy = mean_spectrum(field, 2)
    assert k[0] == 0 and len(k) == len(energy)
    assert energy.sum().item() == pytest.approx((field.numpy() ** 2).mean(), rel=1e-12)
    x = torch.arange(32, dtype=F64) / 32  # one mode |k| = 3 of amplitude 1: energy 1/2 in shell 3
    k1, e1 = mean_spectrum(torch.cos(2 * math.pi * 3 * x)[None, None], 1)
    np.testing.assert_allclose(e1.numpy(), np.where(k1.numpy() == 3, 0.5, 0.0), atol=1e-15)


@pytest.mark.parametrize("shape", [(16,), (8, 8)], ids=["1d", "2d"])
def test_plot_prediction_writes_a_png(shape, tmp_path, generator):
    pytest.importorskip("matplotlib")
    truth, pred = torch.randn(2, *shape, generator=generator)
    spectra = {"error": mean_spectrum((pred - truth)[None, None], len(shape)),
               "truth": mean_spectrum(truth[None, None], len(shape))}
    path = plot_prediction(tmp_path / "sub" / "p.png", "title", truth, truth, pred, spectra)
    assert path == tmp_path / "sub" / "p.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["p.png"]  # no temporary file left
