"""The shared validation helpers of :mod:`spectral.checks`: what they accept, and the errors for the rest."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral.checks import (
    check_bool,
    check_choice,
    check_int,
    check_ints,
    check_number,
    check_real_dtype,
    check_shape,
    check_tensor,
    describe,
)


@pytest.mark.parametrize(
    "value, expected",
    [(3, 3), (np.int64(3), 3), (np.int32(7), 7), (torch.tensor(5), 5)],
    ids=["int", "np.int64", "np.int32", "0-d tensor"],
)
def test_check_int_accepts_every_integer_kind_and_returns_a_python_int(value, expected):
    out = check_int("n", value)
    assert out == expected and type(out) is int


@pytest.mark.parametrize(
    "value, shown",
    [(None, "NoneType None"), ("1", "str '1'"), (2.0, "float 2.0"), (True, "bool True"),
     (np.bool_(True), "True"), (float("nan"), "float nan"), (torch.tensor(2.0), "dtype torch.float32"),
     ([1], "list")],
    ids=["None", "str", "float", "bool", "np.bool_", "nan", "float tensor", "list"],
)
def test_check_int_refuses_non_integers_by_name_and_value(value, shown):
    with pytest.raises(TypeError, match=rf"depth must be an int, got .*{shown}"):
        check_int("depth", value)


def test_check_int_range_and_none():
    with pytest.raises(ValueError, match=r"width must be an int >= 1, got 0"):
        check_int("width", 0)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 4\], got 5"):
        check_int("k", 5, max=4)
    assert check_int("k", None, allow_none=True) is None
    with pytest.raises(TypeError, match=r"k must be an int or None, got str"):
        check_int("k", "x", allow_none=True)
    assert check_int("k", -3, min=None) == -3


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.25), torch.tensor(0.75, dtype=torch.float64)])
def test_check_number_accepts_real_numbers(value):
    out = check_number("p", value, min=0, max=1)
    assert type(out) is float and out == pytest.approx(float(value))


@pytest.mark.parametrize(
    "value, error, pattern",
    [
        (float("nan"), ValueError, r"p must be finite, got nan"),
        (math.inf, ValueError, r"p must be finite, got inf"),
        (-math.inf, ValueError, r"p must be finite, got -inf"),
        (True, TypeError, r"p must be a real number, got bool True"),
        ("1", TypeError, r"p must be a real number, got str '1'"),
        (1j, TypeError, r"p must be a real number, got complex"),
        (None, TypeError, r"p must be a real number, got NoneType"),
        (torch.ones(2), TypeError, r"shape \(2,\)"),
    ],
)
def test_check_number_refuses_non_finite_and_non_real(value, error, pattern):
    with pytest.raises(error, match=pattern):
        check_number("p", value)


def test_check_number_bounds_open_and_closed():
    assert check_number("lr", 1e-3, min=0, min_open=True) == 1e-3
    with pytest.raises(ValueError, match=r"lr must be > 0, got 0.0"):
        check_number("lr", 0.0, min=0, min_open=True)
    with pytest.raises(ValueError, match=r"dropout must be >= 0 and < 1, got 1.0"):
        check_number("dropout", 1.0, min=0, max=1, max_open=True)
    assert check_number("dropout", 0.0, min=0, max=1, max_open=True) == 0.0
    assert check_number("x", None, allow_none=True) is None


def test_check_bool_and_choice():
    assert check_bool("bias", np.bool_(False)) is False
    with pytest.raises(TypeError, match=r"bias must be a bool, got int 1"):
        check_bool("bias", 1)
    assert check_choice("norm", "ortho", ("forward", "ortho")) == "ortho"
    with pytest.raises(ValueError, match=r"norm must be one of \('forward', 'ortho'\), got str 'Forward'"):
        check_choice("norm", "Forward", ("forward", "ortho"))
    with pytest.raises(ValueError, match=r"or None, got list"):
        check_choice("norm", ["forward"], ("forward",), allow_none=True)  # unhashable: refused, not a TypeError
    assert check_choice("norm", None, ("forward",), allow_none=True) is None


def test_check_ints_broadcasts_and_validates_each_entry():
    assert check_ints("n_modes", 4, length=3) == (4, 4, 4)
    assert check_ints("n_modes", (np.int64(2), 3)) == (2, 3)
    with pytest.raises(ValueError, match=r"n_modes must have 2 entries, got 3"):
        check_ints("n_modes", (1, 2, 3), length=2)
    with pytest.raises(TypeError, match=r"n_modes\[1\] must be an int, got float 2.5"):
        check_ints("n_modes", (1, 2.5))
    with pytest.raises(ValueError, match=r"n_modes\[0\] must be an int >= 1, got 0"):
        check_ints("n_modes", (0,))
    with pytest.raises(TypeError, match=r"n_modes must be an int or a sequence of ints, got str"):
        check_ints("n_modes", "44")
    with pytest.raises(ValueError, match=r"must not be empty"):
        check_ints("grid", ())


def test_check_real_dtype():
    assert check_real_dtype("dtype", torch.float64) is torch.float64
    assert check_real_dtype("dtype", None) is None
    for bad in (torch.complex64, torch.int32, "float32"):
        with pytest.raises(TypeError, match=r"dtype must be a real floating torch.dtype"):
            check_real_dtype("dtype", bad)


def test_check_tensor_names_the_kind_and_hints_for_numpy():
    x = torch.zeros(2, 3)
    assert check_tensor("Layer", "x", x) is x
    with pytest.raises(TypeError, match=r"Layer: x must be a torch.Tensor, got numpy.ndarray of shape \(2, 3\) "
                                        r"\(convert with torch.as_tensor\)"):
        check_tensor("Layer", "x", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(TypeError, match=r"Layer: x must have a real floating dtype, got torch.complex64"):
        check_tensor("Layer", "x", torch.zeros(2, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"must have a complex dtype, got torch.float32"):
        check_tensor("Layer", "z", x, kind="complex")
    with pytest.raises(TypeError, match=r"must have a real floating dtype, got torch.int64"):
        check_tensor("Layer", "x", torch.zeros(2, dtype=torch.int64))


def test_check_shape_shows_the_pattern_and_the_whole_shape():
    check_shape("SpectralConv", "x", torch.zeros(8, 3, 4, 4), ("B", 3, "H", "W"))
    with pytest.raises(ValueError, match=r"SpectralConv: expected x of shape \(B, 3, H, W\), got \(8, 4, 64, 64\)"):
        check_shape("SpectralConv", "x", torch.zeros(8, 4, 64, 64), ("B", 3, "H", "W"))
    with pytest.raises(ValueError, match=r"got \(8, 3, 64\)"):
        check_shape("SpectralConv", "x", torch.zeros(8, 3, 64), ("B", 3, "H", "W"))
    check_shape("FAN", "x", torch.zeros(2, 5, 7), ("...", 7))
    check_shape("FAN", "x", torch.zeros(7), ("...", 7))
    with pytest.raises(ValueError, match=r"FAN: expected x of shape \(\.\.\., 7\), got \(2, 6\)"):
        check_shape("FAN", "x", torch.zeros(2, 6), ("...", 7))


def test_describe_is_short():
    assert describe("x" * 500).endswith("...")
    assert len(describe("x" * 500)) < 100


def test_check_dtype_matches_on_meta_and_under_autocast():
    from spectral.checks import autocast_enabled, check_dtype_matches

    w = torch.zeros(2, device="meta")
    check_dtype_matches("Layer", torch.zeros(2, device="meta"), w)
    with pytest.raises(TypeError, match=r"Layer: got x of dtype torch.float64 but the parameters have torch.float32"):
        check_dtype_matches("Layer", torch.zeros(2, device="meta", dtype=torch.float64), w)
    assert autocast_enabled("meta") is False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_enabled("cpu")
        check_dtype_matches("Layer", torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2))
        with pytest.raises(TypeError, match=r"autocast does not cast float64"):
            check_dtype_matches("Layer", torch.zeros(2, dtype=torch.float64), torch.zeros(2))


def test_check_bool_allow_none():
    assert check_bool("progress", None, allow_none=True) is None
    assert check_bool("progress", True, allow_none=True) is True
    with pytest.raises(TypeError, match=r"progress must be a bool, got NoneType None"):
        check_bool("progress", None)
    with pytest.raises(TypeError, match=r"progress must be a bool, got str 'yes'"):
        check_bool("progress", "yes", allow_none=True)
