"""Argument checks and result assembly shared by the PDE data generators and solvers.

Legend: ``n`` samples, ``B`` batch of solves, ``N`` solver points per side, ``S``
returned points per side.

Every check goes through :mod:`spectral.checks`, so a bad size, count, seed or physical
constant gets the library's usual error: a ``TypeError`` for the wrong kind of value
(None, a string, a bool, a float where an int belongs) and a ``ValueError`` for a value
out of range or not finite, each naming the argument and showing the value.

The checked numbers keep their kind (an int stays an int, a float a float): the cache
key (:func:`operators.datasets.cache_key`) tells ``1`` and ``1.0`` apart, so normalising
them would move existing cache entries.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from spectral.checks import check_bool, check_int, check_number, check_tensor, describe

__all__: list[str] = []  # private helpers of operators.datasets

T = TypeVar("T")


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> int | float:
    """A finite real ``> 0`` (``>= 0`` with ``allow_zero``), an int kept as an int."""
    out = check_number(name, value, min=0, min_open=not allow_zero)
    return int(value) if isinstance(value, numbers.Integral) else out


def _finite(name: str, value: Any) -> int | float:
    """A finite real of either sign, an int kept as an int."""
    out = check_number(name, value)
    return int(value) if isinstance(value, numbers.Integral) else out


def _all_positive(**values: Any) -> None:
    """Each keyword argument a finite real > 0 (named by its keyword)."""
    for name, value in values.items():
        _positive(name, value)


def _single(resolution: Any) -> bool:
    """Whether ``resolution`` is one size (return one result) rather than a sequence of sizes."""
    return isinstance(resolution, numbers.Integral) and not isinstance(resolution, bool)


def _check_resolutions(resolution: int | Sequence[int], name: str = "resolution") -> tuple[int, ...]:
    """One size or a non-empty sequence of distinct sizes, each an int >= 2."""
    if _single(resolution):
        values: tuple = (resolution,)
    elif isinstance(resolution, Sequence) and not isinstance(resolution, str):
        values = tuple(resolution)
    else:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {describe(resolution)}")
    if not values:
        raise ValueError(f"{name} must be an int or a non-empty sequence of ints, got {resolution!r}")
    values = tuple(check_int(name, v, min=2) for v in values)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {resolution!r}")
    return values


def _strides(resolutions: tuple[int, ...], solver_resolution: int) -> dict[int, int]:
    """Solver points between returned points, per resolution; each must divide ``solver_resolution``."""
    for s in resolutions:
        if solver_resolution % s:
            raise ValueError(f"resolution={s} must divide solver_resolution={solver_resolution}")
    return {s: solver_resolution // s for s in resolutions}


def _by_resolution(resolution: Any, results: dict[int, T]) -> T | dict[int, T]:
    """The one result when ``resolution`` was one size, else the dict resolution -> result."""
    return next(iter(results.values())) if _single(resolution) else results


def _steps(name: str, duration: float, dt: float, duration_name: str) -> int:
    """Number of steps of size ``dt`` in ``duration``; ValueError unless it is a whole number."""
    steps = round(duration / dt)
    if steps < 1 or abs(steps * dt - duration) > 1e-9 * max(duration, dt):
        raise ValueError(f"{duration_name}={duration} must be a positive whole multiple of {name}={dt}")
    return steps


def _quiet(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for a ``progress`` flag: None lets tqdm hide the bar off a terminal."""
    return None if check_bool("progress", progress, allow_none=True) is None else not progress


def _check_field(owner: str, name: str, x: Any, ok: Callable[[tuple[int, ...]], bool], expected: str) -> torch.Tensor:
    """``x`` if it is a finite real floating tensor whose shape passes ``ok``.

    TypeError for a non-tensor or a non-real dtype (an integer field would come back
    rounded to integers), ValueError for a wrong shape (the message says ``expected``)
    or a NaN/inf value (which the solver would otherwise report as a blow-up).
    """
    check_tensor(owner, name, x, kind="real")
    if not ok(tuple(x.shape)):
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{owner}: {name} must be finite, got a tensor with NaN or inf values")
    return x
