"""Input checks and the empty-batch output shared by the operator layers (FNO, SFNO, SpectralConv).

Legend: ``B`` batch, ``C`` channels, ``*grid`` the ``d`` spatial axes (``H, W`` in 2-D).

Every operator checks its input the same way, through :mod:`spectral.checks`: a tensor of
the right dtype kind, of shape ``(B, C, *grid)``, in the parameters' dtype (autocast
exempt); an ``output_shape`` of ``d`` positive ints. An empty batch (``B = 0``) is valid
input, and FFT backends reject it: :func:`empty_batch` gives the output those layers
return instead of transforming.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from spectral.checks import check_dtype_matches, check_ints, check_shape, check_tensor
from spectral.fft import empty_batch

__all__ = [
    "GRID_LETTERS",
    "grid_letters",
    "check_field",
    "check_channels",
    "check_output_shape",
    "empty_batch",
]

#: Names of the spatial axes in shape messages, by number of axes.
GRID_LETTERS: dict[int, tuple[str, ...]] = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}


def grid_letters(d: int) -> tuple[str, ...]:
    """Legend letters of ``d`` spatial axes (``("H", "W")`` for 2), for shape messages."""
    return GRID_LETTERS.get(d, tuple(f"N{i}" for i in range(d)))


def check_field(
    owner: str, x: Any, channels: int | str, grid: Sequence[int | str], *, kind: str = "real"
) -> torch.Tensor:
    """``x`` if it is a tensor of dtype ``kind`` and shape ``(B, channels, *grid)``.

    ``grid`` holds an int where the size is fixed and a letter where any size goes.

    Parameters
    ----------
    owner : str
        Prefix of the messages (the layer's name).
    x : Any
        The input to check.
    channels : int or str
        Required size of axis 1 (a letter: any size).
    grid : sequence of int or str
        The spatial axes, e.g. ``("H", "W")`` or ``(16, 32)``.
    kind : {"real", "complex", "floating", "any"}
        Dtype family (see :func:`spectral.checks.check_tensor`).

    Raises
    ------
    TypeError
        Not a tensor (a numpy array gets a hint), or the wrong dtype family.
    ValueError
        The wrong shape; the message shows the expected pattern and the whole shape.

    Shape
    -----
    x: (B, channels, *grid), returned unchanged

    Examples
    --------
    >>> check_field("FNO(2-d)", torch.zeros(8, 4, 64, 64), 3, ("H", "W"))
    Traceback (most recent call last):
    ...
    ValueError: FNO(2-d): expected x of shape (B, 3, H, W), got (8, 4, 64, 64)
    """
    check_tensor(owner, "x", x, kind=kind)
    check_shape(owner, "x", x, ("B", channels, *grid))
    return x


def check_channels(owner: str, x: Any, channels: int, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` if it is a real floating tensor ``(B, channels, *grid)`` with any number of grid axes.

    With ``weight``, also :func:`spectral.checks.check_dtype_matches` against it. For the pointwise layers,
    which act the same on every grid.

    Raises
    ------
    TypeError
        Not a real floating tensor, or (with ``weight``) not in the parameters' dtype.
    ValueError
        Fewer than 3 axes, or ``x.shape[1] != channels``.

    Examples
    --------
    >>> check_channels("ChannelLinear", torch.zeros(2, 4, 8), 3)
    Traceback (most recent call last):
    ...
    ValueError: ChannelLinear: expected x of shape (B, 3, *grid), got (2, 4, 8)
    """
    check_tensor(owner, "x", x)
    if x.ndim < 3 or x.shape[1] != channels:
        raise ValueError(f"{owner}: expected x of shape (B, {channels}, *grid), got {tuple(x.shape)}")
    if weight is not None:
        check_dtype_matches(owner, x, weight)
    return x


def check_output_shape(owner: str, output_shape: Any, d: int) -> tuple[int, ...]:
    """``output_shape`` as a tuple of ``d`` positive Python ints (numpy / 0-d tensor ints accepted).

    Raises
    ------
    TypeError
        Not a sequence of ints (a string, None, a float or a bool entry).
    ValueError
        Not ``d`` entries, or an entry below 1.

    Examples
    --------
    >>> check_output_shape("FNO", (64, 64), 2)
    (64, 64)
    >>> check_output_shape("FNO", (64, 64.0), 2)
    Traceback (most recent call last):
    ...
    TypeError: FNO: output_shape[1] must be an int, got float 64.0
    """
    try:
        return check_ints("output_shape", output_shape, length=d)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{owner}: {err}") from None
