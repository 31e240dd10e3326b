"""Shared pieces of the PDE examples: arguments, scaling, training, errors, tables, plots.

Legend: ``n`` samples, ``C`` channels, ``*grid`` the ``d`` spatial axes (``W`` in 1-D,
``H, W`` in 2-D), ``S`` radial wavenumber shells.

Each PDE example (``burgers_fno.py``, ``darcy_fno.py``, ``navier_stokes_fno.py``) builds
its parser with :func:`make_parser`, fills the options left unset with its full or
``--quick`` defaults and checks them (:func:`apply_defaults`, :func:`check_modes`: a bad
value ends in ``parser.error`` naming the option, before any data are generated), refuses
a ``--resume`` under other options than the run it continues (:func:`run_options`,
:func:`check_resume`), trains with :func:`train` (:class:`operators.training.Trainer`:
tqdm bars, atomic checkpoints, ``--resume``; the options go to ``<out>/args.json``),
scores with :mod:`operators.evaluation` (``relative_errors``, ``resolution_study``,
``format_table``), prints the tables and writes
:func:`plot_prediction` under ``runs/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from operators import Normalized
from operators.checkpoint import atomic_write_text
from operators.datasets.normalizer import Normalizer
from operators.evaluation import format_table, mean_spectrum, plot_prediction, resolution_study as score_resolutions
from operators.training import Trainer
from spectral.modes import max_modes

__all__ = [
    "RUNS_DIR",
    "make_parser",
    "apply_defaults",
    "option",
    "check_int",
    "check_number",
    "check_modes",
    "HARMLESS_OPTIONS",
    "run_options",
    "check_resume",
    "record_run",
    "setup",
    "train",
    "training_summary",
    "count_params",
    "print_results",
    "resolution_study",
]

RUNS_DIR = Path(__file__).resolve().parents[1] / "runs"


def make_parser(
    description: str,
    name: str,
    full: Mapping[str, Any] | None = None,
    quick: Mapping[str, Any] | None = None,
    helps: Mapping[str, str] | None = None,
) -> argparse.ArgumentParser:
    """Options shared by the PDE examples; ``None`` defaults are filled by :func:`apply_defaults`.

    ``full`` and ``quick`` are the example's defaults (the dicts it passes to :func:`apply_defaults`):
    the help of each shared option states both, e.g. ``(default 1000; --quick 300)``. ``helps``
    replaces the help text of shared options (by dest name), e.g. to say what a sample is.
    """
    full, quick, helps = full or {}, quick or {}, helps or {}

    def shown(value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    def text(key: str, default_help: str) -> str:
        words = helps.get(key, default_help)
        if key not in full:
            return words
        big, small = full[key], quick.get(key, full[key])
        if big == small:
            return f"{words} (default {shown(big)}, with or without --quick)"
        return f"{words} (default {shown(big)}; --quick {shown(small)})"

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small data and model: a couple of minutes on 2 CPU cores (sets the --quick defaults below; "
                        "explicit options win)")
    p.add_argument("--n-train", type=int, help=text("n_train", "training samples, the first ones generated"))
    p.add_argument("--n-test", type=int, help=text("n_test", "test samples, the last ones generated"))
    p.add_argument("--epochs", type=int, help=text("epochs", "training epochs"))
    p.add_argument("--batch-size", type=int, help=text("batch_size", "batch size"))
    p.add_argument("--lr", type=float, help=text("lr", "AdamW learning rate, cosine schedule"))
    p.add_argument("--width", type=int, help=text("width", "hidden channels of the FNO"))
    p.add_argument("--modes", type=int, help=text("modes", "kept Fourier modes |k| < modes per axis"))
    p.add_argument("--layers", type=int, help=text("layers", "Fourier blocks"))
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of the model (default 0)")
    p.add_argument("--out", type=Path, default=RUNS_DIR / name, help=f"output folder (default runs/{name})")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="data cache folder (default $SPECTRAL_OPERATORS_CACHE_DIR or ~/.cache/spectral-operators)")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>/checkpoint/checkpoint.pt; refuses options other than those recorded "
                        "in <out>/args.json")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars (default: only on a terminal)")
    return p


def apply_defaults(
    parser: argparse.ArgumentParser, args: argparse.Namespace, full: Mapping[str, Any], quick: Mapping[str, Any]
) -> argparse.Namespace:
    """Fill every option left as None from ``quick`` (with ``--quick``) or ``full``; check the shared ones.

    A bad value (a size below 1, a learning rate that is not finite and > 0, a negative
    seed) ends in ``parser.error`` naming the option.
    """
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for key in ("n_train", "n_test", "epochs", "batch_size", "width", "modes", "layers"):
        if getattr(args, key, None) is not None:
            check_int(parser, args, key)
    check_number(parser, args, "lr")
    check_int(parser, args, "seed", 0)
    return args


def option(dest: str) -> str:
    """The command-line spelling of an argparse ``dest``: ``n_train -> --n-train``."""
    return "--" + dest.replace("_", "-")


def check_int(parser: argparse.ArgumentParser, args: argparse.Namespace, dest: str, minimum: int = 1) -> int:
    """``args.<dest>``, or ``parser.error`` unless it is ``>= minimum``."""
    value = getattr(args, dest)
    if value < minimum:
        parser.error(f"{option(dest)} must be >= {minimum}, got {value}")
    return value


def check_number(parser: argparse.ArgumentParser, args: argparse.Namespace, dest: str, *,
                 allow_zero: bool = False) -> float:
    """``args.<dest>``, or ``parser.error`` unless it is finite and > 0 (``>= 0`` with ``allow_zero``)."""
    value = getattr(args, dest)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        parser.error(f"{option(dest)} must be finite and {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def check_modes(
    parser: argparse.ArgumentParser, modes: int, grids: Mapping[int, str], *, name: str = "--modes"
) -> None:
    """``parser.error`` unless every grid admits ``modes``: ``modes <= (N + 1) // 2`` (Nyquist excluded).

    ``grids`` maps each grid size the model runs on (per axis) to the option that set it.
    The rule is :func:`spectral.modes.max_modes`, which the FNO applies to its input
    grid; checking it here reports a bad combination before the data are generated.
    """
    for n, source in sorted(grids.items()):
        if modes > max_modes(n):
            parser.error(
                f"{name}={modes} exceeds the {max_modes(n)} modes a grid of {n} points ({source}) admits: "
                f"{name} must be <= ({n} + 1) // 2 = {max_modes(n)} (Nyquist excluded)"
            )


#: Options that change neither the data, nor the model, nor its training: a ``--resume``
#: may change them (``--quick`` only picks defaults; the values it picked are compared).
HARMLESS_OPTIONS = frozenset({"quick", "device", "out", "cache_dir", "resume", "progress", "threads"})
_UNSET = object()


def run_options(args: argparse.Namespace, *, harmless: Iterable[str] = HARMLESS_OPTIONS) -> dict[str, Any]:
    """The options that define a run's data, model and training, as JSON values.

    Every option of ``args`` but the ``harmless`` ones; call it after the defaults are
    filled in, so that the values actually used are recorded.
    """
    skip = set(harmless)
    options = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    return json.loads(json.dumps(options, default=str))  # tuples -> lists, paths -> str: as read back


def check_resume(parser: argparse.ArgumentParser, run_dir: Path, options: Mapping[str, Any], resume: bool) -> None:
    """With ``resume``, ``parser.error`` unless ``<run_dir>/args.json`` records the same ``options``.

    The message names each differing option with its old and new value. A run folder
    without ``args.json`` (a run from before it was written) cannot be checked: a
    warning goes to stderr and the run resumes.
    """
    path = Path(run_dir) / "args.json"
    if not resume or not path.is_file():
        if resume and any(Path(run_dir).rglob("checkpoint.pt")):
            print(f"warning: {path} is missing; cannot check that --resume uses the options of the run it "
                  "continues", file=sys.stderr)
        return
    saved = json.loads(path.read_text())

    def shown(values: Mapping[str, Any], key: str) -> str:
        return repr(values[key]) if key in values else "unset"

    diffs = [f"{option(k)} was {shown(saved, k)}, now {shown(options, k)}"
             for k in sorted(set(saved) | set(options)) if saved.get(k, _UNSET) != options.get(k, _UNSET)]
    if diffs:
        parser.error(
            f"--resume: {run_dir} was trained with other options ({'; '.join(diffs)}); resume with the "
            "options recorded in args.json, or leave out --resume to start over, or choose another --out"
        )


def record_run(run_dir: Path, options: Mapping[str, Any]) -> None:
    """Write ``options`` to ``<run_dir>/args.json`` (atomically) just before training.

    A run that starts over (no ``--resume``) builds its Trainers with ``overwrite=True``:
    the previous run's checkpoints are set aside, and removed once the new run has written
    its first checkpoint (nothing is lost before), so a checkpoint of the previous run is
    never resumed under the new ``args.json``.
    """
    atomic_write_text(json.dumps(dict(options), indent=2) + "\n", Path(run_dir) / "args.json")


def setup(args: argparse.Namespace) -> torch.device:
    """Seed torch, create the output folder and resolve the device."""
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(args.device)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train(
    model: nn.Module,
    train_set: tuple[torch.Tensor, torch.Tensor],
    test_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    args: argparse.Namespace,
    device: torch.device,
    *,
    options: Mapping[str, Any],
    **trainer_kw: Any,
) -> tuple[Trainer, dict[str, float]]:
    """Fit with the Trainer (relative L2 loss, cosine schedule); return it and the timings.

    ``options`` (:func:`run_options`) go to ``<out>/args.json`` first (:func:`record_run`).
    Timings: ``wall_s`` and ``cpu_s`` (this process's CPU time, all threads) of the
    training call, which includes the periodic evaluation of ``test_sets``, and
    ``start_epoch`` (> 0 when ``--resume`` continued a checkpoint).
    """
    epochs = args.epochs
    record_run(args.out, options)
    trainer = Trainer(
        model, epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=device,
        eval_every=max(1, epochs // 10), checkpoint_dir=args.out / "checkpoint", resume=args.resume, overwrite=not args.resume,
        verbose=args.progress, **trainer_kw,
    )
    wall, cpu, start_epoch = time.perf_counter(), time.process_time(), trainer.epoch
    trainer.fit(train_set, test=dict(test_sets))
    return trainer, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                     "start_epoch": start_epoch}


def training_summary(timing: Mapping[str, float], epochs: int) -> str:
    """``"<wall> / <CPU> (<epochs> epochs[, resumed after epoch k])"`` for the results table."""
    resumed = f", resumed after epoch {timing['start_epoch']}" if timing.get("start_epoch") else ""
    return f"{timing['wall_s']:.1f} / {timing['cpu_s']:.1f} ({epochs} epochs{resumed})"


def print_results(title: str, summary: Mapping[str, Any], errors_table: str, out: Path,
                  results: Mapping[str, Any]) -> None:
    """Print the summary and the error table (a :func:`operators.evaluation.format_table`); write results.json."""
    print(f"\n{title}")
    print(format_table(("quantity", "value"), list(summary.items())))
    print()
    print(errors_table)
    path = out / "results.json"
    atomic_write_text(json.dumps(results, indent=2, default=str), path)
    print(f"\nresults: {path}")


def resolution_study(
    *,
    title: str,
    data: Mapping[int, Any],
    train_resolution: int,
    ndim: int,
    model: nn.Module,
    args: argparse.Namespace,
    device: torch.device,
    summary: dict[str, Any],
    data_seconds: float,
    options: Mapping[str, Any],
    plot_labels: Sequence[str] = ("input", "truth", "prediction", "error"),
    plot_name: str = "prediction.png",
) -> dict[str, Any]:
    """Train on the first ``args.n_train`` samples at ``train_resolution``; score every resolution.

    ``data`` maps a grid size to a :class:`~operators.datasets._cache.PDEData` holding
    the same samples on that grid (first ``n_train`` for training, the rest for test).
    The model (wrapped in :class:`operators.Normalized` with training-set statistics) is
    evaluated zero-shot on every other grid. Prints the tables, writes the PNG and
    ``results.json`` under ``args.out`` and returns the results; ``options`` go to
    ``args.json`` (see :func:`train`).
    """
    n = args.n_train
    base = data[train_resolution]
    x, y = base.inputs[:n], base.targets[:n]
    tests = {r: (d.inputs[n:], d.targets[n:]) for r, d in sorted(data.items())}
    model = Normalized(model, Normalizer.fit(x), Normalizer.fit(y))  # sees O(1) data, predicts physical units
    params = count_params(model)
    trainer, timing = train(model, (x, y), {str(train_resolution): tests[train_resolution]}, args, device,
                            options=options)

    study = score_resolutions(trainer.model, tests, train_resolution=train_resolution,
                              batch_size=trainer.eval_batch_size, device=trainer.device)
    errors, preds, role = study.errors, study.predictions, study.role
    def points(r: int) -> str:
        return f"{r}-point" if ndim == 1 else "x".join([str(r)] * ndim)

    shown = max(tests)
    spectra = {f"error, {points(r)} ({role(r).split(' (')[0]})": mean_spectrum(preds[r] - tests[r][1], ndim)
               for r in tests}
    spectra[f"truth, {points(shown)}"] = mean_spectrum(tests[shown][1], ndim)
    png = plot_prediction(
        args.out / plot_name,
        f"{title}: test sample 0 on the {points(shown)} grid ({role(shown)}), rel. L2 {errors[shown][0]:.2%}; "
        f"spectra: test-set means",
        tests[shown][0][0, 0], tests[shown][1][0, 0], preds[shown][0, 0], spectra, labels=plot_labels,
    )
    grid = "x".join([str(train_resolution)] * ndim)
    summary = {
        **summary,
        "parameters": f"{params:,}",
        "device": str(device),
        "data generation (s, wall)": f"{data_seconds:.1f}",
        "training (s, wall / CPU)": training_summary(timing, args.epochs),
        f"test rel. L2 at {grid}": f"{errors[train_resolution].mean():.2%}",
        "plot": str(png),
    }
    results = {
        "title": title, "parameters": params, "device": str(device), "n_train": n, "n_test": len(errors[shown]),
        "epochs": args.epochs, "train_resolution": train_resolution, "data_seconds": data_seconds,
        "train_wall_s": timing["wall_s"], "train_cpu_s": timing["cpu_s"],
        "test_rel_l2": study.mean(), "history": trainer.history,
        "plot": str(png), "model": repr(model), "model_summary": summary.get("model", type(model).__name__),
        "ndim": ndim,
    }
    print_results(title, summary, study.table(), args.out, results)
    return results


def save_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically: a killed run never leaves a half-written file."""
    atomic_write_text(json.dumps(data), path)


def _aside(store: Path, config) -> Path:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return store.with_name(f"{store.stem}-{digest}.json")


def load_runs(store: Path, config: dict) -> dict:
    """The finished runs in ``store`` for ``config``; runs of other settings are moved aside, never lost.

    ``store`` (``{"config": ..., "runs": {...}}``) holds the runs of one config. Under other
    settings it is renamed (atomically) to ``<stem>-<config hash>.json`` beside it, and a file
    moved aside earlier for ``config`` is renamed back, so that both sets of runs resume when
    their settings come back.
    """
    saved = json.loads(store.read_text()) if store.exists() else None
    if saved is not None and saved.get("config") == config:
        return saved.get("runs", {})
    if saved is not None:
        aside = _aside(store, saved.get("config"))
        if aside.exists():  # a copy made by hand: keep the runs of both
            save_json(store, saved | {"runs": json.loads(aside.read_text()).get("runs", {}) | saved.get("runs", {})})
        os.replace(store, aside)
        print(f"{store} holds runs of other settings: moved to {aside}")
    earlier = _aside(store, config)
    if not earlier.exists():
        return {}
    os.replace(earlier, store)
    print(f"resuming the runs of these settings from {earlier} (moved back to {store})")
    return json.loads(store.read_text()).get("runs", {})
