"""Smoke and consistency tests of the PDE examples (examples/*_fno.py, examples/demo.py).

Each example's ``main`` runs end to end with tiny data and model sizes (seconds), writes
its PNG and results.json, and reports errors that an independent computation (numpy,
from the saved checkpoint and the cached data) reproduces.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES_DIR))

import _common  # noqa: E402
import burgers_fno  # noqa: E402
import darcy_fno  # noqa: E402
import demo  # noqa: E402
import navier_stokes_fno  # noqa: E402

from operators.datasets.burgers import burgers  # noqa: E402
from operators.datasets.darcy import darcy  # noqa: E402
from operators.datasets.navier_stokes import navier_stokes_sequences  # noqa: E402
from operators.fno import FNO  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--epochs", "2", "--batch-size", "4", "--width", "8", "--layers", "1", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _check_outputs(results: dict, out: Path) -> None:
    png = Path(results["plot"])
    assert png.parent == out and png.read_bytes()[:8] == PNG_SIGNATURE
    saved = json.loads((out / "results.json").read_text())
    assert saved["parameters"] == results["parameters"]
    assert (out / "checkpoint" / "checkpoint.pt").is_file()


def _numpy_rel_l2(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over samples of ||pred - y||_2 / ||y||_2 on the grid points, in numpy float64."""
    with torch.no_grad():
        pred = model(x).double().numpy()
    diff = (pred - y.double().numpy()).reshape(len(x), -1)
    return float(np.mean(np.linalg.norm(diff, axis=1) / np.linalg.norm(y.double().numpy().reshape(len(x), -1), axis=1)))


def _reload(out: Path, model: torch.nn.Module, wrap=lambda m: m) -> torch.nn.Module:
    """The trained model from the example's checkpoint (the buffers hold the scaling statistics)."""
    wrapped = wrap(_common.Standardized(model, 0.0, 1.0, 1.0))
    state = torch.load(out / "checkpoint" / "checkpoint.pt", map_location="cpu", weights_only=True)
    wrapped.load_state_dict(state["model"])
    return wrapped.eval()


def test_burgers_example_reports_reproducible_errors(tmp_path):
    out, cache = tmp_path / "burgers", tmp_path / "cache"
    args = ["--n-train", "12", "--n-test", "4", "--resolution", "32", "--eval-resolutions", "64",
            "--solver-resolution", "128", "--modes", "6", "--out", str(out), "--cache-dir", str(cache), *TINY]
    results = burgers_fno.main(args)
    _check_outputs(results, out)
    assert set(results["test_rel_l2"]) == {"32", "64"}
    data = burgers(16, resolution=(32, 64), solver_resolution=128, cache_dir=cache, progress=False)
    model = _reload(out, FNO(1, 1, 6, hidden_channels=8, n_layers=1))
    for res in (32, 64):  # training grid and zero-shot grid, recomputed independently
        expected = _numpy_rel_l2(model, data[res].inputs[12:], data[res].targets[12:])
        assert results["test_rel_l2"][str(res)] == pytest.approx(expected, rel=1e-5)
    # --resume picks up the finished checkpoint: no further training, the same errors
    resumed = burgers_fno.main([*args, "--resume"])
    assert resumed["history"] == results["history"]
    assert resumed["test_rel_l2"] == pytest.approx(results["test_rel_l2"], rel=1e-6)


def test_darcy_example_reports_reproducible_errors(tmp_path):
    out, cache = tmp_path / "darcy", tmp_path / "cache"
    args = ["--n-train", "12", "--n-test", "4", "--resolution", "16", "--modes", "4",
            "--out", str(out), "--cache-dir", str(cache), *TINY]
    results = darcy_fno.main(args)
    _check_outputs(results, out)
    data = darcy(16, resolution=(16, 32), solver_resolution=32, cache_dir=cache, progress=False)
    model = _reload(out, FNO(1, 1, (4, 4), hidden_channels=8, n_layers=1))
    for res in (16, 32):
        expected = _numpy_rel_l2(model, data[res].inputs[12:], data[res].targets[12:])
        assert results["test_rel_l2"][str(res)] == pytest.approx(expected, rel=1e-5)


