"""In-memory loading of the data files operator-learning papers and libraries publish.

Legend: ``n`` samples, ``C`` channels, ``*grid`` the spatial axes (``H, W`` in 2-D).

:func:`from_file` turns one file of named arrays into a :class:`PDEData`, channels first:

* ``.pt`` / ``.pth``: a ``torch.save``'d dict of tensors or numpy arrays, e.g.
  neuraloperator's ``darcy_train_16.pt`` (``x`` bool or float ``(n, 16, 16)``, ``y``
  ``(n, 16, 16)``); read with ``weights_only=True``, memory-mapped when possible;
* ``.mat``: MATLAB files as the FNO paper ships them (``coeff``/``sol`` for Darcy,
  ``a``/``u`` for Burgers, ``a``/``u``/``t`` for Navier-Stokes). The header decides the
  reader: v4-v7 through :func:`scipy.io.loadmat`, v7.3 (HDF5 behind a 512-byte header)
  through h5py, whose arrays are stored column-major, so every axis order is reversed
  on disk (``u`` ``(n, 64, 64, T)`` in MATLAB is ``(T, 64, 64, n)`` in the HDF5 file):
  they are read back in MATLAB's order;
* ``.h5`` / ``.hdf5``: datasets by their path in the file (``"x"``, ``"group/x"``), C order;
* ``.npz``: ``np.savez`` archives.

HDF5 files (``.h5``, ``.hdf5``, v7.3 ``.mat``) read only the samples and grid points kept
by ``limit`` and ``stride``. For files larger than memory, see :class:`PDEBench`-style
lazy datasets instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from operators.datasets._cache import PDEData
from operators.datasets._file_formats import EXTENSIONS, FileArray, file_format, open_arrays, to_tensor
from spectral.checks import check_choice, check_int, check_ints, describe

__all__ = ["from_file", "KNOWN_PAIRS"]

#: (input key, target key) pairs picked when no key is given, in the files they come from:
#: neuraloperator (x/y), the FNO paper (coeff/sol for Darcy, a/u for Burgers and Navier-Stokes),
#: and common names.
KNOWN_PAIRS = (("x", "y"), ("coeff", "sol"), ("a", "u"), ("input", "output"), ("inputs", "targets"))
_CHANNEL_AXES = (None, 1, -1)
_LISTED = 30  # arrays named in an error message


def from_file(
    path: str | os.PathLike,
    input_key: str | None = None,
    target_key: str | None = None,
    *,
    stride: int | Sequence[int] = 1,
    limit: int | None = None,
    dtype: torch.dtype | None = None,
    channel_axis: int | None | tuple[int | None, int | None] = None,
) -> PDEData:
    """Load input/target pairs from a ``.pt``, ``.mat``, ``.h5``/``.hdf5`` or ``.npz`` file.

    Parameters
    ----------
    path : str or PathLike
        The file; its extension picks the reader (and, for ``.mat``, its header picks v5 or v7.3).
    input_key, target_key : str, optional
        The arrays holding inputs and targets (HDF5: the dataset's path, ``"group/x"``).
        When not given, the one pair of :data:`KNOWN_PAIRS` present in the file (``x``/``y``,
        ``coeff``/``sol``, ``a``/``u``, ``input``/``output``, ``inputs``/``targets``); when
        only one is given, its partner in those pairs.
    stride : int or sequence of int
        Keep every ``stride``-th point of every spatial axis, ``a[:, ::s, ::s]`` (the FNO
        scripts' ``r``: 421 points with ``stride=5`` give 85); one entry per axis also works.
    limit : int, optional
        Keep the first ``limit`` samples (HDF5 files read only those).
    dtype : torch.dtype, optional
        The floating dtype of both tensors. By default floating (and complex) arrays keep
        their dtype, float64 included, and bool and integer arrays become float32.
    channel_axis : None, 1, -1, or a pair of them (for the input, for the target)
        Where an array's channels are. ``None`` (default): the array is ``(n, *grid)``
        and gains a channel axis of size 1. ``1``: ``(n, C, *grid)``, as is. ``-1``:
        ``(n, *grid, C)``, moved to the front. The FNO paper's Navier-Stokes file
        (``a`` ``(n, 64, 64)``, ``u`` ``(n, 64, 64, T)``) takes ``channel_axis=(None, -1)``,
        making the T time steps the target's channels.

    Returns
    -------
    PDEData
        ``inputs`` and ``targets``, and ``meta``: ``source`` (the path), ``format``
        (``"pt"``, ``"npz"``, ``"hdf5"``, ``"mat-v5"``, ``"mat-v7.3"``), the keys, ``stride``,
        ``limit``, ``channel_axis``, ``resolution`` (the input grid) and ``arrays`` (every
        numeric array in the file as ``name -> shape``).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        An unsupported extension (the supported ones are listed); a file its reader cannot
        read; a key missing, or not given where no single known pair is present (the
        arrays present are listed with their shapes); arrays with different sample counts,
        too few axes, or grids of different ranks; ``limit`` above the sample count; a NaN or
        infinity (the key and the first bad sample are named). Every message names the file.
    TypeError
        An argument of the wrong type.

    Shape
    -----
    file ``x: (n, *grid)``, ``y: (n, *grid)`` -> ``inputs: (n', 1, *grid')``, ``targets: (n', 1, *grid')``
    with ``n' = min(n, limit)`` and ``grid'_i = ceil(grid_i / stride)``.

    Examples
    --------
    >>> import tempfile, torch
    >>> path = tempfile.mkdtemp() + "/darcy_train_16.pt"
    >>> torch.save({"x": torch.rand(10, 16, 16) > 0.5, "y": torch.rand(10, 16, 16)}, path)
    >>> data = from_file(path, stride=2, limit=4)
    >>> data.inputs.shape, data.inputs.dtype, data.targets.shape
    (torch.Size([4, 1, 8, 8]), torch.float32, torch.Size([4, 1, 8, 8]))
    """
    path = _check_path(path)
    axes = _check_channel_axis(channel_axis)
    limit = check_int("limit", limit, allow_none=True)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and (dtype.is_floating_point or dtype.is_complex)):
        raise TypeError(f"dtype must be a floating torch.dtype or None, got {describe(dtype)}")
    for name, key in (("input_key", input_key), ("target_key", target_key)):
        if key is not None and not isinstance(key, str):
            raise TypeError(f"{name} must be a str or None, got {describe(key)}")
    fmt = file_format(path)
    with open_arrays(path, fmt) as arrays:
        keys = _pick_keys(path, arrays, input_key, target_key)
        found = [arrays[k] for k in keys]
        n, grids = _check_shapes(path, keys, found, axes, limit)
        strides = check_ints("stride", stride, length=len(grids[0]))
        tensors = []
        for key, array, axis in zip(keys, found, axes):
            index = [slice(0, n)] + [slice(None, None, s) for s in strides]  # samples, then the grid
            if axis is not None:  # every channel
                index.insert(1 if axis == 1 else len(index), slice(None))
            values = to_tensor(array.read(tuple(index)))
            values = values if dtype is None else values.to(dtype)
            _check_finite(path, key, values)
            tensors.append(_channels_first(values, axis))
    meta = {
        "source": str(path), "format": fmt, "input_key": keys[0], "target_key": keys[1],
        "stride": strides, "limit": limit, "channel_axis": axes,
        "resolution": tuple(tensors[0].shape[2:]), "arrays": {k: a.shape for k, a in arrays.items()},
    }
    return PDEData(tensors[0], tensors[1], meta)


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {describe(path)}")
    path = Path(path)
    if path.suffix.lower() not in EXTENSIONS:
        supported = ", ".join(EXTENSIONS)
        raise ValueError(f"{path}: unsupported file extension {path.suffix!r}; from_file reads {supported}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


def _check_channel_axis(value: Any) -> tuple[int | None, int | None]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"channel_axis must be None, 1, -1 or a pair of them (input, target), got {value!r}")
    for item in pair:
        if item is not None and (isinstance(item, bool) or not isinstance(item, int)):
            raise TypeError(f"channel_axis must be None, 1, -1 or a pair of them, got {describe(value)}")
        check_choice("channel_axis", item, _CHANNEL_AXES)
    return pair  # type: ignore[return-value]


def _listing(arrays: Mapping[str, FileArray]) -> str:
    items = [f"{k} {a}" for k, a in arrays.items()]
    more = f", ... ({len(items) - _LISTED} more)" if len(items) > _LISTED else ""
    return (", ".join(items[:_LISTED]) + more) if items else "none"


def _pick_keys(path: Path, arrays: Mapping[str, FileArray], input_key: str | None,
               target_key: str | None) -> tuple[str, str]:
    """The given keys, else the one known pair (or known partner) present; ValueError listing the arrays."""
    present = f"arrays in the file: {_listing(arrays)}"
    for name, key in (("input_key", input_key), ("target_key", target_key)):
        if key is not None and key not in arrays:
            raise ValueError(f"{path}: no numeric array {key!r} ({name}={key!r}); {present}")
    if input_key is not None and target_key is not None:
        return input_key, target_key
    pairs = [(x, y) for x, y in KNOWN_PAIRS if x in arrays and y in arrays
             and input_key in (None, x) and target_key in (None, y)]
    if len(pairs) == 1:
        return pairs[0]
    known = ", ".join(f"{x}/{y}" for x, y in KNOWN_PAIRS)
    reason = (f"several known pairs are present ({', '.join(f'{x}/{y}' for x, y in pairs)})" if pairs
              else f"no known pair ({known}) matches")
    given = f" with input_key={input_key!r}, target_key={target_key!r}" if (input_key or target_key) else ""
    raise ValueError(f"{path}: cannot choose the input and target arrays{given}: {reason}; pass input_key= and "
                     f"target_key=; {present}")


def _check_shapes(path: Path, keys: tuple[str, str], found: list[FileArray],
                  axes: tuple[int | None, int | None], limit: int | None) -> tuple[int, list[tuple[int, ...]]]:
    """The number of samples kept and each array's grid; ValueError naming the file and shapes."""
    shapes = ", ".join(f"{k} {a.shape}" for k, a in zip(keys, found))
    grids = []
    for key, array, axis in zip(keys, found, axes):
        need = 2 if axis is None else 3
        if len(array.shape) < need:
            layout = {None: "(n, *grid)", 1: "(n, C, *grid)", -1: "(n, *grid, C)"}[axis]
            raise ValueError(f"{path}: array {key!r} of shape {array.shape} has too few axes for "
                             f"{layout} (channel_axis={axis})")
        grid = array.shape[1:] if axis is None else array.shape[2:] if axis == 1 else array.shape[1:-1]
        grids.append(tuple(grid))
    n = found[0].shape[0]
    if found[1].shape[0] != n:
        raise ValueError(f"{path}: inputs and targets hold different numbers of samples: {shapes}")
    if len(grids[0]) != len(grids[1]):
        raise ValueError(f"{path}: the input grid {grids[0]} and the target grid {grids[1]} have different "
                         f"numbers of axes ({shapes}, channel_axis={axes}); if the last axis of one holds "
                         "channels or time steps, say so with channel_axis, e.g. channel_axis=(None, -1)")
    if limit is not None and limit > n:
        raise ValueError(f"{path}: limit={limit} exceeds the {n} samples in the file ({shapes})")
    return (n if limit is None else limit), grids


def _check_finite(path: Path, key: str, values: torch.Tensor) -> None:
    if values.is_floating_point() or values.is_complex():
        bad = ~torch.isfinite(values).reshape(values.shape[0], -1).all(dim=1)  # (n,) bool
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise ValueError(f"{path}: array {key!r} holds NaN or infinite values, first in sample {first} "
                             f"({int(bad.sum())} of {values.shape[0]} samples read are affected)")


def _channels_first(values: torch.Tensor, axis: int | None) -> torch.Tensor:
    if axis is None:
        return values.unsqueeze(1)  # (n, 1, *grid)
    if axis == -1:
        return values.movedim(-1, 1).contiguous()  # (n, *grid, C) -> (n, C, *grid)
    return values
