"""SpecBoost against single FNOs, with error spectra: two protocols.

``--protocol equal-budget`` (default): one FNO against a 2-stage SpecBoost of equal total
parameters and equal total epochs. ``--protocol paper``: Qin et al.'s own protocol
(SpecB-FNO, arXiv:2404.07200): every stage is the base FNO's architecture trained for the
base FNO's epochs on the residual of the stages before it, with large kernels.

Problem (default ``--problem navier-stokes``): the map ``w(0) -> w(T)`` of 2-D
incompressible Navier-Stokes in vorticity form on the unit torus (the FNO paper's forcing
and initial-vorticity GRF; ``nu = 1e-3``, ``T = 10``; solved on 64^2, trained on the
32^2 subsampling; ``--quick`` solves on 32^2 to ``T = 5``). ``--problem darcy``: the
permeability -> pressure map of 2-D Darcy flow (solved on 128^2, trained on 32^2).

Equal-budget models: one FNO of width ``Ws`` (``~sqrt 2`` times the stage width, chosen so that the
parameter counts match within a few percent) trained for ``E`` epochs, and a 2-stage
:class:`operators.specboost.SpecBoost` of two FNOs of the stage width, trained for
``E1`` and ``E - E1`` epochs (``--stage1-epochs``, default ``E / 2``): stage 1 on the
target, stage 2 on the residual of stage 1 (stage 1 frozen). Same kept modes, layers,
batch size, learning rate and schedule for all, unless ``--stage2-modes`` / ``--stage2-width``
give stage 2 its own (the single FNO's width then matches the new total).

Equal-budget output: test relative L2 of the single FNO, of SpecBoost's first stage alone and of
SpecBoost; the normalised radial error spectra (``operators.error_spectrum``) of the three
in ``runs/specboost/<problem>_error_spectra.png`` with the single FNO's highest kept mode
``--modes - 1`` marked (stage 1's too; stage 2's as well when ``--stage2-modes`` differs);
the share of error energy above the single FNO's highest kept mode, ``E(|k| > --modes - 1)``,
before and after boosting; how well stage 2 fits the residual of stage 1 on the training
set and on the test set; a results table and ``<problem>_results.json``. Training
checkpoints (``--resume`` continues a killed run; it refuses options other than those
recorded in ``<problem>/args.json``) and the trained models go under
``runs/specboost/<problem>``.

``--protocol paper``: Navier-Stokes at ``nu = 1e-4``, ``w(0) -> w(10)``, solved and
trained on 64^2 (``--resolution``; quick 32^2), 500 train / 100 test samples, one seed.
Every FNO has 4 layers and width 16 and keeps 32 modes per axis (``|k| < 32``, the most a
64^2 grid admits; quick: width 8, 16 modes); loss :class:`operators.losses.NRMSELoss`
(``--loss``). Rows (``--rows``):

- ``a``: one FNO, ``E = 20`` epochs (``--epochs``);
- ``b``: the same FNO trained for ``2 E`` epochs;
- ``c``: a wider FNO with about twice (a)'s parameters, ``E`` epochs;
- ``d2``, ``d3``: SpecBoost with 2 and 3 stages; stage 1 is (a), each later stage is
  (a)'s architecture trained for ``E`` epochs on the residual of the stages before it,
  scaled to unit variance (``SpecBoost.residual_scale`` and ``add_stage(scale=...)``;
  ``--residual-scale none``: unscaled), seeing the input (``--stage-input``);
- ``e``: (a) and ``d2`` again with 8 modes, the paper's small-kernel contrast;
- ``d2-unscaled``, ``d2-previous`` (not run by default): ``d2`` with unscaled residual
  targets, and with ``stage_input="input+previous"``.

Measured (full run, one seed, ``python examples/specboost.py --protocol paper --threads 1``):
test relative L2 (a) 8.74 %, (b) 7.53 %, (c) 7.49 %, (d) M=2 9.26 % and M=3 9.25 %, (e)
8.78 % and 9.37 %; training CPU time (a) 194 s, (b) 377 s, (c) 297 s, (d) 361 s and 555 s.
SpecBoost does not cut (a)'s error by 25 %: it is 6.0 % higher; unscaled residuals 8.73 %;
only ``d2-previous`` (stage 2 sees (a)'s prediction too) helps: 7.18 %, 17.8 % below (a), in
394 s. Per unit of training time the wider FNO (c) wins, narrowly ahead of ``d2-previous``
and (b); (d) as the paper runs it loses. See ``docs/guides/examples/specboost.rst``.

It reports each row's test relative L2, training CPU time (process time; ``d`` includes
its earlier stages) and parameters, the share of error energy above (a)'s highest kept
mode ``E(|k| > 31)`` (:func:`operators.error_spectrum.fraction_above`), which of (b),
(c), (d) cuts (a)'s error most per CPU-minute of its training, and plots the error spectra of (a),
(c), (d) in ``runs/specboost/navier-stokes-paper_error_spectra.png``. Trained models go
under ``runs/specboost/navier-stokes-paper``; ``--resume`` reuses the rows already trained
there (so rows can be trained by separate processes with ``--rows``).

    python examples/specboost.py --quick
    python examples/specboost.py                      # Navier-Stokes, full setting
    python examples/specboost.py --problem darcy
    python examples/specboost.py --protocol paper --threads 1
    python examples/specboost.py --protocol paper --quick
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from operators.checkpoint import atomic_save, atomic_write_text  # noqa: E402
from operators.datasets.darcy import darcy  # noqa: E402
from operators.datasets.navier_stokes import navier_stokes  # noqa: E402
from operators.error_spectrum import error_spectrum, fraction_above, plot_error_spectra  # noqa: E402
from operators.experiments import (  # noqa: E402
    HARMLESS_OPTIONS,
    apply_defaults,
    check_int_option,
    check_modes_option,
    check_number_option,
    check_resume,
    option_name,
    record_run,
    run_options,
)
from operators.fno import FNO  # noqa: E402
from operators.losses import LpLoss, NRMSELoss  # noqa: E402
from operators.saving import load_model, save_model  # noqa: E402
from operators.specboost import SpecBoost  # noqa: E402
from operators.training import Trainer, fit_specboost_stage  # noqa: E402

PROBLEMS = ("navier-stokes", "darcy")
PROTOCOLS = ("equal-budget", "paper")
RESOLUTION = 32  # training grid per side
# --quick changes the data (solver grid, final time), so it is recorded; the rest of these do not
HARMLESS = HARMLESS_OPTIONS - {"quick"}
FULL = dict(n_train=500, n_test=100, n_data=600, epochs=60, width=20, modes=8)
QUICK = dict(n_train=100, n_test=20, n_data=120, epochs=40, width=12, modes=6)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problem", choices=PROBLEMS, default="navier-stokes",
                   help="the operator to learn: Navier-Stokes w(0) -> w(T), or Darcy permeability -> pressure "
                        "(default navier-stokes)")
    p.add_argument("--quick", action="store_true",
                   help="tiny data and models: a couple of minutes on 2 CPU cores (Navier-Stokes solved on 32^2 "
                        "to T = 5, Darcy on 64^2; the options below that name a quick default change with it)")
    p.add_argument("--n-train", type=int, default=None, help="training samples, the first ones (default 500; quick 100)")
    p.add_argument("--n-test", type=int, default=None, help="test samples, the last ones (default 100; quick 20)")
    p.add_argument("--n-data", type=int, default=None,
                   help="samples generated (and cached); train on the first n-train, test on the last n-test "
                        "(default 600; quick 120)")
    p.add_argument("--epochs", type=int, default=None,
                   help="E: single FNO epochs = SpecBoost's total over both stages (default 60; quick 40)")
    p.add_argument("--stage1-epochs", type=int, default=None,
                   help="E1: SpecBoost stage-1 epochs; stage 2 gets E - E1 (default E // 2)")
    p.add_argument("--width", type=int, default=None,
                   help="hidden channels of each SpecBoost stage; the single FNO gets ~sqrt(2) times, matching "
                        "the parameter count (default 20; quick 12)")
    p.add_argument("--modes", type=int, default=None,
                   help="kept Fourier modes per axis, |k| < modes, of the single FNO and stage 1 (default 8; quick 6)")
    p.add_argument("--stage2-modes", type=int, default=None,
                   help="kept modes per axis of stage 2 (default: --modes); the FNOs' residual sits at high wavenumbers")
    p.add_argument("--stage2-width", type=int, default=None, help="hidden channels of stage 2 (default: --width)")
    p.add_argument("--layers", type=int, default=4, help="Fourier layers of every FNO (default 4)")
    p.add_argument("--batch-size", type=int, default=10, help="batch size of every training (default 10)")
    p.add_argument("--lr", type=float, default=2e-3,
                   help="AdamW learning rate of every training, cosine schedule (default 2e-3)")
    p.add_argument("--stage-input", choices=("input", "input+previous"), default=None,
                   help="what stage 2 (and 3) sees: the input alone, or the input and the earlier stages' prediction "
                        "as a second channel (default input+previous; --protocol paper: input, the SpecBoost default)")
    p.add_argument("--objective", choices=("residual", "ensemble"), default="residual",
                   help="stage 2 loss: relative L2 of the residual, or of the 2-stage prediction (default residual)")
    p.add_argument("--viscosity", type=float, default=None,
                   help="Navier-Stokes viscosity nu (default 1e-3; --protocol paper: 1e-4; ignored by --problem darcy)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="equal-budget",
                   help="equal-budget (default): one FNO against 2 stages of equal total parameters and epochs; "
                        "paper: Qin et al.'s protocol, rows (a)-(e) of the module docstring, at 64^2 (quick 32^2)")
    p.add_argument("--rows", default=None,
                   help="--protocol paper: comma-separated rows to train, of " + ", ".join(PAPER_ROWS) + " (default "
                        "all but the variants d2-unscaled and d2-previous); rows already trained under <out> are "
                        "reused with --resume")
    p.add_argument("--resolution", type=int, default=None,
                   help="--protocol paper: grid per side, solved and trained on (default 64; quick 32)")
    p.add_argument("--residual-scale", choices=("unit", "none"), default="unit",
                   help="--protocol paper: stages after the first fit the residual scaled to unit variance (unit, "
                        "default) or unscaled (none)")
    p.add_argument("--loss", choices=("nrmse", "l2"), default="nrmse",
                   help="--protocol paper: training loss, the paper's NRMSE (default) or relative L2")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: only on a terminal)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the data, the initial weights and the batch order (default 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default, or 0: torch's own default)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--out", type=Path, default=Path("runs/specboost"),
                   help="output folder: plots and <problem>_results.json, checkpoints and models under "
                        "<out>/<problem> (default runs/specboost)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="data cache folder (default $SPECTRAL_OPERATORS_CACHE_DIR, else "
                        "$XDG_CACHE_HOME/spectral-operators or ~/.cache/spectral-operators)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints under <out>/<problem>; refuses options other than those "
                        "recorded in its args.json")
    args = p.parse_args(argv)
    if args.protocol == "paper":
        return parse_paper_args(p, args)
    for key in ("rows", "resolution"):
        if getattr(args, key) is not None:
            p.error(f"--{key} belongs to --protocol paper")
    args.viscosity = 1e-3 if args.viscosity is None else args.viscosity
    args.stage_input = "input+previous" if args.stage_input is None else args.stage_input
    args = apply_defaults(p, args, FULL, QUICK)  # explicit values kept; sizes, --lr, --seed checked
    args.stage2_modes = args.modes if args.stage2_modes is None else args.stage2_modes
    args.stage2_width = args.width if args.stage2_width is None else args.stage2_width
    for key in ("n_data", "stage2_modes", "stage2_width"):
        check_int_option(p, args, key)
    check_int_option(p, args, "epochs", 2)
    if args.threads is not None:
        check_int_option(p, args, "threads", 0)
    check_number_option(p, args, "viscosity")
    check_modes_option(p, args.modes, {RESOLUTION: "the training grid"})
    check_modes_option(p, args.stage2_modes, {RESOLUTION: "the training grid"}, name="--stage2-modes")
    if args.n_train + args.n_test > args.n_data:
        p.error(f"--n-train + --n-test must not exceed --n-data={args.n_data}, got {args.n_train} + {args.n_test}")
    args.stage1_epochs = args.epochs // 2 if args.stage1_epochs is None else args.stage1_epochs
    if not 1 <= args.stage1_epochs < args.epochs:
        p.error(f"--stage1-epochs must be in 1 .. --epochs - 1 = {args.epochs - 1} (stage 2 needs an epoch), "
                f"got {args.stage1_epochs}")
    args.stage_epochs = (args.stage1_epochs, args.epochs - args.stage1_epochs)
    check_resume(p, args.out / args.problem, run_options(args, harmless=HARMLESS), args.resume)
    return args


def highest_kept_modes(args) -> dict[str, int]:
    """Highest kept wavenumber ``n_modes - 1`` of each model (``n_modes = m`` keeps ``|k| < m``).

    The single FNO and stage 1 keep ``--modes``, stage 2 ``--stage2-modes``.
    ``E(|k| > k)`` in the results is taken at the single FNO's.
    """
    first, second = args.modes - 1, args.stage2_modes - 1
    return {"single FNO": first, "SpecBoost stage 1": first, "SpecBoost stage 2": second}


def load_data(args) -> dict[str, torch.Tensor]:
    """Train/test tensors at 32^2 (and the Navier-Stokes test set at 64^2 for super-resolution)."""
    n = args.n_data
    if args.problem == "darcy":
        data = darcy(n, resolution=32, solver_resolution=64 if args.quick else 128, seed=args.seed,
                     cache_dir=args.cache_dir, progress=args.progress)
        x, y, hi = data.inputs, data.targets, None
    elif args.quick:
        data = navier_stokes(n, resolution=32, solver_resolution=32, viscosity=args.viscosity, t_final=5.0,
                             seed=args.seed, cache_dir=args.cache_dir, progress=args.progress)
        x, y, hi = data.inputs, data.targets, None
    else:
        data = navier_stokes(n, resolution=(32, 64), solver_resolution=64, viscosity=args.viscosity, t_final=10.0,
                             seed=args.seed, batch_size=100, cache_dir=args.cache_dir, progress=args.progress)
        x, y, hi = data[32].inputs, data[32].targets, data[64]
    tr, te = slice(0, args.n_train), slice(n - args.n_test, n)  # one fixed test set whatever n_train is
    # inputs standardised; targets only scaled, so relative errors are unchanged
    x_mean, x_std, y_std = x[tr].mean(), x[tr].std(), y[tr].std()
    out = {"x_train": (x[tr] - x_mean) / x_std, "y_train": y[tr] / y_std, "x_test": (x[te] - x_mean) / x_std,
           "y_test": y[te] / y_std}
    if hi is not None:
        out["y_test_64"] = hi.targets[te] / y_std
    return out


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_models(args) -> tuple[FNO, SpecBoost]:
    kw = dict(n_layers=args.layers, domain_padding=0.125 if args.problem == "darcy" else 0.0)
    modes = (args.modes, args.modes)
    torch.manual_seed(args.seed)
    extra = 1 if args.stage_input == "input+previous" else 0
    modes2 = (args.stage2_modes, args.stage2_modes)
    boost = SpecBoost([FNO(1, 1, modes, hidden_channels=args.width, **kw),
                       FNO(1 + extra, 1, modes2, hidden_channels=args.stage2_width, **kw)], stage_input=args.stage_input)
    target = count(boost)
    widths = range(args.width, 3 * args.width)
    width = min(widths, key=lambda w: abs(count(FNO(1, 1, modes, hidden_channels=w, **kw)) - target))
    torch.manual_seed(args.seed + 1)
    return FNO(1, 1, modes, hidden_channels=width, **kw), boost


@torch.no_grad()
def predict(model, x: torch.Tensor, device, batch: int = 50, **kw) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch].to(device), **kw).cpu() for i in range(0, len(x), batch)])


def train(args, single: FNO, boost: SpecBoost, data: dict, device) -> dict[str, float]:
    common = dict(batch_size=args.batch_size, lr=args.lr, scheduler="cosine", seed=args.seed, device=device,
                  resume=args.resume, overwrite=not args.resume, verbose=args.progress)
    train_set, test_set = (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
    root = args.out / args.problem
    record_run(root, run_options(args, harmless=HARMLESS))
    times = {}
    start = time.perf_counter()
    Trainer(single, epochs=args.epochs, eval_every=max(1, args.epochs // 5), checkpoint_dir=root / "single",
            **common).fit(train_set, test_set)
    times["single"] = time.perf_counter() - start
    atomic_save(single.state_dict(), root / "single.pt")
    start = time.perf_counter()
    for m, epochs in enumerate(args.stage_epochs):
        print(f"SpecBoost stage {m + 1}/{len(boost.stages)} ({epochs} epochs, objective={args.objective!r})")
        fit_specboost_stage(boost, m, train_set, test_set, objective=args.objective, epochs=epochs,
                            eval_every=max(1, epochs // 5), checkpoint_dir=root / f"stage{m}", **common)
    times["specboost"] = time.perf_counter() - start
    boost.save(root / "specboost.pt")
    return times


@torch.no_grad()
def residual_fit(boost: SpecBoost, data: dict, device) -> dict[str, float]:
    """Relative L2 of stage 2's output against the residual of stage 1, on the training and the test set."""
    rel_l2, out = LpLoss(2, relative=True), {}
    for name in ("train", "test"):
        z, residual = boost.residual_targets(1, data[f"x_{name}"], data[f"y_{name}"])
        out[name] = rel_l2(predict(boost.stages[1], z, device), residual).item()
    return out


