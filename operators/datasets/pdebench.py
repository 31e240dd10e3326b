"""PDEBench's HDF5 files as a lazy, map-style Dataset of ``(input, target)`` windows.

Legend: ``n`` samples, ``T`` stored time steps, ``*grid`` the spatial axes (``X``,
``X, Y`` or ``X, Y, Z``), ``C`` stored channels, ``F`` chosen fields, ``h`` history,
``H`` horizon.

PDEBench ships four layouts (its data generators and its FNO/U-Net loaders agree on them):

* ``"scalar"``: one dataset ``tensor`` ``(n, T, *grid)`` with ``x-coordinate`` and
  ``t-coordinate`` (1-D advection, Burgers, reaction-diffusion, ...);
* ``"darcy"``: ``nu`` ``(n, *grid)`` (the coefficient) and ``tensor`` ``(n, 1, *grid)``
  (the solution);
* ``"cfd"``: ``density``, ``pressure``, ``Vx``, ``Vy``, ``Vz`` (those of the dimension),
  each ``(n, T, *grid)``;
* ``"groups"``: one group per sample, ``0000/data`` ``(T, *grid, C)`` with
  ``0000/grid/x|y|z|t`` (2-D diffusion-reaction, shallow water, diffusion-sorption).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from spectral.checks import check_int, describe

__all__ = ["PDEBench", "PDEBENCH_LAYOUTS", "CFD_FIELDS"]

PDEBENCH_LAYOUTS = ("scalar", "darcy", "cfd", "groups")
CFD_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")
_AXES = ("x", "y", "z")


def _h5py():
    try:
        import h5py
    except ImportError as err:  # the data extra is not installed
        raise ImportError("operators.datasets.PDEBench needs h5py: pip install 'spectral-operators[data]'") from err
    return h5py


def _listing(f: Any, limit: int = 12) -> str:
    """The file's top-level entries with their shapes, e.g. ``'nu' (100, 64, 64), '0000/data' (21, 64, 2)``."""
    h5py = _h5py()
    keys = sorted(f.keys())
    parts = []
    for key in keys[:limit]:
        obj = f[key]
        if isinstance(obj, h5py.Dataset):
            parts.append(f"{key!r} {obj.shape}")
        elif isinstance(obj.get("data"), h5py.Dataset):
            parts.append(f"'{key}/data' {obj['data'].shape}")
        else:
            parts.append(f"{key!r} (group of {sorted(obj.keys())})")
    more = f", ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return (", ".join(parts) + more) if parts else "nothing"


def _strided(size: int, step: int) -> int:
    return len(range(0, size, step))


