"""The benchmark harness measures what it says: CPU time, ratio direction, thread count restored."""

from __future__ import annotations

import time

import torch

from benchmarks._harness import BenchContext, compare, one_thread_cpu_ms


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
