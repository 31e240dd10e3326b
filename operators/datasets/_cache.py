"""Containers and on-disk cache of the PDE data generators.

Legend: ``n`` samples, ``C`` channels, ``T`` recorded times, ``*grid`` the spatial axes.

Every generator in :mod:`operators.datasets` returns a :class:`PDEData`
(``inputs``/``targets`` pairs) or a :class:`PDESequence` (trajectories), and stores its
result on disk so that a second call with the same parameters is a file read.

Cache layout
------------
One file per call, ``<cache dir>/<name>-<key>.pt``, written with :func:`torch.save`
as a dict of tensors and plain Python values (read back with ``weights_only=True``).
``key`` is the SHA-256 of the generator's name, its solver version and *every*
parameter that changes the numbers (sizes, resolutions, physical constants, time
step, seed, dtype); the device is left out because the random draws are made on the
CPU and the solvers agree across devices to rounding.

The directory is, in order of precedence: the ``cache_dir`` argument, the environment
variable ``SPECTRAL_OPERATORS_CACHE_DIR``, ``$XDG_CACHE_HOME/spectral-operators``,
``~/.cache/spectral-operators``.

Writes are atomic: the data go to a temporary file in the same folder (name starting
with ``.`` and ending in ``.tmp``), are flushed and fsync'ed, then moved over the final
name with :func:`os.replace`. An interrupted generation leaves at most a stray
temporary file, which is never read (:func:`clear_cache` removes it); a final file
whose stored parameters differ is regenerated.

Nothing is lost
---------------
* Every file ends with the SHA-256 of its bytes (:func:`operators.checkpoint.atomic_save`).
  A damaged file (truncated, empty, garbage, flipped bytes) gives a warning naming it,
  and the data are generated again and rewritten. Files written before the checksum
  existed are still read.
* A write that fails (a full disk, a quota, a read-only folder) gives a warning naming
  the cache folder and returns the generated data; no temporary file is left.
* Processes that ask for the same entry at the same time generate it once: the
  generation holds a lock (the ``filelock`` package) on ``<file>.lock`` beside the data
  file, and the waiting processes read what the first one wrote. The lock file is
  removed on release; one left by a killed process is harmless (the operating system
  released its lock) and :func:`clear_cache` removes it. Where no lock can be taken (a
  read-only folder), each process generates on its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import numbers
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import torch

from operators.checkpoint import DamagedFileError, atomic_save, checked_load
from spectral.checks import check_bool, describe

__all__ = [
    "CACHE_ENV_VAR",
    "PDEData",
    "PDESequence",
    "default_cache_dir",
    "cache_key",
    "cache_path",
    "save_atomic",
    "cached",
    "clear_cache",
]

CACHE_ENV_VAR = "SPECTRAL_OPERATORS_CACHE_DIR"
_FORMAT = 1


@dataclass(frozen=True)
class PDEData:
    """Input/target pairs of a PDE data set.

    Attributes
    ----------
    inputs : Tensor
        ``(n, C_in, *grid)`` real.
    targets : Tensor
        ``(n, C_out, *grid)`` real.
    meta : dict
        Grid (``resolution``, ``solver_resolution``, coordinates convention), every
        generator parameter, and derived numbers (time step used, statistics).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.inputs.shape[0]


@dataclass(frozen=True)
class PDESequence:
    """Trajectories of a PDE: fields recorded at ``times``.

    Attributes
    ----------
    fields : Tensor
        ``(n, T, *grid)`` for a scalar field, ``(n, T, C, *grid)`` for several.
    times : Tensor
        ``(T,)`` float64, the recorded times.
    meta : dict
        As in :class:`PDEData`.
    """

    fields: torch.Tensor
    times: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.fields.shape[0]


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$SPECTRAL_OPERATORS_CACHE_DIR``, else the user cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "spectral-operators"


