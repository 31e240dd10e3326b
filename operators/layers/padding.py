"""Domain padding: zero-pad the grid of a non-periodic field before the spectral layers, crop after.

Legend: ``B`` batch, ``C`` channels, ``*grid`` the ``d`` spatial axes, ``P`` the padded grid.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from spectral.checks import check_choice, check_number, describe

__all__ = ["PADDING_MODES", "PaddingMode", "DomainPadding", "check_padding_fractions"]

PaddingMode = Literal["one-sided", "symmetric"]
PADDING_MODES: tuple[str, ...] = ("one-sided", "symmetric")


def check_padding_fractions(name: str, value: Any, n_axes: int | None = None) -> tuple[float, ...]:
    """``value`` (a number, or one per axis) as a tuple of floats in ``[0, 10)``.

    Parameters
    ----------
    name : str
        The option's name in messages (``"fraction"``, ``"domain_padding"``).
    value : float or sequence of float
        The padding fraction(s).
    n_axes : int, optional
        Number of axes: a sequence must then have 1 or ``n_axes`` entries.

    Raises
    ------
    TypeError
        An entry that is not a real number (a string, None, a bool).
    ValueError
        An entry outside ``[0, 10)`` (NaN included), no entries, or the wrong number.

    Examples
    --------
    >>> check_padding_fractions("domain_padding", (0.1, 0.25), 2)
    (0.1, 0.25)
    """
    per_axis = "" if n_axes is None else f" ({n_axes})"
    text = f"{name} must be a number in [0, 10) or one per axis{per_axis}, got {value!r}"
    if isinstance(value, (numbers.Real, torch.Tensor)) and not isinstance(value, bool) and getattr(value, "ndim", 0) == 0:
        items: tuple[Any, ...] = (value,)
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = tuple(value)
    else:
        raise TypeError(f"{name} must be a number in [0, 10) or a sequence of them, got {describe(value)}")
    if not items or (n_axes is not None and len(items) not in (1, n_axes)):
        raise ValueError(text)
    out = []
    for item in items:
        try:
            out.append(check_number(name, item, min=0, max=10, max_open=True))
        except TypeError:
            raise TypeError(text) from None
        except ValueError:
            raise ValueError(text) from None
    return tuple(out)


class DomainPadding(nn.Module):
    """Zero-pad each grid axis by ``round(fraction * N)`` points, and crop it back.

    Makes a non-periodic field look periodic to the spectral convs: the padded
    region absorbs the jump at the boundary. An output on another grid (``input_grid``
    given) is padded by the input's padding scaled by ``N_out / N_in`` (before and
    total), so the padded output grid covers the same padded domain at the output's
    spacing and the crop lands on the same points.

    Parameters
    ----------
    fraction : float or sequence of float
        Padding per axis as a fraction of its size (one value for all axes), in ``[0, 10)``.
    mode : {"one-sided", "symmetric"}
        Pad at the end of each axis, or half at each end.

    Shape
    -----
    pad: (B, C, *grid) -> (B, C, *P); crop: (B, C, *P) -> (B, C, *grid)

    Examples
    --------
    >>> padding = DomainPadding(0.25, mode="symmetric")
    >>> x = torch.randn(2, 3, 8, 12)
    >>> padding.pad(x).shape
    torch.Size([2, 3, 10, 15])
    >>> torch.equal(padding.crop(padding.pad(x), (8, 12)), x)
    True
    """

    def __init__(self, fraction: float | Sequence[float], *, mode: PaddingMode = "one-sided") -> None:
        super().__init__()
        self.fraction = check_padding_fractions("fraction", fraction)
        self.mode = check_choice("mode", mode, PADDING_MODES)

    def amounts(self, grid: Sequence[int], input_grid: Sequence[int] | None = None) -> list[tuple[int, int]]:
        """``(before, after)`` padding of each axis of ``grid``.

        With ``input_grid`` (the grid that was padded, when ``grid`` is an output on
        another grid): the input's padding times ``N_out / N_in``; a ValueError names
        both grids when that is not an integer.
        """
        if input_grid is not None and tuple(input_grid) != tuple(grid):
            return self._scaled_amounts(tuple(grid), tuple(input_grid))
        fr = self.fraction * len(grid) if len(self.fraction) == 1 else self.fraction
        if len(fr) != len(grid):
            raise ValueError(f"DomainPadding: {len(self.fraction)} fractions for a grid of {len(grid)} axes {tuple(grid)}")
        total = [round(f * n) for f, n in zip(fr, grid)]
        return [(t // 2, t - t // 2) if self.mode == "symmetric" else (0, t) for t in total]

    def _scaled_amounts(self, grid: tuple[int, ...], input_grid: tuple[int, ...]) -> list[tuple[int, int]]:
        if len(input_grid) != len(grid):
            raise ValueError(f"DomainPadding: output grid {grid} and input grid {input_grid} have different numbers of axes")
        out = []
        for (before, after), n_in, n_out in zip(self.amounts(input_grid), input_grid, grid):
            if (before * n_out) % n_in or ((before + after) * n_out) % n_in:
                raise ValueError(
                    f"DomainPadding: the padding (before, after) = {self.amounts(input_grid)} of the input grid "
                    f"{input_grid} does not scale to a whole number of points on the output grid {grid}; "
                    f"use an output grid whose size ratio to the input makes it an integer (e.g. a multiple)"
                )
            out.append((before * n_out // n_in, after * n_out // n_in))
        return out

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad the grid axes of ``x`` (every axis after the first two)."""
        amounts = self.amounts(x.shape[2:])
        return F.pad(x, [p for pair in reversed(amounts) for p in pair])

    def crop(self, x: torch.Tensor, grid: Sequence[int], input_grid: Sequence[int] | None = None) -> torch.Tensor:
        """Inverse of :meth:`pad` for an output on ``grid`` (the padded input's grid was ``input_grid``)."""
        for axis, (before, _) in enumerate(self.amounts(grid, input_grid)):
            x = x.narrow(axis + 2, before, grid[axis])
        return x

    def padded_shape(self, grid: Sequence[int], input_grid: Sequence[int] | None = None) -> tuple[int, ...]:
        """Padded size of ``grid`` (an output on another grid than ``input_grid`` when given)."""
        return tuple(n + a + b for n, (a, b) in zip(grid, self.amounts(grid, input_grid)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`pad`."""
        return self.pad(x)

    def extra_repr(self) -> str:
        return f"fraction={self.fraction}, mode={self.mode!r}"
