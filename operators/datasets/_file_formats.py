"""Readers behind :func:`operators.datasets.from_file`: the named arrays of one file, read lazily.

Legend: ``n`` samples, ``*grid`` the spatial axes; shapes are *logical* (C order, samples
first), so a MATLAB v7.3 array stored column-major as ``(..., n)`` is listed as ``(n, ...)``.

Each reader lists a file's arrays (name, logical shape, dtype) without reading their
values and reads one array through a logical index (a tuple of slices, samples first).
HDF5 files (``.h5``/``.hdf5``, MATLAB v7.3) read only the indexed part from disk; ``.pt``
files are memory-mapped (zip format) so only the indexed part is copied; ``.npz`` and
MATLAB v5 files are read one whole array at a time. h5py, scipy.io and numpy's zip
reader are imported by the reader that needs them.
"""

from __future__ import annotations

import contextlib
import pickle
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["FileArray", "EXTENSIONS", "file_format", "open_arrays", "to_tensor"]

EXTENSIONS = (".pt", ".pth", ".mat", ".h5", ".hdf5", ".npz")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MATLAB_SKIP = ("#refs#", "#subsystem#")  # MATLAB's own groups in a v7.3 file (cells, objects)
_MAT_NUMERIC = ("double", "single", "logical", "int8", "uint8", "int16", "uint16",
                "int32", "uint32", "int64", "uint64")


@dataclass(frozen=True)
class FileArray:
    """One named array of a file: its logical shape and dtype, and a reader of any slice of it."""

    shape: tuple[int, ...]
    dtype: str
    read: Callable[[tuple[slice, ...]], Any]  # logical index -> numpy array or tensor

    def __str__(self) -> str:
        return f"{self.shape} {self.dtype}"


def file_format(path: Path) -> str:
    """``"pt"``, ``"npz"``, ``"hdf5"``, ``"mat-v7.3"`` or ``"mat-v5"``: the extension, and for .mat the header."""
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return "pt"
    if suffix == ".npz":
        return "npz"
    if suffix in (".h5", ".hdf5"):
        return "hdf5"
    with open(path, "rb") as f:  # v7.3 is HDF5 behind a 512-byte header; HDF5 looks at 0, 512, 1024, ...
        head = f.read(2048 + 8)
    if any(head[at:at + 8] == _HDF5_MAGIC for at in (0, 512, 1024, 2048)):
        return "mat-v7.3"
    return "mat-v5"  # scipy.io reads v4 and v5 (v6, v7) and names the file when it is neither


@contextlib.contextmanager
def open_arrays(path: Path, fmt: str) -> Iterator[dict[str, FileArray]]:
    """The file's numeric arrays by name, readable while the context is open.

    A file the format's reader cannot open is a ValueError naming it.
    """
    with contextlib.ExitStack() as stack:
        try:
            if fmt in ("hdf5", "mat-v7.3"):
                import h5py

                f = stack.enter_context(h5py.File(path, "r"))
                arrays = _hdf5_arrays(f, matlab=fmt == "mat-v7.3")
            else:
                arrays = {"pt": _pt_arrays, "npz": _npz_arrays, "mat-v5": _mat_v5_arrays}[fmt](path)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot be read as a {fmt} file: {err}") from err
        yield arrays


def _whole(array: Any) -> Callable[[tuple[slice, ...]], Any]:
    return lambda index: array[index]


def _pt_arrays(path: Path) -> dict[str, FileArray]:
    """A ``torch.save``'d dict of tensors or numpy arrays (``weights_only=True``, memory-mapped when it can be)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    # numpy arrays pickle as these three globals, named numpy.core.* by numpy 1 and numpy._core.* by numpy 2
    numpy_globals = [(_reconstruct, f"numpy.{core}.multiarray._reconstruct") for core in ("core", "_core")]
    numpy_globals += [np.ndarray, np.dtype] + _numeric_dtype_classes()
    with torch.serialization.safe_globals(numpy_globals):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):  # the legacy (pre-zip) format cannot be memory-mapped
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of tensors or arrays (neuraloperator's layout), "
                         f"got {type(data).__name__}")
    arrays = {}
    for key, value in data.items():
        if isinstance(value, torch.Tensor):
            arrays[str(key)] = FileArray(tuple(value.shape), str(value.dtype).removeprefix("torch."), _whole(value))
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
            arrays[str(key)] = FileArray(value.shape, value.dtype.name, _whole(value))
    return arrays


def _numeric_dtype_classes() -> list[type]:
    """numpy's per-dtype classes (``numpy.dtypes.Float64DType``, numpy >= 1.25) of the numeric dtypes."""
    dtypes = getattr(np, "dtypes", None)
    names = [n for n in dir(dtypes) if n.endswith("DType")] if dtypes is not None else []
    return [getattr(dtypes, n) for n in names if np.dtype(getattr(dtypes, n).type).kind in "biufc"]


