"""operators.datasets.PDEBench on files written with h5py in PDEBench's four layouts.

References are numpy slices of the arrays the tests wrote, built channel by channel in
the documented order (channel ``t * F + f`` = field ``f`` at window step ``t``).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from operators import FNO, Trainer
from operators.datasets.pdebench import PDEBench

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("_pdebench_worker.py")
pytestmark = pytest.mark.usefixtures("one_thread")


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def write_scalar(path: Path, n: int = 3, t: int = 9, grid: tuple[int, ...] = (16,)) -> dict[str, np.ndarray]:
    """1-D advection / Burgers style: ``tensor`` (n, T, *grid), coordinates (t has T + 1 entries)."""
    arrays = {"tensor": _rand(n, t, *grid)}
    with h5py.File(path, "w") as f:
        f["tensor"] = arrays["tensor"]
        for axis, size in zip("xyz", grid):
            f[f"{axis}-coordinate"] = np.linspace(0, 1, size, dtype=np.float32)
        f["t-coordinate"] = np.linspace(0, 2, t + 1, dtype=np.float32)
    return arrays


def write_cfd(path: Path, n: int = 2, t: int = 6, grid: tuple[int, ...] = (8, 10)) -> dict[str, np.ndarray]:
    names = ("density", "pressure", "Vx", "Vy", "Vz")[: 2 + len(grid)]
    arrays = {name: _rand(n, t, *grid, seed=i) for i, name in enumerate(names)}
    with h5py.File(path, "w") as f:
        for name, a in arrays.items():
            f.create_dataset(name, data=a)
        for axis, size in zip("xyz", grid):
            f[f"{axis}-coordinate"] = np.linspace(0, 1, size, dtype=np.float32)
        f["t-coordinate"] = np.linspace(0, 1, t + 1, dtype=np.float32)
    return arrays


def write_darcy(path: Path, n: int = 3, grid: tuple[int, int] = (12, 12)) -> dict[str, np.ndarray]:
    arrays = {"nu": _rand(n, *grid, seed=1), "tensor": _rand(n, 1, *grid, seed=2)}
    with h5py.File(path, "w") as f:
        for name, a in arrays.items():
            f[name] = a
        f["x-coordinate"] = np.linspace(0, 1, grid[0], dtype=np.float32)
        f["y-coordinate"] = np.linspace(0, 1, grid[1], dtype=np.float32)
    return arrays


def write_groups(path: Path, n: int = 3, t: int = 7, grid: tuple[int, ...] = (8, 6), c: int = 2) -> list[np.ndarray]:
    """2-D diffusion-reaction style: groups ``0000`` ... with ``data`` (T, *grid, C) and ``grid/x|y|t``."""
    data = [_rand(t, *grid, c, seed=10 + i) for i in range(n)]
    with h5py.File(path, "w") as f:
        for i, a in enumerate(data):
            g = f.create_group(f"{i:04d}")
            g["data"] = a
            for axis, size in zip("xyz", grid):
                g[f"grid/{axis}"] = np.linspace(-1, 1, size, dtype=np.float32)
            g["grid/t"] = np.linspace(0, 5, t, dtype=np.float32)
    return data


def reference(series: list[np.ndarray], sample: int, start: int, h: int, horizon: int, s: int, ts: int):
    """Input/target of one window from per-field arrays (n, T, *grid), one channel at a time."""
    space = (slice(None, None, s),) * (series[0].ndim - 2)

    def steps(first: int, count: int) -> np.ndarray:
        return np.stack([a[sample, (first + k) * ts][space] for k in range(count) for a in series])

    return steps(start, h), steps(start + h, horizon)


def check_all_items(data: PDEBench, series: list[np.ndarray], h: int, horizon: int, s: int, ts: int) -> None:
    n_times = len(range(0, series[0].shape[1], ts))
    windows = n_times - h - horizon + 1
    assert len(data) == series[0].shape[0] * windows
    for index in range(len(data)):
        x, y = data[index]
        rx, ry = reference(series, *divmod(index, windows), h, horizon, s, ts)
        assert x.dtype == torch.float32 and y.dtype == torch.float32
        np.testing.assert_array_equal(x.numpy(), rx)
        np.testing.assert_array_equal(y.numpy(), ry)


@pytest.mark.parametrize(("h", "horizon", "s", "ts"), [(1, 1, 1, 1), (3, 2, 2, 1), (2, 1, 3, 2), (1, 4, 1, 2)])
def test_scalar_items_equal_numpy_slicing(tmp_path, h, horizon, s, ts):
    arrays = write_scalar(tmp_path / "1D_Advection_Beta0.1.hdf5", grid=(17,))
    data = PDEBench(tmp_path / "1D_Advection_Beta0.1.hdf5", history=h, horizon=horizon, stride=s, time_stride=ts)
    assert data.layout == "scalar" and data.fields == ("tensor",) and data.grid_shape == (len(range(0, 17, s)),)
    check_all_items(data, [arrays["tensor"]], h, horizon, s, ts)
    np.testing.assert_array_equal(data.coordinates["x"].numpy(), np.linspace(0, 1, 17, dtype=np.float32)[::s])
    np.testing.assert_array_equal(data.coordinates["t"].numpy(), np.linspace(0, 2, 10, dtype=np.float32)[::ts])


@pytest.mark.parametrize("grid", [(9,), (8, 10), (4, 5, 6)], ids=["1d", "2d", "3d"])
def test_cfd_fields_in_the_order_asked(tmp_path, grid):
    arrays = write_cfd(tmp_path / "CFD.hdf5", grid=grid)
    data = PDEBench(tmp_path / "CFD.hdf5", history=2, horizon=2, stride=2)
    assert data.layout == "cfd" and data.fields == tuple(arrays)  # every field present, PDEBench's order
    assert (data.in_channels, data.out_channels) == (2 * len(arrays), 2 * len(arrays))
    check_all_items(data, list(arrays.values()), 2, 2, 2, 1)
    picked = PDEBench(tmp_path / "CFD.hdf5", fields=["Vx", "density"], time_stride=2)
    check_all_items(picked, [arrays["Vx"], arrays["density"]], 1, 1, 1, 2)


def test_darcy_maps_nu_to_the_solution(tmp_path):
    arrays = write_darcy(tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5")
    data = PDEBench(tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5", stride=2)
    assert data.layout == "darcy" and len(data) == 3 and (data.in_channels, data.out_channels) == (1, 1)
    for i in range(3):
        x, y = data[i]
        np.testing.assert_array_equal(x.numpy(), arrays["nu"][i, None, ::2, ::2])
        np.testing.assert_array_equal(y.numpy(), arrays["tensor"][i, :, ::2, ::2])
    assert set(data.coordinates) == {"x", "y"} and data[-1][0].shape == (1, 6, 6)


def test_groups_items_and_channel_fields(tmp_path):
    data_arrays = write_groups(tmp_path / "2D_diff-react_NA_NA.h5")
    series = [np.stack([a[..., c] for a in data_arrays]) for c in range(2)]  # per channel (n, T, *grid)
    data = PDEBench(tmp_path / "2D_diff-react_NA_NA.h5", history=2, horizon=1, stride=2, time_stride=2)
    assert data.layout == "groups" and data.fields == (0, 1) and data.grid_shape == (4, 3)
    check_all_items(data, series, 2, 1, 2, 2)
    one = PDEBench(tmp_path / "2D_diff-react_NA_NA.h5", fields=[1], history=3)
    check_all_items(one, [series[1]], 3, 1, 1, 1)
    np.testing.assert_array_equal(data.coordinates["t"].numpy(), np.linspace(0, 5, 7, dtype=np.float32)[::2])


def test_nothing_is_read_before_an_item_and_pickling_drops_the_handle(tmp_path):
    arrays = write_scalar(tmp_path / "a.hdf5")
    data = PDEBench(tmp_path / "a.hdf5", history=2)
    assert data._file is None  # __init__ only read shapes
    x0, _ = data[5]
    assert data._file is not None  # opened on the first item
    copy = pickle.loads(pickle.dumps(data))  # an open h5py.File cannot be pickled
    assert copy._file is None
    torch.testing.assert_close(copy[5][0], x0, rtol=0, atol=0)
    np.testing.assert_array_equal(copy[-1][1].numpy(), arrays["tensor"][-1, -1:])
    data.close()
    assert data._file is None and torch.equal(data[5][0], x0)


def test_dataloader_workers_read_every_item_once(tmp_path):
    arrays = write_cfd(tmp_path / "CFD.hdf5", n=3, t=5, grid=(8, 8))
    data = PDEBench(tmp_path / "CFD.hdf5", fields=("pressure", "Vy"), history=2, horizon=2)
    loader = DataLoader(data, batch_size=2, num_workers=2)
    xs, ys = zip(*loader)
    assert data._file is None  # the workers opened their own handles, the main process none
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (6, 4, 8, 8) and y.shape == (6, 4, 8, 8)
    for index in range(6):
        rx, ry = reference([arrays["pressure"], arrays["Vy"]], *divmod(index, 2), 2, 2, 1, 1)
        np.testing.assert_array_equal(x[index].numpy(), rx)
        np.testing.assert_array_equal(y[index].numpy(), ry)


def test_trainer_trains_through_a_dataloader(tmp_path):
    write_groups(tmp_path / "sw.h5", n=4, t=5, grid=(16, 16), c=1)
    data = PDEBench(tmp_path / "sw.h5", history=2)
    model = FNO(data.in_channels, data.out_channels, (4, 4), hidden_channels=8, n_layers=2)
    trainer = Trainer(model, epochs=2, lr=1e-2, device="cpu", verbose=False)
    history = trainer.fit(DataLoader(data, batch_size=4, shuffle=True), test=DataLoader(data, batch_size=6))
    assert len(history) == 2 and np.isfinite(history[-1]["test/loss"])


# ------------------------------------------------------------------------ errors
def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no file '.*missing\.hdf5'"):
        PDEBench(tmp_path / "missing.hdf5")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"'.*text\.hdf5' is not a readable HDF5 file"):
        PDEBench(tmp_path / "text.hdf5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["u"] = np.zeros((2, 3))
        f.create_group("meta")
    with pytest.raises(ValueError, match=r"other\.h5'.*not a PDEBench file.*holds 'meta' \(group of \[\]\), 'u' \(2, 3\)"):
        PDEBench(tmp_path / "other.h5")


def test_missing_field_lists_the_fields_present(tmp_path):
    write_cfd(tmp_path / "CFD.hdf5", n=2, t=4, grid=(6,))
    with pytest.raises(ValueError, match=r"CFD\.hdf5'.*no field 'Vy'.*'density' \(2, 4, 6\), 'pressure' \(2, 4, 6\), "
                                         r"'Vx' \(2, 4, 6\)"):
        PDEBench(tmp_path / "CFD.hdf5", fields=["density", "Vy"])
    with pytest.raises(TypeError, match=r"fields of a 'cfd' file are names"):
        PDEBench(tmp_path / "CFD.hdf5", fields=[0])
    with pytest.raises(ValueError, match=r"history=3 \+ horizon=2 time steps do not fit in the 4 steps"):
        PDEBench(tmp_path / "CFD.hdf5", history=3, horizon=2)
    with pytest.raises(ValueError, match=r"fit in the 2 steps left of 4 by time_stride=3"):
        PDEBench(tmp_path / "CFD.hdf5", history=2, time_stride=3)


def test_layout_specific_refusals(tmp_path):
    write_darcy(tmp_path / "darcy.hdf5")
    with pytest.raises(ValueError, match=r"darcy\.hdf5' is a Darcy file with one time step.*history=2"):
        PDEBench(tmp_path / "darcy.hdf5", history=2)
    with pytest.raises(ValueError, match=r"Darcy file \(nu -> tensor\): fields must be None"):
        PDEBench(tmp_path / "darcy.hdf5", fields=["tensor"])
    write_groups(tmp_path / "g.h5", c=2)
    with pytest.raises(ValueError, match=r"g\.h5'.*fields=\[2\] must be distinct channel indices in \[0, 2\)"):
        PDEBench(tmp_path / "g.h5", fields=[2])
    with h5py.File(tmp_path / "g.h5", "a") as f:
        f["0003/data"] = np.zeros((7, 8, 5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"'0000/data' is \(7, 8, 6, 2\), got '0003/data' \(7, 8, 5, 2\)"):
        PDEBench(tmp_path / "g.h5")


def test_argument_and_index_errors(tmp_path):
    write_scalar(tmp_path / "a.hdf5", n=2, t=3)
    with pytest.raises(TypeError, match="history must be an int, got float 1.5"):
        PDEBench(tmp_path / "a.hdf5", history=1.5)
    with pytest.raises(ValueError, match="stride must be an int >= 1, got 0"):
        PDEBench(tmp_path / "a.hdf5", stride=0)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int 3"):
        PDEBench(3)
    data = PDEBench(tmp_path / "a.hdf5")
    with pytest.raises(IndexError, match=r"index 4 is out of range for 4 items \('.*a\.hdf5'\)"):
        data[4]


# ------------------------------------------------------------------------ torchrun
def _reads(out: Path, rank: int, phase: str) -> list[int]:
    lines = [ln.split() for p in out.glob(f"reads-rank{rank}-pid*.txt") for ln in p.read_text().splitlines()]
    return [int(i) for ph, i in lines if ph == phase]


def test_torchrun_ranks_read_only_their_shard(tmp_path):
    arrays = write_scalar(tmp_path / "1D_Burgers.hdf5", n=4, t=7, grid=(16,))  # 4 x 5 windows = 20 items
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(WORKER), str(tmp_path / "1D_Burgers.hdf5"), str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = PDEBench(tmp_path / "1D_Burgers.hdf5", history=2)
    for rank in (0, 1):
        # torch's own DistributedSampler says which items are this rank's; its workers read those only.
        shard = list(DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=0))
        assert sorted(_reads(tmp_path, rank, "sampler")) == sorted(shard) and len(shard) == 10
        saved = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for k, index in enumerate(shard):
            rx, ry = reference([arrays["tensor"]], *divmod(index, 5), 2, 1, 1, 1)
            np.testing.assert_array_equal(saved["inputs"][k].numpy(), rx)
            np.testing.assert_array_equal(saved["targets"][k].numpy(), ry)
    trainer_reads = [_reads(tmp_path, rank, "trainer") for rank in (0, 1)]
    assert not set(trainer_reads[0]) & set(trainer_reads[1])  # the Trainer shards the loader: no item twice
    assert Counter(trainer_reads[0] + trainer_reads[1]) == Counter(range(20))
    assert len(torch.load(tmp_path / "history.pt", weights_only=True)) == 1
