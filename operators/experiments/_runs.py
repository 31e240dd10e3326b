"""Run folders and result files of experiment scripts: ``args.json``, resume checks, atomic JSON stores.

A run folder holds ``args.json`` (the options that define the run: data, model,
training), the Trainer's ``checkpoint/`` and the results. ``--resume`` continues a run
only under the options it recorded. Scripts that run many small configurations keep
their finished runs in one JSON store per configuration (:func:`load_runs`,
:func:`save_json`), so that a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from operators.checkpoint import atomic_write_text
from operators.experiments._options import option_name

__all__ = ["HARMLESS_OPTIONS", "run_options", "check_resume", "record_run", "save_json", "load_runs"]

#: Options that change neither the data, nor the model, nor its training: a ``--resume``
#: may change them (``--quick`` only picks defaults; the values it picked are compared).
HARMLESS_OPTIONS = frozenset({"quick", "device", "out", "cache_dir", "resume", "progress", "threads"})
_UNSET = object()


def run_options(args: argparse.Namespace, *, harmless: Iterable[str] = HARMLESS_OPTIONS) -> dict[str, Any]:
    """The options that define a run, as the JSON values :func:`record_run` writes and reads back.

    Every attribute of ``args`` but the ``harmless`` ones, sorted by name; tuples become
    lists and other non-JSON values (paths) their ``str``. Call it after the defaults are
    filled in, so that the values actually used are recorded.

    >>> from pathlib import Path
    >>> run_options(argparse.Namespace(lr=0.1, modes=(8, 12), data=Path("a"), device="cpu"))
    {'data': 'a', 'lr': 0.1, 'modes': [8, 12]}
    """
    skip = set(harmless)
    options = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    return json.loads(json.dumps(options, default=str))


def check_resume(
    parser: argparse.ArgumentParser, run_dir: str | os.PathLike, options: Mapping[str, Any], resume: bool
) -> None:
    """With ``resume``, ``parser.error`` unless ``<run_dir>/args.json`` records the same ``options``.

    The message starts with ``--resume:`` and names each differing option with its old and
    new value (``--n-train was 12, now 11``; ``unset`` for an option one side lacks).
    A run folder without ``args.json`` but with a ``checkpoint.pt`` cannot be checked: a
    warning goes to stderr and the run resumes. Without ``resume`` nothing is checked.
    """
    run_dir = Path(run_dir)
    path = run_dir / "args.json"
    if not resume or not path.is_file():
        if resume and any(run_dir.rglob("checkpoint.pt")):
            print(f"warning: {path} is missing; cannot check that --resume uses the options of the run it "
                  "continues", file=sys.stderr)
        return
    saved = json.loads(path.read_text())

    def shown(values: Mapping[str, Any], key: str) -> str:
        return repr(values[key]) if key in values else "unset"

    diffs = [f"{option_name(k)} was {shown(saved, k)}, now {shown(options, k)}"
             for k in sorted(set(saved) | set(options)) if saved.get(k, _UNSET) != options.get(k, _UNSET)]
    if diffs:
        parser.error(
            f"--resume: {run_dir} was trained with other options ({'; '.join(diffs)}); resume with the "
            "options recorded in args.json, or leave out --resume to start over, or choose another --out"
        )


def record_run(run_dir: str | os.PathLike, options: Mapping[str, Any]) -> None:
    """Write ``options`` to ``<run_dir>/args.json`` (atomically, indented), just before training.

    A run that starts over (no ``--resume``) should build its Trainer with
    ``overwrite=True``, so that a checkpoint of the previous run is never resumed under
    the new ``args.json``.
    """
    atomic_write_text(json.dumps(dict(options), indent=2) + "\n", Path(run_dir) / "args.json")


def save_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON atomically: a killed run never leaves a half-written file."""
    atomic_write_text(json.dumps(data), path)


def _aside(store: Path, config: Any) -> Path:
    """``<stem>-<first 10 hex digits of sha256(config as sorted JSON)>.json`` beside ``store``."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return store.with_name(f"{store.stem}-{digest}.json")


def load_runs(store: str | os.PathLike, config: Any) -> dict[str, Any]:
    """The finished runs in ``store`` for ``config``; runs of other settings are moved aside, never lost.

    ``store`` holds ``{"config": config, "runs": {...}}``, the runs of one configuration
    (write it with :func:`save_json`). When it holds another configuration's runs, it is
    renamed (atomically) to ``<stem>-<hash of its config>.json`` beside it (merged with a
    file of that name if one is there), and a file set aside earlier for ``config`` is
    renamed back; so both sets of runs resume when their settings come back. Returns
    ``{}`` when there are no runs for ``config``.
    """
    store = Path(store)
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
