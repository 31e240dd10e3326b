"""The kept-mode convention: shapes, wavenumbers and validation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from spectral.fft import truncated_fftn, truncated_ifftn
from spectral.modes import as_n_modes, check_grid, compact_wavenumbers, kept_shape, max_modes, modes_from_kept_shape


@pytest.mark.parametrize("n,expected", [(1, 1), (2, 1), (3, 2), (16, 8), (17, 9), (64, 32), (65, 33)])
def test_max_modes_excludes_nyquist(n, expected):
    assert max_modes(n) == expected
    # the largest admitted wavenumber m - 1 is strictly below n / 2
    assert max_modes(n) - 1 < n / 2 and (max_modes(n) + 1) - 1 >= n / 2


@pytest.mark.parametrize("modes", [(1,), (3,), (2, 5), (4, 1, 3)])
@pytest.mark.parametrize("complex_data", [False, True])
def test_kept_shape_round_trip_and_wavenumbers(modes, complex_data):
    shape = kept_shape(modes, complex_data=complex_data)
    assert modes_from_kept_shape(shape, complex_data=complex_data) == modes
    ks = compact_wavenumbers(modes, complex_data=complex_data)
    assert tuple(len(k) for k in ks) == shape
    for i, (k, m) in enumerate(zip(ks, modes)):
        one_sided = i == len(modes) - 1 and not complex_data
        expected = set(range(m)) if one_sided else set(range(-(m - 1), m))
        assert set(k.tolist()) == expected and len(set(k.tolist())) == len(k)


def test_compact_layout_is_fft_order_without_shift():
    # Bins of the compact layout are those of numpy's fftfreq in the same order.
    n, m = 10, 4
    freqs = np.fft.fftfreq(n, 1 / n).astype(int)
    expected = np.concatenate([freqs[:m], freqs[n - m + 1:]])
    np.testing.assert_array_equal(compact_wavenumbers((m, 1))[0].numpy(), expected)


def test_same_coefficients_on_even_and_odd_grids():
    # A band-limited signal has identical kept coefficients on 16 and 17 points (resolution invariance).
    def sample(n):
        t = torch.arange(n, dtype=torch.float64) / n
        return torch.cos(2 * torch.pi * 3 * t) + 0.5 * torch.sin(2 * torch.pi * 7 * t)

    torch.testing.assert_close(truncated_fftn(sample(16), 8), truncated_fftn(sample(17), 8))


def test_as_n_modes_validation():
    assert as_n_modes(4) == (4,)
    assert as_n_modes([3, 4]) == (3, 4)
    with pytest.raises(ValueError, match=r"n_modes must have 1 to 3 entries .* got \(1, 2, 3, 4\)"):
        as_n_modes((1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"n_modes\[0\] must be an int >= 1, got -1"):
        as_n_modes((-1,))
    with pytest.raises(TypeError, match=r"n_modes\[0\] must be an int, got bool True"):
        as_n_modes((True,))


def test_check_grid_messages():
    check_grid((16, 17), (8, 9))
    with pytest.raises(ValueError, match=r"n_modes\[-2\]=9 exceeds the 8 modes a grid of 16 points admits"):
        check_grid((16, 17), (9, 9))
    with pytest.raises(ValueError, match=r"x: expected 2 grid axes for n_modes=\(4, 4\), got grid \(16,\)"):
        check_grid((16,), (4, 4))


@pytest.mark.parametrize(
    "kept,complex_data,axis",
    [((0,), False, -1), ((0,), True, -1), ((5, 0), False, -1), ((0, 3), False, -2), ((3, 0, 2), True, -2)],
)
def test_zero_width_kept_axis_is_rejected_with_the_spectrum_shape(kept, complex_data, axis):
    """Every axis holds at least the DC bin; a one-sided empty axis used to give n_modes 0."""
    shape = re.escape(str(tuple(kept)))
    with pytest.raises(ValueError, match=rf"kept-mode axis {axis} has 0 bins; .* DC bin .*spectrum shape {shape}"):
        modes_from_kept_shape(kept, complex_data=complex_data)


def test_truncated_ifftn_of_an_empty_spectrum_raises_value_error():
    """Used to fail with a deep IndexError inside the inverse transform."""
    with pytest.raises(ValueError, match=r"kept-mode axis -1 has 0 bins; .* DC bin .*spectrum shape \(0,\)"):
        truncated_ifftn(torch.zeros(2, 0, dtype=torch.complex64), 8)


@pytest.mark.parametrize(
    "n_modes,expected",
    [
        ((np.int64(8), 8), (8, 8)),
        (np.int32(5), (5,)),
        (np.array([3, 4]), (3, 4)),
        (np.array(6), (6,)),
        (torch.tensor(7), (7,)),
        ((torch.tensor(3), np.uint8(2), 4), (3, 2, 4)),
    ],
    ids=["np.int64-entry", "np.int32-scalar", "np-array", "np-0d", "tensor-0d", "mixed"],
)
def test_as_n_modes_accepts_whatever_operator_index_accepts(n_modes, expected):
    modes = as_n_modes(n_modes)
    assert modes == expected and all(type(m) is int for m in modes)  # plain ints (configs, reprs)


@pytest.mark.parametrize(
    "n_modes,got",
    [
        ((np.True_, 4), r"bool np\.True_"),
        ((torch.tensor(True),), r"Tensor of shape \(\) and dtype torch.bool"),
        ((8.0,), r"float 8\.0"),
        (8.0, r"float 8\.0"),
        ((np.float64(8), 2), r"float64 np\.float64\(8\.0\)"),
        ((torch.tensor(8.0),), r"Tensor of shape \(\) and dtype torch.float32"),
    ],
    ids=["np.bool_", "bool-tensor", "float-entry", "float-scalar", "np.float64", "float-tensor"],
)
def test_as_n_modes_still_rejects_bools_and_floats(n_modes, got):
    with pytest.raises(TypeError, match=rf"n_modes\[0\] must be an int, got {got}"):
        as_n_modes(n_modes)
