"""Benchmarks: ``python -m benchmarks <suite> [--device cpu|cuda] [--json PATH] [--quick]``.

A suite is a module ``benchmarks/bench_<suite>.py`` (``-`` in the suite name becomes
``_``) that defines ``run(ctx: BenchContext) -> list[Row]``. It times our code and its
baseline in the same process; the harness prints the table with the ratio and writes
the JSON record.
"""
