"""Learn the Darcy-flow map from permeability to pressure with an FNO; zero-shot at 2x.

    -div(a grad u) = 1 on (0, 1)^2,   u = 0 on the boundary,   a -> u

Data: :func:`operators.datasets.darcy.darcy` (FNO-paper set-up: ``a = 12`` where a
Gaussian random field with covariance (-Delta + 9 I)^-2 is positive and 3 elsewhere;
second-order finite differences with scipy.sparse on a grid of ``2 * --resolution``
intervals; cached on disk after the first run). The first ``--n-train`` samples train
an :class:`operators.FNO` (relative L2 loss, AdamW, cosine schedule) on ``--resolution``
points per side; the last ``--n-test`` are scored on that grid and, zero-shot (same
weights, no retraining), on the grid twice as fine (the solver's own grid).

    python examples/darcy_fno.py --quick     # 32x32, 400 train / 100 test, a few minutes on 2 CPU cores
    python examples/darcy_fno.py             # 64x64, 1000 train / 200 test, eval at 64x64 and 128x128

Outputs under ``--out`` (default runs/darcy; runs/darcy-quick with ``--quick``, so
neither replaces the other's results): darcy.png (a test sample: permeability, true and
predicted pressure, error, and the test-set error's radial spectrum per grid),
results.json, args.json (the options that define the run), checkpoint/ (``--resume``
continues an interrupted run; it refuses options other than those in args.json).
"""

from __future__ import annotations

import os

# Spinning OpenMP workers make multi-threaded runs on a busy machine many times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from operators import FNO  # noqa: E402
from operators.datasets import darcy  # noqa: E402
from operators.experiments import (  # noqa: E402
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
FULL = dict(n_train=1000, n_test=200, epochs=40, batch_size=20, lr=3e-3, width=32, modes=12, layers=4, resolution=64)
QUICK = dict(n_train=400, n_test=100, epochs=25, batch_size=20, lr=5e-3, width=24, modes=8, layers=4, resolution=32)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns the results written to ``<out>/results.json``."""
    parser = experiment_parser(__doc__, RUNS / "darcy", FULL, QUICK)
    parser.add_argument("--resolution", type=int, default=None,
                        help="training grid points per side; also scored at 2x (default 64; --quick 32)")
    parser.add_argument("--padding", type=float, default=0.0,
                        help="FNO domain padding fraction for the non-periodic problem (default 0)")
    args = apply_defaults(parser, parser.parse_args(argv), FULL, QUICK)
    if args.quick and args.out == parser.get_default("out"):  # a quick run never replaces a full run's results
        args.out = RUNS / "darcy-quick"
    res = check_int_option(parser, args, "resolution", 2)
    check_number_option(parser, args, "padding", min_open=False, max=10, max_open=True)  # FNO's domain_padding range
    check_modes_option(parser, args.modes, {res: "--resolution"})  # the coarser of the two grids
    options = run_options(args)
    check_resume(parser, args.out, options, args.resume)
    device = prepare_run(args)

    start = time.perf_counter()
    data = darcy(
        args.n_train + args.n_test, resolution=(res, 2 * res), solver_resolution=2 * res, seed=args.seed,
        cache_dir=args.cache_dir, progress=args.progress,
    )
    data_seconds = time.perf_counter() - start
    model = FNO(1, 1, (args.modes, args.modes), hidden_channels=args.width, n_layers=args.layers,
                domain_padding=args.padding)
    summary = {
        "problem": f"Darcy flow: permeability a -> pressure u, FD solver on {2 * res}x{2 * res} intervals",
        "data": f"{args.n_train} train / {args.n_test} test, trained on {res}x{res}",
        "model": f"FNO 2-D: width {args.width}, modes {args.modes}x{args.modes}, {args.layers} layers"
                 + (f", padding {args.padding:g}" if args.padding else ""),
    }
    return resolution_experiment(
        title="Darcy flow with an FNO", data=data, train_resolution=res, ndim=2, model=model, args=args,
        device=device, summary=summary, data_seconds=data_seconds, options=options,
        plot_labels=("permeability a (input)", "pressure u (truth)", "prediction", "error"), plot_name="darcy.png",
    )


if __name__ == "__main__":
    main()
