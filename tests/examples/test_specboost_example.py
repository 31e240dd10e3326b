"""Smoke and consistency test of examples/specboost.py with tiny data and models (seconds).

The reported test errors and the stage-2 residual fit are recomputed independently in
numpy from the saved models and the cached data.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from operators import FNO, SpecBoost
from operators.datasets import navier_stokes
from tests.examples._load import load_example

example = load_example("specboost")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N_DATA, N_TRAIN, N_TEST, WIDTH, MODES = 12, 8, 4, 4, 3


pytestmark = pytest.mark.usefixtures("one_thread")


def _rel_l2(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over samples of ||pred - target||_2 / ||target||_2, float64."""
    d, t = (pred - target).reshape(len(pred), -1), target.reshape(len(target), -1)
    return float(np.mean(np.linalg.norm(d, axis=1) / np.linalg.norm(t, axis=1)))


def test_specboost_example_reports_reproducible_errors(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["--quick", "--n-data", str(N_DATA), "--n-train", str(N_TRAIN), "--n-test", str(N_TEST), "--epochs", "3",
            "--stage1-epochs", "2", "--width", str(WIDTH), "--modes", str(MODES), "--layers", "1", "--batch-size", "4",
            "--out", str(out), "--cache-dir", str(cache), "--device", "cpu"]
    summary = example.main(argv)
    assert json.loads((out / "navier-stokes_results.json").read_text())["reduction"] == pytest.approx(summary["reduction"])
    for name in ("error_spectra", "sample"):
        assert (out / f"navier-stokes_{name}.png").read_bytes()[:8] == PNG_SIGNATURE
    # the epoch split: 2 epochs for stage 1, 3 - 2 = 1 for stage 2, 3 for the single FNO
    for run, epochs in (("single", 3), ("stage0", 2), ("stage1", 1)):
        records = [json.loads(line) for line in (out / "navier-stokes" / run / "metrics.jsonl").read_text().splitlines()]
        assert max(r["epoch"] for r in records) == epochs

    # data as the example prepares it: inputs standardised, targets scaled by the training std
    data = navier_stokes(N_DATA, resolution=32, solver_resolution=32, viscosity=1e-3, t_final=5.0, seed=0,
                         cache_dir=cache, progress=False)
    x, y = data.inputs.double().numpy(), data.targets.double().numpy()
    xtr, ytr = x[:N_TRAIN], y[:N_TRAIN]
    x, y = (x - xtr.mean()) / xtr.std(ddof=1), y / ytr.std(ddof=1)
    sets = {"train": (x[:N_TRAIN], y[:N_TRAIN]), "test": (x[N_DATA - N_TEST :], y[N_DATA - N_TEST :])}

    boost = SpecBoost.load(out / "navier-stokes" / "specboost.pt", dtype=torch.float64).eval()
    single = FNO(1, 1, (MODES, MODES), hidden_channels=summary["single_width"], n_layers=1)
    single.load_state_dict(torch.load(out / "navier-stokes" / "single.pt", weights_only=True))
    single = single.double().eval()

    def run(model, inp: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(inp)).numpy()

    xte, yte = sets["test"]
    p1 = run(boost.stages[0], xte)
    p2 = p1 + run(boost.stages[1], np.concatenate([xte, p1], axis=1))  # stage_input="input+previous"
    results = summary["results"]
    assert results["single FNO"]["rel_l2"] == pytest.approx(_rel_l2(run(single, xte), yte), rel=1e-4)
    assert results["SpecBoost stage 1"]["rel_l2"] == pytest.approx(_rel_l2(p1, yte), rel=1e-4)
    assert results["SpecBoost (2 stages)"]["rel_l2"] == pytest.approx(_rel_l2(p2, yte), rel=1e-4)
    for name, (inp, target) in sets.items():  # stage 2 against the residual of stage 1
        prev = run(boost.stages[0], inp)
        fit = _rel_l2(run(boost.stages[1], np.concatenate([inp, prev], axis=1)), target - prev)
        assert summary["stage2_residual_rel_l2"][name] == pytest.approx(fit, rel=1e-4)


def test_stage1_epochs_must_leave_stage_2_some(capsys):
    with pytest.raises(SystemExit):
        example.parse_args(["--quick", "--epochs", "4", "--stage1-epochs", "4"])
    assert "--stage1-epochs" in capsys.readouterr().err


def test_stage2_modes_and_width_set_stage_2_alone():
    args = example.parse_args(["--quick", "--width", "8", "--modes", "4", "--stage2-width", "4", "--stage2-modes", "8",
                               "--layers", "1"])
    single, boost = example.build_models(args)
    first, second = boost.stages
    assert (first.config.hidden_channels, tuple(first.config.n_modes)) == (8, (4, 4))
    assert (second.config.hidden_channels, tuple(second.config.n_modes)) == (4, (8, 8))
    assert tuple(single.config.n_modes) == (4, 4)
    # the single FNO's width is the one whose parameter count is closest to the ensemble's
    counts = {w: example.count(FNO(1, 1, (4, 4), hidden_channels=w, n_layers=1)) for w in range(8, 24)}
    target = example.count(boost)
    assert single.config.hidden_channels == min(counts, key=lambda w: abs(counts[w] - target))
    defaults = example.parse_args(["--quick"])
    assert (defaults.stage2_modes, defaults.stage2_width) == (defaults.modes, defaults.width)
