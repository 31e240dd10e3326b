"""Command line: ``python -m benchmarks <suite|all|list> [--device cpu|cuda] [--json PATH] [--quick] [--check BASELINE]``."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import pkgutil
import sys
from pathlib import Path

import torch

from benchmarks._harness import (
    BenchContext,
    check_regressions,
    default_output_path,
    machine_info,
    print_table,
    ratio_legend,
    rows_to_dicts,
    write_json,
)


def available_suites() -> list[str]:
    """Suite names, from the ``bench_*.py`` modules of this package."""
    here = str(Path(__file__).parent)
    return sorted(m.name[len("bench_"):].replace("_", "-") for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_"))


def run_suite(name: str, ctx: BenchContext) -> dict:
    module = importlib.import_module("benchmarks.bench_" + name.replace("-", "_"))
    torch.manual_seed(ctx.seed)
    ctx.extra = {}
    rows = module.run(ctx)
    kind = "quick" if ctx.quick else "full"
    print_table(rows, title=f"{name} on {ctx.device} ({kind}); {ratio_legend(rows)}")
    return {"suite": name, "rows": rows_to_dicts(rows), "extra": ctx.extra}


def report_check(results: dict, baseline: dict, baseline_name: str, tolerance: float = 0.10) -> int:
    """Print the ratio check of ``results`` against ``baseline``; 1 if any ratio regressed by more than ``tolerance``."""
    found = check_regressions(results, baseline, tolerance)
    print(f"\n== check against {baseline_name}: {found['compared']} rows compared, "
          f"a ratio more than {tolerance:.0%} below the baseline's fails ==")
    for key, old, new in found["regressions"]:
        print(f"REGRESSION {'/'.join(key)}: ratio {old:.2f}x -> {new:.2f}x ({new / old - 1:+.0%})")
    for key in found["new"]:
        print(f"new row (not in the baseline) {'/'.join(key)}")
    for key in found["missing"]:
        print(f"missing row (only in the baseline) {'/'.join(key)}")
    print(f"{len(found['regressions'])} regression(s)" if found["regressions"] else "no regressions")
    return 1 if found["regressions"] else 0


def main(argv: list[str] | None = None) -> int:
    suites = available_suites()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run benchmark suites (the bench_*.py modules of this package): print a table per suite\n"
                    "and write the results, with a description of the machine, to a JSON file.",
        epilog="examples:\n"
               "  python -m benchmarks list                  # the suite names\n"
               "  python -m benchmarks mixers --threads 1    # one suite on one CPU thread\n"
               "  python -m benchmarks all --quick           # every suite, short smoke runs\n"
               "  python -m benchmarks fno --device cuda --json runs/fno-gpu.json\n"
               "  python -m benchmarks fno --check runs/bench-fno-cpu.json  # exit 1 if a ratio fell > 10%",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suite", help=f"one of {suites}, 'all' (every suite), or 'list' (print the suite names)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the benchmarks run (default cpu; cuda needs a visible GPU, and runs with TF32 off)")
    parser.add_argument(
        "--json",
        default=None,
        help="write the results here (default runs/bench-<suite>-<device>.json, with --quick ...-<device>-quick.json)",
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer cases and shorter timing, --min-run-time 0.2 s (smoke runs; make gpu-check)")
    parser.add_argument("--min-run-time", type=float, default=None,
                        help="seconds of timing per measurement, > 0 (default 0.5; --quick 0.2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for CPU runs, >= 1 (default: torch's own, all cores unless "
                             "OMP_NUM_THREADS says otherwise; the README's CPU mixer figures use --threads 1)")
    parser.add_argument("--check", default=None, metavar="BASELINE.json",
                        help="compare every ratio with the same row (suite/case/phase/ours/baseline) of a previous "
                             "results file; exit 1 if any fell by more than 10%% (new and missing rows are listed, "
                             "not failed)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.min_run_time is not None and not (math.isfinite(args.min_run_time) and args.min_run_time > 0):
        parser.error(f"--min-run-time must be a finite number of seconds > 0, got {args.min_run_time}")
    baseline = None
    if args.check is not None:
        try:
            baseline = json.loads(Path(args.check).read_text())
            check_regressions({"suites": []}, baseline)  # the format, before any suite runs
        except (OSError, ValueError) as err:
            parser.error(f"--check {args.check}: cannot read a results file ({err})")
    if args.suite == "list":
        print("\n".join(suites))
        return 0
    if args.suite != "all" and args.suite not in suites:
        parser.error(f"unknown suite {args.suite!r}; choose from {suites}, 'all' or 'list'")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but torch.cuda.is_available() is False")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    min_run = args.min_run_time if args.min_run_time is not None else (0.2 if args.quick else 0.5)
    ctx = BenchContext(device=device, quick=args.quick, min_run_time=min_run)
    names = suites if args.suite == "all" else [args.suite]
    results = {"machine": machine_info(device), "quick": args.quick, "suites": []}
    for name in names:
        results["suites"].append(run_suite(name, ctx))
    path = args.json or default_output_path(args.suite, device, args.quick)
    write_json(path, results)
    print(f"\nresults written to {path}")
    if baseline is not None:
        return report_check(json.loads(json.dumps(results, default=str)), baseline, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
