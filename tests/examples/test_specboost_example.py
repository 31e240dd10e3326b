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


# ------------------------------------------------------------------------------------------ --protocol paper
PAPER = ["--protocol", "paper", "--quick", "--n-data", "12", "--n-train", "8", "--n-test", "4", "--epochs", "2",
         "--width", "4", "--modes", "6", "--resolution", "16", "--layers", "1", "--batch-size", "4", "--device", "cpu",
         "--no-progress"]


def test_paper_protocol_reports_reproducible_errors(tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    summary = example.main([*PAPER, "--rows", "a,b,c,d2,e,d2-previous", "--out", str(out), "--cache-dir", str(cache)])
    rows = summary["rows"]
    assert list(rows) == ["a", "b", "c", "d2", "a8", "d2-8", "d2-previous"]  # each model after the one it builds on
    for name in ("error_spectra", "sample"):
        assert (out / f"navier-stokes-paper_{name}.png").read_bytes()[:8] == PNG_SIGNATURE

    data = navier_stokes(12, resolution=16, solver_resolution=16, viscosity=1e-4, t_final=10.0, seed=0, batch_size=100,
                         cache_dir=cache, progress=False)
    x, y = data.inputs.double().numpy(), data.targets.double().numpy()
    xtr, ytr = x[:8], y[:8]
    x, y = (x - xtr.mean()) / xtr.std(ddof=1), y / ytr.std(ddof=1)
    xtr, ytr, xte, yte = x[:8], y[:8], x[8:], y[8:]
    root = out / "navier-stokes-paper"

    def run(model, inp: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.double().eval()(torch.from_numpy(inp)).numpy()

    a = SpecBoost.load(root / "a.pt", dtype=torch.float64)
    d2 = SpecBoost.load(root / "d2.pt", dtype=torch.float64)
    p1 = run(a.stages[0], xte)
    # (d) M=2: stage 1 is (a) unchanged; stage 2 is scaled by the std of (a)'s training residual
    s = float(np.std(ytr - run(a.stages[0], xtr), ddof=0))
    assert rows["d2"]["scale"] == pytest.approx(s, rel=1e-4)
    assert float(d2.stages[1].scale) == pytest.approx(s, rel=1e-5)
    p2 = p1 + s * run(d2.stages[1].stage, xte)
    assert rows["a"]["rel_l2"] == pytest.approx(_rel_l2(p1, yte), rel=1e-4)
    assert rows["d2"]["rel_l2"] == pytest.approx(_rel_l2(p2, yte), rel=1e-4)
    fit = rows["d2"]["stage2_residual_rel_l2"]  # stage 2 against the residual of (a)
    assert fit["test"] == pytest.approx(_rel_l2(p2 - p1, yte - p1), rel=1e-4)
    assert fit["train"] == pytest.approx(_rel_l2(s * run(d2.stages[1].stage, xtr), ytr - run(a.stages[0], xtr)), rel=1e-4)
    assert summary["d2_cut"] == pytest.approx(1 - _rel_l2(p2, yte) / _rel_l2(p1, yte), rel=1e-3)
    prev = SpecBoost.load(root / "d2-previous.pt", dtype=torch.float64)
    assert prev.stage_input == "input+previous" and prev.stages[1].in_channels == 2
    p3 = p1 + float(prev.stages[1].scale) * run(prev.stages[1].stage, np.concatenate([xte, p1], axis=1))
    assert rows["d2-previous"]["rel_l2"] == pytest.approx(_rel_l2(p3, yte), rel=1e-4)
    # baselines: (b) twice the epochs, (c) about twice the parameters; (e) keeps 8 modes
    assert (rows["a"]["epochs"], rows["b"]["epochs"], rows["d2"]["epochs"]) == ("2", "4", "2 + 2")
    assert rows["c"]["params"] == pytest.approx(2 * rows["a"]["params"], rel=0.2)
    assert rows["d2"]["params"] == 2 * rows["a"]["params"] and rows["a8"]["modes"] == 8
    assert rows["d2"]["time_s"] > rows["a"]["time_s"]
    records = [json.loads(line) for line in (root / "b" / "metrics.jsonl").read_text().splitlines()] \
        if (root / "b" / "metrics.jsonl").exists() else None
    assert records is None or max(r["epoch"] for r in records) == 4
    text = capsys.readouterr().out
    assert "(d) SpecBoost M=2 against (a)" in text or "(d) M=2 against (a)" in text
    assert "winner per unit of training time" in text


def test_paper_protocol_resume_reuses_trained_rows(tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = [*PAPER, "--out", str(out), "--cache-dir", str(cache)]
    first = example.main([*argv, "--rows", "a"])
    second = example.main([*argv, "--rows", "a,d2", "--resume"])
    assert second["rows"]["a"]["rel_l2"] == first["rows"]["a"]["rel_l2"]
    assert second["rows"]["a"]["time_s"] == first["rows"]["a"]["time_s"]
    assert "(a) FNO: reused" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # other data: refused before anything runs
        example.main([*argv, "--rows", "a", "--resume", "--viscosity", "1e-3"])
    assert "--viscosity was 0.0001, now 0.001" in capsys.readouterr().err


def test_per_unit_time_winner_and_quick_note(monkeypatch):
    rows = {"a": {"rel_l2": 0.30, "time_s": 60.0}, "b": {"rel_l2": 0.27, "time_s": 120.0},
            "c": {"rel_l2": 0.25, "time_s": 240.0}, "d2": {"rel_l2": 0.20, "time_s": 180.0}}
    winner, gains = example.per_unit_time_winner(rows)
    # cuts per CPU-minute of each row's own training: b 0.03 / 2, c 0.05 / 4, d2 0.10 / 3
    assert gains == pytest.approx({"b": 0.015, "c": 0.0125, "d2": 0.1 / 3})
    assert winner == "d2"
    worse = {k: {**r, "rel_l2": 0.31} if k != "a" else r for k, r in rows.items()}
    assert example.per_unit_time_winner(worse)[0] is None
    monkeypatch.setattr(example, "FULL_PAPER_RESULTS", {"a": 0.3, "b": 0.27, "d2": 0.2})
    assert example.quick_note(rows).startswith("this --quick run ranks the rows as the full run does")
    note = example.quick_note(worse)
    assert note.startswith("this --quick run is too small to show the full run's ranking")
    assert "d2 0.2000, b 0.2700, a 0.3000" in note and "--protocol paper" in note


@pytest.mark.parametrize("argv, option", [(["--rows", "a,x"], "--rows"), (["--resolution", "3"], "--resolution"),
                                          (["--modes", "9", "--resolution", "16"], "--modes"),
                                          (["--stage2-modes", "4"], "--stage2-modes"),
                                          (["--problem", "darcy"], "--protocol")])
def test_paper_protocol_bad_options(argv, option, tmp_path, capsys):
    with pytest.raises(SystemExit):
        example.parse_args(["--protocol", "paper", *argv, "--out", str(tmp_path)])
    assert option in capsys.readouterr().err
