"""The benchmark harness measures what it says: CPU time, ratio direction, thread count restored.

Also the command line (option checks, default output names) and the mixers-quality
results cache key; nothing here runs a benchmark suite.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest
import torch

import benchmarks.__main__ as cli
from benchmarks import _harness as harness
from benchmarks._harness import BenchContext, Row, compare, one_thread_cpu_ms, print_table, rows_to_dicts


def _spin(seconds: float):
    """A call that burns about ``seconds`` of this thread's CPU time."""

    def fn():
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    return fn


def _sleep(seconds: float):
    return lambda: time.sleep(seconds)


def test_one_thread_cpu_counts_cpu_not_waiting_and_restores_threads():
    threads = torch.get_num_threads()
    ms = one_thread_cpu_ms({"spin": _spin(0.03), "sleep": _sleep(0.03)}, rounds=2)
    assert torch.get_num_threads() == threads
    assert ms["spin"] >= 25.0  # at least the CPU time burnt
    assert ms["sleep"] < 10.0  # sleeping costs (almost) no CPU time, whatever the wall clock says


def test_compare_ratio_is_baseline_over_ours():
    ctx = BenchContext(device=torch.device("cpu"), quick=True, min_run_time=0.05)
    row = compare("t", "case", "phase", ("fast", _spin(0.002)), ("slow", _spin(0.008)), ctx)
    assert row.ours == "fast" and row.baseline == "slow"
    assert row.baseline_value > row.ours_value
    assert 2.0 < row.ratio < 8.0  # about 4x, with generous margins for a shared machine


# ---------------------------------------------------------------- ratio direction per row


def test_ratio_lower_is_better_is_baseline_over_ours():
    time_row = Row("s", "c", "fwd", "ours", "base", 2.0, 5.0, "ms")  # ours takes 2 ms, the baseline 5 ms
    mem_row = Row("s", "c", "peak", "ours", "base", 40.0, 10.0, "MB")  # ours uses 4x the memory
    assert time_row.ratio == pytest.approx(2.5)  # 5 / 2: ours better
    assert mem_row.ratio == pytest.approx(0.25)  # 10 / 40: ours worse


def test_ratio_higher_is_better_is_ours_over_baseline():
    # the reviewer's rows: mqar-afno 6.375 % vs attention 24.075 %, digits-causal 77.33 % vs 21.66 %
    worse = Row("s", "mqar-afno", "test-acc", "afno", "attention", 6.375, 24.075, "%", higher_is_better=True)
    better = Row("s", "digits-causal", "test-acc", "causal", "attention", 77.33, 21.66, "%", higher_is_better=True)
    assert worse.ratio == pytest.approx(6.375 / 24.075)  # 0.2648: below 1, ours worse
    assert worse.ratio == pytest.approx(0.26480, abs=1e-5)
    assert better.ratio == pytest.approx(3.57018, abs=1e-5)  # 77.33 / 21.66: above 1, ours better
    assert math.isnan(Row("s", "c", "acc", "o", "b", 50.0, 0.0, "%", higher_is_better=True).ratio)


def test_rows_to_dicts_and_table_show_the_direction(capsys):
    rows = [
        Row("s", "c", "test-acc", "ours", "base", 80.0, 40.0, "%", higher_is_better=True),
        Row("s", "c", "train-time", "ours", "base", 4.0, 2.0, "s"),
    ]
    assert harness.ratio_legend(rows[1:]) == "ratio = baseline / ours"  # timing-only suites: title unchanged
    dicts = rows_to_dicts(rows)
    assert [d["higher_is_better"] for d in dicts] == [True, False]
    assert [d["ratio"] for d in dicts] == [pytest.approx(2.0), pytest.approx(0.5)]
    print_table(rows, title=f"s; {harness.ratio_legend(rows)}")
    out = capsys.readouterr().out
    assert "ratio > 1: ours better" in out
    header, _, acc, tim = out.strip().splitlines()[1:]
    assert header.split()[-2:] == ["better", "ratio"]
    assert acc.split()[-2:] == ["higher", "2.00x"] and tim.split()[-2:] == ["lower", "0.50x"]


def test_table_of_timing_rows_is_unchanged(capsys):
    rows = [Row("s", "c", "fwd", "ours", "base", 2.0, 5.0, "ms")]
    print_table(rows)
    header, _, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["case", "phase", "ours", "baseline", "ours", "baseline", "unit", "ratio"]
    assert row.split() == ["c", "fwd", "ours", "base", "2.000", "5.000", "ms", "2.50x"]


