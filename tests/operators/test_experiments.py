"""operators.experiments against independent expectations: literal messages and values, files read back with json,
hashes from hashlib, errors recomputed in numpy from the saved checkpoint."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from operators import FNO, Normalized
from operators.datasets import Normalizer, PDEData
from operators.experiments import (
    HARMLESS_OPTIONS,
    apply_defaults,
    check_int_option,
    check_modes_option,
    check_number_option,
    check_resume,
    count_parameters,
    experiment_parser,
    load_runs,
    option_name,
    prepare_run,
    print_results,
    record_run,
    resolution_experiment,
    run_options,
    save_json,
    train_from_args,
    training_summary,
)

pytestmark = pytest.mark.usefixtures("one_thread")

FULL = dict(n_train=1000, n_test=200, epochs=100, batch_size=20, lr=2e-3, width=64, modes=16, layers=4)
QUICK = dict(n_train=300, n_test=100, epochs=40, batch_size=20, lr=3e-3, width=32, modes=16, layers=4)


def _error(capsys, call) -> str:
    """The argparse error message ``call()`` ends with (exit status 2)."""
    with pytest.raises(SystemExit) as exc:
        call()
    assert exc.value.code == 2
    return capsys.readouterr().err.rsplit("error: ", 1)[-1].strip()


def _parser() -> argparse.ArgumentParser:
    return experiment_parser("test", "runs/test", FULL, QUICK)


# ------------------------------------------------------------------------------------------------ options
def test_option_name():
    assert option_name("n_train") == "--n-train"
    assert option_name("lr") == "--lr"


@pytest.mark.parametrize(
    "value, minimum, message",
    [(0, 1, "--epochs must be an int >= 1, got 0"), (-1, 0, "--epochs must be an int >= 0, got -1"),
     (2.5, 1, "--epochs must be an int, got float 2.5"), (True, 1, "--epochs must be an int, got bool True")],
)
def test_check_int_option_names_the_option(value, minimum, message, capsys):
    p = argparse.ArgumentParser()
    error = _error(capsys, lambda: check_int_option(p, argparse.Namespace(epochs=value), "epochs", minimum))
    assert error == message


def test_check_int_option_returns_good_values():
    args = argparse.Namespace(epochs=3, seed=0)
    p = argparse.ArgumentParser()
    assert check_int_option(p, args, "epochs") == 3
    assert check_int_option(p, args, "seed", 0) == 0
    assert check_int_option(p, args, "epochs", 1, max=3) == 3


@pytest.mark.parametrize(
    "value, kw, message",
    [(0.0, {}, "--lr must be > 0, got 0.0"), (-1.0, {}, "--lr must be > 0, got -1.0"),
     (math.nan, {}, "--lr must be finite, got nan"), (math.inf, {}, "--lr must be finite, got inf"),
     (-0.5, dict(min_open=False), "--lr must be >= 0, got -0.5"),
     (10.0, dict(min_open=False, max=10, max_open=True), "--lr must be >= 0 and < 10, got 10.0")],
)
def test_check_number_option_names_the_option(value, kw, message, capsys):
    p = argparse.ArgumentParser()
    assert _error(capsys, lambda: check_number_option(p, argparse.Namespace(lr=value), "lr", **kw)) == message


def test_check_number_option_returns_good_values():
    p = argparse.ArgumentParser()
    assert check_number_option(p, argparse.Namespace(lr=1e-3), "lr") == 1e-3
    assert check_number_option(p, argparse.Namespace(lr=0.0), "lr", min_open=False) == 0.0


@pytest.mark.parametrize("n, largest", [(16, 8), (15, 8), (17, 9), (2, 1)])
def test_check_modes_option_allows_up_to_half_the_grid(n, largest, capsys):
    p = argparse.ArgumentParser()
    check_modes_option(p, largest, {n: "--resolution"})  # (n + 1) // 2 by hand: fine
    error = _error(capsys, lambda: check_modes_option(p, largest + 1, {n: "--resolution", 64: "--eval"}))
    assert error.startswith(f"--modes={largest + 1} exceeds the {largest} modes a grid of {n} points (--resolution)")


def test_parser_help_states_both_defaults():
    text = " ".join(_parser().format_help().split())
    assert "training samples, the first ones generated (default 1000; --quick 300)" in text
    assert "batch size (default 20, with or without --quick)" in text
    assert "output folder (default runs/test)" in text
    helped = experiment_parser("test", "runs/x", FULL, QUICK, helps={"n_train": "training trajectories"})
    assert "training trajectories (default 1000; --quick 300)" in " ".join(helped.format_help().split())


@pytest.mark.parametrize("argv, expected", [([], FULL), (["--quick"], QUICK)], ids=["full", "quick"])
def test_apply_defaults_fills_unset_options(argv, expected):
    p = _parser()
    args = apply_defaults(p, p.parse_args(argv), FULL, QUICK)
    assert {k: getattr(args, k) for k in expected} == expected
    args = apply_defaults(p, p.parse_args([*argv, "--epochs", "7", "--lr", "0.5"]), FULL, QUICK)
    assert (args.epochs, args.lr, args.n_train) == (7, 0.5, expected["n_train"])  # explicit values win


@pytest.mark.parametrize(
    "argv, option",
    [(["--epochs", "0"], "--epochs"), (["--quick", "--n-train", "-3"], "--n-train"), (["--lr", "nan"], "--lr"),
     (["--lr", "0"], "--lr"), (["--seed", "-1"], "--seed"), (["--width", "0"], "--width")],
)
def test_apply_defaults_rejects_explicit_bad_values(argv, option, capsys):
    p = _parser()
    assert _error(capsys, lambda: apply_defaults(p, p.parse_args(argv), FULL, QUICK)).startswith(f"{option} must")


def test_apply_defaults_checks_only_the_options_a_parser_has():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--hidden", type=int)
    args = apply_defaults(p, p.parse_args(["--quick"]), {"hidden": 32}, {"hidden": 16})
    assert vars(args) == {"quick": True, "hidden": 16}


# ------------------------------------------------------------------------------------------------ run folders
def test_run_options_leaves_out_harmless_options_and_reads_back_as_json(tmp_path):
    args = argparse.Namespace(quick=True, device="cpu", out=tmp_path, cache_dir=None, resume=True, progress=False,
                              threads=2, n_train=12, lr=0.5, fno_modes=(8, 12), data=tmp_path / "a.h5")
    assert run_options(args) == {"data": str(tmp_path / "a.h5"), "fno_modes": [8, 12], "lr": 0.5, "n_train": 12}
    assert list(run_options(args)) == ["data", "fno_modes", "lr", "n_train"]
    assert "quick" in run_options(args, harmless=HARMLESS_OPTIONS - {"quick"})
    record_run(tmp_path, run_options(args))
    assert json.loads((tmp_path / "args.json").read_text()) == run_options(args)


def test_check_resume_lists_each_changed_option(tmp_path, capsys):
    (tmp_path / "args.json").write_text(json.dumps({"n_train": 12, "lr": 0.1, "gone": 1}))
    p = argparse.ArgumentParser()
    check_resume(p, tmp_path, {"n_train": 12, "lr": 0.1, "gone": 1}, True)  # the same options: fine
    check_resume(p, tmp_path, {"n_train": 11}, False)  # no --resume: nothing to check
    error = _error(capsys, lambda: check_resume(p, tmp_path, {"n_train": 11, "lr": 0.1, "new": "x"}, True))
    assert error.startswith(f"--resume: {tmp_path} was trained with other options (")
    assert "--gone was 1, now unset; --n-train was 12, now 11; --new was unset, now 'x'" in error
    assert "--lr" not in error


def test_check_resume_warns_when_a_checkpoint_has_no_args_json(tmp_path, capsys):
    p = argparse.ArgumentParser()
    check_resume(p, tmp_path, {"n_train": 1}, True)
    assert capsys.readouterr().err == ""  # nothing to resume, nothing to say
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "checkpoint.pt").write_bytes(b"")
    check_resume(p, tmp_path, {"n_train": 1}, True)
    assert capsys.readouterr().err.startswith(f"warning: {tmp_path / 'args.json'} is missing")


def _aside(store, config) -> str:
    return f"{store.stem}-{hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]}.json"


def test_load_runs_sets_other_settings_aside_and_brings_them_back(tmp_path, capsys):
    store = tmp_path / "results.json"
    a, b = {"steps": 10, "tasks": ["sin"]}, {"steps": 20, "tasks": ["sin"]}
    assert load_runs(store, a) == {} and not store.exists()
    save_json(store, {"config": a, "runs": {"sin/0": 1.5}})
    assert json.loads(store.read_text()) == {"config": a, "runs": {"sin/0": 1.5}}
    assert load_runs(store, a) == {"sin/0": 1.5}
    first = store.read_text()

    assert load_runs(store, b) == {}  # other settings: a's runs move aside, byte for byte
    assert not store.exists() and (tmp_path / _aside(store, a)).read_text() == first
    assert str(tmp_path / _aside(store, a)) in capsys.readouterr().out
    save_json(store, {"config": b, "runs": {"sin/0": 2.5}})
    assert load_runs(store, a) == {"sin/0": 1.5}  # a comes back, b goes aside
    assert store.read_text() == first
    assert json.loads((tmp_path / _aside(store, b)).read_text())["runs"] == {"sin/0": 2.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["results.json", _aside(store, b)])


def test_load_runs_merges_with_a_copy_already_set_aside(tmp_path):
    store = tmp_path / "runs.json"
    a, b = {"n": 1}, {"n": 2}
    (tmp_path / _aside(store, a)).write_text(json.dumps({"config": a, "runs": {"old": 1, "both": 0}}))
    save_json(store, {"config": a, "runs": {"new": 2, "both": 3}})
    assert load_runs(store, b) == {}
    assert json.loads((tmp_path / _aside(store, a)).read_text()) == {"config": a,
                                                                       "runs": {"old": 1, "both": 3, "new": 2}}


# ------------------------------------------------------------------------------------------------ training
def test_count_parameters_and_training_summary():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 5, bias=False))
    model[1].weight.requires_grad_(False)
    assert count_parameters(model) == 3 * 2 + 2
    assert training_summary({"wall_s": 1.25, "cpu_s": 2.0, "start_epoch": 0}, 4) == "1.2 / 2.0 (4 epochs)"
    assert training_summary({"wall_s": 3.0, "cpu_s": 2.06, "start_epoch": 2}, 4) == \
        "3.0 / 2.1 (4 epochs, resumed after epoch 2)"


def test_prepare_run_seeds_makes_the_folder_and_picks_the_device(tmp_path):
    args = argparse.Namespace(seed=5, out=tmp_path / "a" / "b", device="cpu")
    assert prepare_run(args) == torch.device("cpu")
    assert args.out.is_dir()
    torch.testing.assert_close(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(5)))


def _args(out, **kw) -> argparse.Namespace:
    base = dict(epochs=2, batch_size=4, lr=1e-2, seed=0, out=out, resume=False, progress=False, n_train=8)
    return argparse.Namespace(**(base | kw))


def test_train_from_args_records_the_run_and_resumes(tmp_path):
    x = torch.randn(12, 1, 16, generator=torch.Generator().manual_seed(0))
    y = 2 * x
    options = {"epochs": 2, "width": 1}
    trainer, timing = train_from_args(nn.Conv1d(1, 1, 1), (x[:8], y[:8]), {"test": (x[8:], y[8:])}, _args(tmp_path),
                                      "cpu", options=options)
    assert json.loads((tmp_path / "args.json").read_text()) == options
    assert (tmp_path / "checkpoint" / "checkpoint.pt").is_file()
    assert [row["epoch"] for row in trainer.history] == [1, 2] and timing["start_epoch"] == 0
    assert timing["wall_s"] >= 0 and timing["cpu_s"] >= 0
    again, timing = train_from_args(nn.Conv1d(1, 1, 1), (x[:8], y[:8]), {"test": (x[8:], y[8:])},
                                    _args(tmp_path, resume=True), "cpu", options=options)
    assert timing["start_epoch"] == 2 and again.history == trainer.history  # nothing trained again
    torch.testing.assert_close(again.model.weight, trainer.model.weight)


def test_print_results_prints_tables_and_writes_json(tmp_path, capsys):
    print_results("Title", {"parameters": "1,234"}, "the error table", tmp_path, {"a": 1, "path": tmp_path})
    text = capsys.readouterr().out
    assert "Title" in text and "1,234" in text and "the error table" in text
    assert text.rstrip().endswith(f"results: {tmp_path / 'results.json'}")
    assert json.loads((tmp_path / "results.json").read_text()) == {"a": 1, "path": str(tmp_path)}


def test_resolution_experiment_reports_errors_the_checkpoint_reproduces(tmp_path, capsys):
    g = torch.Generator().manual_seed(1)
    coeffs = torch.randn(10, 2, 3, generator=g)  # band-limited samples: the same functions on both grids

    def sampled(n: int) -> PDEData:
        t = torch.arange(n) / n * 2 * math.pi
        k = torch.arange(1, 4)
        u = (coeffs[:, 0, :, None] * torch.sin(k[:, None] * t) + coeffs[:, 1, :, None] * torch.cos(k[:, None] * t))
        u = u.sum(1, keepdim=True)
        return PDEData(inputs=u, targets=torch.roll(u, n // 8, -1), meta={})

    data = {16: sampled(16), 32: sampled(32)}
    out = tmp_path / "out"
    args = _args(out, n_train=6)
    results = resolution_experiment(
        title="Shift", data=data, train_resolution=16, ndim=1, model=FNO(1, 1, 4, hidden_channels=4, n_layers=1),
        args=args, device=torch.device("cpu"), summary={"model": "tiny FNO"}, data_seconds=0.5,
        options={"n_train": 6}, plot_name="shift.png",
    )
    model = Normalized(FNO(1, 1, 4, hidden_channels=4, n_layers=1), Normalizer(1), Normalizer(1))
    model.load_state_dict(torch.load(out / "checkpoint" / "checkpoint.pt", weights_only=True)["model"])
    model.eval()
    for r, d in data.items():
        with torch.no_grad():
            pred = model(d.inputs[6:]).double().numpy().reshape(4, -1)
        truth = d.targets[6:].double().numpy().reshape(4, -1)
        expected = np.mean(np.linalg.norm(pred - truth, axis=1) / np.linalg.norm(truth, axis=1))
        assert results["test_rel_l2"][str(r)] == pytest.approx(expected, rel=1e-5)
    assert (out / "shift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and results["plot"] == str(out / "shift.png")
    assert (results["n_train"], results["n_test"], results["epochs"], results["model_summary"]) == (6, 4, 2, "tiny FNO")
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results, default=str))
    assert json.loads((out / "args.json").read_text()) == {"n_train": 6}
    text = capsys.readouterr().out
    assert "Shift" in text and f"{results['test_rel_l2']['16']:.2%}" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_on_a_terminal_only() -> None:
    from operators.experiments import progress_bar

    log, tty = io.StringIO(), _Terminal()
    assert sum(progress_bar(range(5), file=log, desc="x")) == 10
    assert log.getvalue() == ""
    assert sum(progress_bar(range(5), file=tty, desc="x")) == 10
    assert "5/5" in tty.getvalue()
    forced = io.StringIO()
    list(progress_bar(range(3), progress=True, file=forced))
    assert "3/3" in forced.getvalue()
    silent = _Terminal()
    list(progress_bar(range(3), progress=False, file=silent))
    assert silent.getvalue() == ""
    with pytest.raises(TypeError, match="progress"):
        progress_bar(range(3), progress="yes")
