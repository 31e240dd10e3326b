"""Smoke tests of the FAN / Fourier-head examples at tiny settings, plus checks of their helpers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tests.examples._load import load_example as _load


def test_periodic_extrapolation_runs_resumes_and_matches_parameter_counts(tmp_path, monkeypatch):
    ex = _load("periodic_extrapolation")
    argv = ["--tasks", "sin", "--seeds", "1", "--steps", "20", "--n-train", "200", "--n-test", "300",
            "--hidden", "16", "--out", str(tmp_path)]
    rows = ex.main(argv)
    assert [(r["task"], r["model"]) for r in rows] == [("sin", m) for m in ex.MODELS]
    for r in rows:
        assert math.isfinite(r["in_mse"]) and math.isfinite(r["ood_mse"])
    params = {r["model"]: r["params"] for r in rows if r["task"] == "sin"}
    assert abs(params["MLP"] - params["FAN"]) / params["FAN"] < 0.05  # "equal parameter count"
    assert (tmp_path / "extrapolation.png").stat().st_size > 0
    stored = json.loads((tmp_path / "results.json").read_text())
    assert len(stored["runs"]) == 3

    def no_training(*_, **__):
        raise AssertionError("finished runs must be resumed from results.json, not retrained")

    monkeypatch.setattr(ex, "train_one", no_training)
    assert ex.main(argv) == rows


def test_periodic_tasks_are_the_paper_functions():
    import torch

    ex = _load("periodic_extrapolation")
    t = torch.tensor([0.3, 1.7, -2.2], dtype=torch.float64)
    f5 = ex.TASKS["compound5"][0]
    saw = lambda u: u / math.pi - np.floor(u / math.pi + 0.5)  # noqa: E731
    want = sum(saw(n * t.numpy()) / n for n in range(1, 6))
    np.testing.assert_allclose(f5(t).numpy(), want)
    np.testing.assert_allclose(ex.TASKS["mod"][0](torch.tensor([-1.0, 7.5])).numpy(), [4.0, 2.5])
    assert ex.TASKS["sin"][1:] == (6 * math.pi, 18 * math.pi)


def test_constant_ood_reference_is_the_variance_out_of_domain():
    ex = _load("periodic_extrapolation")
    assert abs(ex.constant_ood_mse("mod", 40001) - 25 / 12) < 1e-2  # uniform on [0, 5): variance 25/12
    assert abs(ex.constant_ood_mse("sin", 40001) - 0.5) < 1e-2  # whole periods of sin: variance 1/2
    assert ex.parse_args([]).schedule == "cosine"
    with pytest.raises(SystemExit):
        ex.parse_args(["--schedule", "linear"])


def test_smoothness_metric_matches_a_naive_wrapped_filter():
    ex = _load("fourier_head_density")
    rng = np.random.default_rng(0)
    q = rng.random((3, 12))
    q /= q.sum(-1, keepdims=True)
    n = q.shape[-1]
    offsets = np.arange(-(n - 1), n)  # filter radius n - 1, wrapped around the bins
    want = np.zeros(3)
    for sigma in range(1, 101):
        kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
        kernel /= kernel.sum()
        smooth = sum(w * np.roll(q, -o, axis=-1) for o, w in zip(offsets, kernel))  # smooth[i] = sum w_o q[i + o]
        want += 6 / (np.pi**2 * sigma**2) * np.linalg.norm(q - smooth, axis=-1)
    np.testing.assert_allclose(ex.smoothness(q), want, rtol=1e-10)
    flat = np.full((1, 12), 1 / 12)
    np.testing.assert_allclose(ex.smoothness(flat), 0.0, atol=1e-15)


def test_true_pmfs_are_normalised_and_centred():
    ex = _load("fourier_head_density")
    centers = np.linspace(-1, 1, 101)[1::2]
    xy = np.array([[0.3, -0.2], [-0.5, 0.6]])
    for name in ex.DATASETS:
        p = ex.true_pmf(name, xy, centers)
        assert p.shape == (2, 50) and np.all(p >= 0)
        np.testing.assert_allclose(p.sum(-1), 1.0)
    gauss = ex.true_pmf("gaussian", xy, centers)
    assert abs(centers[gauss[0].argmax()] - (-0.2)) < 0.03  # mean y
    beta = ex.true_pmf("beta", xy, centers)
    np.testing.assert_allclose(beta[:, ::-1], beta)  # random sign: symmetric about 0


def test_density_split_is_sklearn_and_floor_is_the_papers_log_offset():
    import torch

    ex = _load("fourier_head_density")
    model_selection = pytest.importorskip("sklearn.model_selection")
    idx = np.arange(5000)
    train_ref, test_ref = model_selection.train_test_split(idx, test_size=0.2, random_state=42)
    test, train = ex.split(5000)
    np.testing.assert_array_equal(test, test_ref)
    np.testing.assert_array_equal(train, train_ref)

    args = ex.parse_args(["--bins", "50"])
    head = ex.build("fourier", args)[-1]
    x = torch.randn(3, 32, dtype=torch.float64)
    head = head.double()
    with torch.no_grad():
        logp = head(x)
        head.eps = 0.0
        p = head(x).exp()
    c = ex.PAPER_LOG_OFFSET
    want = torch.softmax(torch.log(p + c), dim=-1)  # the reference head: softmax of log(p + 1e-5)
    torch.testing.assert_close(logp.exp(), want, rtol=1e-10, atol=1e-12)


def test_fourier_head_density_runs(tmp_path):
    ex = _load("fourier_head_density")
    rows = ex.main(["--seeds", "1", "--epochs", "1", "--samples", "400", "--workers", "1", "--out", str(tmp_path)])
    assert len(rows) == 6
    for r in rows:
        assert r["kl"] > 0 and math.isfinite(r["kl"]) and r["smoothness"] > 0
    assert (tmp_path / "pmfs.png").stat().st_size > 0


def test_forecast_windows_keep_targets_inside_their_split():
    ex = _load("forecast")
    s = np.arange(100.0)
    x, y = ex.windows(s, 70, 85, ctx=10, horizon=5)
    assert x.shape == (11, 10) and y.shape == (11, 5)
    assert y.min() == 70 and y.max() == 84  # targets in [70, 85)
    np.testing.assert_array_equal(x[:, -1] + 1, y[:, 0])  # contexts end right before the targets


@pytest.mark.slow
def test_forecast_runs(tmp_path):
    ex = _load("forecast")
    rows = ex.main(["--epochs", "1", "--seeds", "1", "--dim", "8", "--heads", "2", "--layers", "1",
                    "--out", str(tmp_path)])
    assert {r["series"] for r in rows} == {"co2", "sunspots"}
    for r in rows:
        assert math.isfinite(r["mse"]) and r["mae"] > 0
    assert (tmp_path / "forecast.png").stat().st_size > 0


def test_fourier_head_cosine_schedule_decays_the_lr_to_zero_over_all_steps(adam_lrs):
    ex = _load("fourier_head_density")
    seen = adam_lrs
    args = ex.parse_args(["--samples", "50", "--epochs", "2", "--batch-size", "16", "--schedule", "cosine"])
    ex.train_one("gaussian", "linear", 1, args)
    steps = 2 * math.ceil(40 / 16)  # 40 training samples (80/20 split), 3 batches per epoch
    assert seen == pytest.approx([1e-3 * (1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps)], rel=1e-9)
    seen.clear()
    ex.train_one("gaussian", "linear", 1, ex.parse_args(["--samples", "50", "--epochs", "2", "--batch-size", "16"]))
    assert seen == [1e-3] * steps  # the paper's constant lr stays the default


def test_fourier_head_paper_gap_is_welchs_test():
    """The gap's s.e. and p against a hand computation of Welch's t-test (unequal variances)."""
    ex = _load("fourier_head_density")
    ours, paper = [0.20, 0.15, 0.18, 0.22, 0.17], (0.1774, 0.1694, 0.1094, 0.1273)
    r = ex.compare_to_paper(ours, paper)
    va, vb = np.var(ours, ddof=1) / 5, np.var(paper, ddof=1) / 4
    se = math.sqrt(va + vb)
    t = (np.mean(ours) - np.mean(paper)) / se
    dof = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 3)  # Welch-Satterthwaite
    assert r["gap"] == pytest.approx(np.mean(ours) - np.mean(paper), abs=1e-15)
    assert r["gap_se"] == pytest.approx(se, rel=1e-12)
    assert r["welch_p"] == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-9)
    assert math.isnan(ex.compare_to_paper([0.2], paper)["gap_se"])
    for key, seeds in ex.PAPER_KL_SEEDS.items():  # the quoted means are those of the per-seed figures
        assert len(seeds) == 4 and ex.PAPER_KL[key] == pytest.approx(sum(seeds) / 4)
    assert ex.PAPER_KL["gmm2", "fourier"] == pytest.approx(0.146, abs=5e-4)


FAN_EXAMPLES = ("fourier_head_density", "forecast", "periodic_extrapolation")
# example -> (its training function, argv of a first run, the settings a rerun changes)
RERUNS = {
    "fourier_head_density": ("train_one", ["--datasets", "gaussian", "--seeds", "1", "2", "--epochs", "1",
                                           "--samples", "300"], ["--seeds", "1", "--epochs", "2"]),
    "forecast": ("fit_and_forecast", ["--series", "sunspots", "--seeds", "2", "--epochs", "1"],
                 ["--seeds", "1", "--epochs", "2"]),
    "periodic_extrapolation": ("train_one", ["--tasks", "sin", "--seeds", "2", "--steps", "20", "--n-test", "300"],
                               ["--seeds", "1", "--steps", "30"]),
}


def _fake_training(*job):
    """Stands in for any of the three training functions: every field their ``main`` reads."""
    return {"job": [str(j) for j in job[:-1]], "kl": 0.1 + job[2] / 100, "smoothness": 0.1, "cpu_s": 0.0, "mse": 1.0, "mae": 1.0,
            "params": 10, "in_mse": 1.0, "ood_mse": 1.0, "first_forecast": [0.0] * 11, "pred": [0.0] * 300}


@pytest.mark.parametrize("name", FAN_EXAMPLES)
def test_rerun_under_other_settings_moves_finished_runs_aside_and_back(name, tmp_path, monkeypatch, capsys):
    ex = _load(name)
    train, first, second = RERUNS[name]
    out = ["--out", str(tmp_path)]
    monkeypatch.setattr(ex, train, _fake_training)
    if name == "forecast":  # a sunspot-length stand-in: the data ship with statsmodels, an `examples` extra
        monkeypatch.setattr(ex, "load_series", lambda _: 50 + 40 * np.sin(np.arange(309) * 2 * np.pi / 11))
        monkeypatch.setattr(ex, "time_axis", lambda _: 1700.0 + np.arange(309))
    ex.main(first + out)
    store = tmp_path / "results.json"
    first_text = store.read_text()
    assert len(json.loads(first_text)["runs"]) > 0
    capsys.readouterr()

    ex.main(first + second + out)  # other settings: the first runs must survive, byte for byte
    moved = list(tmp_path.glob("results-*.json"))
    assert len(moved) == 1 and moved[0].read_text() == first_text
    assert str(moved[0]) in capsys.readouterr().out
    second_text = store.read_text()
    assert json.loads(second_text)["config"] != json.loads(first_text)["config"]

    def no_training(*_, **__):
        raise AssertionError("the first settings' runs must be resumed from the file moved aside")

    monkeypatch.setattr(ex, train, no_training)
    ex.main(first + out)  # back to the first settings: their runs return, the second's go aside
    assert json.loads(store.read_text()) == json.loads(first_text)
    moved = list(tmp_path.glob("results-*.json"))
    assert len(moved) == 1 and moved[0].read_text() == second_text


@pytest.mark.parametrize("name", FAN_EXAMPLES)
def test_quick_runs_default_to_their_own_output_folder(name):
    ex = _load(name)
    full, quick = ex.parse_args([]).out, ex.parse_args(["--quick"]).out
    assert quick == full.with_name(f"{full.name}-quick")
    assert ex.parse_args(["--quick", "--out", "elsewhere"]).out == Path("elsewhere")


INVALID = [
    ("forecast", "--epochs", "0"), ("forecast", "--seeds", "0"), ("forecast", "--lr", "0"),
    ("forecast", "--lr", "nan"), ("forecast", "--dim", "30"), ("forecast", "--heads", "0"),
    ("forecast", "--layers", "-1"), ("forecast", "--dropout", "1"), ("forecast", "--bins", "1"),
    ("forecast", "--frequencies", "0"), ("forecast", "--batch-size", "0"), ("forecast", "--threads", "0"),
    ("periodic_extrapolation", "--steps", "0"), ("periodic_extrapolation", "--seeds", "-1"),
    ("periodic_extrapolation", "--n-train", "0"), ("periodic_extrapolation", "--n-test", "0"),
    ("periodic_extrapolation", "--hidden", "1"), ("periodic_extrapolation", "--layers", "0"),
    ("periodic_extrapolation", "--p-ratio", "0.5"), ("periodic_extrapolation", "--lr", "-0.001"),
    ("periodic_extrapolation", "--weight-decay", "-1"), ("periodic_extrapolation", "--batch-size", "0"),
    ("periodic_extrapolation", "--threads", "0"),
    ("fourier_head_density", "--epochs", "0"), ("fourier_head_density", "--seeds", "-2"),
    ("fourier_head_density", "--lr", "0"), ("fourier_head_density", "--gamma", "-1"),
    ("fourier_head_density", "--bins", "1"), ("fourier_head_density", "--frequencies", "0"),
    ("fourier_head_density", "--samples", "1"), ("fourier_head_density", "--batch-size", "0"),
    ("fourier_head_density", "--threads", "0"), ("fourier_head_density", "--workers", "-1"),
]


@pytest.mark.parametrize(("name", "option", "value"), INVALID, ids=[f"{n}{o}={v}" for n, o, v in INVALID])
def test_invalid_option_values_are_argparse_errors_naming_the_option(name, option, value, capsys):
    ex = _load(name)
    with pytest.raises(SystemExit) as exc:
        ex.parse_args([option, value])  # an explicit 0 is not replaced by the default either
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and option in err


@pytest.mark.parametrize("name", FAN_EXAMPLES)
def test_out_must_be_a_folder(name, tmp_path, capsys):
    ex = _load(name)
    path = tmp_path / "a_file"
    path.write_text("")
    with pytest.raises(SystemExit):
        ex.parse_args(["--out", str(path)])
    assert "--out" in capsys.readouterr().err
