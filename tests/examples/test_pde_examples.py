"""Smoke and consistency tests of the PDE examples (examples/*_fno.py, examples/demo.py).

Each example's ``main`` runs end to end with tiny data and model sizes (seconds), writes
its PNG and results.json, and reports errors that an independent computation (numpy,
from the saved checkpoint and the cached data) reproduces. The command-line checks of
these examples and of ``specboost.py`` and ``shallow_water_sfno.py``: bad values and
``--resume`` under other options end in an argparse error naming the option, before any
data are generated.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from operators import FNO, Normalized
from operators.datasets import Normalizer, burgers, darcy, navier_stokes_sequences
from tests.examples._load import load_example

burgers_fno = load_example("burgers_fno")
darcy_fno = load_example("darcy_fno")
demo = load_example("demo")
navier_stokes_fno = load_example("navier_stokes_fno")
shallow_water_sfno = load_example("shallow_water_sfno")
specboost = load_example("specboost")

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


def _reload(out: Path, model: torch.nn.Module, wrap=lambda m: m, channels=(1, 1)) -> torch.nn.Module:
    """The trained model from the example's checkpoint (the buffers hold the normalisers' statistics)."""
    wrapped = wrap(Normalized(model, Normalizer(channels[0]), Normalizer(channels[1])))
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
    model = _reload(out, FNO(3, 1, (4, 4), hidden_channels=8, n_layers=1), navier_stokes_fno.NextStep, (3, 1))
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


def test_next_step_adds_the_increment_to_the_last_record():
    inc = torch.nn.Conv2d(3, 1, 1)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(navier_stokes_fno.NextStep(inc)(x), x[:, 2:] + inc(x))


@pytest.mark.parametrize("eval_resolution, zero_shot", [("16", 16), ("32", None)], ids=["coarser grid", "none"])
def test_demo_never_calls_the_training_grid_zero_shot(eval_resolution, zero_shot, tmp_path, shared_cache, capsys):
    results = demo.main(["--example", "burgers", "--n-train", "8", "--n-test", "4", "--resolution", "32",
                         "--eval-resolutions", eval_resolution, "--solver-resolution", "128", "--modes", "4",
                         "--out", str(tmp_path / "demo"), "--cache-dir", str(shared_cache), *TINY])
    line = next(line for line in capsys.readouterr().out.splitlines() if "test rel. L2 :" in line)
    assert f"{results['test_rel_l2']['32']:.2%} at 32 (training grid)" in line
    assert "zero-shot at 32" not in line
    if zero_shot is None:
        assert "zero-shot" not in line
    else:
        assert line.endswith(f"{results['test_rel_l2'][str(zero_shot)]:.2%} zero-shot at {zero_shot}")


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


# ---------------------------------------------------------------- command-line checks and --resume
BURGERS = ["--n-train", "12", "--n-test", "4", "--resolution", "32", "--eval-resolutions", "64",
           "--solver-resolution", "128", "--modes", "6", *TINY]
DARCY = ["--n-train", "12", "--n-test", "4", "--resolution", "16", "--modes", "4", *TINY]
NAVIER_STOKES = ["--n-train", "4", "--n-test", "2", "--resolution", "16", "--modes", "4", "--history", "3",
                 "--rollout", "2", *TINY]
# example module -> its data function (replaced by _no_data where nothing may be generated)
DATA_FUNCTIONS = {burgers_fno: "burgers", darcy_fno: "darcy", navier_stokes_fno: "navier_stokes_sequences",
                  specboost: "load_data"}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One data cache for the tests below (entries are keyed by every data parameter)."""
    return tmp_path_factory.mktemp("cache")


def _no_data(*args, **kwargs):
    raise AssertionError("data generated before the command-line options were checked")


def _error(capsys) -> str:
    """The argparse error line written to stderr."""
    return capsys.readouterr().err.rsplit("error: ", 1)[-1]


@pytest.mark.parametrize(
    "module, base, changed, expected",
    [
        (burgers_fno, BURGERS, ["--viscosity", "0.01", "--n-train", "11"],
         ["--viscosity was 0.1, now 0.01", "--n-train was 12, now 11"]),
        (darcy_fno, DARCY, ["--padding", "0.25", "--width", "6"],
         ["--padding was 0.0, now 0.25", "--width was 8, now 6"]),
        (navier_stokes_fno, NAVIER_STOKES, ["--rollout", "3", "--record-interval", "0.5"],
         ["--rollout was 2, now 3", "--record-interval was 1.0, now 0.5"]),
    ],
    ids=["burgers", "darcy", "navier_stokes"],
)
def test_resume_refuses_other_data_or_model_options(module, base, changed, expected, tmp_path, shared_cache, capsys,
                                                    monkeypatch):
    args = [*base, "--out", str(tmp_path / "out"), "--cache-dir", str(shared_cache)]
    module.main(args)
    capsys.readouterr()
    monkeypatch.setattr(module, DATA_FUNCTIONS[module], _no_data)
    with pytest.raises(SystemExit) as exc:
        module.main([*args, *changed, "--resume"])
    assert exc.value.code == 2
    error = _error(capsys)
    assert error.startswith("--resume:")
    for fragment in expected:  # each changed option with its old and new value
        assert fragment in error
    assert "--modes" not in error and "--epochs" not in error  # unchanged options are not listed