class PDEBench(Dataset):
    """One PDEBench HDF5 file as ``(input, target)`` items, read lazily one item at a time.

    An item is a window of one sample: ``history`` consecutive time steps of every
    chosen field as the input and the next ``horizon`` steps as the target, stacked
    time-major on the channel axis (channel ``t * F + f`` holds field ``f`` at step ``t``
    of the window). Items enumerate every (sample, start time) pair, sample-major. For
    Darcy files an item is one sample, ``nu -> tensor``. Time steps are counted after
    ``time_stride``; ``stride`` subsamples every spatial axis as ``a[..., ::s, ::s]``.

    The file is opened only to read its shapes in ``__init__``; each process (each
    DataLoader worker, each torchrun rank) opens its own handle on its first item, and
    pickling drops the handle, so the dataset works with ``DataLoader(num_workers=...)``
    and a ``DistributedSampler``: a process reads only the items it is asked for.

    Parameters
    ----------
    path : str or PathLike
        A PDEBench ``.hdf5`` / ``.h5`` file in one of :data:`PDEBENCH_LAYOUTS` (found from
        its keys; see the module notes).
    fields : sequence of str or int, optional
        Fields to use, in this order. ``"cfd"``: names among :data:`CFD_FIELDS` present in
        the file; ``"scalar"``: ``("tensor",)``; ``"groups"``: channel indices of the last
        axis of ``data``; ``"darcy"``: None. Default: every field present.
    history, horizon : int
        Input and target time steps per item (>= 1; 1 for Darcy).
    stride, time_stride : int
        Keep every ``stride``-th point on each spatial axis and every ``time_stride``-th
        stored time step (>= 1).

    Attributes
    ----------
    layout : str
        One of :data:`PDEBENCH_LAYOUTS`.
    n_samples, n_times, windows : int
        Samples, time steps after ``time_stride``, and items per sample.
    grid_shape : tuple of int
        Spatial shape of an item, after ``stride``.
    in_channels, out_channels : int
        ``history * F`` and ``horizon * F`` (1 and 1 for Darcy).
    coordinates : dict of str to Tensor
        The stored 1-D coordinates ``"x"``, ``"y"``, ``"z"``, ``"t"`` present in the file
        (the first sample's, for ``"groups"``), subsampled like the data.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not HDF5, holds no PDEBench layout (the message lists its keys and
        shapes), lacks a requested field (the message lists the fields present with their
        shapes), or has fewer than ``history + horizon`` time steps; each message names the file.
    TypeError
        A non-integer ``history``, ``horizon``, ``stride`` or ``time_stride``, or a field
        of the wrong kind.

    Shape
    -----
    ``dataset[i] -> (input (history * F, *grid), target (horizon * F, *grid))`` in the
    file's float dtype (integers become float32); a DataLoader batches them to
    ``(B, C, *grid)``.

    Examples
    --------
    >>> import h5py, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> with h5py.File(folder.name + "/1D_Advection.hdf5", "w") as f:
    ...     f["tensor"] = np.random.rand(4, 11, 32).astype(np.float32)   # (n, T, X)
    >>> data = PDEBench(folder.name + "/1D_Advection.hdf5", history=2, horizon=3)
    >>> len(data), data[0][0].shape, data[0][1].shape                   # 4 samples x 7 windows
    (28, torch.Size([2, 32]), torch.Size([3, 32]))
    >>> data.close(); folder.cleanup()
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fields: Sequence[str | int] | str | None = None,
        history: int = 1,
        horizon: int = 1,
        stride: int = 1,
        time_stride: int = 1,
    ) -> None:
        self.history = check_int("history", history)
        self.horizon = check_int("horizon", horizon)
        self.stride = check_int("stride", stride)
        self.time_stride = check_int("time_stride", time_stride)
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"PDEBench: path must be a str or os.PathLike, got {describe(path)}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"PDEBench: no file {str(self.path)!r}")
        h5py = _h5py()
        try:
            handle = h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(f"PDEBench: {str(self.path)!r} is not a readable HDF5 file ({err})") from None
        with handle as f:
            self._scan(f, fields)
        self._file: Any = None
        self._pid: int | None = None

    # ------------------------------------------------------------------ reading shapes
    def _fail(self, message: str, f: Any) -> ValueError:
        return ValueError(f"PDEBench: {str(self.path)!r}: {message}; the file holds {_listing(f)}")

    def _scan(self, f: Any, fields: Any) -> None:
        keys = set(f.keys())
        if {"nu", "tensor"} <= keys:
            self.layout = "darcy"
        elif "tensor" in keys:
            self.layout = "scalar"
        elif keys & set(CFD_FIELDS):
            self.layout = "cfd"
        else:
            self._groups = sorted(k for k in keys if isinstance(f[k], _h5py().Group) and "data" in f[k])
            if not self._groups:
                raise self._fail("not a PDEBench file: expected a 'tensor' dataset (with 'nu' for Darcy), "
                                 f"the CFD fields {CFD_FIELDS}, or per-sample groups '0000/data'", f)
            self.layout = "groups"
        if isinstance(fields, (str, int)) and not isinstance(fields, bool):
            fields = [fields]  # one field
        elif fields is not None and not isinstance(fields, Sequence):
            raise TypeError(f"PDEBench: fields must be None, a field or a sequence of fields, got {describe(fields)}")
        getattr(self, f"_scan_{self.layout}")(f, fields)
        self.n_times = _strided(self._times, self.time_stride)
        darcy = self.layout == "darcy"  # one item per sample, nu -> tensor
        self.windows = 1 if darcy else self.n_times - self.history - self.horizon + 1
        if self.windows < 1:
            raise self._fail(f"history={self.history} + horizon={self.horizon} time steps do not fit in the "
                             f"{self.n_times} steps left of {self._times} by time_stride={self.time_stride}", f)
        self.grid_shape = tuple(_strided(g, self.stride) for g in self._grid)
        width = len(self.fields)
        self.in_channels, self.out_channels = self.history * width, self.horizon * width
        self.coordinates = self._read_coordinates(f)

    def _check_names(self, f: Any, fields: Any, allowed: Sequence[str]) -> tuple[str, ...]:
        present = [k for k in allowed if k in f]
        if fields is None:
            return tuple(present)
        fields = list(fields)
        for name in fields:
            if not isinstance(name, str):
                raise TypeError(f"PDEBench: fields of a {self.layout!r} file are names among {tuple(present)}, "
                                f"got {describe(name)} in fields={fields!r} ({str(self.path)!r})")
        missing = [name for name in fields if name not in present]
        if missing or not fields or len(set(fields)) != len(fields):
            shapes = ", ".join(f"{k!r} {f[k].shape}" for k in present)
            what = f"no field {missing[0]!r}" if missing else "fields must be distinct and non-empty"
            raise ValueError(f"PDEBench: {str(self.path)!r}: fields={fields!r}: {what}; "
                             f"fields present: {shapes}")
        return tuple(fields)

    def _scan_series(self, f: Any, names: tuple[str, ...]) -> None:
        shapes = {name: f[name].shape for name in names}
        first = shapes[names[0]]
        bad = [name for name, s in shapes.items() if s != first or len(s) < 3]
        if bad:
            raise self._fail(f"fields {names} must each have the same shape (n, T, *grid) with at least one "
                             f"spatial axis, got {shapes}", f)
        self.fields = names
        self.n_samples, self._times, self._grid = first[0], first[1], tuple(first[2:])

    def _scan_scalar(self, f: Any, fields: Any) -> None:
        self._scan_series(f, self._check_names(f, fields, ("tensor",)))

    def _scan_cfd(self, f: Any, fields: Any) -> None:
        self._scan_series(f, self._check_names(f, fields, CFD_FIELDS))

    def _scan_darcy(self, f: Any, fields: Any) -> None:
        if fields is not None and list(fields) != ["nu"]:
            raise ValueError(f"PDEBench: {str(self.path)!r} is a Darcy file (nu -> tensor): fields must be None "
                             f"or ['nu'], got {fields!r}")
        if self.history != 1 or self.horizon != 1:
            raise ValueError(f"PDEBench: {str(self.path)!r} is a Darcy file with one time step: history and "
                             f"horizon must be 1, got history={self.history}, horizon={self.horizon}")
        nu, sol = f["nu"].shape, f["tensor"].shape
        if len(nu) < 2 or sol != (nu[0], 1, *nu[1:]):
            raise self._fail(f"Darcy 'nu' (n, *grid) and 'tensor' (n, 1, *grid) disagree: {nu} and {sol}", f)
        self.fields = ("nu",)
        self.n_samples, self._times, self._grid = nu[0], 1, tuple(nu[1:])

    def _scan_groups(self, f: Any, fields: Any) -> None:
        shapes = {g: f[g]["data"].shape for g in self._groups}
        first = shapes[self._groups[0]]
        odd = next((g for g, s in shapes.items() if s != first), None)
        if len(first) < 3 or odd is not None:
            got = f"'{odd}/data' {shapes[odd]}" if odd is not None else f"{first}"
            raise self._fail(f"every sample's data must have one shape (T, *grid, C) with at least one "
                             f"spatial axis; '{self._groups[0]}/data' is {first}, got {got}", f)
        channels = first[-1]
        if fields is None:
            self.fields = tuple(range(channels))
        else:
            picked = [check_int(f"fields[{i}]", c, min=0) for i, c in enumerate(fields)]
            if not picked or max(picked) >= channels or len(set(picked)) != len(picked):
                raise ValueError(f"PDEBench: {str(self.path)!r}: fields={list(fields)!r} must be distinct channel "
                                 f"indices in [0, {channels}) of the data {first} (T, *grid, C)")
            self.fields = tuple(picked)
        self.n_samples, self._times, self._grid = len(self._groups), first[0], tuple(first[1:-1])

    def _read_coordinates(self, f: Any) -> dict[str, torch.Tensor]:
        if self.layout == "groups":
            grid = f[self._groups[0]].get("grid", {})
            found = {a: grid[a] for a in (*_AXES, "t") if a in grid}
        else:
            found = {a: f[f"{a}-coordinate"] for a in (*_AXES, "t") if f"{a}-coordinate" in f}
        out = {}
        for axis, ds in found.items():
            values = np.asarray(ds[()]).reshape(-1)
            out[axis] = torch.from_numpy(values[:: self.time_stride if axis == "t" else self.stride].copy())
        return out

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return self.n_samples * self.windows

    def _handle(self) -> Any:
        """This process's open file (opened on first use, again after a fork)."""
        if self._file is None or self._pid != os.getpid():
            self._file = _h5py().File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = check_int("index", index, min=None)
        size = len(self)
        if not -size <= i < size:
            raise IndexError(f"PDEBench: index {index} is out of range for {size} items ({str(self.path)!r})")
        sample, start = divmod(i % size, self.windows)
        f, space = self._handle(), (slice(None, None, self.stride),) * len(self._grid)
        if self.layout == "darcy":
            x, y = f["nu"][(sample, *space)][None], f["tensor"][(sample, slice(None), *space)]
        else:
            steps = self.history + self.horizon
            ts = self.time_stride
            window = slice(start * ts, (start + steps - 1) * ts + 1, ts)
            if self.layout == "groups":
                block = f[self._groups[sample]]["data"][(window, *space, slice(None))]  # (h + H, *grid, C)
                block = np.moveaxis(block, -1, 1)[:, list(self.fields)]  # (h + H, F, *grid)
            else:
                block = np.stack([f[name][(sample, window, *space)] for name in self.fields], axis=1)
            block = block.reshape(steps * len(self.fields), *self.grid_shape)  # time-major channels
            x, y = block[: self.in_channels], block[self.in_channels :]
        return _tensor(x), _tensor(y)

    # ------------------------------------------------------------------ processes
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None  # each process opens its own handle
        return state

    def close(self) -> None:
        """Close this process's file handle (the next item opens it again)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid = None, None

    def __repr__(self) -> str:
        return (f"PDEBench({str(self.path)!r}, layout={self.layout!r}, fields={self.fields!r}, "
                f"history={self.history}, horizon={self.horizon}, stride={self.stride}, "
                f"time_stride={self.time_stride}: {self.n_samples} samples x {self.windows} windows, "
                f"input ({self.in_channels}, *{self.grid_shape}), target ({self.out_channels}, *{self.grid_shape}))")


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor owning a contiguous copy; float dtypes kept, others as float32."""
    a = np.ascontiguousarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    return torch.from_numpy(a)