def plot(args, spectra: dict, kept: dict[str, int], samples: dict[str, torch.Tensor]) -> list[Path]:
    args.out.mkdir(parents=True, exist_ok=True)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.2))
    plot_error_spectra(spectra, ax=ax0, title=f"{args.problem}: test error spectra")
    (s_single, k), (s_boost, _) = spectra["single FNO"], spectra["SpecBoost (2 stages)"]
    ratio = s_boost / s_single.clamp_min(1e-300)
    ax1.plot(k.numpy(), ratio.numpy(), marker=".", color="C2")
    ax1.axhline(1.0, color="gray", linewidth=1, label="ratio 1: equal error")
    ax1.set_yscale("log")
    ax1.set(xlabel="radial wavenumber |k|", ylabel="SpecBoost / single FNO error energy",
            title="error energy ratio per shell (>1: SpecBoost worse)")
    ax1.grid(True, which="both", alpha=0.3)
    first, second = kept["single FNO"], kept["SpecBoost stage 2"]
    models = "single FNO and both stages" if second == first else "single FNO and stage 1"
    for ax in (ax0, ax1):
        ax.axvline(first, color="k", linestyle="--", linewidth=1, label=f"highest kept mode, {models} ({first})")
        if second != first:
            ax.axvline(second, color="k", linestyle=":", linewidth=1, label=f"highest kept mode of stage 2 ({second})")
    ax0.legend(loc="lower left", fontsize=8)
    ax1.legend(loc="best", fontsize=8)
    fig.tight_layout()
    paths = [args.out / f"{args.problem}_error_spectra.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3))
    vmax = max(float(f.abs().max()) for t, f in samples.items() if "error" in t)  # one symmetric scale for errors
    for ax, (title, field) in zip(axes, samples.items()):
        err = "error" in title
        im = ax.imshow(field.numpy(), cmap="RdBu_r" if err else "viridis", vmin=-vmax if err else None,
                       vmax=vmax if err else None, origin="lower")
        ax.set(xlabel="x (grid index)", ylabel="y (grid index)")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{args.problem}: test sample 0, target (scaled) and errors of the single FNO and SpecBoost")
    fig.tight_layout()
    paths.append(args.out / f"{args.problem}_sample.png")
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison (command-line arguments ``argv``); return the summary written to results.json."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.protocol == "paper":
        return paper_main(args)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    (args.out / args.problem).mkdir(parents=True, exist_ok=True)
    data = load_data(args)
    single, boost = build_models(args)
    n_single, n_boost = count(single), count(boost)
    print(f"parameters: single FNO (width {single.config.hidden_channels}) {n_single:,}; SpecBoost "
          f"(widths {args.width} + {args.stage2_width}, modes {args.modes} + {args.stage2_modes}) {n_boost:,}; "
          f"ratio {n_single / n_boost:.3f}")
    times = train(args, single, boost, data, device)

    rel_l2 = LpLoss(2, relative=True)
    x, y = data["x_test"], data["y_test"]
    preds = {"single FNO": predict(single, x, device), "SpecBoost stage 1": predict(boost, x, device, n_stages=1),
             "SpecBoost (2 stages)": predict(boost, x, device)}
    kept_modes = highest_kept_modes(args)
    kept = kept_modes["single FNO"]  # E(|k| > kept): the error the single FNO cannot represent
    spectra = {name: error_spectrum(p, y) for name, p in preds.items()}
    rows = {name: {"rel_l2": rel_l2(p, y).item(), "nmse": spectra[name][0].sum().item(),
                   "frac_above": fraction_above(*spectra[name], kept)} for name, p in preds.items()}
    if "y_test_64" in data:  # zero-shot super-resolution: 32^2 input, 64^2 output
        y64 = data["y_test_64"]
        rows["single FNO"]["rel_l2_64"] = rel_l2(predict(single, x, device, output_shape=(64, 64)), y64).item()
        rows["SpecBoost (2 stages)"]["rel_l2_64"] = rel_l2(predict(boost, x, device, output_shape=(64, 64)), y64).item()
    fit = residual_fit(boost, data, device)
    i = 0
    samples = {"target": y[i, 0], "single FNO error": (preds["single FNO"] - y)[i, 0],
               "SpecBoost error": (preds["SpecBoost (2 stages)"] - y)[i, 0]}
    paths = plot(args, spectra, kept_modes, samples)

    single_l2, boost_l2 = rows["single FNO"]["rel_l2"], rows["SpecBoost (2 stages)"]["rel_l2"]
    reduction = 1 - boost_l2 / single_l2
    e1, e2 = args.stage_epochs
    epochs = {"single FNO": f"{args.epochs}", "SpecBoost stage 1": f"{e1}", "SpecBoost (2 stages)": f"{e1} + {e2}"}
    params = {"single FNO": n_single, "SpecBoost stage 1": count(boost.stages[0]), "SpecBoost (2 stages)": n_boost}
    stage2 = "" if args.stage2_modes == args.modes else (
        f", stage 2 n_modes={args.stage2_modes} (highest kept mode {kept_modes['SpecBoost stage 2']})")
    print(f"\n{args.problem}: {args.n_train} train / {args.n_test} test samples at 32^2, n_modes={args.modes} "
          f"(single FNO and stage 1; highest kept mode {kept}){stage2}, stage_input={args.stage_input!r}, "
          f"objective={args.objective!r}; E(|k|>{kept}): share of error energy above the single FNO's highest "
          "kept mode")
    head = f"{'model':<22} {'params':>9} {'epochs':>8} {'rel L2':>9} {'NMSE':>10} {'E(|k|>' + str(kept) + ')':>10}"
    head += f" {'rel L2 @64^2':>13}" if "y_test_64" in data else ""
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        line = f"{name:<22} {params[name]:>9,} {epochs[name]:>8} {r['rel_l2']:>9.4f} {r['nmse']:>10.3e} {r['frac_above']:>10.3f}"
        if "y_test_64" in data:
            line += f" {r['rel_l2_64']:>13.4f}" if "rel_l2_64" in r else f" {'':>13}"
        print(line)
    change = (f"{100 * reduction:.1f}% lower error than the single FNO" if reduction >= 0 else
              f"worse: {boost_l2 / single_l2:.2f}x the single FNO's error")
    print(f"\nSpecBoost vs single FNO: test relative L2 {single_l2:.4f} -> {boost_l2:.4f} "
          f"({change}; target >= 25% reduction: {'met' if reduction >= 0.25 else 'NOT met'})")
    print(f"share of error energy above the single FNO's highest kept mode |k| > {kept}: single FNO "
          f"{rows['single FNO']['frac_above']:.3f}, SpecBoost {rows['SpecBoost (2 stages)']['frac_above']:.3f}")
    print(f"stage 2 against the residual of stage 1 (relative L2): train {fit['train']:.3f}, test {fit['test']:.3f}")
    print(f"training time: single {times['single']:.0f} s, SpecBoost {times['specboost']:.0f} s")
    if args.quick:
        print("--quick is a smoke run: at this size it cannot show the full setting's ranking of SpecBoost against "
              "the single FNO; the full setting is `python examples/specboost.py` (tens of CPU-minutes), the paper's "
              "protocol `python examples/specboost.py --protocol paper`; measured figures and commands: "
              "docs/guides/examples/specboost.rst")
    print("plots: " + ", ".join(str(p) for p in paths))
    summary = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "params": params, "single_width": single.config.hidden_channels, "results": rows, "reduction": reduction,
               "stage2_residual_rel_l2": fit, "times_s": times, "highest_kept_mode": kept_modes,
               "frac_above_k": kept}
    atomic_write_text(json.dumps(summary, indent=2), args.out / f"{args.problem}_results.json")
    return summary


