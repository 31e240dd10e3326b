"""examples/forecast.py: the quick summary's ranking of the two distributional heads, the progress option."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from tests.examples._load import load_example

forecast = load_example("forecast")
LINEAR, FOURIER = forecast.HEADS


def _rows(co2: tuple[float, float], sunspots: tuple[float, float] | None = None) -> list[dict]:
    rows = [{"series": "co2", "model": "Transformer", "mse": 0.01}]  # other rows do not matter
    for name, pair in (("co2", co2), ("sunspots", sunspots)):
        if pair is not None:
            rows += [{"series": name, "model": LINEAR, "mse": pair[0]}, {"series": name, "model": FOURIER, "mse": pair[1]}]
    return rows


def _expected_order(name: str) -> list[str]:
    full = forecast.FULL_MSE[name]
    return sorted(full, key=full.get)  # lower MSE first


def test_head_ranking_says_whether_the_quick_run_ranks_the_heads_as_the_full_run():
    best, worst = _expected_order("co2")
    low = {best: 0.5, worst: 0.7}
    agree = forecast.head_ranking(_rows((low[LINEAR], low[FOURIER])), quick=True)
    assert len(agree) == 1 and agree[0].startswith(f"this quick run ranks {best} ahead of {worst} on co2 test MSE")
    disagree = forecast.head_ranking(_rows((low[FOURIER], low[LINEAR])), quick=True)[0]
    assert disagree.startswith("this quick run does NOT rank") and "budget is too small" in disagree
    full = forecast.FULL_MSE["co2"]
    for text in (agree[0], disagree):
        assert f"{best} {full[best]:.4g}, {worst} {full[worst]:.4g}" in text and forecast.FULL_COMMAND in text


def test_head_ranking_covers_each_series_with_both_heads():
    texts = forecast.head_ranking(_rows((1.0, 2.0), (3.0, 4.0)), quick=False)
    assert [t.split(" on ")[1].split(" test")[0] for t in texts] == ["co2", "sunspots"]
    assert all(t.startswith("this run ") for t in texts)
    assert forecast.head_ranking([{"series": "co2", "model": LINEAR, "mse": 1.0}], quick=True) == []


def test_progress_option_defaults_to_terminal_only():
    assert forecast.parse_args([]).progress is None
    assert forecast.parse_args(["--no-progress"]).progress is False
    assert forecast.parse_args(["--quick", "--progress"]).progress is True


def test_a_redirected_log_gets_no_progress_bar(tmp_path, monkeypatch, capsys):
    # a sunspot-length stand-in: the data ship with statsmodels, an `examples` extra
    monkeypatch.setattr(forecast, "load_series", lambda _: 50 + 40 * np.sin(np.arange(309) * 2 * np.pi / 11))
    monkeypatch.setattr(forecast, "time_axis", lambda _: 1700.0 + np.arange(309))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rows = forecast.main(["--series", "sunspots", "--seeds", "1", "--epochs", "2", "--dim", "8", "--heads", "2",
                              "--layers", "1", "--out", str(tmp_path)])
    assert len(rows) == 2 + len(forecast.MODELS)
    assert "trainings" not in err.getvalue() and "seed 0" not in err.getvalue()
    out = capsys.readouterr().out
    assert "on sunspots test MSE" in out and forecast.FULL_COMMAND in out  # the verdict, whichever it is
