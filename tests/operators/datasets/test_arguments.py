"""Bad arguments to the generators and solvers: a named TypeError/ValueError, never a wrong result or a raw error.

One group per kind of mistake (sizes and counts, physical constants, flags and choices, solver
inputs), each over every generator that takes the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import operators.datasets as datasets
from operators.datasets import (
    burgers,
    burgers_solve,
    darcy,
    darcy_solve,
    navier_stokes,
    navier_stokes_sequences,
    navier_stokes_solve,
    shallow_water,
    shallow_water_rollouts,
    time_stepping_pairs,
)
from operators.datasets._grf import neumann_grf, periodic_grf
from operators.datasets.navier_stokes import fno_forcing

pytestmark = pytest.mark.usefixtures("one_thread")

NO_CACHE = dict(cache=False, progress=False)
# tiny problems: each call fails in validation, before any solve
GENERATORS = {
    "burgers": lambda **kw: burgers(**{"n": 2, "solver_resolution": 16, "resolution": 8, "t_final": 0.5,
                                       "dt": 0.25, **NO_CACHE, **kw}),
    "darcy": lambda **kw: darcy(**{"n": 2, "solver_resolution": 8, "resolution": 4, **NO_CACHE, **kw}),
    "navier_stokes": lambda **kw: navier_stokes(**{"n": 2, "solver_resolution": 8, "resolution": 8, "t_final": 0.02,
                                                   "dt": 0.01, **NO_CACHE, **kw}),
    "navier_stokes_sequences": lambda **kw: navier_stokes_sequences(
        **{"n": 2, "n_steps": 1, "record_interval": 0.01, "solver_resolution": 8, "resolution": 8, "dt": 0.01,
           **NO_CACHE, **kw}),
    "shallow_water": lambda **kw: shallow_water(**{"n": 2, "nlat": 8, "nlon": 16, "dt": 300.0, "solver_dt": 300.0,
                                                   **NO_CACHE, **kw}),
    "shallow_water_rollouts": lambda **kw: shallow_water_rollouts(
        **{"n": 2, "steps": 1, "nlat": 8, "nlon": 16, "dt": 300.0, "solver_dt": 300.0, **NO_CACHE, **kw}),
}
INT_ARGS = {
    "burgers": ("n", "solver_resolution", "seed", "batch_size"),
    "darcy": ("n", "solver_resolution", "seed"),
    "navier_stokes": ("n", "solver_resolution", "seed", "batch_size"),
    "navier_stokes_sequences": ("n", "n_steps", "seed", "batch_size"),
    "shallow_water": ("n", "nlat", "nlon", "seed", "batch_size"),  # lmax=None means the default
    "shallow_water_rollouts": ("steps", "n", "nlat", "seed"),
}
REAL_ARGS = {
    "burgers": ("viscosity", "t_final", "dt", "grf_alpha", "grf_tau", "grf_sigma"),
    "darcy": ("a_high", "a_low", "grf_alpha", "grf_tau", "forcing"),
    "navier_stokes": ("viscosity", "t_final", "dt", "forcing", "grf_sigma"),
    "navier_stokes_sequences": ("record_interval", "spinup", "viscosity"),
    "shallow_water": ("dt", "solver_dt", "spinup", "mach"),
    "shallow_water_rollouts": ("dt", "mach"),
}
NOT_AN_INT = [(None, r"got NoneType None"), ("4", r"got str '4'"), (2.0, r"got float 2.0"), (True, r"got bool True"),
              (float("nan"), r"got float nan")]  # fmt: skip
NOT_A_REAL = [(None, r"got NoneType None"), ("0.1", r"got str '0.1'"), (True, r"got bool True")]


def _cases(table):
    return [(g, a) for g, args in table.items() for a in args]


@pytest.mark.parametrize("generator, arg", _cases(INT_ARGS))
@pytest.mark.parametrize("value, shown", NOT_AN_INT, ids=repr)
def test_sizes_counts_and_seeds_must_be_ints(generator, arg, value, shown):
    with pytest.raises(TypeError, match=rf"^{arg} must be an int.*, {shown}$"):
        GENERATORS[generator](**{arg: value})


@pytest.mark.parametrize("generator, arg", _cases(INT_ARGS))
def test_sizes_counts_and_seeds_below_their_minimum(generator, arg):
    with pytest.raises(ValueError, match=rf"^{arg} must be an int >= \d+, got -1$"):
        GENERATORS[generator](**{arg: -1})


@pytest.mark.parametrize("generator, arg", _cases(REAL_ARGS))
@pytest.mark.parametrize("value, shown", NOT_A_REAL, ids=repr)
def test_physical_constants_must_be_real_numbers(generator, arg, value, shown):
    """A bool or a numeric string used to be taken as a number (darcy's forcing='1', grf_alpha=True)."""
    with pytest.raises(TypeError, match=rf"^{arg} must be a real number, {shown}$"):
        GENERATORS[generator](**{arg: value})


@pytest.mark.parametrize("generator, arg", _cases(REAL_ARGS))
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=repr)
def test_physical_constants_must_be_finite(generator, arg, value):
    with pytest.raises(ValueError, match=rf"^{arg} must be finite, got {value}$"):
        GENERATORS[generator](**{arg: value})


