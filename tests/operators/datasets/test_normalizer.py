"""Normalizer: statistics equal numpy's over the same data (tensor, Dataset, DataLoader, dict and
PDEData sources, streamed in uneven batches), encode/decode are inverse, named errors.

References: ``numpy.mean`` / ``numpy.std`` (ddof=0) in float64 over the same arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from operators.datasets import PDEData
from operators.datasets.normalizer import Normalizer

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=37, c=3, grid=(6, 5), seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([1.0, 40.0, 1e-3, 7.0][:c]).view(1, c, *([1] * len(grid)))
    shift = torch.tensor([2.0, -300.0, 5.0, 0.0][:c]).view(1, c, *([1] * len(grid)))
    return torch.randn(n, c, *grid, generator=g, dtype=torch.float64) * scale + shift


def _numpy_stats(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    a = x.double().numpy()
    axes = (0, *range(2, a.ndim))
    return a.mean(axis=axes), a.std(axis=axes)


def _assert_stats(norm: Normalizer, x: torch.Tensor) -> None:
    mean, std = _numpy_stats(x)
    np.testing.assert_allclose(norm.mean.numpy(), mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(norm.std.numpy(), std, rtol=1e-12)


class _Pairs(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


@pytest.mark.parametrize("grid", [(), (9,), (6, 5), (3, 4, 2)], ids=lambda g: f"grid={g}")
@pytest.mark.parametrize("batch_size", [1, 5, 37, 100])
def test_tensor_statistics_equal_numpy(grid, batch_size):
    x = _data(grid=grid)
    _assert_stats(Normalizer.fit(x, batch_size=batch_size, dtype=torch.float64), x)


def test_streaming_sources_equal_numpy():
    x, y = _data(seed=1), _data(c=2, grid=(6, 5), seed=2)
    f64 = dict(dtype=torch.float64)
    _assert_stats(Normalizer.fit(_Pairs(x, y), element=0, batch_size=8, **f64), x)
    _assert_stats(Normalizer.fit(_Pairs(x, y), element=1, batch_size=8, **f64), y)
    _assert_stats(Normalizer.fit(TensorDataset(y), element=0, batch_size=10, **f64), y)
    _assert_stats(Normalizer.fit(DataLoader(_Pairs(x, y), batch_size=6, shuffle=True), element=-1, **f64), y)
    dicts = [{"u": x[i:i + 4], "v": y[i:i + 4]} for i in range(0, 37, 4)]  # uneven last batch
    _assert_stats(Normalizer.fit(dicts.__iter__(), element="u", **f64), x)
    _assert_stats(Normalizer.fit(PDEData(x, y), element="targets", **f64), y)
    _assert_stats(Normalizer.fit(PDEData(x, y), element=0, **f64), x)
    _assert_stats(Normalizer.fit(iter([y[:1], y[1:1], y[1:]]), **f64), y)  # an empty batch in between


def test_large_offset_is_stable():
    """The batch merge keeps a small spread on a large mean (a naive sum of squares would lose it)."""
    x = 1e7 + _data(n=64, c=1, grid=(16,), seed=3) * 1e-3
    _assert_stats(Normalizer.fit(x, batch_size=3, dtype=torch.float64), x)


def test_integer_and_bool_data():
    g = torch.Generator().manual_seed(4)
    mask = torch.rand(20, 1, 8, 8, generator=g) > 0.3
    _assert_stats(Normalizer.fit(mask, batch_size=7, dtype=torch.float64), mask.double())
    ints = torch.randint(-5, 9, (20, 2, 8), generator=g)
    _assert_stats(Normalizer.fit(ints, dtype=torch.float64), ints.double())


def test_float32_buffers_hold_rounded_statistics():
    x = _data().float()
    norm = Normalizer.fit(x, batch_size=4)
    assert norm.mean.dtype == torch.float32 and norm.std.dtype == torch.float32
    mean, std = _numpy_stats(x)
    np.testing.assert_allclose(norm.mean.numpy(), mean.astype(np.float32), rtol=1e-7)
    np.testing.assert_allclose(norm.std.numpy(), std.astype(np.float32), rtol=1e-7)


def test_encode_decode_inverse_and_unit_statistics():
    x = _data()
    norm = Normalizer.fit(x, dtype=torch.float64)
    z = norm.encode(x)
    mean, std = _numpy_stats(x)
    ref = (x.numpy() - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(z.numpy(), ref, rtol=1e-12, atol=1e-12)
    z_mean, z_std = _numpy_stats(z)
    np.testing.assert_allclose(z_mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(z_std, 1.0, rtol=1e-12)
    torch.testing.assert_close(norm.decode(z), x, rtol=1e-13, atol=1e-12)
    assert torch.equal(norm(x), z)
    # float32 data through float64 buffers: float32 out, inverse up to float32 round-off
    x32 = x.float()
    assert norm.encode(x32).dtype == torch.float32
    torch.testing.assert_close(norm.decode(norm.encode(x32)), x32, rtol=1e-6, atol=1e-4)


def test_zero_variance_channel_uses_eps():
    x = torch.cat([_data(c=1), torch.full((37, 1, 6, 5), 3.5, dtype=torch.float64)], dim=1)
    norm = Normalizer.fit(x, eps=1e-3, dtype=torch.float64)
    assert norm.std[1] == 0 and norm.scale[1] == 1e-3
    z = norm.encode(x)
    assert torch.equal(z[:, 1], torch.zeros_like(z[:, 1]))
    assert torch.equal(norm.decode(z)[:, 1], x[:, 1])


def test_buffers_save_and_move():
    norm = Normalizer.fit(_data().float())
    assert sorted(norm.state_dict()) == ["mean", "std"]
    again = Normalizer(3)
    again.load_state_dict(norm.state_dict())
    x = _data(seed=5).float()
    assert torch.equal(again.encode(x), norm.encode(x))
    assert norm.to(torch.float64).mean.dtype == torch.float64
    fresh = Normalizer(2)
    assert torch.equal(fresh.encode(x[:, :2]), x[:, :2])  # a new Normalizer is the identity


def test_bad_shapes_are_named():
    norm = Normalizer(3)
    with pytest.raises(ValueError, match=r"Normalizer.encode: expected x of shape \(B, 3, \*grid\), got \(2, 4, 8\)"):
        norm.encode(torch.zeros(2, 4, 8))
    with pytest.raises(ValueError, match=r"got \(3, 8, 8\) \(one sample\? use x\[None\]\)"):
        norm.decode(torch.zeros(3, 8, 8))
    with pytest.raises(TypeError, match="Normalizer.encode: x must have a real floating dtype, got torch.int64"):
        norm.encode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected data of shape \(n, C, \*grid\), got \(5,\)"):
        Normalizer.fit(torch.zeros(5))
    with pytest.raises(ValueError, match=r"batch 1 has shape \(2, 4, 3\) but the earlier batches had 3 channels"):
        Normalizer.fit(iter([torch.zeros(2, 3, 3), torch.zeros(2, 4, 3)]))
    with pytest.raises(ValueError, match=r"batch 0 must have shape \(B, C, \*grid\), got \(4,\)"):
        Normalizer.fit(iter([torch.zeros(4)]))


def test_bad_data_is_named():
    x = _data()
    with pytest.raises(ValueError, match=r"batch 2 \(shape \(4, 3, 6, 5\)\) holds NaN or infinite values"):
        bad = x.clone()
        bad[9, 1, 2, 2] = float("nan")
        Normalizer.fit(bad, batch_size=4)
    with pytest.raises(ValueError, match="no samples to fit"):
        Normalizer.fit(x[:0])
    with pytest.raises(ValueError, match=r"batch 0 is a list of 2; say which part with element=0 \(inputs\)"):
        Normalizer.fit(_Pairs(x, x))
    with pytest.raises(ValueError, match=r"element=2 does not index batch 0, a list of 2"):
        Normalizer.fit(_Pairs(x, x), element=2)
    with pytest.raises(ValueError, match=r"dict with keys \['u'\]; say which with element=<key>, got element='v'"):
        Normalizer.fit(iter([{"u": x}]), element="v")
    with pytest.raises(ValueError, match="for PDEData data say which part with element=0"):
        Normalizer.fit(PDEData(x, x))
    with pytest.raises(ValueError, match=r"element=1 picks a part .* data is a tensor \(37, 3, 6, 5\)"):
        Normalizer.fit(x, element=1)
    with pytest.raises(TypeError, match=r"got a tuple; pass one tensor"):
        Normalizer.fit((x, x))
    with pytest.raises(TypeError, match=r"numpy.ndarray of shape \(37, 3, 6, 5\) \(convert with torch.as_tensor\)"):
        Normalizer.fit(x.numpy())
    with pytest.raises(TypeError, match="batch 0 is complex"):
        Normalizer.fit(torch.zeros(2, 3, 4, dtype=torch.complex64))
    with pytest.raises(TypeError, match="must be a tensor, PDEData, Dataset or DataLoader, got int 3"):
        Normalizer.fit(3)
    with pytest.raises(ValueError, match=r"eps must be > 0, got 0.0"):
        Normalizer(3, eps=0.0)
    with pytest.raises(TypeError, match="channels must be an int"):
        Normalizer(2.0)