def test_mixers_quality_accuracy_rows_are_higher_is_better(monkeypatch):
    bq = pytest.importorskip("benchmarks.bench_mixers_quality")
    results = [
        {"task": t, "model": m, "test_acc": acc, "train_seconds": sec, "steps": 1, "params": 1000}
        for t in bq.STEPS
        for m, acc, sec in (("attention", 24.075, 10.0), ("afno", 6.375, 2.0))
    ]
    monkeypatch.setattr(bq, "MODELS", ("attention", "afno"))
    monkeypatch.setattr(bq, "_train_all", lambda ctx: results)
    rows = bq.run(BenchContext(device=torch.device("cpu"), quick=True))
    acc = next(r for r in rows if r.case == "mqar-afno" and r.phase == "test-acc")
    tim = next(r for r in rows if r.case == "mqar-afno" and r.phase == "train-time")
    assert acc.ratio == pytest.approx(6.375 / 24.075)  # was 24.075 / 6.375 = 3.78x, read as "ours better"
    assert tim.ratio == pytest.approx(5.0)  # attention 10 s / afno 2 s


# ---------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("option", "value"),
    [("--threads", "-2"), ("--threads", "0")] + [("--min-run-time", v) for v in ("0", "-1", "nan", "inf")],
)
def test_cli_rejects_bad_numbers_naming_the_option(option, value, capsys, monkeypatch):
    ran = []

    def fake_run_suite(name, ctx):
        ran.append(name)
        return {"suite": name, "rows": [], "extra": {}}

    monkeypatch.setattr(cli, "run_suite", fake_run_suite)
    monkeypatch.setattr(cli, "write_json", lambda path, payload: None)
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as info:
            cli.main(["fft", option, value])
    finally:
        torch.set_num_threads(threads)
    assert info.value.code == 2
    assert option in capsys.readouterr().err
    assert ran == []  # rejected before any suite runs


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_quick_default_output_differs_from_full(device):
    quick = harness.default_output_path("fft", device, quick=True)
    full = harness.default_output_path("fft", device, quick=False)
    assert full == Path("runs/bench-fft-cpu.json")
    assert quick == Path("runs/bench-fft-cpu-quick.json")
    assert harness.default_output_path("mixers", device, True, "png") == Path("runs/bench-mixers-cpu-quick.png")


def test_cli_quick_run_writes_its_own_default_file(monkeypatch):
    written = []
    monkeypatch.setattr(cli, "run_suite", lambda name, ctx: {"suite": name, "rows": [], "extra": {}})
    monkeypatch.setattr(cli, "write_json", lambda path, payload: written.append(Path(path)))
    threads = torch.get_num_threads()
    try:
        assert cli.main(["fft", "--quick", "--threads", "1"]) == 0
        assert cli.main(["fft", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert written == [Path("runs/bench-fft-cpu-quick.json"), Path("runs/bench-fft-cpu.json")]


def test_mixers_quick_plot_has_its_own_name(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    bm = pytest.importorskip("benchmarks.bench_mixers")
    monkeypatch.chdir(tmp_path)
    rows = [
        Row("mixers", f"{m}-N{n}", phase, m, "sdpa", 1.0 + n / 1e3, 2.0 + n / 1e3, "ms", {"N": n})
        for m in bm.MIXERS
        for n in (256, 1024)
        for phase in ("fwd", "fwd+bwd")
    ]
    cpu = torch.device("cpu")
    assert bm.plot(rows, cpu, quick=True) == str(Path("runs/bench-mixers-cpu-quick.png"))
    assert bm.plot(rows, cpu) == str(Path("runs/bench-mixers-cpu.png"))
    assert (tmp_path / "runs/bench-mixers-cpu-quick.png").is_file()
    assert (tmp_path / "runs/bench-mixers-cpu.png").is_file()


# ---------------------------------------------------------------- mixers-quality results cache


def _copy_library(tmp_path: Path) -> Path:
    """A copy of the library's sources under ``tmp_path`` (the real files are never touched)."""
    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "spectral", tmp_path / "spectral", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_mixers_quality_cache_sources_follow_the_imports():
    bq = pytest.importorskip("benchmarks.bench_mixers_quality")
    root = Path(__file__).resolve().parents[2]
    files = {p.relative_to(root).as_posix() for p in harness.imported_sources(("spectral.mixers",), root).values()}
    assert {"spectral/fft.py", "spectral/complex.py", "spectral/modes.py"} <= files  # modes: imported by fft
    assert {f"spectral/mixers/{p.name}" for p in (root / "spectral/mixers").glob("*.py")} <= files
    assert "spectral/kan.py" not in files  # not imported by the mixers
    assert bq._MODEL_MODULES == ("spectral.mixers",)


@pytest.mark.parametrize(
    ("changed", "changes_key"),
    [("fft.py", True), ("complex.py", True), ("modes.py", True), ("mixers/afno.py", True), ("kan.py", False)],
)
def test_mixers_quality_cache_key_follows_library_sources(changed, changes_key, tmp_path, monkeypatch):
    bq = pytest.importorskip("benchmarks.bench_mixers_quality")
    root = _copy_library(tmp_path)
    monkeypatch.setattr(bq, "_ROOT", root)
    ctx = BenchContext(device=torch.device("cpu"), quick=True)
    before = bq._cache_path("mqar", "afno", ctx)
    assert bq._cache_path("mqar", "afno", ctx) == before  # deterministic
    with open(root / "spectral" / changed, "a") as fh:
        fh.write("\n# changed\n")
    assert (bq._cache_path("mqar", "afno", ctx) != before) is changes_key
