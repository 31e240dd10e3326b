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

Checksums: :func:`atomic_save` ends the file with the SHA-256 of every byte before it,
stored as the zip comment of ``torch.save``'s archive (so the file is still an ordinary
``torch.save`` file that ``torch.load`` and ``zipfile`` read as before).
:func:`checked_load` (and :func:`load_checkpoint`) verifies it and raises
:class:`DamagedFileError`, a ``ValueError`` naming the file, for a truncated, empty,
overwritten or bit-flipped file, where ``torch.load`` would raise a bare ``EOFError`` or
silently return flipped tensor values. Files written without a checksum (by
``torch.save``, or by earlier versions) still load; for those only damage that breaks
``torch.load`` can be seen.

Write errors: a failed write (a full disk, a quota, an I/O error) leaves the previous
file untouched, removes the temporary file and raises an ``OSError`` that carries the
errno and names the destination, also where ``torch.save`` reports the failure as a
``RuntimeError``.

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
import errno
import hashlib
import json
import math
import os
import random
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from spectral.checks import check_bool

__all__ = [
    "CHECKPOINT_FORMAT",
    "DamagedFileError",
    "atomic_write",
    "atomic_save",
    "checked_load",
    "atomic_write_text",
    "write_jsonl",
    "append_jsonl",
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
]

CHECKPOINT_FORMAT = 1

# The checksum trailer: the zip comment of torch.save's archive, b"<_MAGIC><64 hex digits>",
# holding the SHA-256 of every byte before it (the end-of-central-directory record included,
# with its comment length already set).
_MAGIC = b"spectral-operators-sha256:"
_TRAILER = len(_MAGIC) + 64
_EOCD = b"PK\x05\x06"  # signature of the zip end-of-central-directory record (22 bytes + comment)
_ZIP = b"PK\x03\x04"  # every torch.save zip archive starts with a local file header
# errors that torch.save reports as a RuntimeError naming only the C library's message
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)


class DamagedFileError(ValueError):
    """A file written by :func:`atomic_save` (or ``torch.save``) that cannot be trusted.

    Its message names the file and says how it is damaged (empty, truncated, checksum
    mismatch, unreadable); the original error, if any, is its ``__cause__``.
    """



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

    Raises
    ------
    OSError
        The write failed (a full disk, ...): same errno, naming ``path`` and the errno's
        symbol, e.g. ``[Errno 28] No space left on device (ENOSPC) while writing:
        'run/checkpoint.pt'``. An I/O failure that ``write`` reports as a ``RuntimeError``
        (``torch.save`` does) is raised as this ``OSError`` too.

    Notes
    -----
    On any error (or interrupt) the temporary file is removed and ``path`` is untouched.
    The file is opened for reading as well (``"w+b"``), so ``write`` may read back what
    it wrote.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        code = _write_errno(err)
        if code is None:
            raise
        if code == -1:  # an OSError without an errno
            raise OSError(f"could not write {path}: {err}") from err
        name = errno.errorcode.get(code, str(code))
        raise OSError(code, f"{os.strerror(code)} ({name}) while writing", str(path)) from err
    _fsync_dir(path.parent)


def _write_errno(err: BaseException) -> int | None:
    """The errno of an I/O failure behind ``err`` (-1 for an OSError without one), else None."""
    if not isinstance(err, (OSError, RuntimeError)):
        return None  # KeyboardInterrupt, SystemExit, pickling errors: re-raised as they are
    seen: BaseException | None = err
    for _ in range(8):  # torch.save wraps the file's OSError in a RuntimeError (__context__)
        if seen is None:
            break
        if isinstance(seen, OSError):
            return seen.errno if seen.errno is not None else -1
        seen = seen.__cause__ or seen.__context__
    if isinstance(err, RuntimeError):  # e.g. torch.save writing through its own C file handle
        for code in _WRITE_ERRNOS:
            if os.strerror(code) in str(err) or errno.errorcode[code] in str(err):
                return code
    return None


def _sha256(f: IO[bytes], end: int) -> str:
    digest = hashlib.sha256()
    f.seek(0)
    left = end
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def _append_checksum(f: IO[bytes]) -> None:
    """Store the SHA-256 of the zip archive ``torch.save`` just wrote to ``f`` as its zip comment."""
    f.flush()
    end = f.seek(0, os.SEEK_END)
    f.seek(max(end - 22, 0))
    eocd = f.read(22)
    if len(eocd) != 22 or eocd[:4] != _EOCD or eocd[20:] != b"\0\0":
        raise RuntimeError("torch.save wrote an archive without a plain zip ending; cannot add a checksum")
    f.seek(end - 2)
    f.write(struct.pack("<H", _TRAILER))  # the comment length, covered by the checksum
    f.flush()
    digest = _sha256(f, end)
    f.seek(end)
    f.write(_MAGIC + digest.encode("ascii"))