@pytest.mark.parametrize(
    "generator, arg, value, error, match",
    [
        ("darcy", "endpoint", None, TypeError, r"endpoint must be a bool, got NoneType None"),
        ("darcy", "endpoint", "no", TypeError, r"endpoint must be a bool, got str 'no'"),
        ("darcy", "face_mean", None, ValueError, r"face_mean must be one of \('harmonic', 'arithmetic'\), got None"),
        ("shallow_water", "normalize", "yes", TypeError, r"normalize must be a bool, got str 'yes'"),
        ("shallow_water_rollouts", "normalize", 1, TypeError, r"normalize must be a bool, got int 1"),
        ("shallow_water", "grid", ["equiangular"], ValueError, r"grid must be one of .*, got list \['equiangular'\]"),
        ("burgers", "cache", "no", TypeError, r"cache must be a bool, got str 'no'"),
        ("navier_stokes", "progress", "yes", TypeError, r"progress must be a bool, got str 'yes'"),
    ],
)
def test_flags_and_choices(generator, arg, value, error, match):
    """Flags used to be read by truthiness: endpoint=None or normalize='yes' gave data without a word."""
    kwargs = {**NO_CACHE, arg: value} if arg in NO_CACHE else {arg: value}
    with pytest.raises(error, match=match):
        GENERATORS[generator](**kwargs)


@pytest.mark.parametrize("make", [periodic_grf, neumann_grf], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n=None), TypeError, r"n must be an int, got NoneType None"),
        (dict(size=np.int64(6)), None, None),  # numpy integers are sizes
        (dict(size="8"), TypeError, r"size must be an int or a sequence of ints, got str '8'"),
        (dict(size=(8, 2.5)), TypeError, r"size\[1\] must be an int, got float 2.5"),
        (dict(alpha=True), TypeError, r"alpha must be a real number, got bool True"),
        (dict(sigma=float("inf")), ValueError, r"sigma must be finite, got inf"),
    ],
)
def test_grf_arguments(make, kwargs, error, match):
    args = {"n": 1, "size": 8, "alpha": 2.0, "tau": 3.0, **kwargs}
    if error is None:
        assert make(**args).shape == (1, 6)
        return
    with pytest.raises(error, match=match):
        make(**args)


# ------------------------------------------------------------------------------------------- solvers
BURGERS = dict(t_final=0.5, dt=0.25)
NS = dict(viscosity=0.1, dt=0.1, record_steps=1, n_records=1)