def test_resume_allows_options_that_do_not_change_the_run(tmp_path, shared_cache):
    out = tmp_path / "burgers"
    args = [*BURGERS, "--out", str(out), "--cache-dir", str(shared_cache)]
    first = burgers_fno.main(args)
    recorded = json.loads((out / "args.json").read_text())
    assert recorded["viscosity"] == 0.1 and recorded["n_train"] == 12 and recorded["solver_resolution"] == 128
    # progress bars, device and the extra test grids change neither the data nor the model
    resumed = burgers_fno.main([*args, "--resume", "--progress", "--device", "cpu", "--eval-resolutions", "16", "64"])
    assert resumed["history"] == first["history"]  # nothing trained again
    assert set(resumed["test_rel_l2"]) == {"16", "32", "64"}
    assert resumed["test_rel_l2"]["32"] == pytest.approx(first["test_rel_l2"]["32"], rel=1e-6)
    assert json.loads((out / "args.json").read_text()) == recorded


def test_fresh_run_over_a_previous_one_replaces_its_checkpoint(tmp_path, shared_cache):
    """Without --resume a rerun trains from scratch over the previous run's folder: its Trainer is built with
    overwrite=True (the previous checkpoint is set aside until the new run has written one), so no
    FileExistsError, and afterwards only the new run's checkpoint and args.json are left."""
    out = tmp_path / "burgers"
    args = [*BURGERS, "--out", str(out), "--cache-dir", str(shared_cache)]
    burgers_fno.main(args)
    old = torch.load(out / "checkpoint" / "checkpoint.pt", weights_only=True)["epoch"]
    second = burgers_fno.main([*args, "--n-train", "11"])
    assert second["history"][0]["epoch"] == 1  # trained from scratch, not continued
    assert json.loads((out / "args.json").read_text())["n_train"] == 11
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == ["checkpoint.pt", "metrics.jsonl"] or \
        sorted(p.name for p in (out / "checkpoint").iterdir()) == ["checkpoint.pt"]
    assert torch.load(out / "checkpoint" / "checkpoint.pt", weights_only=True)["epoch"] == old  # same epochs, new run


