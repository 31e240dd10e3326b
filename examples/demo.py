"""Flagship demonstration run by `make demo`: an FNO learns a PDE solution operator.

Runs ``examples/darcy_fno.py --quick``: the Darcy-flow data (permeability -> pressure,
FNO-paper set-up) are generated with the library's finite-difference solver (cached on
disk after the first run), an :class:`operators.FNO` is trained on 32x32 grids with the
:class:`operators.Trainer`, and scored on held-out samples at 32x32 and, zero-shot, at
64x64. A few minutes on 2 CPU cores, data generation included (measured times and errors
of both settings: docs/guides/examples/demo.rst).

    python examples/demo.py                       # what `make demo` runs
    python examples/demo.py --example burgers     # the 1-D Burgers example instead
    python examples/demo.py --full                # the example's full (long) settings

Outputs (the example's plot, results.json, args.json, checkpoint/) go to ``--out``, by
default runs/demo (runs/demo-burgers, runs/demo-full, runs/demo-burgers-full for the
other choices): never the folder of a run of the example script itself. Any other option
is passed on to the example (see ``python examples/darcy_fno.py --help``).
"""

from __future__ import annotations

import os

# Spinning OpenMP workers make multi-threaded runs on a busy machine many times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

__all__ = ["main", "load_example", "default_out", "EXAMPLES", "RESULTS_PAGES", "RUNS"]

EXAMPLES = {"darcy": "darcy_fno.py", "burgers": "burgers_fno.py"}  # scripts beside this one
RUNS = Path(__file__).resolve().parents[1] / "runs"  # default output folders: runs/demo[-<example>][-full]
RESULTS_PAGES = {"darcy": "demo", "burgers": "burgers_fno"}  # docs/guides/examples/<page>.rst


def load_example(name: str) -> ModuleType:
    """The example script ``EXAMPLES[name]`` from this folder, loaded by its path (no ``sys.path`` edit)."""
    path = Path(__file__).resolve().with_name(EXAMPLES[name])
    spec = importlib.util.spec_from_file_location(f"spectral_operators_example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the chosen example; print the headline numbers; return its results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--example", choices=tuple(EXAMPLES), default="darcy", help="which example (default darcy)")
    parser.add_argument("--full", action="store_true", help="the example's full settings instead of --quick")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default runs/demo; runs/demo-burgers, runs/demo-full, "
                             "runs/demo-burgers-full for the other choices)")
    args, rest = parser.parse_known_args(argv)
    out = args.out or default_out(args.example, args.full)
    start = time.perf_counter()
    results = load_example(args.example).main(([] if args.full else ["--quick"]) + ["--out", str(out)] + rest)
    total = time.perf_counter() - start

    train_res = results["train_resolution"]
    errors = {int(r): e for r, e in results["test_rel_l2"].items()}
    fine = _zero_shot_grid(train_res, errors)

    def grid(r: int) -> str:
        return "x".join([str(r)] * results["ndim"])

    print("\n" + "=" * 72)
    print(f"{results['title']}  ({'full' if args.full else 'quick'} settings, device {results['device']})")
    print(f"  model        : {results['model_summary']}")
    print(f"  parameters   : {results['parameters']:,}")
    print(f"  data         : {results['n_train']} train / {results['n_test']} test samples "
          f"({results['data_seconds']:.1f} s to generate or load)")
    print(f"  training     : {results['train_wall_s']:.1f} s wall ({results['train_cpu_s']:.1f} s CPU), "
          f"{results['epochs']} epochs")
    zero_shot = "" if fine is None else f", {errors[fine]:.2%} zero-shot at {grid(fine)}"
    print(f"  test rel. L2 : {errors[train_res]:.2%} at {grid(train_res)} (training grid){zero_shot}")
    print(f"  plot         : {results['plot']}")
    print(f"  total        : {total:.1f} s")
    if not args.full:  # the quick setting's errors are higher than the full run's: say where those are
        print(f"  full setting : python examples/demo.py --example {args.example} --full; measured figures of "
              f"both settings: docs/guides/examples/{RESULTS_PAGES[args.example]}.rst")
    print("=" * 72)
    return results


def default_out(example: str, full: bool) -> Path:
    """``runs/demo``, with ``-<example>`` for an example other than darcy and ``-full`` for its full settings.

    >>> default_out("burgers", full=True).name
    'demo-burgers-full'
    """
    return RUNS / ("demo" + ("" if example == "darcy" else f"-{example}") + ("-full" if full else ""))


def _zero_shot_grid(train_res: int, grids: Iterable[int]) -> int | None:
    """The grid to quote as zero-shot: twice the training grid if scored, else the finest other; None if none."""
    others = [r for r in grids if r != train_res]
    if not others:
        return None
    return 2 * train_res if 2 * train_res in others else max(others)


if __name__ == "__main__":
    main()
