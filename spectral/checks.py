"""Argument and input validation shared by every layer of :mod:`spectral` and :mod:`operators`.

One place for the checks every constructor and ``forward`` needs, so that bad input
always gets the same kind of error: a ``TypeError`` for the wrong kind of value (a
string, a float or a bool where an int belongs, a numpy array where a tensor belongs,
a complex dtype for a real-only layer) and a ``ValueError`` for a value of the right
kind that is out of range (a non-positive size, a NaN, a wrong shape). Every message
names the argument and shows the value or shape it got.

Public so that people who write their own layers on top of the library can give their
users the same errors. Each ``check_*`` returns the checked value, normalised (a numpy
integer becomes a Python ``int``), so a constructor reads
``self.dim = check_int("dim", dim)``.

Inside ``forward``, shape checks here are plain Python comparisons on ``x.shape``:
``torch.compile`` traces them as guards (no graph break); use :func:`torch._check` only
for conditions on tensor *values*.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "check_int",
    "check_number",
    "check_bool",
    "check_choice",
    "check_ints",
    "check_tensor",
    "check_shape",
    "check_real_dtype",
    "check_dtype_matches",
    "autocast_enabled",
    "describe",
]


def describe(value: Any) -> str:
    """Short description of a value for an error message: its type and repr (or shape)."""
    if isinstance(value, torch.Tensor):
        return f"Tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if type(value).__module__ == "numpy" and hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return f"numpy.ndarray of shape {tuple(value.shape)}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _is_bool(value: Any) -> bool:
    """A Python, numpy (``np.bool_``, whose type name is ``bool`` in numpy 2) or tensor bool."""
    if isinstance(value, int):  # (torch.compile shows a traced size as an int: no getattr on it)
        return isinstance(value, bool)
    return (
        getattr(value, "dtype", None) in (torch.bool, bool)
        or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"))
    )


def _range_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}]"
    if lo is not None:
        return f">= {lo}"
    return f"<= {hi}"


def check_int(name: str, value: Any, *, min: int | None = 1, max: int | None = None, allow_none: bool = False) -> Any:
    """``value`` as a Python int in ``[min, max]`` (``None`` passes through with ``allow_none``).

    Anything :func:`operator.index` accepts is an int (numpy integers, 0-d integer
    tensors); bools, floats (even ``2.0``), strings and None are not.

    Raises
    ------
    TypeError
        Not an integer.
    ValueError
        Outside ``[min, max]``.

    >>> check_int("depth", 4)
    4
    >>> check_int("depth", True)
    Traceback (most recent call last):
    ...
    TypeError: depth must be an int, got bool True
    """
    if value is None and allow_none:
        return None
    kind = "an int or None" if allow_none else "an int"
    if _is_bool(value):
        raise TypeError(f"{name} must be {kind}, got {describe(value)}")
    if isinstance(value, (int, torch.SymInt)):  # int() would specialise a size traced by torch.compile
        out = value
    else:
        try:
            out = int(operator.index(value))
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be {kind}, got {describe(value)}") from None
    if (min is not None and out < min) or (max is not None and out > max):
        raise ValueError(f"{name} must be an int {_range_text(min, max)}, got {out}")
    return out


def check_number(
    name: str,
    value: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """``value`` as a finite Python float in the given range (``None`` passes with ``allow_none``).

    ``min_open`` / ``max_open`` exclude the bound itself (``min=0, min_open=True`` is "> 0").
    Ints, floats, numpy reals and 0-d real tensors are numbers; bools, strings and
    complex values are not; NaN and infinities are rejected.

    Raises
    ------
    TypeError
        Not a real number.
    ValueError
        NaN, infinite or out of range.

    >>> check_number("dropout", 0.1, min=0, max=1, max_open=True)
    0.1
    """
    if value is None and allow_none:
        return None
    kind = "a real number or None" if allow_none else "a real number"
    if _is_bool(value) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {kind}, got {describe(value)}")
    if isinstance(value, torch.Tensor):
        if value.ndim != 0 or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be {kind}, got {describe(value)}")
        value = value.item()
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {kind}, got {describe(value)}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    low_bad = min is not None and (out <= min if min_open else out < min)
    high_bad = max is not None and (out >= max if max_open else out > max)
    if low_bad or high_bad:
        lo = "" if min is None else f"{'>' if min_open else '>='} {min}"
        hi = "" if max is None else f"{'<' if max_open else '<='} {max}"
        raise ValueError(f"{name} must be {' and '.join(t for t in (lo, hi) if t)}, got {out}")
    return out


def check_bool(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """``value`` if it is a bool (numpy bools too; ``None`` passes with ``allow_none``).

    TypeError for ints, strings, and None unless allowed.
    """
    if value is None and allow_none:
        return None
    if _is_bool(value) and not isinstance(value, torch.Tensor):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {describe(value)}")


def check_choice(name: str, value: Any, choices: Sequence[Any], *, allow_none: bool = False) -> Any:
    """``value`` if it is one of ``choices`` (or None with ``allow_none``), else ValueError listing them."""
    if value is None and allow_none:
        return None
    try:
        ok = value in choices
    except TypeError:  # unhashable / incomparable values
        ok = False
    if not ok:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be one of {tuple(choices)}{extra}, got {describe(value)}")
    return value


def check_ints(
    name: str, value: Any, *, length: int | None = None, min: int | None = 1, max: int | None = None
) -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple of Python ints, each in ``[min, max]``.

    A single int is broadcast to ``length`` entries when ``length`` is given.

    Raises
    ------
    TypeError
        A string, or an entry that is not an int.
    ValueError
        Wrong number of entries, or an entry out of range.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {describe(value)}")
    try:
        items = tuple(value)
    except TypeError:
        items = (value,) * (length or 1)
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        items = (value,) * (length or 1)
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(items)}: {value!r}")
    if not items:
        raise ValueError(f"{name} must not be empty, got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, min=min, max=max) for i, v in enumerate(items))


def check_real_dtype(name: str, dtype: Any, *, allow_none: bool = True) -> torch.dtype | None:
    """``dtype`` if it is a real floating ``torch.dtype`` (or None); TypeError otherwise.

    For the ``dtype=`` argument of modules whose parameters are real: a complex or
    integer dtype, or a string such as ``'float32'``, is refused by name.
    """
    if dtype is None and allow_none:
        return None
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a real floating torch.dtype (e.g. torch.float32), got {describe(dtype)}")
    return dtype


def check_tensor(
    owner: str,
    name: str,
    x: Any,
    *,
    kind: str = "real",
) -> torch.Tensor:
    """``x`` if it is a tensor of the given dtype kind; TypeError naming the dtype otherwise.

    ``kind``: "real" (real floating), "complex", "floating" (real or complex floating),
    "any" (any tensor). A numpy array is refused with a hint to ``torch.as_tensor``.
    """
    if not isinstance(x, torch.Tensor):
        hint = " (convert with torch.as_tensor)" if type(x).__module__ == "numpy" else ""
        raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {describe(x)}{hint}")
    ok = {
        "real": x.is_floating_point(),
        "complex": x.is_complex(),
        "floating": x.is_floating_point() or x.is_complex(),
        "any": True,
    }
    if kind not in ok:
        raise ValueError(f"check_tensor: kind must be one of {tuple(ok)}, got {kind!r}")
    if not ok[kind]:
        want = {"real": "a real floating", "complex": "a complex", "floating": "a floating or complex"}[kind]
        raise TypeError(f"{owner}: {name} must have {want} dtype, got {x.dtype}")
    return x


def check_shape(owner: str, name: str, x: torch.Tensor, expected: Sequence[int | str]) -> None:
    """ValueError unless ``x.shape`` matches ``expected``.

    ``expected`` holds an int where the size is fixed and a letter where any size goes,
    e.g. ``("B", 3, "H", "W")``; a leading ``"..."`` matches any number of leading axes
    (the others must then be at the end). The message shows the whole expected pattern
    and the whole shape received: ``SpectralConv: expected x of shape (B, 3, H, W), got (8, 4, 64, 64)``.
    """
    pattern = tuple(expected)
    shape = tuple(x.shape)
    lead = bool(pattern) and pattern[0] == "..."
    fixed = pattern[1:] if lead else pattern
    ok = len(shape) >= len(fixed) if lead else len(shape) == len(fixed)
    if ok and fixed:
        tail = shape[len(shape) - len(fixed):]
        ok = all(isinstance(p, str) or p == s for p, s in zip(fixed, tail))
    if not ok:
        text = ", ".join(str(p) for p in pattern)
        raise ValueError(f"{owner}: expected {name} of shape ({text}), got {shape}")


def autocast_enabled(device_type: str) -> bool:
    """``torch.is_autocast_enabled(device_type)``, and False on devices without autocast.

    ``torch.is_autocast_enabled("meta")`` raises "unknown device type for autocast"; shape
    inference on the meta device runs every check and FFT region through here instead.
    """
    if device_type == "meta":
        return False
    return torch.is_autocast_enabled(device_type)


def check_dtype_matches(owner: str, x: torch.Tensor, weight: torch.Tensor, name: str = "x") -> None:
    """TypeError unless ``x`` has the parameters' dtype.

    Autocast casts by itself, so a mismatch under autocast is accepted, unless one side is
    float64: autocast never casts float64 tensors, so the layer's matmuls would fail inside torch.
    Works on the meta device (no autocast there: a mismatch is an error).
    """
    if x.dtype == weight.dtype:
        return
    autocast = autocast_enabled(x.device.type)
    if autocast and torch.float64 not in (x.dtype, weight.dtype):
        return
    hint = " (autocast does not cast float64)" if autocast else ""
    raise TypeError(f"{owner}: got {name} of dtype {x.dtype} but the parameters have {weight.dtype}{hint}; "
                    f"cast one of them (e.g. module.to({x.dtype}))")
