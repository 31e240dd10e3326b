"""SpecBoost against a single FNO at equal parameters and equal epochs, with error spectra.

Problem (default ``--problem navier-stokes``): the map ``w(0) -> w(T)`` of 2-D
incompressible Navier-Stokes in vorticity form on the unit torus (the FNO paper's forcing
and initial-vorticity GRF; ``nu = 1e-3``, ``T = 10``; solved on 64^2, trained on the
32^2 subsampling; ``--quick`` solves on 32^2 to ``T = 5``). ``--problem darcy``: the
permeability -> pressure map of 2-D Darcy flow (solved on 128^2, trained on 32^2).

Models: one FNO of width ``Ws`` (``~sqrt 2`` times the stage width, chosen so that the
parameter counts match within a few percent) trained for ``E`` epochs, and a 2-stage
:class:`operators.specboost.SpecBoost` of two FNOs of the stage width, trained for
``E1`` and ``E - E1`` epochs (``--stage1-epochs``, default ``E / 2``): stage 1 on the
target, stage 2 on the residual of stage 1 (stage 1 frozen). Same kept modes, layers,
batch size, learning rate and schedule for all, unless ``--stage2-modes`` / ``--stage2-width``
give stage 2 its own (the single FNO's width then matches the new total).

Output: test relative L2 of the single FNO, of SpecBoost's first stage alone and of
SpecBoost; the normalised radial error spectra (``operators.error_spectrum``) of the three
in ``runs/specboost/<problem>_error_spectra.png`` with the single FNO's highest kept mode
``--modes - 1`` marked (stage 1's too; stage 2's as well when ``--stage2-modes`` differs);
the share of error energy above the single FNO's highest kept mode, ``E(|k| > --modes - 1)``,
before and after boosting; how well stage 2 fits the residual of stage 1 on the training
set and on the test set; a results table and ``<problem>_results.json``. Training
checkpoints (``--resume`` continues a killed run; it refuses options other than those
recorded in ``<problem>/args.json``) and the trained models go under
``runs/specboost/<problem>``.

    python examples/specboost.py --quick
    python examples/specboost.py                      # Navier-Stokes, full setting
    python examples/specboost.py --problem darcy
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
    record_run,
    run_options,
)
from operators.fno import FNO  # noqa: E402
from operators.losses import LpLoss  # noqa: E402
from operators.specboost import SpecBoost  # noqa: E402
from operators.training import Trainer, fit_specboost_stage  # noqa: E402

PROBLEMS = ("navier-stokes", "darcy")
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
    p.add_argument("--stage-input", choices=("input", "input+previous"), default="input+previous",
                   help="what stage 2 sees: the input alone, or the input and stage 1's prediction as a second "
                        "channel (default here input+previous; the SpecBoost class itself defaults to input)")
    p.add_argument("--objective", choices=("residual", "ensemble"), default="residual",
                   help="stage 2 loss: relative L2 of the residual, or of the 2-stage prediction (default residual)")
    p.add_argument("--viscosity", type=float, default=1e-3,
                   help="Navier-Stokes viscosity nu (default 1e-3; ignored by --problem darcy)")
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
    args = apply_defaults(p, p.parse_args(argv), FULL, QUICK)  # explicit values kept; sizes, --lr, --seed checked
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
                     cache_dir=args.cache_dir, progress=True)
        x, y, hi = data.inputs, data.targets, None
    elif args.quick:
        data = navier_stokes(n, resolution=32, solver_resolution=32, viscosity=args.viscosity, t_final=5.0,
                             seed=args.seed, cache_dir=args.cache_dir, progress=True)
        x, y, hi = data.inputs, data.targets, None
    else:
        data = navier_stokes(n, resolution=(32, 64), solver_resolution=64, viscosity=args.viscosity, t_final=10.0,
                             seed=args.seed, batch_size=100, cache_dir=args.cache_dir, progress=True)
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
                  resume=args.resume, overwrite=not args.resume, verbose=True)
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
                       vmax=vmax if err else None)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
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
    print("plots: " + ", ".join(str(p) for p in paths))
    summary = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "params": params, "single_width": single.config.hidden_channels, "results": rows, "reduction": reduction,
               "stage2_residual_rel_l2": fit, "times_s": times, "highest_kept_mode": kept_modes,
               "frac_above_k": kept}
    atomic_write_text(json.dumps(summary, indent=2), args.out / f"{args.problem}_results.json")
    return summary


if __name__ == "__main__":
    main()
