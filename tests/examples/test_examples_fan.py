"""Smoke tests of the FAN / Fourier-head examples at tiny settings, plus checks of their helpers."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
