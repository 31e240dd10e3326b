"""from_file: every format written by its own tool in its published layout, read back as written.

References are the arrays the test wrote and numpy slicing of them; never earlier output of
from_file. MATLAB v7.3 files are written the way MATLAB writes them: an HDF5 file behind a
512-byte header, each variable column-major (axes reversed on disk) with a ``MATLAB_class``
attribute, MATLAB's own ``#refs#`` group beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from operators.datasets import PDEData
from operators.datasets.files import from_file

pytestmark = pytest.mark.usefixtures("one_thread")

RNG = np.random.default_rng(0)
A = RNG.standard_normal((6, 9, 7))            # (n, H, W): odd, unequal sizes catch swapped axes
U = RNG.standard_normal((6, 9, 7)) * 3 + 1
ROOT = Path(__file__).resolve().parents[3]


def _expected(array: np.ndarray, stride: int = 1, limit: int | None = None) -> np.ndarray:
    """numpy's own slicing, with the channel axis added: a[:limit, None, ::s, ::s]."""
    kept = array[:limit]
    return kept[(slice(None),) + (slice(None, None, stride),) * (array.ndim - 1)][:, None]


def write_matlab_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """What MATLAB's ``save -v7.3`` writes: header, column-major datasets, MATLAB_class attributes."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            cls = {"f": "double" if value.dtype == np.float64 else "single", "b": "logical"}[value.dtype.kind]
            stored = value.astype(np.uint8) if cls == "logical" else value
            dset = f.create_dataset(name, data=np.ascontiguousarray(stored.transpose()))  # reversed axes
            dset.attrs["MATLAB_class"] = np.bytes_(cls)
            if cls == "logical":
                dset.attrs["MATLAB_int_decode"] = np.int32(1)
        refs = f.create_group("#refs#")
        refs.create_dataset("a", data=np.zeros((2, 2)))
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


# ------------------------------------------------------------------ every format, values and axes
def write(fmt: str, path: Path, variables: dict[str, np.ndarray]) -> Path:
    if fmt == "pt":
        torch.save({k: torch.from_numpy(v) for k, v in variables.items()}, path.with_suffix(".pt"))
    elif fmt == "pt-numpy":
        torch.save(dict(variables), path.with_suffix(".pth"))
    elif fmt == "mat-v5":
        scipy.io.savemat(path.with_suffix(".mat"), variables)
    elif fmt == "mat-v7.3":
        write_matlab_v73(path.with_suffix(".mat"), variables)
    elif fmt == "hdf5":
        with h5py.File(path.with_suffix(".h5"), "w") as f:
            for k, v in variables.items():
                f[k] = v
    elif fmt == "npz":
        np.savez(path.with_suffix(".npz"), **variables)
    return next(path.parent.glob(path.name + ".*"))


FORMATS = ["pt", "pt-numpy", "mat-v5", "mat-v7.3", "hdf5", "npz"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("stride", "limit"), [(1, None), (2, None), (3, 4)],
                         ids=["full", "stride2", "stride3-limit4"])
def test_values_equal_numpy_slicing_of_what_was_written(fmt, stride, limit, tmp_path):
    path = write(fmt, tmp_path / "data", {"a": A, "u": U, "t": np.arange(5.0)[None]})
    data = from_file(path, stride=stride, limit=limit)
    assert isinstance(data, PDEData) and data.inputs.dtype == torch.float64  # float64 stays float64
    np.testing.assert_array_equal(data.inputs.numpy(), _expected(A, stride, limit))
    np.testing.assert_array_equal(data.targets.numpy(), _expected(U, stride, limit))
    assert data.inputs.is_contiguous() and data.targets.is_contiguous()
    assert data.meta["input_key"] == "a" and data.meta["target_key"] == "u" and data.meta["source"] == str(path)
    assert data.meta["resolution"] == _expected(A, stride).shape[2:]
    assert data.meta["arrays"]["u"] == U.shape


def test_matlab_version_comes_from_the_header(tmp_path):
    write_matlab_v73(tmp_path / "v73.mat", {"a": A, "u": U})
    scipy.io.savemat(tmp_path / "v5.mat", {"a": A, "u": U})
    scipy.io.savemat(tmp_path / "v4.mat", {"a": A[:, :, 0], "u": U[:, :, 0]}, format="4")
    assert from_file(tmp_path / "v73.mat").meta["format"] == "mat-v7.3"
    assert from_file(tmp_path / "v5.mat").meta["format"] == "mat-v5"
    v4 = from_file(tmp_path / "v4.mat")
    np.testing.assert_array_equal(v4.targets.numpy(), U[:, None, :, 0])


def test_neuraloperator_darcy_layout(tmp_path):
    """neuraloperator's darcy_train_16.pt: x bool (n, 16, 16), y float32 (n, 16, 16)."""
    x = torch.rand(5, 16, 16) > 0.5
    y = torch.randn(5, 16, 16)
    torch.save({"x": x, "y": y}, tmp_path / "darcy_train_16.pt")
    data = from_file(tmp_path / "darcy_train_16.pt")
    assert data.inputs.dtype == torch.float32 and data.inputs.shape == (5, 1, 16, 16)
    assert torch.equal(data.inputs, x.float().unsqueeze(1)) and torch.equal(data.targets, y.unsqueeze(1))
    half = from_file(tmp_path / "darcy_train_16.pt", "x", dtype=torch.float64)  # partner "y" found
    assert half.targets.dtype == torch.float64 and torch.equal(half.targets, y.double().unsqueeze(1))