# ------------------------------------------------------------------------------------------ --protocol paper
PAPER_ROWS = ("a", "b", "c", "d2", "d3", "e", "d2-unscaled", "d2-previous")
PAPER_DEFAULT_ROWS = PAPER_ROWS[:6]
PAPER_FULL = dict(n_train=500, n_test=100, n_data=600, epochs=20, width=16, modes=32, resolution=64,
                  viscosity=1e-4, stage_input="input")
PAPER_QUICK = dict(n_train=100, n_test=20, n_data=120, epochs=20, width=8, modes=16, resolution=32,
                   viscosity=1e-4, stage_input="input")
PAPER_HARMLESS = HARMLESS | {"rows"}
PAPER_T_FINAL = 10.0
SMALL_MODES = 8  # row (e): the paper's small-kernel contrast
BASELINE_M = 2  # (b) trains M x the epochs, (c) has ~M x the parameters
# trained models: (e) is the pair a8, d2-8; every SpecBoost row builds on the one before it
MODELS = {"a": (), "b": (), "c": (), "d2": ("a",), "d3": ("d2",), "a8": (), "d2-8": ("a8",),
          "d2-unscaled": ("a",), "d2-previous": ("a",)}
ROW_MODELS = {"e": ("a8", "d2-8")}
LABELS = {"a": "(a) FNO", "b": f"(b) FNO, {BASELINE_M}x epochs", "c": f"(c) wider FNO, ~{BASELINE_M}x params",
          "d2": "(d) SpecBoost M=2", "d3": "(d) SpecBoost M=3", "a8": f"(e) FNO, {SMALL_MODES} modes",
          "d2-8": f"(e) SpecBoost M=2, {SMALL_MODES} modes", "d2-unscaled": "(d) M=2, unscaled residual",
          "d2-previous": "(d) M=2, input+previous"}
