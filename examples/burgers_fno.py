"""Learn the solution operator of 1-D viscous Burgers with an FNO; zero-shot on finer grids.

    u_t + (u^2 / 2)_x = nu u_xx on the periodic unit interval,   u(., 0) -> u(., 1)

Data: :func:`operators.datasets.burgers.burgers` (FNO-paper set-up: nu = 0.1, initial
data from the Gaussian random field 625 (-Delta + 25 I)^-2, pseudo-spectral ETDRK4 solves
on 1024 points, subsampled; cached on disk after the first run). The first ``--n-train``
samples train an :class:`operators.FNO` (relative L2 loss, AdamW, cosine schedule) on
``--resolution`` points; the last ``--n-test`` are scored on that grid and, zero-shot
(same weights, no retraining), on every grid of ``--eval-resolutions``.

    python examples/burgers_fno.py --quick     # 300 train / 100 test, a minute or two on 2 CPU cores
    python examples/burgers_fno.py             # 1000 train / 200 test at 256, eval 256 / 512 / 1024

Outputs under ``--out`` (default runs/burgers; runs/burgers-quick with ``--quick``):
burgers.png (a test sample: input, truth, prediction, error, and the test-set error's
radial spectrum per grid), results.json, args.json (the options that define the run),
checkpoint/ (``--resume`` continues an interrupted run; it refuses options other than
those in args.json).
"""

from __future__ import annotations

import os

# Spinning OpenMP workers make multi-threaded runs on a busy machine many times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from operators import FNO  # noqa: E402
from operators.datasets import burgers  # noqa: E402
from operators.experiments import (  # noqa: E402
    HARMLESS_OPTIONS,
    apply_defaults,
    check_int_option,
    check_modes_option,
    check_number_option,
    check_resume,
    experiment_parser,
    prepare_run,
    resolution_experiment,
    run_options,
)

__all__ = ["main", "FULL", "QUICK"]

RUNS = Path(__file__).resolve().parents[1] / "runs"  # default output folders: runs/<name>
FULL = dict(n_train=1000, n_test=200, epochs=100, batch_size=20, lr=2e-3, width=64, modes=16, layers=4)
QUICK = dict(n_train=300, n_test=100, epochs=40, batch_size=20, lr=3e-3, width=32, modes=16, layers=4)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns the results written to ``<out>/results.json``."""
    parser = experiment_parser(__doc__, RUNS / "burgers", FULL, QUICK)
    parser.add_argument("--resolution", type=int, default=256, help="training grid (default 256)")
    parser.add_argument("--eval-resolutions", type=int, nargs="+", default=None,
                        help="test grids besides the training grid (default 2x and 4x of it)")
    parser.add_argument("--solver-resolution", type=int, default=None,
                        help="solver grid; every grid must divide it (default max(1024, finest grid))")
    parser.add_argument("--viscosity", type=float, default=0.1, help="nu (default 0.1)")
    args = apply_defaults(parser, parser.parse_args(argv), FULL, QUICK)
    if args.quick and args.out == parser.get_default("out"):  # a quick run never replaces a full run's results
        args.out = RUNS / "burgers-quick"
    res, grids = _check_grids(parser, args)  # grid size -> the option that asked for it
    check_number_option(parser, args, "viscosity")
    check_modes_option(parser, args.modes, grids)
    solver = args.solver_resolution
    options = run_options(args, harmless=HARMLESS_OPTIONS | {"eval_resolutions"})  # same data and model
    check_resume(parser, args.out, options, args.resume)
    device = prepare_run(args)

    start = time.perf_counter()
    data = burgers(
        args.n_train + args.n_test, resolution=tuple(sorted(grids)), solver_resolution=solver,
        viscosity=args.viscosity, seed=args.seed, cache_dir=args.cache_dir, progress=args.progress,
    )
    data_seconds = time.perf_counter() - start
    model = FNO(1, 1, args.modes, hidden_channels=args.width, n_layers=args.layers)
    summary = {
        "problem": f"Burgers, nu={args.viscosity:g}: u(., 0) -> u(., 1), periodic, solver grid {solver}",
        "data": f"{args.n_train} train / {args.n_test} test, trained on {res} points",
        "model": f"FNO 1-D: width {args.width}, modes {args.modes}, {args.layers} layers",
    }
    return resolution_experiment(
        title=f"Burgers (nu={args.viscosity:g}) with an FNO", data=data, train_resolution=res, ndim=1,
        model=model, args=args, device=device, summary=summary, data_seconds=data_seconds, options=options,
        plot_labels=("u(x, 0) (input)", "u(x, 1) (truth)", "prediction", "error"), plot_name="burgers.png",
    )


def _check_grids(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[int, dict[int, str]]:
    """Check the grids; fill in ``args.solver_resolution``; return the training grid and grid -> option."""
    check_int_option(parser, args, "resolution", 2)
    res = args.resolution
    if args.eval_resolutions is None:
        args.eval_resolutions = [2 * res, 4 * res]
    for r in args.eval_resolutions:
        if r < 2:
            parser.error(f"--eval-resolutions must be >= 2, got {r}")
    grids = {r: "--eval-resolutions" for r in args.eval_resolutions} | {res: "--resolution"}
    if args.solver_resolution is None:
        args.solver_resolution = max(1024, *grids)
    solver = args.solver_resolution
    if solver < 4 or solver % 2:
        parser.error(f"--solver-resolution must be even and >= 4, got {solver}")
    for r, source in sorted(grids.items()):
        if solver % r:
            parser.error(f"{source} {r} must divide the solver grid of {solver} points (--solver-resolution)")
    return res, grids


if __name__ == "__main__":
    main()
