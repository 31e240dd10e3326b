"""from_well: The Well's reader's items as channels-first (input, target) pairs.

Files come from The Well's own dummy-data writer (``the_well.utils.dummy_data``); the
reference is the arrays that file holds, read back with h5py and rearranged with numpy.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip("the_well")
h5py = pytest.importorskip("h5py")

from the_well.data import WellDataset  # noqa: E402
from the_well.utils.dummy_data import write_dummy_data  # noqa: E402

from operators import FNO, Trainer  # noqa: E402
from operators.datasets.well import WellPairs, from_well  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS, TRAJECTORIES = 10, 2  # what write_dummy_data writes: fields (2, 10, 32, 32, 2), constant (2, 32, 32)


@pytest.fixture(scope="module")
def well_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("well")
    np.random.seed(0)
    write_dummy_data(str(folder / "dummy.hdf5"))
    with h5py.File(folder / "dummy.hdf5", "r") as f:
        field, const = f["t1_fields/field"][:], f["t0_fields/constant_field"][:]
    return folder, field, const


def _expected(field, const, index, t_in, t_out, with_const=True):
    """numpy reference: window ``index`` of the file as ((t_in*F [+1], H, W), (t_out*F, H, W))."""
    windows = STEPS - t_in - t_out + 1
    traj, t0 = divmod(index, windows)
    x = np.moveaxis(field[traj, t0:t0 + t_in], -1, 1).reshape(-1, *field.shape[2:4])  # channel t*F + f
    if with_const:
        x = np.concatenate([x, const[traj][None]], axis=0)
    y = np.moveaxis(field[traj, t0 + t_in:t0 + t_in + t_out], -1, 1).reshape(-1, *field.shape[2:4])
    return x, y


@pytest.mark.parametrize("t_in,t_out", [(1, 1), (2, 3), (4, 1)])
def test_items_equal_the_file(well_dir, t_in, t_out):
    folder, field, const = well_dir
    data = from_well(WellDataset(path=str(folder), n_steps_input=t_in, n_steps_output=t_out))
    windows = STEPS - t_in - t_out + 1
    assert len(data) == TRAJECTORIES * windows
    assert (data.in_channels, data.out_channels) == (2 * t_in + 1, 2 * t_out)
    for index in (0, 1, windows - 1, windows, len(data) - 1):
        x, y = data[index]
        ref_x, ref_y = _expected(field, const, index, t_in, t_out)
        assert x.dtype == torch.float32 and x.shape == (data.in_channels, 32, 32)
        np.testing.assert_array_equal(x.numpy(), ref_x)
        np.testing.assert_array_equal(y.numpy(), ref_y)
        assert y.shape == (data.out_channels, 32, 32)
    # channel t * F + f is field component f at step t, explicitly
    x, y = data[len(data) - 1]
    traj, t0 = divmod(len(data) - 1, windows)
    np.testing.assert_array_equal(x[2 * (t_in - 1) + 1].numpy(), field[traj, t0 + t_in - 1, :, :, 1])
    np.testing.assert_array_equal(y[0].numpy(), field[traj, t0 + t_in, :, :, 0])


def test_without_constant_fields_and_rollout_limit(well_dir):
    folder, field, const = well_dir
    data = from_well(WellDataset(path=str(folder), n_steps_input=2, n_steps_output=4, max_rollout_steps=3),
                     constant_fields=False)
    assert (data.in_channels, data.out_channels) == (4, 6)  # the reader returns min(4, 3) output steps
    x, y = data[3]
    ref_x, _ = _expected(field, const, 3, 2, 4, with_const=False)
    np.testing.assert_array_equal(x.numpy(), ref_x)
    assert y.shape == (6, 32, 32)


def test_nan_replacement(tmp_path):
    np.random.seed(1)
    write_dummy_data(str(tmp_path / "nan.hdf5"))
    with h5py.File(tmp_path / "nan.hdf5", "r+") as f:
        f["t1_fields/field"][0, 0, 3, 4, 1] = np.nan
        f["t1_fields/field"][0, 1, 5, 6, 0] = np.nan
        field = f["t1_fields/field"][:]
    well = WellDataset(path=str(tmp_path), n_steps_input=1, n_steps_output=1)
    x, y = from_well(well)[0]
    assert x[1, 3, 4] == 0 and y[0, 5, 6] == 0 and torch.isfinite(x).all() and torch.isfinite(y).all()
    np.testing.assert_array_equal(x[0].numpy(), field[0, 0, :, :, 0])
    x, y = from_well(well, nan=-1.5)[0]
    assert x[1, 3, 4] == -1.5 and y[0, 5, 6] == -1.5
    x, y = from_well(well, nan=None)[0]
    assert torch.isnan(x[1, 3, 4]) and torch.isnan(y[0, 5, 6]) and int(torch.isnan(x).sum()) == 1


def test_loader_pickle_and_trainer(well_dir):
    folder, field, const = well_dir
    data = from_well(WellDataset(path=str(folder), n_steps_input=2, n_steps_output=1))
    again = pickle.loads(pickle.dumps(data))  # what DataLoader workers receive
    for a, b in zip(again[5], data[5]):
        assert torch.equal(a, b)
    loader = DataLoader(data, batch_size=4, shuffle=True)
    x, y = next(iter(loader))
    assert x.shape == (4, 5, 32, 32) and y.shape == (4, 2, 32, 32)
    model = FNO(data.in_channels, data.out_channels, (4, 4), hidden_channels=8, n_layers=1)
    history = Trainer(model, epochs=1, device="cpu", verbose=False).fit(loader, test={"train": loader})
    assert np.isfinite(history[-1]["train/loss"])


def test_bad_arguments_are_named(well_dir):
    folder, _, _ = well_dir
    with pytest.raises(TypeError, match=r"from_well: dataset must be a the_well.data.WellDataset, got list \[1, 2\]"):
        from_well([1, 2])
    well = WellDataset(path=str(folder))
    with pytest.raises(TypeError, match="constant_fields must be a bool, got int 1"):
        from_well(well, constant_fields=1)
    with pytest.raises(ValueError, match="nan must be finite, got inf"):
        from_well(well, nan=float("inf"))
    assert "in_channels=3, out_channels=2" in repr(WellPairs(well))
