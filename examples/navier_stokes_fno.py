"""Learn a time step of 2-D Navier-Stokes (vorticity, nu = 1e-3) with an FNO; roll it out.

    w_t + u . grad w = nu Delta w + f on the unit torus,   (w(t-k+1), ..., w(t)) -> w(t+1)

Data: :func:`operators.datasets.navier_stokes.navier_stokes_sequences` (FNO-paper set-up:
forcing 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)), GRF initial vorticity, pseudo-spectral
Crank-Nicolson solver with 2/3 dealiasing; vorticity recorded every ``--record-interval``
time units; cached on disk after the first run). Each trajectory has ``--history`` +
``--rollout`` + 1 records. An :class:`operators.FNO` with ``--history`` input channels
predicts the increment to the next record (``w(t+1) = w(t) + FNO(...)``), trained with
the relative L2 loss of the next field on every window of the training trajectories.
Scored on held-out trajectories: the one-step relative L2 over every window, and the
error of an autoregressive rollout that starts from the first ``--history`` records and
feeds its own predictions back for ``--rollout`` steps. For scale, two baselines:
"persistence" predicts no change, "extrapolation" continues the last change linearly
(``w(t+j) = w(t) + j (w(t) - w(t-1))``).

    python examples/navier_stokes_fno.py --quick   # 32x32, 40 + 10 trajectories, a few minutes on 2 CPU cores
    python examples/navier_stokes_fno.py           # 64x64, 100 + 20 trajectories

Outputs under ``--out`` (default runs/navier_stokes; runs/navier_stokes-quick with
``--quick``): navier_stokes.png (a test trajectory: last input, truth and prediction
after the rollout, error, and the radial spectra of the one-step and rollout errors),
results.json, args.json (the options that define the run), checkpoint/ (``--resume``; it
refuses options other than those in args.json).
"""

from __future__ import annotations

import os

# Spinning OpenMP workers make multi-threaded runs on a busy machine many times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from operators import FNO, Normalized  # noqa: E402
from operators.datasets import Normalizer, navier_stokes_sequences, time_stepping_pairs  # noqa: E402
from operators.evaluation import format_table, mean_spectrum, plot_prediction, relative_errors, rollout  # noqa: E402
from operators.experiments import (  # noqa: E402
    apply_defaults,
    check_int_option,
    check_modes_option,
    check_number_option,
    check_resume,
    count_parameters,
    experiment_parser,
    prepare_run,
    print_results,
    run_options,
    train_from_args,
    training_summary,
)

__all__ = ["main", "NextStep", "FULL", "QUICK"]

SOLVER_DT = 1e-2  # solver time step; --record-interval is a whole multiple of it

RUNS = Path(__file__).resolve().parents[1] / "runs"  # default output folders: runs/<name>
FULL = dict(n_train=100, n_test=20, epochs=25, batch_size=20, lr=3e-3, width=32, modes=12, layers=4, resolution=64)
QUICK = dict(n_train=40, n_test=10, epochs=30, batch_size=20, lr=5e-3, width=24, modes=8, layers=4, resolution=32)


class NextStep(nn.Module):
    """``w(t+1) = w(t) + increment(w(t-k+1), ..., w(t))``: a residual time step.

    Shape
    -----
    x: (B, k, H, W) real -> (B, 1, H, W) real
    """

    def __init__(self, increment: nn.Module) -> None:
        super().__init__()
        self.increment = increment

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:] + self.increment(x)