def _npz_arrays(path: Path) -> dict[str, FileArray]:
    """``np.savez`` archives: shapes from each member's .npy header, values read one array at a time."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                npy = np.lib.format
                header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _, dtype = header(f)
            if dtype.kind in "biufc":
                key = member.removesuffix(".npy")
                arrays[key] = FileArray(tuple(shape), dtype.name, _npz_reader(path, key))
    return arrays


def _npz_reader(path: Path, key: str) -> Callable[[tuple[slice, ...]], np.ndarray]:
    def read(index: tuple[slice, ...]) -> np.ndarray:
        with np.load(path, allow_pickle=False) as archive:
            return archive[key][index]

    return read


def _mat_v5_arrays(path: Path) -> dict[str, FileArray]:
    """MATLAB v4/v5/v6/v7 files through ``scipy.io`` (``whosmat`` for shapes, ``loadmat`` per variable)."""
    import scipy.io

    try:
        listing = scipy.io.whosmat(path)
    except Exception as err:  # scipy raises several types for a file that is not a MAT-file
        raise ValueError(f"{path}: not a MATLAB file scipy.io can read (v4-v7) nor a v7.3 (HDF5) one: {err}") from err

    def reader(key: str) -> Callable[[tuple[slice, ...]], np.ndarray]:
        return lambda index: scipy.io.loadmat(path, variable_names=[key])[key][index]

    return {name: FileArray(tuple(shape), cls, reader(name)) for name, shape, cls in listing if cls in _MAT_NUMERIC}


def _hdf5_arrays(f: Any, *, matlab: bool) -> dict[str, FileArray]:
    """Every numeric dataset, by its path in the file; MATLAB's column-major axes reversed."""
    import h5py

    arrays: dict[str, FileArray] = {}

    def visit(name: str, node: Any) -> None:
        if not isinstance(node, h5py.Dataset) or (matlab and name.startswith(_MATLAB_SKIP)):
            return
        dtype = node.dtype
        is_complex = dtype.names is not None and set(dtype.names) == {"real", "imag"}
        if dtype.kind not in "biuf" and not is_complex:
            return
        shape = tuple(node.shape)[::-1] if matlab else tuple(node.shape)
        label = node.attrs.get("MATLAB_class", "double") if matlab else dtype.name
        label = label.decode() if isinstance(label, bytes) else str(label)
        if matlab and label not in _MAT_NUMERIC:  # char, cell, struct, function handles...
            return
        label = f"complex {label}" if is_complex else label
        arrays[name] = FileArray(shape, label, _hdf5_reader(node, matlab, is_complex))

    f.visititems(visit)
    return arrays


def _hdf5_reader(node: Any, matlab: bool, is_complex: bool) -> Callable[[tuple[slice, ...]], np.ndarray]:
    def read(index: tuple[slice, ...]) -> np.ndarray:
        index = tuple(index) + (slice(None),) * (node.ndim - len(index))
        values = node[index[::-1]].transpose() if matlab else node[index]
        if is_complex:
            values = values["real"] + 1j * values["imag"]
        return values

    return read


def to_tensor(values: Any) -> torch.Tensor:
    """A contiguous tensor that owns its memory (no view of a mapped file); bools and integers as float32."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "biu":
            values = values.astype(np.float32)
        native = values.dtype.newbyteorder("=")
        if values.base is not None or not values.flags.c_contiguous or values.dtype != native:
            values = np.array(values, dtype=native, order="C")  # a view would keep the whole array alive
        return torch.from_numpy(values)
    if values.is_floating_point() or values.is_complex():
        return values.clone(memory_format=torch.contiguous_format)
    return values.to(torch.float32, memory_format=torch.contiguous_format)