@pytest.mark.parametrize(
    "call, error, match",
    [
        # an int field used to come back as an int solution (the float64 result truncated)
        (lambda: burgers_solve(torch.ones(2, 8, dtype=torch.int64), **BURGERS), TypeError,
         r"burgers_solve: u0 must have a real floating dtype, got torch.int64"),
        (lambda: burgers_solve(torch.ones(2, 8, dtype=torch.complex64), **BURGERS), TypeError,
         r"burgers_solve: u0 must have a real floating dtype, got torch.complex64"),
        (lambda: burgers_solve(np.ones((2, 8)), **BURGERS), TypeError,
         r"burgers_solve: u0 must be a torch.Tensor, got numpy.ndarray of shape \(2, 8\) \(convert with torch.as_tensor\)"),
        # a NaN field used to be reported as a blow-up ("reduce dt")
        (lambda: burgers_solve(torch.full((2, 8), float("nan")), **BURGERS), ValueError,
         r"burgers_solve: u0 must be finite, got a tensor with NaN or inf values"),
        (lambda: burgers_solve(torch.ones(2, 8), viscosity=None, **BURGERS), TypeError,
         r"viscosity must be a real number, got NoneType None"),
        (lambda: navier_stokes_solve(torch.ones(2, 8, 8, dtype=torch.int32), **NS), TypeError,
         r"navier_stokes_solve: w0 must have a real floating dtype, got torch.int32"),
        (lambda: navier_stokes_solve(torch.full((2, 8, 8), float("nan")), **NS), ValueError,
         r"navier_stokes_solve: w0 must be finite, got a tensor with NaN or inf values"),
        (lambda: navier_stokes_solve(torch.ones(2, 8, 8), forcing=torch.full((8, 8), float("inf")), **NS), ValueError,
         r"navier_stokes_solve: forcing must be finite"),
        (lambda: navier_stokes_solve(torch.ones(2, 8, 8), forcing=np.ones((8, 8)), **NS), TypeError,
         r"navier_stokes_solve: forcing must be a torch.Tensor, got numpy.ndarray of shape \(8, 8\)"),
        (lambda: navier_stokes_solve(torch.ones(2, 8, 8), forcing=torch.ones(4, 4), **NS), ValueError,
         r"forcing: expected shape \(8, 8\), got \(4, 4\)"),
        (lambda: navier_stokes_solve(torch.ones(2, 8, 8), **{**NS, "record_steps": 1.0}), TypeError,
         r"record_steps must be an int, got float 1.0"),
        (lambda: time_stepping_pairs(np.ones((2, 5, 4, 4)), 2), TypeError,
         r"time_stepping_pairs: sequences must be a torch.Tensor, got numpy.ndarray of shape \(2, 5, 4, 4\)"),
        (lambda: time_stepping_pairs(torch.ones(2, 5, 4, 4), True), TypeError, r"history must be an int, got bool True"),
        (lambda: fno_forcing(float("nan")), TypeError, r"size must be an int, got float nan"),
        (lambda: fno_forcing(8, amplitude="0.1"), TypeError, r"amplitude must be a real number, got str '0.1'"),
    ],
)
def test_solver_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(a=None), TypeError, r"darcy_solve: a must hold real numbers, got NoneType None"),
        (dict(a=np.ones((5, 5)) + 1j), TypeError, r"darcy_solve: a must hold real numbers, .* of dtype complex128"),
        (dict(forcing=None), TypeError, r"darcy_solve: forcing must hold real numbers, got NoneType None"),
        (dict(forcing="1"), TypeError, r"darcy_solve: forcing must hold real numbers, got str '1'"),
        (dict(forcing=True), TypeError, r"darcy_solve: forcing must hold real numbers, got bool True"),
        (dict(forcing=float("nan")), ValueError, r"forcing must be finite, got NaN or inf values"),
        (dict(forcing=np.ones((3, 3))), ValueError, r"forcing: expected a number or an array of shape \(5, 5\), got shape \(3, 3\)"),
        (dict(face_mean="geometric"), ValueError, r"face_mean must be one of \('harmonic', 'arithmetic'\), got str 'geometric'"),
    ],
)
def test_darcy_solve_inputs(kwargs, error, match):
    """A NaN, None or string forcing used to give a silent NaN or a solution for the string's value."""
    args = {"a": np.ones((5, 5)), **kwargs}
    with pytest.raises(error, match=match):
        darcy_solve(**args)


def test_darcy_solve_still_takes_nodal_and_broadcastable_forcing():
    """Nodal forcing equals the constant it repeats; a torch tensor is read like an array."""
    a = np.linspace(1.0, 2.0, 36).reshape(6, 6)
    expected = darcy_solve(a, 2.0)
    np.testing.assert_array_equal(darcy_solve(a, np.full((6, 6), 2.0)), expected)
    np.testing.assert_array_equal(darcy_solve(a, np.full((1, 6), 2.0)), expected)
    np.testing.assert_array_equal(darcy_solve(torch.from_numpy(a), 2), expected)


def test_empty_batches_solve_to_empty_results():
    """B = 0 used to fail inside the FFT backend."""
    out = burgers_solve(torch.ones(0, 8, dtype=torch.float64), **BURGERS)
    assert out.shape == (0, 8) and out.dtype == torch.float64
    out = navier_stokes_solve(torch.ones(0, 8, 8), **{**NS, "n_records": 3})
    assert out.shape == (0, 4, 8, 8) and out.dtype == torch.float32


def test_numbers_keep_their_cache_key():
    """A checked 1 stays an int and 1.0 a float: the cache key (which tells them apart) is unchanged, and
    numpy numbers key like the Python numbers they equal."""
    tiny = dict(n=2, solver_resolution=16, resolution=8, t_final=0.5, dt=0.25, progress=False)
    assert burgers(**tiny, viscosity=1, cache=False).meta["viscosity"] == 1
    assert type(burgers(**tiny, viscosity=1, cache=False).meta["viscosity"]) is int
    key = datasets.cache_key("burgers", {"viscosity": 0.5})
    assert key == datasets.cache_key("burgers", {"viscosity": np.float64(0.5)})
    assert type(burgers(**{**tiny, "n": np.int64(2)}, cache=False).meta["n"]) is int


def test_cached_is_public():
    """Scripts (the shallow-water example) cache their own data through ``operators.datasets.cached``."""
    assert "cached" in datasets.__all__ and "cache_key" in datasets.__all__
    with pytest.raises(TypeError, match=r"name must be a non-empty str, got NoneType None"):
        datasets.cached(None, {}, dict)