# Test relative L2 of the full run, measured on 2026-12-07 (2 shared CPU cores, one thread per process):
#   python examples/specboost.py --protocol paper --threads 1
FULL_PAPER_RESULTS: dict[str, float] = {"a": 0.0874, "b": 0.0753, "c": 0.0749, "d2": 0.0926, "d3": 0.0925,
                                        "a8": 0.0878, "d2-8": 0.0937, "d2-unscaled": 0.0873,
                                        "d2-previous": 0.0718}


def parse_paper_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Defaults and checks of ``--protocol paper``."""
    if args.problem != "navier-stokes":
        p.error(f"--protocol paper runs --problem navier-stokes only, got --problem {args.problem}")
    for key in ("stage1_epochs", "stage2_modes", "stage2_width"):
        if getattr(args, key) is not None:
            p.error(f"{option_name(key)} belongs to --protocol equal-budget")
    args = apply_defaults(p, args, PAPER_FULL, PAPER_QUICK)
    check_int_option(p, args, "n_data")
    check_int_option(p, args, "resolution", 4)
    if args.threads is not None:
        check_int_option(p, args, "threads", 0)
    check_number_option(p, args, "viscosity")
    check_modes_option(p, args.modes, {args.resolution: "--resolution"})
    check_modes_option(p, SMALL_MODES, {args.resolution: "--resolution"}, name="row (e)'s n_modes")
    if args.n_train + args.n_test > args.n_data:
        p.error(f"--n-train + --n-test must not exceed --n-data={args.n_data}, got {args.n_train} + {args.n_test}")
    rows = PAPER_DEFAULT_ROWS if args.rows is None else tuple(r.strip() for r in args.rows.split(",") if r.strip())
    unknown = [r for r in rows if r not in PAPER_ROWS]
    if unknown or not rows:
        p.error(f"--rows must name rows among {', '.join(PAPER_ROWS)}, got {args.rows!r}")
    args.rows = ",".join(dict.fromkeys(rows))
    check_resume(p, paper_root(args), run_options(args, harmless=PAPER_HARMLESS), args.resume)
    return args


def paper_root(args) -> Path:
    return args.out / "navier-stokes-paper"


def load_paper_data(args) -> dict[str, torch.Tensor]:
    """Navier-Stokes ``w(0) -> w(10)`` solved and trained on ``--resolution``^2; inputs standardised, targets scaled."""
    data = navier_stokes(args.n_data, resolution=args.resolution, solver_resolution=args.resolution,
                         viscosity=args.viscosity, t_final=PAPER_T_FINAL, seed=args.seed, batch_size=100,
                         cache_dir=args.cache_dir, progress=args.progress)
    x, y, n = data.inputs, data.targets, args.n_data
    tr, te = slice(0, args.n_train), slice(n - args.n_test, n)
    x_mean, x_std, y_std = x[tr].mean(), x[tr].std(), y[tr].std()
    return {"x_train": (x[tr] - x_mean) / x_std, "y_train": y[tr] / y_std, "x_test": (x[te] - x_mean) / x_std,
            "y_test": y[te] / y_std}


def paper_fno(args, in_channels: int, modes: int, width: int, seed: int) -> FNO:
    torch.manual_seed(seed)
    return FNO(in_channels, 1, (modes, modes), hidden_channels=width, n_layers=args.layers)


def wide_width(args) -> int:
    """Row (c)'s width: the one whose parameter count is closest to ``BASELINE_M`` times row (a)'s."""
    target = BASELINE_M * count(paper_fno(args, 1, args.modes, args.width, 0))
    return min(range(args.width, 3 * args.width + 1),
               key=lambda w: abs(count(paper_fno(args, 1, args.modes, w, 0)) - target))


def _trainer_kwargs(args, device) -> dict:
    loss = NRMSELoss(2) if args.loss == "nrmse" else LpLoss(2)
    return dict(batch_size=args.batch_size, lr=args.lr, scheduler="cosine", seed=args.seed, device=device, loss=loss,
                verbose=args.progress)


def _model_path(args, key: str) -> Path:
    return paper_root(args) / f"{key}.pt"


def train_model(key: str, args, data: dict, device, records: dict) -> dict:
    """Train model ``key`` (its prerequisites are in ``records``); save it; return its record."""
    train_set, kw = (data["x_train"], data["y_train"]), _trainer_kwargs(args, device)
    start = time.process_time()
    if key in ("b", "c"):
        epochs = BASELINE_M * args.epochs if key == "b" else args.epochs
        width = args.width if key == "b" else wide_width(args)
        model = paper_fno(args, 1, args.modes, width, args.seed)
        Trainer(model, epochs=epochs, **kw).fit(train_set)
        save_model(model.cpu(), _model_path(args, key))
        return {"time_s": time.process_time() - start, "params": count(model), "epochs": str(epochs),
                "width": width, "modes": args.modes}
    if key in ("a", "a8"):
        modes = args.modes if key == "a" else SMALL_MODES
        boost = SpecBoost([paper_fno(args, 1, modes, args.width, args.seed)], stage_input=args.stage_input)
        fit_specboost_stage(boost, 0, train_set, None, epochs=args.epochs, **kw)
        boost.cpu().save(_model_path(args, key))
        return {"time_s": time.process_time() - start, "params": count(boost), "epochs": str(args.epochs),
                "width": args.width, "modes": modes}
    (before,) = MODELS[key]
    prev = records[before]
    boost = SpecBoost.load(_model_path(args, before))
    scaled = args.residual_scale == "unit" and key != "d2-unscaled"
    if key == "d2-previous" and boost.stage_input != "input+previous":
        boost = SpecBoost(list(boost.stages), stage_input="input+previous")
    start = time.process_time()
    scale = boost.residual_scale(*train_set) if scaled else None  # the std of the residual left by the stages so far
    m = len(boost.stages)
    extra = 1 if boost.stage_input == "input+previous" else 0
    boost.add_stage(paper_fno(args, 1 + extra, prev["modes"], args.width, args.seed + m), scale=scale)
    fit_specboost_stage(boost, m, train_set, None, epochs=args.epochs, **kw)
    boost.cpu().save(_model_path(args, key))
    return {"time_s": prev["time_s"] + time.process_time() - start, "params": count(boost),
            "epochs": f"{prev['epochs']} + {args.epochs}", "width": args.width, "modes": prev["modes"],
            "scale": scale, "stage_input": boost.stage_input}


def needed_models(rows: Sequence[str]) -> list[str]:
    """The models behind ``rows``, each after the ones it builds on."""
    order: list[str] = []

    def visit(key: str) -> None:
        for before in MODELS[key]:
            visit(before)
        if key not in order:
            order.append(key)

    for row in rows:
        for key in ROW_MODELS.get(row, (row,)):
            visit(key)
    return order


def load_paper_model(args, key: str) -> torch.nn.Module:
    return load_model(_model_path(args, key)) if key in ("b", "c") else SpecBoost.load(_model_path(args, key))


def run_paper_rows(args, data: dict, device) -> dict[str, dict]:
    """Train (or, with ``--resume``, reuse) every model the requested rows need; their records."""
    root = paper_root(args)
    root.mkdir(parents=True, exist_ok=True)
    record_run(root, run_options(args, harmless=PAPER_HARMLESS))
    records = {}
    for key in needed_models(args.rows.split(",")):
        path = root / f"{key}.json"
        if args.resume and path.is_file() and _model_path(args, key).is_file():
            records[key] = json.loads(path.read_text())
            print(f"{LABELS[key]}: reused from {path}")
            continue
        print(f"training {LABELS[key]} ...", flush=True)
        records[key] = train_model(key, args, data, device, records)
        atomic_write_text(json.dumps(records[key], indent=2), path)
        print(f"  {LABELS[key]}: {records[key]['time_s']:.0f} s training CPU time", flush=True)
    return records


def per_unit_time_winner(rows: dict[str, dict]) -> tuple[str | None, dict[str, float]]:
    """Of (b), (c), (d) M=2: test-error cut below (a) per CPU-minute of the row's training; the best, or None if none cuts it."""
    base = rows["a"]
    gains = {key: (base["rel_l2"] - rows[key]["rel_l2"]) / (rows[key]["time_s"] / 60)
             for key in ("b", "c", "d2") if key in rows}
    positive = {k: g for k, g in gains.items() if g > 0}
    return (max(positive, key=positive.get) if positive else None), gains