def test_legacy_torch_save_format_is_read(tmp_path):
    pair = {"x": torch.ones(2, 4), "y": torch.zeros(2, 4)}
    torch.save(pair, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(from_file(tmp_path / "old.pt").inputs, torch.ones(2, 1, 4))


def test_matlab_v73_logical_and_navier_stokes_time_axis(tmp_path):
    """The FNO paper's ns_V1e-3_N5000_T50.mat: a (n, 64, 64), u (n, 64, 64, T), t (1, T); coeff logical."""
    a = RNG.standard_normal((3, 8, 6))
    u = RNG.standard_normal((3, 8, 6, 5))
    write_matlab_v73(tmp_path / "ns.mat", {"a": a, "u": u, "t": np.arange(5.0)[None], "mask": a > 0})
    data = from_file(tmp_path / "ns.mat", channel_axis=(None, -1), stride=2)
    np.testing.assert_array_equal(data.inputs.numpy(), a[:, None, ::2, ::2])
    np.testing.assert_array_equal(data.targets.numpy(), np.moveaxis(u, -1, 1)[:, :, ::2, ::2])
    assert data.meta["arrays"] == {"a": (3, 8, 6), "u": (3, 8, 6, 5), "t": (1, 5), "mask": (3, 8, 6)}
    mask = from_file(tmp_path / "ns.mat", "mask", "a")
    assert mask.inputs.dtype == torch.float32
    np.testing.assert_array_equal(mask.inputs.numpy(), (a > 0)[:, None].astype(np.float32))


def test_channel_axis_first_and_hdf5_groups(tmp_path):
    x = RNG.standard_normal((4, 2, 6, 5)).astype(np.float32)   # (n, C, H, W)
    y = RNG.integers(0, 9, (4, 6, 5, 3))                       # (n, H, W, C) int64
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        f["train/x"], f["train/y"] = x, y
    data = from_file(tmp_path / "d.hdf5", "train/x", "train/y", channel_axis=(1, -1), stride=(2, 1), limit=3)
    np.testing.assert_array_equal(data.inputs.numpy(), x[:3, :, ::2])
    assert data.targets.dtype == torch.float32
    np.testing.assert_array_equal(data.targets.numpy(), np.moveaxis(y, -1, 1)[:3, :, ::2].astype(np.float32))


def test_limit_reads_only_the_first_samples(tmp_path):
    """A NaN after the kept samples is never read, so never reported."""
    bad = A.copy()
    bad[5, 2, 3] = np.nan
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = bad, U
    np.testing.assert_array_equal(from_file(tmp_path / "d.h5", limit=5).inputs.numpy(), _expected(A, limit=5))


# ------------------------------------------------------------------ errors name the file
def test_non_finite_values_name_file_key_and_first_sample(tmp_path):
    bad = U.copy()
    bad[3, 0, 0], bad[4, 1, 1] = np.inf, np.nan
    np.savez(tmp_path / "d.npz", x=A, y=bad)
    message = r"d\.npz: array 'y' holds NaN or infinite values, first in sample 3 \(2 of 6 samples"
    with pytest.raises(ValueError, match=message):
        from_file(tmp_path / "d.npz")


def test_missing_or_ambiguous_keys_list_the_arrays_with_shapes(tmp_path):
    np.savez(tmp_path / "two.npz", x=A, y=U, a=A, u=U, extra=np.zeros(3))
    listing = r"arrays in the file: x \(6, 9, 7\) float64, y \(6, 9, 7\) float64, a .*extra \(3,\) float64"
    several = r"two\.npz: cannot choose .*several known pairs are present \(x/y, a/u\).*"
    with pytest.raises(ValueError, match=several + listing):
        from_file(tmp_path / "two.npz")
    with pytest.raises(ValueError, match=r"two\.npz: no numeric array 'sol' \(target_key='sol'\); " + listing):
        from_file(tmp_path / "two.npz", "x", "sol")
    np.savez(tmp_path / "odd.npz", first=A, second=U)
    with pytest.raises(ValueError, match=r"odd\.npz: .*no known pair \(x/y, coeff/sol.*first \(6, 9, 7\)"):
        from_file(tmp_path / "odd.npz", "first")
    assert torch.equal(from_file(tmp_path / "odd.npz", "first", "second").targets, torch.from_numpy(U)[:, None])


def test_shape_errors_name_the_file_and_shapes(tmp_path):
    np.savez(tmp_path / "n.npz", x=A, y=U[:5])
    with pytest.raises(ValueError, match=r"n\.npz: .*different numbers of samples: x \(6, 9, 7\), y \(5, 9, 7\)"):
        from_file(tmp_path / "n.npz")
    np.savez(tmp_path / "ns.npz", a=A, u=U[..., None].repeat(4, -1))
    ranks = r"ns\.npz: the input grid \(9, 7\) and the target grid \(9, 7, 4\).*channel_axis=\(None, -1\)"
    with pytest.raises(ValueError, match=ranks):
        from_file(tmp_path / "ns.npz")
    with pytest.raises(ValueError, match=r"ns\.npz: limit=7 exceeds the 6 samples"):
        from_file(tmp_path / "ns.npz", limit=7, channel_axis=(None, -1))
    np.savez(tmp_path / "flat.npz", x=np.zeros(4), y=np.zeros(4))
    with pytest.raises(ValueError, match=r"flat\.npz: array 'x' of shape \(4,\) has too few axes for \(n, \*grid\)"):
        from_file(tmp_path / "flat.npz")


def test_unreadable_files_and_paths(tmp_path):
    supported = r"data\.csv: unsupported file extension '\.csv'; from_file reads \.pt, \.pth, \.mat, \.h5"
    with pytest.raises(ValueError, match=supported):
        from_file(tmp_path / "data.csv")
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt: no such file"):
        from_file(tmp_path / "nothing.pt")
    for name in ("junk.pt", "junk.h5", "junk.npz", "junk.mat"):
        (tmp_path / name).write_bytes(b"not a data file at all" * 10)
        with pytest.raises(ValueError, match=rf"junk\.{name.split('.')[1]}: "):
            from_file(tmp_path / name)
    torch.save(torch.zeros(3, 4), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match=r"tensor\.pt: expected a dict of tensors or arrays"):
        from_file(tmp_path / "tensor.pt")


def test_bad_arguments(tmp_path):
    np.savez(tmp_path / "d.npz", x=A, y=U)
    cases = [
        ({"stride": 0}, ValueError, r"stride"), ({"stride": (2, 2, 2)}, ValueError, r"stride"),
        ({"limit": 0}, ValueError, r"limit"), ({"limit": 2.0}, TypeError, r"limit"),
        ({"dtype": torch.int64}, TypeError, r"dtype must be a floating torch\.dtype"),
        ({"channel_axis": 2}, ValueError, r"channel_axis"), ({"channel_axis": (None,)}, ValueError, r"channel_axis"),
        ({"channel_axis": 1.0}, TypeError, r"channel_axis"),
        ({"input_key": 3}, TypeError, r"input_key must be a str"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            from_file(tmp_path / "d.npz", **kwargs)
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike"):
        from_file(None)


def test_importing_the_loader_loads_no_file_library():
    """h5py, scipy and the_well are imported by the readers that need them, not by ``import operators``."""
    code = ("import json, sys, operators, operators.datasets\nfrom operators.datasets.files import from_file\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'h5py', 'scipy', 'the_well'})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_big_endian_and_matlab_complex_arrays(tmp_path):
    """Non-native byte order (h5py, npz) and MATLAB v7.3 complex arrays (a compound of real and imag)."""
    np.savez(tmp_path / "be.npz", x=A.astype(">f8"), y=U.astype(">f4"))
    data = from_file(tmp_path / "be.npz")
    assert data.targets.dtype == torch.float32
    np.testing.assert_array_equal(data.inputs.numpy(), _expected(A))
    z = A + 1j * U
    write_matlab_v73(tmp_path / "c.mat", {"a": A})
    with h5py.File(tmp_path / "c.mat", "r+") as f:
        pair = np.dtype([("real", "<f8"), ("imag", "<f8")])
        stored = np.empty(z.shape[::-1], pair)
        stored["real"], stored["imag"] = z.real.transpose(), z.imag.transpose()
        f.create_dataset("u", data=stored).attrs["MATLAB_class"] = np.bytes_("double")
    loaded = from_file(tmp_path / "c.mat")
    assert loaded.targets.dtype == torch.complex128 and loaded.meta["format"] == "mat-v7.3"
    np.testing.assert_array_equal(loaded.targets.numpy(), _expected(z))