def atomic_save(obj: Any, path: str | os.PathLike, *, checksum: bool = True) -> None:
    """``torch.save(obj, path)``, atomically: ``path`` holds the old file or the whole new one.

    Parameters
    ----------
    obj : object
        Anything :func:`torch.save` accepts (tensors and plain values load back with
        ``weights_only=True``).
    path : str or PathLike
        Destination; missing parent folders are created.
    checksum : bool
        End the file with the SHA-256 of its bytes (the zip comment), which
        :func:`checked_load` verifies; ``torch.load`` ignores it.

    Raises
    ------
    OSError
        The write failed; see :func:`atomic_write`.
    """
    check_bool("checksum", checksum)

    def write(f: IO[bytes]) -> None:
        torch.save(obj, f)
        if checksum:
            _append_checksum(f)

    atomic_write(path, write)


def _verify(f: IO[bytes], path: Path) -> bool:
    """True if ``f`` ends in a matching checksum, False if it has none; DamagedFileError otherwise."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        raise DamagedFileError(f"{path} is damaged: it is empty (0 bytes)")
    f.seek(max(end - 22 - _TRAILER, 0))
    tail = f.read()
    eocd = tail[-22 - _TRAILER : -_TRAILER] if len(tail) >= 22 + _TRAILER else b""
    if tail.endswith(b"\0\0") and tail[-22:-18] == _EOCD:
        return False  # a plain torch.save archive (no checksum)
    if eocd[:4] == _EOCD and eocd[20:] == struct.pack("<H", _TRAILER) and tail[-_TRAILER:].startswith(_MAGIC):
        stored = tail[-64:].decode("ascii", "replace")
        actual = _sha256(f, end - _TRAILER)
        if actual != stored:
            raise DamagedFileError(
                f"{path} is damaged: its SHA-256 {actual[:16]}... differs from the {stored[:16]}... "
                "stored when it was written (bytes were changed on disk or in transfer)"
            )
        return True
    f.seek(0)
    if f.read(4) == _ZIP:
        raise DamagedFileError(f"{path} is damaged: its zip archive has no proper end (truncated or overwritten)")
    return False  # torch's legacy format or a foreign file: torch.load decides


def checked_load(
    path: str | os.PathLike, *, map_location: Any = None, weights_only: bool = True
) -> Any:
    """``torch.load`` a file, verifying the checksum :func:`atomic_save` stored in it.

    Parameters
    ----------
    path : str or PathLike
        A file written by :func:`atomic_save`, or by plain ``torch.save`` (no checksum:
        only damage that breaks ``torch.load`` can be detected then).
    map_location, weights_only
        As in :func:`torch.load`.

    Returns
    -------
    object
        What was saved.

    Raises
    ------
    DamagedFileError
        (a ``ValueError``) naming ``path``: the file is empty, truncated, does not match
        its checksum, or ``torch.load`` cannot read a file that has no checksum.
    FileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
    >>> atomic_save({"w": torch.ones(2)}, path)
    >>> checked_load(path)["w"].tolist()
    [1.0, 1.0]
    >>> _ = path.write_bytes(path.read_bytes()[:-10])  # truncated in a copy
    >>> checked_load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    operators.checkpoint.DamagedFileError: .../w.pt is damaged: its zip archive has no proper end (truncated or overwritten)
    """
    path = Path(path)
    with open(path, "rb") as f:  # verify and load the same file, even if it is replaced meanwhile
        verified = _verify(f, path)
        f.seek(0)
        if verified:  # intact: any error is about the content (weights_only refusals), not damage
            return torch.load(f, map_location=map_location, weights_only=weights_only)
        try:
            return torch.load(f, map_location=map_location, weights_only=weights_only)
        except Exception as err:
            raise DamagedFileError(
                f"{path} is damaged or not a torch.save file: torch.load failed with {err!r}"[:2000]
            ) from err


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
    """Atomically save ``state`` (model/optimizer/... ``state_dict()`` s, counters, RNG) with a checksum.

    A failed write raises an ``OSError`` naming ``path`` and keeps the previous file
    (see :func:`atomic_write`).
    """
    atomic_save({"format": CHECKPOINT_FORMAT, **state}, path)


def load_checkpoint(path: str | os.PathLike, *, config: dict[str, Any]) -> dict[str, Any]:
    """Load a checkpoint onto the CPU (``weights_only=True``); check checksum, format and settings.

    Raises
    ------
    DamagedFileError
        (a ``ValueError``) naming the file: it is empty, truncated, garbage or fails its
        checksum (see :func:`checked_load`).
    ValueError
        If the file is not a checkpoint of this format, or ``config`` differs from the
        settings it was written with (each difference is listed).
    """
    state = checked_load(path, map_location="cpu", weights_only=True)
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
