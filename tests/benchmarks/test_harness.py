"""The benchmark harness measures what it says: CPU time, ratio direction, thread count restored.

No test here reads a real clock or asserts a timing: the timers are replaced by scripted fakes,
so the checks hold on a loaded machine.

Also the command line (option checks, default output names) and the mixers-quality
results cache key; nothing here runs a benchmark suite.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

import benchmarks.__main__ as cli
from benchmarks import _harness as harness
from benchmarks._harness import BenchContext, Row, compare, one_thread_cpu_ms, print_table, rows_to_dicts


class _FakeCpuClock:
    """A process-CPU clock that advances only when a fake workload says so: no test reads real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float, calls: list | None = None):
        """A call that costs exactly ``seconds`` of CPU time (0 for one that only waits)."""

        def fn():
            if calls is not None:
                calls.append(torch.get_num_threads())
            self.now += seconds

        return fn


def test_one_thread_cpu_ms_takes_the_fastest_cpu_round_at_one_thread_and_restores_threads(monkeypatch):
    clock = _FakeCpuClock()
    monkeypatch.setattr(harness.time, "process_time", clock)
    costs = iter([0.5, 0.004, 0.003, 0.005])  # warm-up (not counted), then three rounds: fastest 3 ms
    seen: list[int] = []

    def varying():
        seen.append(torch.get_num_threads())
        clock.now += next(costs)

    threads = torch.get_num_threads()
    ms = one_thread_cpu_ms({"varying": varying, "wait": clock.work(0.0)}, rounds=3)
    assert ms == {"varying": pytest.approx(3.0), "wait": 0.0}  # a call that only waits costs no CPU time
    assert seen == [1, 1, 1, 1]  # warm-up and every round at one thread
    assert torch.get_num_threads() == threads


def test_one_thread_cpu_ms_restores_threads_when_a_call_fails(monkeypatch):
    monkeypatch.setattr(harness.time, "process_time", _FakeCpuClock())
    threads = torch.get_num_threads()

    def failing():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        one_thread_cpu_ms({"failing": failing}, rounds=2)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("quick, rounds", [(True, 1), (False, 3)])
def test_compare_alternates_rounds_keeps_each_fastest_and_reports_baseline_over_ours(quick, rounds, monkeypatch):
    """``compare`` with a scripted timer: rounds alternate ours/baseline, each keeps its fastest median,
    the row is in milliseconds, and the ratio is baseline / ours."""
    ours_s = [0.004, 0.002, 0.003][:rounds]
    base_s = [0.010, 0.012, 0.008][:rounds]
    script = iter(t for pair in zip(ours_s, base_s) for t in pair)
    calls = []

    def fake_time_median(fn, ctx):
        calls.append((fn, ctx.min_run_time))
        return next(script)

    monkeypatch.setattr(harness, "time_median", fake_time_median)
    ours_fn, base_fn = (lambda: None), (lambda: None)
    ctx = BenchContext(device=torch.device("cpu"), quick=quick, min_run_time=0.3)
    row = compare("t", "case", "phase", ("fast", ours_fn), ("slow", base_fn), ctx, params={"n": 4})
    assert [fn for fn, _ in calls] == [ours_fn, base_fn] * rounds
    assert all(t == pytest.approx(0.3 / rounds) for _, t in calls)  # the time budget is shared by the rounds
    assert (row.ours, row.baseline, row.unit, row.params) == ("fast", "slow", "ms", {"n": 4})
    assert row.ours_value == pytest.approx(min(ours_s) * 1e3)
    assert row.baseline_value == pytest.approx(min(base_s) * 1e3)
    assert row.ratio == pytest.approx(min(base_s) / min(ours_s))


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


def test_tensor_peak_bytes_counts_the_tensors_alive_together():
    """Two 4 MiB tensors alive at once, then freed: the peak is 8 MiB above what lived before (and no more)."""
    keep = torch.ones(2**20)  # alive before and after: not part of the peak

    def fn():
        a = torch.ones(2**20)
        b = a * 2
        return float(b[0] + keep[0])

    peak = harness.tensor_peak_bytes(fn)
    assert 8 * 2**20 <= peak <= 8 * 2**20 + 2**16


@pytest.mark.parametrize("share, met", [(1.4, True), (1.6, False)])
def test_mixers_memory_target_is_ours_at_most_one_and_a_half_times_sdpa(share, met, capsys):
    bm = pytest.importorskip("benchmarks.bench_mixers")
    rows = []
    for m in bm.MIXERS:
        base = bm._baseline(m)
        for n in (1024, bm.TARGET_N):
            p = {"N": n}
            rows.append(Row("mixers", f"{m}-N{n}", "fwd+bwd", m, base, 1.0, 100.0, "ms", p))
            rows.append(Row("mixers", f"{m}-N{n}", "peak-mem fwd+bwd", m, base, 60.0 * share, 60.0, "MB", p))
        rows.append(Row("mixers", f"{m}-N{bm.TARGET_N}", bm.TENSOR_PHASE, m, base, 1.0, 1.0, "MB", {"N": bm.TARGET_N}))
    out = bm.check_targets(rows)
    for m in bm.MIXERS:
        assert out[m]["memory met"] is met and out[m]["tensor memory met"] is True
        assert out[m]["memory (ours / sdpa) at 8192"] == pytest.approx(share)
    assert ("NOT met" in capsys.readouterr().out) is not met


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