def _canonical(value: Any) -> Any:
    """A JSON-ready form of a parameter value that distinguishes everything that matters."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):  # numpy integers too
        return int(value)
    if isinstance(value, numbers.Real):
        return repr(float(value))  # exact; keeps 1.0 and 1 apart, and nan/inf representable
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    raise TypeError(f"cache parameters must be plain values, got {type(value).__name__}: {value!r}")


def cache_key(name: str, params: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of ``name`` and every parameter (order-independent)."""
    payload = json.dumps({"name": name, "format": _FORMAT, "params": _canonical(params)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_path(name: str, params: Mapping[str, Any], cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`cached` stores the result of generator ``name`` called with ``params``."""
    return default_cache_dir(cache_dir) / f"{name}-{cache_key(name, params)[:32]}.pt"


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through a temporary file in the same folder and ``os.replace``
    (:func:`operators.checkpoint.atomic_save`: the file gets the usual umask mode, not mkstemp's 0600)."""
    atomic_save(obj, path)


def _load(path: Path, name: str, params: Mapping[str, Any], *, warn: bool = True) -> tuple[dict | None, bool]:
    """The cached data (or None) and whether the file was damaged or unreadable (warned about if ``warn``)."""
    try:
        blob = checked_load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:  # removed meanwhile (clear_cache)
        return None, False
    except DamagedFileError as err:  # truncated, empty, garbage, flipped bytes: regenerate rather than fail
        if warn:
            warnings.warn(f"cache file {err}; regenerating it", stacklevel=3)  # err names the file
        return None, True
    except Exception as err:  # intact but unreadable (permissions, not loadable with weights_only=True)
        if warn:
            warnings.warn(f"unreadable cache file {path} ignored ({err!r}); regenerating it", stacklevel=3)
        return None, True
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT or blob.get("name") != name:
        return None, False
    if blob.get("params") != json.loads(json.dumps(_canonical(params))):
        return None, False
    return blob["data"], False


@contextlib.contextmanager
def _generation_lock(path: Path) -> Iterator[bool]:
    """Hold ``<path>.lock`` (yields True), or yield False where no lock can be taken.

    The lock file is removed while still held, so it does not outlive the generation;
    a process polling for it then finds the file unlinked and locks a new one.
    """
    lock_path = Path(f"{path}.lock")
    lock = filelock.FileLock(str(lock_path))
    try:
        lock.acquire()
        locked = True
    except OSError:  # a read-only or full folder: go on without the lock
        locked = False
    if not locked:
        yield False
        return
    try:
        yield True
    finally:
        try:
            with contextlib.suppress(OSError):
                lock_path.unlink()
        finally:
            lock.release()


def cached(
    name: str,
    params: Mapping[str, Any],
    generate: Callable[[], dict],
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Return ``generate()``, read from / written to the on-disk cache when ``cache``.

    The cache the library's generators use, public for scripts that cache their own
    data the same way (see the module notes for the layout, the checksums and the lock
    that makes concurrent processes generate an entry once).

    Parameters
    ----------
    name : str
        Names the data set; the file is ``<name>-<key>.pt`` and :func:`clear_cache`
        can remove one name's files.
    params : mapping
        Every value that changes the numbers (sizes, constants, seed, a version string):
        plain values only (bool, int, float, str, None, torch.dtype, and lists, tuples
        and dicts of them). ``1`` and ``1.0`` are different keys.
    generate : callable
        Makes the data: a dict of tensors and plain values (``torch.save``-able and
        loadable with ``weights_only=True``).
    cache : bool
        False calls ``generate()`` and touches no file.
    cache_dir : path, optional
        See :func:`default_cache_dir`.

    Returns
    -------
    dict
        What ``generate()`` returned, or the copy read from the cache.

    Raises
    ------
    TypeError
        ``name`` is not a non-empty string, ``cache`` is not a bool, or ``params`` holds
        a value that is not plain.

    Warns
    -----
    UserWarning
        The cache file is damaged (named; the data are regenerated and rewritten), or
        writing it failed (the cache folder is named; the generated data are returned).

    Examples
    --------
    >>> import tempfile, torch
    >>> from operators.datasets import cached
    >>> folder = tempfile.mkdtemp()
    >>> first = cached("ones", {"n": 3}, lambda: {"x": torch.ones(3)}, cache_dir=folder)
    >>> again = cached("ones", {"n": 3}, lambda: {"x": torch.zeros(3)}, cache_dir=folder)  # read back
    >>> again["x"].tolist()
    [1.0, 1.0, 1.0]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {describe(name)}")
    if not check_bool("cache", cache):
        return generate()
    path = cache_path(name, params, cache_dir)
    warned = False
    if path.is_file():
        data, warned = _load(path, name, params)
        if data is not None:
            return data
    path.parent.mkdir(parents=True, exist_ok=True)  # an unusable cache folder fails before, not after, generating
    with _generation_lock(path):
        if path.is_file():  # another process may have written it while this one waited for the lock
            data, _ = _load(path, name, params, warn=not warned)
            if data is not None:
                return data
        data = generate()
        blob = {"format": _FORMAT, "name": name, "params": json.loads(json.dumps(_canonical(params))), "data": data}
        try:
            save_atomic(blob, path)
        except Exception as err:  # a full disk, a quota, ...: keep the (possibly hours of) generated data
            warnings.warn(
                f"could not write to the cache folder {path.parent} ({err}); returning the generated data "
                f"uncached (free some space there, or pass cache_dir= / set {CACHE_ENV_VAR})",
                stacklevel=2,
            )
    return data


# The names cache_path and save_atomic make: <name>-<32 hex>.pt, and .<that>.<random>.tmp while writing;
# <that>.lock is the generation lock.
_CACHE_FILES = (re.compile(r"(?P<name>.+)-[0-9a-f]{32}\.pt"), re.compile(r"\.(?P<name>.+)-[0-9a-f]{32}\.pt\.[^.]+\.tmp"))
_LOCK_FILE = re.compile(r"(?P<name>.+)-[0-9a-f]{32}\.pt\.lock")


def _remove_stale_lock(path: Path) -> bool:
    """Remove a lock file that no process holds (one held by a running generation is left alone)."""
    lock = filelock.FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except (filelock.Timeout, OSError):
        return False
    try:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # while holding it, so no other process can be holding this file
    finally:
        lock.release()
    return True


def clear_cache(cache_dir: str | os.PathLike | None = None, *, name: str | None = None) -> int:
    """Delete cached data sets (all, or those of generator ``name``), stray temporary files and stale locks.

    Only the files the cache makes are touched (the folder may be shared); a lock held
    by a generation that is running now is kept.

    Returns
    -------
    int
        The number of files removed (data sets, temporary files and lock files).
    """
    folder = default_cache_dir(cache_dir)
    if not folder.is_dir():
        return 0
    removed = 0
    for p in folder.iterdir():
        # the folder may be shared (SPECTRAL_OPERATORS_CACHE_DIR): any other .pt file is left alone
        match = _CACHE_FILES[0].fullmatch(p.name) or _CACHE_FILES[1].fullmatch(p.name)
        if match and (name is None or match["name"] == name) and p.is_file():
            p.unlink()
            removed += 1
        lock = _LOCK_FILE.fullmatch(p.name)
        if lock and (name is None or lock["name"] == name) and p.is_file() and _remove_stale_lock(p):
            removed += 1
    return removed
