"""Shallow water on the rotating sphere: SFNO against a planar FNO of the same size.

Data: trajectories of the shallow-water equations on an equiangular latitude-longitude
grid, from the library's solver (:mod:`operators.datasets.shallow_water`: torch-harmonics'
``ShallowWaterSolver``, triangular truncation at ``ceil(nlat / 3)``, Adams-Bashforth
steps with hyperdiffusion), recorded every ``--dt-hours`` after a spin-up of
``--spinup-hours``: geopotential, vorticity and divergence, each standardised with the
training set's mean and std; cached on disk under ``<out>/data``. Initial states
(``--initial``): "balanced" (default), random vorticity with the geopotential from the
nonlinear balance equation, a slowly evolving flow; or "white", the solver's own
white-spectrum random states (``shallow_water_rollouts``), whose evolution is dominated
by gravity waves (persistence error ~0.7-0.9 per hour even after a day of spin-up).

Models, both trained for one-step prediction ``u(t) -> u(t + dt)`` (as a residual,
``u + net(u)``) with the area-weighted relative L2 loss on the sphere, by
:class:`operators.training.Trainer` (checkpointed every epoch; ``--resume`` continues, and
refuses options other than those recorded in the run folder's ``args.json``):

- SFNO (:class:`operators.sfno.SFNO`): spherical harmonic transforms, Driscoll-Healy
  convolutions, latitude embedding.
- FNO (:class:`operators.fno.FNO`): the same block structure with the planar FFT on
  the latitude-longitude grid (the grid treated as a periodic rectangle); its width is
  chosen so its parameter count is the closest to the SFNO's.

Both then roll out autoregressively for ``--rollout`` steps from the initial states of
held-out trajectories; the table gives the area-weighted relative L2 error per step
(all three standardised fields) and the plots go to the run folder ``<out>/quick`` or
``<out>/full`` (``-white`` appended for ``--initial white``): rollout_error.png, error
against rollout step, and height_maps.png, maps of geopotential height (``phi / g``) of
test trajectory 0 after the last step.

    python examples/shallow_water_sfno.py --quick    # 16 x 32 grid, about 2 CPU-minutes on one thread
    python examples/shallow_water_sfno.py            # the full setting, 32 x 64 (~40 CPU-minutes)

Both print whether the SFNO is ahead of the FNO after 24 steps, as in the full run, quoting
the full run's figures. Measured results, commands and plots: the documentation page
docs/guides/examples/shallow_water_sfno.rst.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from operators import SphereLoss
from operators.checkpoint import atomic_write_text
from operators.datasets import cached
from operators.datasets.shallow_water import SOLVER_VERSION, make_solver, shallow_water_rollouts, shallow_water_step
from operators.evaluation import ranking_summary, relative_errors, rollout
from operators.experiments import (
    apply_defaults,
    check_int_option,
    check_modes_option,
    check_number_option,
    check_resume,
    progress_bar,
    record_run,
    run_options,
)
from operators.fno import FNO
from operators.sfno import SFNO
from operators.training import Trainer

GRAVITY = 9.80616  # m / s^2, as in the solver
FULL = dict(nlat=32, n_train=32, train_steps=24, n_test=16, hidden=32, epochs=40, batch_size=16)
#: 16 x 32 grid, 384 pairs, 1152 optimiser steps: small enough for ~2 CPU-minutes, long enough to rank the models.
QUICK = dict(nlat=16, n_train=16, train_steps=24, n_test=4, hidden=16, epochs=24, batch_size=8)
#: The full setting's mean error after 24 one-hour steps (docs/guides/examples/shallow_water_sfno.rst).
FULL_ERRORS = {"SFNO": 0.21, "FNO": 0.63}
FULL_COMMAND = "python examples/shallow_water_sfno.py"


def balanced_initial_state(solver, generator: torch.Generator, wind: float = 30.0) -> torch.Tensor:
    """A random, balanced, non-divergent initial state in spectral space, ``(3, L, M)`` complex.

    Random vorticity with spectrum ``~ l^(-1/2) exp(-(l / 0.6 L)^2)`` (no mean), scaled
    to a peak wind of ``wind`` m/s; zero divergence; the geopotential from the nonlinear
    balance equation (as in the solver's Galewsky initial condition), around the mean
    depth. Slowly evolving flow, unlike white-noise states, which mostly make gravity waves.
    """
    n_deg, n_ord = solver.lmax, solver.mmax
    l = torch.arange(n_deg, dtype=torch.float64).reshape(-1, 1)
    amp = torch.where(l > 0, l.clamp(min=1) ** -0.5 * torch.exp(-((l / (0.6 * n_deg)) ** 2)), torch.zeros_like(l))
    vrt = torch.randn(n_deg, n_ord, dtype=torch.complex128, generator=generator) * amp
    vrt = torch.tril(torch.complex(vrt.real, vrt.imag * (torch.arange(n_ord) > 0)))  # m = 0 real
    vrtdiv = torch.stack([vrt, torch.zeros_like(vrt)])
    uv = solver.getuv(vrtdiv)  # (2, H, W) wind
    scale = wind / uv.abs().max()
    vrtdiv, uv = vrtdiv * scale, uv * scale
    flux = solver.vrtdivspec(uv * (solver.spec2grid(vrtdiv[0]) + solver.coriolis))
    kinetic = solver.grid2spec(0.5 * uv.square().sum(0))
    mean = solver.grid2spec(torch.full((solver.nlat, solver.nlon), float(solver.gravity * solver.havg), dtype=torch.float64))
    phi = solver.invlap * flux[0] - kinetic + mean
    return torch.tril(torch.stack([phi, vrtdiv[0], vrtdiv[1]]))


def simulate_balanced(n: int, steps: int, nlat: int, nlon: int, dt_hours: float, seed: int,
                      spinup_hours: float, progress: bool | None = None) -> torch.Tensor:
    """``n`` trajectories of ``steps + 1`` grid states, starting ``spinup_hours`` after balanced states.

    The library's solver and batched stepper (:mod:`operators.datasets.shallow_water`),
    started from :func:`balanced_initial_state`; ``(n, steps + 1, 3, H, W)`` float32.
    ``progress``: the solver's bar, as for :func:`operators.experiments.progress_bar`
    (``None``: on a terminal only).
    """
    n_sub = max(1, round(dt_hours * 3600 / (600.0 * 32 / nlat)))  # solver step ~600 s at 32 latitudes
    solver = make_solver(nlat, nlon, dt_hours * 3600 / n_sub)
    generator = torch.Generator().manual_seed(seed)
    u = torch.stack([balanced_initial_state(solver, generator) for _ in range(n)])  # (n, 3, L, M) complex
    history: list[torch.Tensor] = []  # the multistep scheme runs on through the spin-up and the records
    out = torch.empty(n, steps + 1, 3, nlat, nlon)
    spin = round(spinup_hours * 3600 / solver.dt)
    bar = progress_bar(total=spin + steps * n_sub, desc=f"simulating {n} trajectories", leave=False, progress=progress)
    with torch.no_grad(), bar:
        u = shallow_water_step(solver, u, spin, history, progress=bar)
        out[:, 0] = solver.spec2grid(u).float()
        for t in range(steps):
            u = shallow_water_step(solver, u, n_sub, history, progress=bar)
            out[:, t + 1] = solver.spec2grid(u).float()
    if not torch.isfinite(out).all():
        raise FloatingPointError("the shallow-water solver diverged; lower --dt-hours or raise the resolution")
    return out


def load_trajectories(initial: str, n: int, steps: int, nlat: int, nlon: int, dt_hours: float, seed: int,
                      spinup_hours: float, cache_dir: Path, progress: bool | None = None) -> torch.Tensor:
    """Trajectories ``(n, steps + 1, 3, H, W)`` in SI units, cached on disk.

    ``initial="white"``: :func:`operators.datasets.shallow_water.shallow_water_rollouts`
    (the solver's random white-spectrum states) with the spin-up records dropped;
    ``"balanced"``: :func:`simulate_balanced`.
    """
    n_sub = max(1, round(dt_hours * 3600 / (600.0 * 32 / nlat)))
    spin = round(spinup_hours / dt_hours)
    if initial == "white":
        seq = shallow_water_rollouts(n, steps=spin + steps, nlat=nlat, nlon=nlon, dt=dt_hours * 3600,
                                     solver_dt=dt_hours * 3600 / n_sub, seed=seed, cache_dir=cache_dir,
                                     progress=progress)
        return seq.fields[:, spin:]
    params = dict(n=n, steps=steps, nlat=nlat, nlon=nlon, dt_hours=dt_hours, seed=seed, spinup_hours=spinup_hours,
                  version=SOLVER_VERSION)  # fmt: skip
    data = cached("shallow_water_balanced_example", params,
                  lambda: {"fields": simulate_balanced(n, steps, nlat, nlon, dt_hours, seed, spinup_hours, progress)},
                  cache_dir=cache_dir)
    return data["fields"]


class Residual(nn.Module):
    """``u -> u + net(u)``: the network predicts the change over one step."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u + self.net(u)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_fno(target: int, n_modes: tuple[int, int], n_layers: int) -> FNO:
    """The FNO (given modes and depth) whose parameter count is the closest to ``target``."""
    best = min(range(2, 257), key=lambda w: abs(n_params(FNO(3, 3, n_modes, hidden_channels=w, n_layers=n_layers)) - target))
    return FNO(3, 3, n_modes, hidden_channels=best, n_layers=n_layers)


def rollout_errors(model: nn.Module, traj: torch.Tensor, steps: int, loss: SphereLoss):
    """Autoregressive predictions from ``traj[:, 0]`` and their error per step: ``(n, steps)``, ``(n, steps, ...)``."""
    states = rollout(model, traj[:, 0], steps, batch_size=16)  # (n, steps, 3, H, W)
    errs = torch.stack([relative_errors(states[:, t], traj[:, t + 1], norm=loss.norm) for t in range(steps)], 1)
    return errs, states


def ranking_text(errors: dict[str, float], quick: bool) -> str:
    """Whether the errors after 24 steps rank the SFNO and the FNO as the full run did (:data:`FULL_ERRORS`).

    A plain paragraph from :func:`operators.evaluation.ranking_summary` that quotes the
    full run's figures and :data:`FULL_COMMAND`.
    """
    return ranking_summary(errors, FULL_ERRORS, metric="error after 24 steps", command=FULL_COMMAND,
                           run="this quick run" if quick else "this run",
                           reference_run="the full run (32 x 64, 768 pairs, 16 test trajectories)")


def plot(out: Path, errors: dict[str, torch.Tensor], maps: dict[str, torch.Tensor], step: int,
         dt_hours: float | None = None) -> None:
    """rollout_error.png (mean error per step over the test trajectories) and height_maps.png
    (trajectory 0, :func:`height_maps_figure`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    n_traj = next(iter(errors.values())).shape[0]
    dt = "" if dt_hours is None else f", dt = {dt_hours:g} h per step"
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (name, e), marker in zip(errors.items(), "osD^v"):
        ax.plot(range(1, e.shape[1] + 1), e.mean(0).numpy(), marker=marker, ms=3, label=name)
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1, label="1: error of predicting zero")
    ax.set_xlabel("rollout step")
    ax.set_ylabel("relative L2 error (area-weighted)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    # plain labels at 2, 3 and 5 times a power of ten
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
    ax.set_title(f"rollout error, mean over {n_traj} test trajectories{dt}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "rollout_error.png", dpi=100)
    plt.close(fig)

    fig = height_maps_figure(maps, step, n_traj, dt_hours)
    fig.savefig(out / "height_maps.png", dpi=100)
    plt.close(fig)


def height_maps_figure(maps: dict[str, torch.Tensor], step: int, n_traj: int, dt_hours: float | None = None):
    """Height maps of one test trajectory after ``step`` steps: a 2 x (1 + models) grid, every panel used.

    Top row: the truth, then each model's prediction (the truth's colour range); bottom row:
    each one's error against the truth, starting with persistence (the initial state),
    all on one colour range. ``maps`` holds ``"truth"``, ``"initial"`` and one
    ``(H, W)`` map per model, in metres. Returns the matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = maps["truth"]
    models = {k: v for k, v in maps.items() if k not in ("truth", "initial")}
    errors = {"persistence (step 0)": maps["initial"] - truth, **{k: v - truth for k, v in models.items()}}
    lim = float(truth.abs().max())
    elim = max(float(e.abs().max()) for e in errors.values())  # the errors' own range, persistence included
    extent = (0, 360, -90, 90)
    cols = 1 + len(models)
    fig, axes = plt.subplots(2, cols, figsize=(3.6 * cols, 4.6), squeeze=False, constrained_layout=True)
    after = f"step {step}" if dt_hours is None else f"step {step} ({step * dt_hours:g} h)"
    fields = {f"truth, {after}": truth, **{f"{k}, {after}": v for k, v in models.items()}}
    for ax, (title, h) in zip(axes[0], fields.items()):
        # the truth's range: a model beyond it saturates (colourbar arrows)
        im = ax.imshow(h.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
        ax.set_title(title)
    for ax, (name, e) in zip(axes[1], errors.items()):
        im2 = ax.imshow(e.numpy(), cmap="PuOr", vmin=-elim, vmax=elim, extent=extent)
        ax.set_title(f"{name} - truth")
    fig.suptitle(f"test trajectory 0 of {n_traj}: geopotential height anomaly (m, relative to the truth's mean "
                 f"at {after}); longitude (deg) x latitude (deg)", fontsize=10)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9, label="height anomaly (m)", extend="both")
    fig.colorbar(im2, ax=axes[1].tolist(), shrink=0.9, label="error (m)")
    return fig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, with the ``--quick`` or full defaults filled in and checked (``parser.error`` names a bad one).

    With ``--resume``, also refuses options other than those recorded in the run folder's ``args.json``.
    """
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a 16 x 32 grid, small data and short training: about 2 CPU-minutes on one thread; "
                        "results under <out>/quick")
    p.add_argument("--nlat", type=int, help="latitudes (equiangular, poles included); nlon = 2 nlat (default 32; --quick 16)")
    p.add_argument("--dt-hours", type=float, default=1.0, help="time between recorded states, one model step (default 1)")
    p.add_argument("--initial", choices=("balanced", "white"), default="balanced",
                   help="random initial states: balanced flow, or the solver's white-spectrum states (default "
                        "balanced; white runs go to their own run folder, whose name ends in -white)")
    p.add_argument("--spinup-hours", type=float, default=12.0, help="simulated time left out after the initial state (default 12)")
    p.add_argument("--n-train", type=int, help="training trajectories (default 32; --quick 16)")
    p.add_argument("--train-steps", type=int, help="steps per training trajectory (default 24; --quick 24)")
    p.add_argument("--n-test", type=int, help="test trajectories (default 16; --quick 4)")
    p.add_argument("--rollout", type=int, default=24, help="autoregressive steps evaluated, from held-out initial states (default 24)")
    p.add_argument("--hidden", type=int, help="SFNO width (default 32; --quick 16)")
    p.add_argument("--layers", type=int, default=4, help="blocks of both models (default 4)")
    p.add_argument("--fno-modes", type=int, nargs=2, default=(8, 12), metavar=("LAT", "LON"),
                   help="FNO n_modes (latitude, longitude) (default 8 12)")
    p.add_argument("--epochs", type=int, help="training epochs (default 40; --quick 24)")
    p.add_argument("--batch-size", type=int, help="batch size (default 16; --quick 8)")
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate, cosine schedule (default 2e-3)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the training trajectories (test: seed + 10000), the initial weights and the "
                        "batch order (default 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: small models run best on 1; 0: torch's choice)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints under --out")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars of the solver and the training (default: only on a terminal)")
    p.add_argument("--out", type=Path, default=Path("runs/shallow_water_sfno"),
                   help="output folder (default runs/shallow_water_sfno): data cache in <out>/data; checkpoints, "
                        "plots and results in <out>/full or <out>/quick")
    args = apply_defaults(p, p.parse_args(argv), FULL, QUICK)  # explicit values kept; sizes, --lr, --seed checked
    for key in ("train_steps", "rollout", "hidden"):
        check_int_option(p, args, key)
    check_int_option(p, args, "nlat", 4)
    check_int_option(p, args, "threads", 0)
    check_number_option(p, args, "dt_hours")
    check_number_option(p, args, "spinup_hours", min_open=False)
    lat, lon = args.fno_modes
    if min(lat, lon) < 1:
        p.error(f"--fno-modes must be >= 1, got {lat} {lon}")
    check_modes_option(p, lat, {args.nlat: "--nlat"}, name="--fno-modes (latitude)")
    check_modes_option(p, lon, {2 * args.nlat: "nlon = 2 --nlat"}, name="--fno-modes (longitude)")
    check_resume(p, run_dir(args), run_options(args), args.resume)
    return args


def run_dir(args: argparse.Namespace) -> Path:
    """``<out>/quick`` or ``<out>/full`` (``-white`` appended for ``--initial white``): checkpoints, plots, results."""
    return args.out / (("quick" if args.quick else "full") + ("" if args.initial == "balanced" else "-white"))


def main(argv: list[str] | None = None) -> None:
    """Run the comparison with the command-line arguments ``argv``."""
    args = parse_args(argv)
    n_train, train_steps, n_test = args.n_train, args.train_steps, args.n_test
    hidden, epochs, batch_size = args.hidden, args.epochs, args.batch_size
    if args.threads:
        torch.set_num_threads(args.threads)
    out = run_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    nlat, nlon = args.nlat, 2 * args.nlat

    sim = (nlat, nlon, args.dt_hours)
    data_dir = args.out / "data"
    train = load_trajectories(args.initial, n_train, train_steps, *sim, args.seed, args.spinup_hours, data_dir,
                              args.progress)
    test = load_trajectories(args.initial, n_test, args.rollout, *sim, args.seed + 10_000, args.spinup_hours, data_dir,
                             args.progress)
    mean = train.mean(dim=(0, 1, 3, 4)).reshape(3, 1, 1)
    std = train.std(dim=(0, 1, 3, 4)).reshape(3, 1, 1)
    train, test = (train - mean) / std, (test - mean) / std
    x_tr, y_tr = train[:, :-1].flatten(0, 1), train[:, 1:].flatten(0, 1)  # one-step pairs
    x_te, y_te = test[:, :-1].flatten(0, 1), test[:, 1:].flatten(0, 1)
    loss = SphereLoss("equiangular")  # area-weighted relative L2 on the sphere

    torch.manual_seed(args.seed)
    sfno = SFNO(3, 3, (nlat, nlon), hidden_channels=hidden, n_layers=args.layers, grid="equiangular")
    fno = matched_fno(n_params(sfno), tuple(args.fno_modes), args.layers)
    models = {"SFNO": Residual(sfno), "FNO": Residual(fno)}
    print(f"data: {tuple(x_tr.shape)} training pairs, {n_test} test trajectories of {args.rollout} steps, "
          f"{nlat}x{nlon} grid, dt = {args.dt_hours:g} h")
    print(f"SFNO: width {hidden}, lmax = mmax = {sfno.lmax}, {n_params(sfno)} parameters; "
          f"FNO: width {fno.config.hidden_channels}, n_modes {fno.n_modes}, {n_params(fno)} parameters")

    results, errors, finals = {}, {}, {}
    record_run(out, run_options(args))
    for name, model in models.items():
        trainer = Trainer(model, epochs=epochs, batch_size=batch_size, lr=args.lr, loss=loss, seed=args.seed,
                          grad_clip=1.0, checkpoint_dir=out / name.lower(), resume=args.resume, overwrite=not args.resume,
                          device=args.device, verbose=args.progress)
        history = trainer.fit((x_tr, y_tr), test={"one-step": (x_te, y_te)})
        elapsed = sum(r["time_s"] for r in history)  # all epochs, resumed ones included
        err, states = rollout_errors(trainer.model.cpu(), test, args.rollout, loss)
        errors[name], finals[name] = err, states[:, -1]
        results[name] = {
            "params": n_params(model), "train_s": round(elapsed, 1),
            "one_step": history[-1]["one-step/loss"],
            "rollout": err.mean(0).tolist(),
        }

    persistence = torch.stack([relative_errors(test[:, 0], test[:, t], norm=loss.norm) for t in range(1, args.rollout + 1)], 1)
    errors["persistence"] = persistence
    steps = sorted({1, 6, 12, args.rollout} & set(range(1, args.rollout + 1)))
    print(f"\nrelative L2 error (area-weighted, standardised fields), mean over {n_test} test trajectories")
    header = f"{'model':<12} {'params':>8} {'train s':>8} " + " ".join(f"{'step ' + str(s):>8}" for s in steps)
    print(header + "\n" + "-" * len(header))
    for name, e in errors.items():
        r = results.get(name, {"params": 0, "train_s": 0.0})
        print(f"{name:<12} {r['params']:>8} {r['train_s']:>8.1f} " + " ".join(f"{e[:, s - 1].mean():>8.4f}" for s in steps))
    last = {name: e[:, -1].mean().item() for name, e in errors.items()}
    if args.rollout == 24 and args.initial == "balanced":
        print("\n" + ranking_text(last, args.quick))
    else:
        verdict = "lower" if last["SFNO"] < last["FNO"] else "NOT lower"
        print(f"\nafter {args.rollout} steps the SFNO's error ({last['SFNO']:.4f}) is {verdict} than the FNO's "
              f"({last['FNO']:.4f})")

    height = lambda u: (u[0] * std[0] + mean[0]) / GRAVITY  # noqa: E731  (nlat, nlon) metres
    truth_h = height(test[0, -1])
    ref = truth_h.mean()
    maps = {"truth": truth_h - ref, "initial": height(test[0, 0]) - ref,
            **{k: height(v[0]) - ref for k, v in finals.items()}}
    plot(out, errors, maps, args.rollout, dt_hours=args.dt_hours)
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results,
               "persistence": persistence.mean(0).tolist()}
    atomic_write_text(json.dumps(summary, indent=2), out / "results.json")
    print(f"plots and results in {out}/")


if __name__ == "__main__":
    main()