def test_navier_stokes_example_reports_reproducible_errors(tmp_path):
    out, cache = tmp_path / "ns", tmp_path / "cache"
    args = ["--n-train", "4", "--n-test", "2", "--resolution", "16", "--modes", "4", "--history", "3",
            "--rollout", "2", "--out", str(out), "--cache-dir", str(cache), *TINY]
    results = navier_stokes_fno.main(args)
    _check_outputs(results, out)
    fields = navier_stokes_sequences(6, n_steps=5, resolution=16, solver_resolution=16, cache_dir=cache,
                                     progress=False).fields[4:]  # (2, 6, 16, 16): the test trajectories
    model = _reload(out, FNO(3, 1, (4, 4), hidden_channels=8, n_layers=1), navier_stokes_fno.NextStep)
    x = torch.stack([fields[:, t : t + 3] for t in range(3)], 1).flatten(0, 1)  # every window, by hand
    y = torch.stack([fields[:, t + 3 : t + 4] for t in range(3)], 1).flatten(0, 1)
    assert results["one_step_rel_l2"] == pytest.approx(_numpy_rel_l2(model, x, y), rel=1e-5)
    # rollout step 1 is the one-step prediction from the first window of each trajectory
    first = _numpy_rel_l2(model, fields[:, :3], fields[:, 3:4])
    assert results["rollout_rel_l2"][0] == pytest.approx(first, rel=1e-5)
    persistence = np.linalg.norm((fields[:, 4] - fields[:, 2]).reshape(2, -1).double().numpy(), axis=1)
    persistence /= np.linalg.norm(fields[:, 4].reshape(2, -1).double().numpy(), axis=1)
    assert results["persistence_rollout_rel_l2"][1] == pytest.approx(persistence.mean(), rel=1e-6)
    f = fields.double().numpy().reshape(2, 6, -1)
    extrapolated = f[:, 2] + 2 * (f[:, 2] - f[:, 1])  # two steps past the last record t=2
    expected = np.mean(np.linalg.norm(extrapolated - f[:, 4], axis=1) / np.linalg.norm(f[:, 4], axis=1))
    assert results["extrapolation_rollout_rel_l2"][1] == pytest.approx(expected, rel=1e-6)
    assert all(math.isfinite(e) for e in results["rollout_rel_l2"])


def test_rollout_feeds_predictions_back():
    """A model ``next = w(t-1) + w(t)`` rolled out from (1, 1) gives the Fibonacci numbers."""
    model = torch.nn.Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    history = torch.ones(3, 2, 4, 4)
    out = navier_stokes_fno.rollout(model, history, 5, batch_size=2)
    expected = torch.tensor([2.0, 3.0, 5.0, 8.0, 13.0])
    torch.testing.assert_close(out, expected[None, :, None, None].expand(3, 5, 4, 4))


def test_next_step_adds_the_increment_to_the_last_record():
    inc = torch.nn.Conv2d(3, 1, 1)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(navier_stokes_fno.NextStep(inc)(x), x[:, 2:] + inc(x))


def test_demo_prints_headline(tmp_path, capsys):
    out = tmp_path / "demo"
    results = demo.main(["--n-train", "8", "--n-test", "4", "--resolution", "16", "--modes", "4",
                         "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *TINY])
    text = capsys.readouterr().out
    assert f"{results['parameters']:,}" in text
    assert f"{results['test_rel_l2']['16']:.2%} at 16x16" in text
    assert f"{results['test_rel_l2']['32']:.2%} zero-shot at 32x32" in text


@pytest.mark.parametrize("module", [burgers_fno, darcy_fno, navier_stokes_fno, demo], ids=lambda m: m.__name__)
def test_help(module, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_bad_option_is_rejected():
    with pytest.raises(SystemExit, match="--epochs must be >= 1, got 0"):
        burgers_fno.main(["--epochs", "0"])


def test_relative_l2_matches_numpy():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(5, 2, 7, 9, generator=gen), torch.randn(5, 2, 7, 9, generator=gen)
    p, t = pred.double().numpy().reshape(5, -1), target.double().numpy().reshape(5, -1)
    expected = np.linalg.norm(p - t, axis=1) / np.linalg.norm(t, axis=1)
    np.testing.assert_allclose(_common.relative_l2(pred, target, ndim=2).numpy(), expected, rtol=1e-12)


def test_standardized_scales_inputs_and_outputs():
    inner = torch.nn.Conv1d(1, 1, 1)
    model = _common.Standardized(inner, 2.0, 4.0, 0.5)
    x = torch.randn(3, 1, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), inner((x - 2.0) / 4.0) * 0.5)
    with pytest.raises(ValueError, match="in_std must be > 0, got 0.0"):
        _common.Standardized(inner, 0.0, 0.0, 1.0)


def test_format_table_aligns_columns():
    text = _common.format_table(("name", "error"), [("a", "1.5%"), ("long name", "12.25%")])
    lines = text.splitlines()
    assert lines[0] == "name        error"
    assert lines[1] == "---------  ------"
    assert lines[2] == "a            1.5%"  # numbers right-aligned
    assert lines[3] == "long name  12.25%"


def test_mean_spectrum_sums_to_mean_square():
    field = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    k, energy = _common.mean_spectrum(field, ndim=2)
    assert k[0] == 0 and len(k) == len(energy)
    assert math.isclose(energy.sum().item(), field.pow(2).mean().item(), rel_tol=1e-10)