def _extrapolation_errors(xt: torch.Tensor, yt: torch.Tensor, test: torch.Tensor, k: int,
                          steps: int) -> tuple[float, list[float]]:
    """Mean rel. L2 of linear extrapolation ``w(t) + j (w(t) - w(t-1))``: one step, and each rollout step."""
    if k < 2:  # one record: no change to continue
        return float("nan"), [float("nan")] * steps
    one = relative_errors(2 * xt[:, -1:] - xt[:, -2:-1], yt).mean().item()
    last, change = test[:, k - 1 : k], test[:, k - 1 : k] - test[:, k - 2 : k - 1]
    per_step = [relative_errors(last + (j + 1) * change, test[:, k + j : k + j + 1]).mean().item() for j in range(steps)]
    return one, per_step


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns the results written to ``<out>/results.json``."""
    parser = experiment_parser(__doc__, RUNS / "navier_stokes", FULL, QUICK, helps={
        "n_train": "training trajectories, not samples: the first ones generated, each giving --rollout + 1 "
                   "training windows",
        "n_test": "test trajectories, the last ones generated",
        "epochs": "training epochs, passes over every window of the training trajectories",
        "batch_size": "batch size, in windows of --history records",
    })
    parser.add_argument("--resolution", type=int, default=None, help="grid points per side, also the solver's (default 64; --quick 32)")
    parser.add_argument("--history", type=int, default=10, help="input records k (default 10)")
    parser.add_argument("--rollout", type=int, default=10, help="autoregressive test steps (default 10)")
    parser.add_argument("--record-interval", type=float, default=1.0, help="time between records (default 1)")
    parser.add_argument("--viscosity", type=float, default=1e-3, help="nu (default 1e-3)")
    args = apply_defaults(parser, parser.parse_args(argv), FULL, QUICK)
    if args.quick and args.out == parser.get_default("out"):  # a quick run never replaces a full run's results
        args.out = RUNS / "navier_stokes-quick"
    check_int_option(parser, args, "resolution", 4)  # also the solver grid
    check_int_option(parser, args, "history")
    check_int_option(parser, args, "rollout")
    check_number_option(parser, args, "viscosity")
    steps = round(check_number_option(parser, args, "record_interval") / SOLVER_DT)
    if steps < 1 or abs(steps * SOLVER_DT - args.record_interval) > 1e-9 * args.record_interval:
        parser.error(f"--record-interval must be a whole multiple of the solver step {SOLVER_DT:g}, "
                     f"got {args.record_interval}")
    check_modes_option(parser, args.modes, {args.resolution: "--resolution"})
    options = run_options(args)
    check_resume(parser, args.out, options, args.resume)
    device = prepare_run(args)
    k, n, res = args.history, args.n_train, args.resolution

    start = time.perf_counter()
    seqs = navier_stokes_sequences(
        n + args.n_test, n_steps=k + args.rollout, record_interval=args.record_interval, resolution=res,
        solver_resolution=res, viscosity=args.viscosity, dt=SOLVER_DT, seed=args.seed, cache_dir=args.cache_dir,
        progress=args.progress,
    )
    data_seconds = time.perf_counter() - start
    fields, times = seqs.fields, seqs.times  # (n, T, S, S) float32, (T,)
    x, y = time_stepping_pairs(fields[:n], k)  # (n (T - k), k, S, S), (n (T - k), 1, S, S)
    xt, yt = time_stepping_pairs(fields[n:], k)
    increment = Normalized(FNO(k, 1, (args.modes, args.modes), hidden_channels=args.width, n_layers=args.layers),
                           Normalizer.fit(x), Normalizer.fit(y - x[:, -1:]))  # standardised records and increments
    model = NextStep(increment)
    trainer, timing = train_from_args(model, (x, y), {"one-step": (xt, yt)}, args, device, options=options)

    pred_one = trainer.predict(xt)
    one_step = relative_errors(pred_one, yt)
    persistence_one = relative_errors(xt[:, -1:], yt)
    test = fields[n:]
    preds = rollout(trainer.model, test[:, :k], args.rollout, history=k)[:, :, 0]  # (n_test, rollout, S, S)
    truth = test[:, k : k + args.rollout]
    per_step = [relative_errors(preds[:, j : j + 1], truth[:, j : j + 1]) for j in range(args.rollout)]
    persistence = [relative_errors(test[:, k - 1 : k], truth[:, j : j + 1]) for j in range(args.rollout)]
    extrapolation_one, extrapolation = _extrapolation_errors(xt, yt, test, k, args.rollout)

    last = args.rollout - 1
    spectra = {
        "one-step error (mean over all test windows)": mean_spectrum(pred_one - yt, 2),
        f"{args.rollout}-step rollout error (t={times[k + last].item():g})":
            mean_spectrum(preds[:, last:] - truth[:, last:], 2),
        f"truth, t={times[k + last].item():g}": mean_spectrum(truth[:, last:], 2),
    }
    png = plot_prediction(
        args.out / "navier_stokes.png",
        f"Navier-Stokes (nu={args.viscosity:g}), FNO time-stepping: test trajectory 0 after a {args.rollout}-step "
        f"rollout, rel. L2 {per_step[last][0]:.2%}",
        test[0, k - 1], truth[0, last], preds[0, last], spectra,
        labels=(f"w(t={times[k - 1].item():g}) (last input)", f"w(t={times[k + last].item():g}) (truth)",
                f"prediction ({args.rollout}-step rollout)", "error"),
    )
    params = count_parameters(model)
    summary = {
        "problem": f"Navier-Stokes vorticity, nu={args.viscosity:g}, {res}x{res}, records every "
                   f"{args.record_interval:g} time units",
        "data": f"{n} train / {args.n_test} test trajectories of {fields.shape[1]} records: "
                f"{len(x)} / {len(xt)} one-step pairs",
        "model": f"FNO 2-D time step: {k} records -> next; width {args.width}, modes {args.modes}x{args.modes}, "
                 f"{args.layers} layers",
        "parameters": f"{params:,}",
        "device": str(device),
        "data generation (s, wall)": f"{data_seconds:.1f}",
        "training (s, wall / CPU)": training_summary(timing, args.epochs),
        "one-step test rel. L2": f"{one_step.mean():.2%} (persistence {persistence_one.mean():.2%}, "
                                 f"extrapolation {extrapolation_one:.2%})",
        f"{args.rollout}-step rollout rel. L2": f"{per_step[last].mean():.2%} (persistence "
                                                f"{persistence[last].mean():.2%}, "
                                                f"extrapolation {extrapolation[last]:.2%})",
        "plot": str(png),
    }
    rows = [("one step (all windows)", "-", len(one_step), f"{one_step.mean():.3%}", f"{one_step.median():.3%}",
             f"{persistence_one.mean():.3%}", f"{extrapolation_one:.3%}")]
    rows += [(f"rollout step {j + 1}", f"{times[k + j].item():g}", len(per_step[j]), f"{per_step[j].mean():.3%}",
              f"{per_step[j].median():.3%}", f"{persistence[j].mean():.3%}", f"{extrapolation[j]:.3%}")
             for j in range(args.rollout)]
    results = {
        "title": f"Navier-Stokes (nu={args.viscosity:g}) time-stepping FNO", "parameters": params,
        "device": str(device), "n_train": n, "n_test": args.n_test, "epochs": args.epochs, "resolution": res,
        "history": k, "data_seconds": data_seconds, "train_wall_s": timing["wall_s"], "train_cpu_s": timing["cpu_s"],
        "one_step_rel_l2": one_step.mean().item(), "persistence_one_step_rel_l2": persistence_one.mean().item(),
        "rollout_rel_l2": [e.mean().item() for e in per_step],
        "persistence_rollout_rel_l2": [e.mean().item() for e in persistence],
        "extrapolation_one_step_rel_l2": extrapolation_one, "extrapolation_rollout_rel_l2": extrapolation,
        "history_log": trainer.history, "plot": str(png), "model": repr(model), "model_summary": summary["model"],
    }
    headers = ("test", "time", "samples", "mean rel. L2", "median", "persistence", "extrapolation")
    print_results(summary["problem"], summary, format_table(headers, rows), args.out, results)
    return results


if __name__ == "__main__":
    main()