@pytest.mark.parametrize(
    "module, argv, option",
    [
        (burgers_fno, ["--epochs", "0"], "--epochs"),
        (burgers_fno, ["--n-train", "0"], "--n-train"),
        (burgers_fno, ["--width", "-3"], "--width"),
        (burgers_fno, ["--resolution", "64", "--modes", "40"], "--modes"),
        (burgers_fno, ["--resolution", "64", "--eval-resolutions", "16", "--modes", "12"], "--modes"),
        (burgers_fno, ["--eval-resolutions", "100"], "--eval-resolutions"),
        (burgers_fno, ["--solver-resolution", "1000"], "--resolution"),
        (burgers_fno, ["--lr", "-1"], "--lr"),
        (burgers_fno, ["--lr", "0"], "--lr"),
        (burgers_fno, ["--viscosity", "-1"], "--viscosity"),
        (burgers_fno, ["--seed", "-1"], "--seed"),
        (darcy_fno, ["--resolution", "16", "--modes", "9"], "--modes"),
        (darcy_fno, ["--padding", "-0.5"], "--padding"),
        (navier_stokes_fno, ["--history", "0"], "--history"),
        (navier_stokes_fno, ["--rollout", "-1"], "--rollout"),
        (navier_stokes_fno, ["--record-interval", "0.015"], "--record-interval"),
        (navier_stokes_fno, ["--resolution", "16", "--modes", "9"], "--modes"),
        (navier_stokes_fno, ["--viscosity", "0"], "--viscosity"),
    ],
    ids=lambda v: v.__name__ if hasattr(v, "__name__") else " ".join(v) if isinstance(v, list) else None,
)
def test_bad_option_is_rejected_before_data_generation(module, argv, option, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(module, DATA_FUNCTIONS[module], _no_data)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        module.main([*argv, "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert exc.value.code == 2
    assert _error(capsys).startswith(option)
    assert not out.exists()


@pytest.mark.parametrize(
    "module, argv, option",
    [
        (specboost, ["--n-train", "0"], "--n-train"),
        (specboost, ["--width", "0"], "--width"),
        (specboost, ["--stage1-epochs", "0"], "--stage1-epochs"),
        (specboost, ["--n-test", "0"], "--n-test"),
        (specboost, ["--modes", "17"], "--modes"),
        (specboost, ["--stage2-modes", "0"], "--stage2-modes"),
        (specboost, ["--stage2-width", "-1"], "--stage2-width"),
        (specboost, ["--epochs", "1"], "--epochs"),
        (specboost, ["--lr", "-1"], "--lr"),
        (specboost, ["--threads", "-1"], "--threads"),
        (shallow_water_sfno, ["--n-train", "0"], "--n-train"),
        (shallow_water_sfno, ["--hidden", "0"], "--hidden"),
        (shallow_water_sfno, ["--epochs", "0"], "--epochs"),
        (shallow_water_sfno, ["--batch-size", "0"], "--batch-size"),
        (shallow_water_sfno, ["--train-steps", "-2"], "--train-steps"),
        (shallow_water_sfno, ["--dt-hours", "0"], "--dt-hours"),
        (shallow_water_sfno, ["--spinup-hours", "-1"], "--spinup-hours"),
        (shallow_water_sfno, ["--nlat", "16", "--fno-modes", "9", "12"], "--fno-modes"),
        (shallow_water_sfno, ["--fno-modes", "8", "0"], "--fno-modes"),
    ],
    ids=lambda v: v.__name__ if hasattr(v, "__name__") else " ".join(v) if isinstance(v, list) else None,
)
def test_explicit_bad_value_is_rejected_not_replaced(module, argv, option, tmp_path, capsys):
    """An explicit 0 or negative value is an error naming the option (it used to become the default)."""
    for quick in ([], ["--quick"]):
        with pytest.raises(SystemExit) as exc:
            module.parse_args([*quick, *argv, "--out", str(tmp_path)])
        assert exc.value.code == 2
        assert _error(capsys).startswith(option)


def test_explicit_values_are_kept():
    assert specboost.parse_args(["--quick", "--n-test", "100", "--n-data", "300"]).n_test == 100
    assert specboost.parse_args(["--quick"]).n_test == 20
    assert specboost.parse_args([]).n_test == 100
    args = specboost.parse_args(["--quick", "--stage1-epochs", "1", "--epochs", "2", "--width", "3"])
    assert (args.stage_epochs, args.width, args.stage2_width) == ((1, 1), 3, 3)
    sw = shallow_water_sfno.parse_args(["--quick", "--n-train", "3", "--spinup-hours", "0"])
    assert (sw.n_train, sw.n_test, sw.spinup_hours) == (3, 4, 0.0)


SPECBOOST = ["--quick", "--n-data", "12", "--n-train", "8", "--n-test", "4", "--epochs", "3", "--stage1-epochs", "2",
             "--width", "4", "--modes", "3", "--stage2-modes", "5", "--layers", "1", "--batch-size", "4",
             "--device", "cpu"]


@pytest.fixture(scope="module")
def specboost_run(tmp_path_factory, shared_cache):
    """One tiny specboost.py run (stage 2 keeps more modes than stage 1): argv, summary, stdout."""
    out = tmp_path_factory.mktemp("specboost")
    argv = [*SPECBOOST, "--out", str(out), "--cache-dir", str(shared_cache)]
    threads, text = torch.get_num_threads(), io.StringIO()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(text):
            summary = specboost.main(argv)
    finally:
        torch.set_num_threads(threads)
    return argv, out, summary, text.getvalue()


def test_specboost_labels_the_kept_mode_it_uses(specboost_run):
    _, out, summary, text = specboost_run
    # E(|k| > k) is taken at the single FNO's highest kept mode (--modes 3 -> 2), and says so
    assert summary["frac_above_k"] == 2
    assert summary["highest_kept_mode"] == {"single FNO": 2, "SpecBoost stage 1": 2, "SpecBoost stage 2": 4}
    assert "n_modes=3 (single FNO and stage 1; highest kept mode 2), stage 2 n_modes=5 (highest kept mode 4)" in text
    assert "share of error energy above the single FNO's highest kept mode |k| > 2" in text
    saved = json.loads((out / "navier-stokes_results.json").read_text())
    assert saved["highest_kept_mode"] == summary["highest_kept_mode"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]  # atomic writes


def test_specboost_resume_refuses_other_options(specboost_run, capsys, monkeypatch):
    argv, out, _, _ = specboost_run
    recorded = json.loads((out / "navier-stokes" / "args.json").read_text())
    assert (recorded["quick"], recorded["stage2_modes"], recorded["n_test"]) == (True, 5, 4)
    monkeypatch.setattr(specboost, "load_data", _no_data)
    with pytest.raises(SystemExit) as exc:
        specboost.main([*argv, "--viscosity", "0.01", "--stage2-modes", "4", "--threads", "1", "--resume"])
    assert exc.value.code == 2
    error = _error(capsys)
    assert "--viscosity was 0.001, now 0.01" in error and "--stage2-modes was 5, now 4" in error
    assert "--threads" not in error  # harmless
    specboost.parse_args([*argv, "--threads", "1", "--resume"])  # the same run with another thread count: fine
