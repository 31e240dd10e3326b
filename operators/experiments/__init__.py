"""Helpers for command-line experiment scripts: options, run folders, training and reports.

The library's examples are written with these; a script of your own gets the same
command line (full and ``--quick`` defaults, checked options, ``--resume``) in a few lines.

* Options (:mod:`argparse`): :func:`experiment_parser` (the shared options: sizes, ``--lr``,
  ``--seed``, ``--out``, ``--resume``, ...), :func:`apply_defaults` (full or ``--quick``
  defaults, explicit values win, shared options checked); :func:`check_int_option`,
  :func:`check_number_option` (the rules of :mod:`spectral.checks`) and
  :func:`check_modes_option` end in ``parser.error`` naming the option, before any data
  are generated.
* Run folders: :func:`run_options` (the options that define a run, minus
  :data:`HARMLESS_OPTIONS`), :func:`record_run` (``<out>/args.json``), :func:`check_resume`
  (``--resume`` only under the recorded options).
* Training and reports: :func:`prepare_run` (seed, folder, device), :func:`train_from_args`
  (a :class:`operators.Trainer` from the options, with timings), :func:`training_summary`,
  :func:`print_results` (tables and ``results.json``), :func:`resolution_experiment` (train
  at one grid, score every grid, plot and report), :func:`count_parameters`.
* :func:`progress_bar`: a tqdm bar drawn on a terminal only (``--progress`` forces it).
* Sweeps of small runs: :func:`load_runs` and :func:`save_json`, one atomic JSON store per
  configuration; runs of other settings are set aside, never lost.

Examples
--------
>>> from operators.experiments import apply_defaults, experiment_parser, run_options
>>> FULL, QUICK = dict(n_train=1000, epochs=100, lr=1e-3), dict(n_train=100, epochs=5, lr=1e-3)
>>> parser = experiment_parser("my experiment", "runs/mine", FULL, QUICK)
>>> args = apply_defaults(parser, parser.parse_args(["--quick", "--epochs", "8"]), FULL, QUICK)
>>> (args.n_train, args.epochs)
(100, 8)
>>> run_options(args)["epochs"]
8
"""

from operators.experiments._options import (
    SIZE_OPTIONS,
    apply_defaults,
    check_int_option,
    check_modes_option,
    check_number_option,
    experiment_parser,
    option_name,
)
from operators.experiments._progress import progress_bar
from operators.experiments._runs import HARMLESS_OPTIONS, check_resume, load_runs, record_run, run_options, save_json
from operators.experiments._training import (
    count_parameters,
    prepare_run,
    print_results,
    resolution_experiment,
    train_from_args,
    training_summary,
)

__all__ = [
    "HARMLESS_OPTIONS",
    "SIZE_OPTIONS",
    "apply_defaults",
    "check_int_option",
    "check_modes_option",
    "check_number_option",
    "check_resume",
    "count_parameters",
    "experiment_parser",
    "load_runs",
    "option_name",
    "prepare_run",
    "print_results",
    "progress_bar",
    "record_run",
    "resolution_experiment",
    "run_options",
    "save_json",
    "train_from_args",
    "training_summary",
]
