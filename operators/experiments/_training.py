"""Training and reporting for experiment scripts: seed and device, a Trainer from the options, result tables.

Legend: ``n`` samples, ``C`` channels, ``*grid`` the ``d`` spatial axes (``W`` in 1-D,
``H, W`` in 2-D).

The functions read the options :func:`operators.experiments.experiment_parser` defines
from an ``argparse.Namespace``: ``epochs``, ``batch_size``, ``lr``, ``seed``, ``device``,
``out``, ``resume`` and ``progress``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from operators.checkpoint import atomic_write_text
from operators.datasets.normalizer import Normalizer
from operators.evaluation import format_table, mean_spectrum, plot_prediction, resolution_study
from operators.experiments._runs import record_run
from operators.normalized import Normalized
from operators.training import Trainer

__all__ = [
    "prepare_run",
    "count_parameters",
    "train_from_args",
    "training_summary",
    "print_results",
    "resolution_experiment",
]


def prepare_run(args: argparse.Namespace) -> torch.device:
    """Seed torch with ``args.seed``, create ``args.out`` and return the device.

    ``args.device`` None means CUDA when available, else the CPU.
    """
    torch.manual_seed(args.seed)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(args.device)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameter entries (``requires_grad``) of ``model``.

    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_from_args(
    model: nn.Module,
    train_set: Any,
    test_sets: Mapping[str, Any],
    args: argparse.Namespace,
    device: torch.device | str | None,
    *,
    options: Mapping[str, Any],
    **trainer_kw: Any,
) -> tuple[Trainer, dict[str, float]]:
    """Fit ``model`` with a :class:`operators.Trainer` built from the options; return it and the timings.

    ``options`` (:func:`operators.experiments.run_options`) go to ``<out>/args.json``
    first. The Trainer (relative L2 loss and cosine schedule unless ``trainer_kw`` say
    otherwise) takes ``args.epochs``, ``batch_size``, ``lr`` and ``seed``, evaluates
    ``test_sets`` every ``epochs // 10`` epochs, checkpoints to ``<out>/checkpoint``,
    continues it with ``args.resume`` and otherwise starts over (``overwrite=True``).

    Returns
    -------
    trainer : Trainer
        After ``fit``: ``trainer.model``, ``trainer.history``.
    timing : dict
        ``wall_s`` and ``cpu_s`` (this process's CPU time, all threads) of the ``fit``
        call, and ``start_epoch`` (> 0 when ``--resume`` continued a checkpoint).
    """
    epochs = args.epochs
    record_run(args.out, options)
    trainer = Trainer(
        model, epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=device,
        eval_every=max(1, epochs // 10), checkpoint_dir=Path(args.out) / "checkpoint", resume=args.resume,
        overwrite=not args.resume, verbose=args.progress, **trainer_kw,
    )
    wall, cpu, start_epoch = time.perf_counter(), time.process_time(), trainer.epoch
    trainer.fit(train_set, test=dict(test_sets))
    return trainer, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                     "start_epoch": start_epoch}


def training_summary(timing: Mapping[str, float], epochs: int) -> str:
    """``"<wall> / <CPU> (<epochs> epochs[, resumed after epoch k])"`` for a results table.

    >>> training_summary({"wall_s": 12.34, "cpu_s": 20.0, "start_epoch": 3}, 10)
    '12.3 / 20.0 (10 epochs, resumed after epoch 3)'
    """
    resumed = f", resumed after epoch {timing['start_epoch']}" if timing.get("start_epoch") else ""
    return f"{timing['wall_s']:.1f} / {timing['cpu_s']:.1f} ({epochs} epochs{resumed})"


def print_results(title: str, summary: Mapping[str, Any], errors_table: str, out: str | Path,
                  results: Mapping[str, Any]) -> None:
    """Print ``title``, ``summary`` as a two-column table and ``errors_table``; write ``<out>/results.json``.

    ``results`` are written atomically as indented JSON (values JSON cannot hold as
    their ``str``); the last line printed names the file.
    """
    print(f"\n{title}")
    print(format_table(("quantity", "value"), list(summary.items())))
    print()
    print(errors_table)
    path = Path(out) / "results.json"
    atomic_write_text(json.dumps(results, indent=2, default=str), path)
    print(f"\nresults: {path}")


def resolution_experiment(
    *,
    title: str,
    data: Mapping[int, Any],
    train_resolution: int,
    ndim: int,
    model: nn.Module,
    args: argparse.Namespace,
    device: torch.device,
    summary: Mapping[str, Any],
    data_seconds: float,
    options: Mapping[str, Any],
    plot_labels: Sequence[str] = ("input", "truth", "prediction", "error"),
    plot_name: str = "prediction.png",
) -> dict[str, Any]:
    """Train on the first ``args.n_train`` samples at one grid, score every grid, report and return the results.

    ``data`` maps a grid size to the same samples on that grid (anything with ``inputs``
    ``(n, C_in, *grid)`` and ``targets`` ``(n, C_out, *grid)``, e.g. a
    :class:`operators.datasets.PDEData`): the first ``n_train`` train, the rest test.
    The model, wrapped in :class:`operators.Normalized` with the training set's
    statistics, is trained by :func:`train_from_args` and scored by
    :func:`operators.evaluation.resolution_study` on every grid (zero-shot on all but
    ``train_resolution``). Prints ``summary`` (plus parameters, device, timings, the
    test error and the plot) and the error table, writes ``<out>/<plot_name>`` (test
    sample 0 on the finest grid, with the test-set error spectra) and
    ``<out>/results.json``.

    Returns
    -------
    dict
        ``test_rel_l2`` (grid as str -> mean relative L2), ``history``, ``parameters``,
        timings, ``plot`` and the settings; what ``results.json`` holds.
    """
    n = args.n_train
    base = data[train_resolution]
    x, y = base.inputs[:n], base.targets[:n]
    tests = {r: (d.inputs[n:], d.targets[n:]) for r, d in sorted(data.items())}
    model = Normalized(model, Normalizer.fit(x), Normalizer.fit(y))  # sees O(1) data, predicts physical units
    params = count_parameters(model)
    trainer, timing = train_from_args(model, (x, y), {str(train_resolution): tests[train_resolution]}, args, device,
                                      options=options)
    study = resolution_study(trainer.model, tests, train_resolution=train_resolution,
                             batch_size=trainer.eval_batch_size, device=trainer.device)
    errors, preds, role = study.errors, study.predictions, study.role

    def points(r: int) -> str:
        return f"{r}-point" if ndim == 1 else "x".join([str(r)] * ndim)

    shown = max(tests)
    spectra = {f"error, {points(r)} ({role(r).split(' (')[0]})": mean_spectrum(preds[r] - tests[r][1], ndim)
               for r in tests}
    spectra[f"truth, {points(shown)}"] = mean_spectrum(tests[shown][1], ndim)
    png = plot_prediction(
        Path(args.out) / plot_name,
        f"{title}: test sample 0 on the {points(shown)} grid ({role(shown)}), rel. L2 {errors[shown][0]:.2%}; "
        f"spectra: test-set means",
        tests[shown][0][0, 0], tests[shown][1][0, 0], preds[shown][0, 0], spectra, labels=plot_labels,
    )
    summary = {
        **summary,
        "parameters": f"{params:,}",
        "device": str(device),
        "data generation (s, wall)": f"{data_seconds:.1f}",
        "training (s, wall / CPU)": training_summary(timing, args.epochs),
        f"test rel. L2 at {'x'.join([str(train_resolution)] * ndim)}": f"{errors[train_resolution].mean():.2%}",
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