def plot_paper(args, spectra: dict, samples: dict) -> list[Path]:
    """Error spectra of (a), (c), (d) (and the 8-mode pair of (e)); one test sample's errors."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    large = {LABELS[k]: spectra[k] for k in ("a", "c", "d2", "d3") if k in spectra}
    plot_error_spectra(large, ax=axes[0], kept_mode=args.modes - 1,
                       title=f"{args.modes} modes: test error spectra (dashed: highest kept mode {args.modes - 1})")
    small = {LABELS[k]: spectra[k] for k in ("a8", "d2-8") if k in spectra}
    if small:
        plot_error_spectra(small, ax=axes[1], kept_mode=SMALL_MODES - 1,
                           title=f"{SMALL_MODES} modes: test error spectra (dashed: highest kept mode {SMALL_MODES - 1})")
    else:
        axes[1].set_axis_off()
    for ax in axes:
        ax.set(xlabel="radial wavenumber |k|", ylabel="error energy / target energy")
    fig.tight_layout()
    paths = [args.out / "navier-stokes-paper_error_spectra.png"]
    fig.savefig(paths[0], dpi=90)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(samples), figsize=(3.4 * len(samples), 3.3))
    vmax = max(float(f.abs().max()) for t, f in samples.items() if "error" in t)
    for ax, (title, field) in zip(axes, samples.items()):
        err = "error" in title
        im = ax.imshow(field.numpy(), cmap="RdBu_r" if err else "viridis", vmin=-vmax if err else None,
                       vmax=vmax if err else None, origin="lower")
        ax.set(title=title, xlabel="x (grid index)", ylabel="y (grid index)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"Navier-Stokes nu={args.viscosity:g}, w(0) -> w({PAPER_T_FINAL:g}): test sample 0, vorticity "
                 "(scaled) and errors")
    fig.tight_layout()
    paths.append(args.out / "navier-stokes-paper_sample.png")
    fig.savefig(paths[1], dpi=90)
    plt.close(fig)
    return paths


def paper_main(args) -> dict:
    """``--protocol paper``: train the rows, evaluate every trained model on the test set, print and save."""
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = load_paper_data(args)
    records = run_paper_rows(args, data, device)
    x, y, kept = data["x_test"], data["y_test"], args.modes - 1
    rel_l2, rows, spectra, preds = LpLoss(2), {}, {}, {}
    for key, rec in records.items():
        preds[key] = predict(load_paper_model(args, key), x, device)
        spectra[key] = error_spectrum(preds[key], y)
        rows[key] = {**rec, "label": LABELS[key], "rel_l2": rel_l2(preds[key], y).item(),
                     "nrmse": NRMSELoss(2)(preds[key], y).item(),
                     "frac_above": fraction_above(*spectra[key], kept),
                     "frac_above_small": fraction_above(*spectra[key], SMALL_MODES - 1)}
    samples = {"target": y[0, 0]}
    samples.update({f"{LABELS[k]} error": (preds[k] - y)[0, 0] for k in ("a", "d2") if k in preds})
    paths = plot_paper(args, spectra, samples) if len(samples) > 1 else []

    print(f"\nNavier-Stokes nu={args.viscosity:g}, w(0) -> w({PAPER_T_FINAL:g}) on {args.resolution}^2: "
          f"{args.n_train} train / {args.n_test} test samples; every FNO {args.layers} layers, width {args.width} "
          f"(c: wider), {args.modes} modes per axis (|k| < {args.modes}; e: {SMALL_MODES}), {args.epochs} epochs "
          f"per model or stage; loss {args.loss}; residual scale {args.residual_scale}; stage input "
          f"{args.stage_input!r}; one seed ({args.seed})")
    head = (f"{'row':<32} {'params':>10} {'epochs':>14} {'CPU s':>7} {'rel L2':>8} {'vs (a)':>7} "
            f"{'E(|k|>' + str(kept) + ')':>9} {'E(|k|>' + str(SMALL_MODES - 1) + ')':>8}")
    print(head + "\n" + "-" * len(head))
    base = rows.get("a")
    for key, r in rows.items():
        change = f"{100 * (r['rel_l2'] / base['rel_l2'] - 1):+.1f}%" if base else ""
        print(f"{r['label']:<32} {r['params']:>10,} {r['epochs']:>14} {r['time_s']:>7.0f} {r['rel_l2']:>8.4f} "
              f"{change:>7} {r['frac_above']:>9.2e} {r['frac_above_small']:>8.3f}")
    summary = {"protocol": "paper", "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "rows": rows, "plots": [str(p) for p in paths]}
    if base and "d2" in rows:
        cut = 1 - rows["d2"]["rel_l2"] / base["rel_l2"]
        summary["d2_cut"] = cut
        print(f"\n(d) M=2 against (a): test relative L2 {base['rel_l2']:.4f} -> {rows['d2']['rel_l2']:.4f}, "
              f"{100 * abs(cut):.1f}% {'lower' if cut >= 0 else 'HIGHER'} (target >= 25%: {'met' if cut >= 0.25 else 'NOT met'})")
    if "d2" in rows:  # how well stage 2 fits the residual of (a): training set against test set
        fit = residual_fit(load_paper_model(args, "d2"), data, device)
        rows["d2"]["stage2_residual_rel_l2"] = fit
        print(f"(d) stage 2 against the residual of (a) (relative L2): train {fit['train']:.3f}, test {fit['test']:.3f}")
    if base and any(k in rows for k in ("b", "c", "d2")):
        winner, gains = per_unit_time_winner(rows)
        summary["winner_per_time"], summary["gain_per_cpu_minute"] = winner, gains
        shown = ", ".join(f"{LABELS[k]} {g:+.3g}" for k, g in gains.items())
        print("per unit of training time (test rel L2 cut below (a) per CPU-minute of the row's training): " + shown)
        print(f"winner per unit of training time: {LABELS[winner] if winner else 'none (no row beats (a))'}")
    if args.quick:
        print(quick_note(rows))
    if paths:
        print("plots: " + ", ".join(str(p) for p in paths))
    atomic_write_text(json.dumps(summary, indent=2), args.out / "navier-stokes-paper_results.json")
    return summary


def quick_note(rows: dict[str, dict]) -> str:
    """Whether this --quick run ranks the rows as the full run did, with the full run's figures and command."""
    if not FULL_PAPER_RESULTS:
        return "the full run's figures are not recorded in this script"
    full = sorted(FULL_PAPER_RESULTS, key=FULL_PAPER_RESULTS.get)
    mine = sorted((k for k in rows if k in FULL_PAPER_RESULTS), key=lambda k: rows[k]["rel_l2"])
    shared = [k for k in full if k in rows]
    same = mine == shared
    figures = ", ".join(f"{k} {FULL_PAPER_RESULTS[k]:.4f}" for k in full)
    verdict = ("this --quick run ranks the rows as the full run does" if same else
               "this --quick run is too small to show the full run's ranking (its order: " + " < ".join(mine) + ")")
    return (f"{verdict}; the full run (python examples/specboost.py --protocol paper --threads 1) measured test "
            f"relative L2, best first: {figures}")


if __name__ == "__main__":
    main()
