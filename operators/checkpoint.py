"""Atomic files (checkpoints, JSON lines, text) and the random-number-generator state of a process.

Legend: none (no tensor shapes here; RNG states are 1-D uint8 / int64 tensors).

Public so that scripts and user code can write their results the way the library writes
its own: :func:`atomic_save` (``torch.save``), :func:`atomic_write_text`,
:func:`atomic_write` (any bytes) and :func:`write_jsonl` replace a file atomically;
:func:`save_checkpoint` / :func:`load_checkpoint` are the Trainer's checkpoint format,
and :func:`capture_rng_state` / :func:`restore_rng_state` its RNG bookkeeping.

A file is written to a temporary name in the destination folder, flushed and fsynced,
then moved over the destination with ``os.replace`` (atomic on POSIX and Windows), so
a reader sees either the previous file or the new one, never a partial write, even if
the writer is killed. The file gets the usual mode for the process umask (not
``mkstemp``'s 0600). Checkpoints hold only tensors, numbers, strings, lists and dicts,
so they load with ``torch.load(..., weights_only=True)``: the numpy and Python RNG
states are stored as tensors rather than pickled tuples.

Examples
--------
>>> import tempfile, pathlib
>>> from operators.checkpoint import atomic_write_text
>>> path = pathlib.Path(tempfile.mkdtemp()) / "summary.txt"
>>> atomic_write_text("done", path)
>>> path.read_text()
'done'
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "atomic_write",
    "atomic_save",
    "atomic_write_text",
    "write_jsonl",
    "append_jsonl",
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
]

CHECKPOINT_FORMAT = 1


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not possible (nor needed) on every platform.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``.

    Parameters
    ----------
    path : str or PathLike
        Destination; missing parent folders are created.
    write : callable
        Writes the whole content to the binary file object it is given.

    Notes
    -----
    On any error (or interrupt) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomically: ``path`` holds the old file or the whole new one.

    Parameters
    ----------
    obj : object
        Anything :func:`torch.save` accepts (tensors and plain values load back with
        ``weights_only=True``).
    path : str or PathLike
        Destination; missing parent folders are created.
    """
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Replace the contents of ``path`` with ``text`` (UTF-8), atomically.

    Parameters
    ----------
    text : str
        The whole new content.
    path : str or PathLike
        Destination; missing parent folders are created.
    """
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _json_line(record: dict[str, Any]) -> str:
    # Strict JSON has no NaN/Infinity: non-finite numbers are written as null.
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return json.dumps(clean) + "\n"


def write_jsonl(records: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Replace ``path`` with one JSON line per record, atomically."""
    atomic_write_text("".join(_json_line(r) for r in records), path)


def append_jsonl(record: dict[str, Any], path: str | os.PathLike) -> None:
    """Append one JSON line (a crash can lose this line; resuming rewrites the file)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(_json_line(record))


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Atomically save ``state`` (model/optimizer/... ``state_dict()`` s, counters, RNG)."""
    atomic_save({"format": CHECKPOINT_FORMAT, **state}, path)


def load_checkpoint(path: str | os.PathLike, *, config: dict[str, Any]) -> dict[str, Any]:
    """Load a checkpoint onto the CPU (``weights_only=True``); check format and settings.

    Raises
    ------
    ValueError
        If the file is not a checkpoint of this format, or ``config`` differs from the
        settings it was written with (each difference is listed).
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a Trainer checkpoint of format {CHECKPOINT_FORMAT} "
            f"(got format={state.get('format') if isinstance(state, dict) else type(state)})"
        )
    saved = state["config"]
    diffs = [f"{k}: {saved.get(k)!r} in the checkpoint, {v!r} now" for k, v in config.items() if saved.get(k) != v]
    if diffs:
        raise ValueError(
            f"resume=True: {path} was written with other settings ({'; '.join(diffs)}); "
            "use the same settings or another checkpoint_dir"
        )
    return state


def capture_rng_state() -> dict[str, Any]:
    """Torch CPU, CUDA (every device, if CUDA is in use), numpy and Python RNG states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["kind"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)
