"""Which wavenumbers a spectral layer keeps, and validation of ``n_modes``.

Legend: ``N`` grid points on one axis, ``m`` the ``n_modes`` entry for that axis,
``K`` kept bins on that axis.

Convention (README, "The mode convention"): ``n_modes[i] = m`` keeps the integer wavenumbers
``|k| < m`` along axis ``i``.

* On the last axis of real data (the rfft axis) that is the bins ``0 .. m-1``:
  ``K = m``.
* On every other axis, and on every axis of complex data, it is the ``2m - 1`` bins
  ``-(m-1) .. m-1``, stored in FFT order without fftshift (the compact layout):
  ``[0, 1, ..., m-1, -(m-1), ..., -1]``: ``K = 2m - 1``.

A grid of ``N`` points admits ``m <= (N + 1) // 2``: the Nyquist bin ``N / 2`` of an
even grid is never kept, so the same coefficients describe the same function on every
grid that admits them (even or odd), which is what makes spectral layers
resolution-invariant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spectral.checks import check_int, describe

__all__ = [
    "as_n_modes",
    "max_modes",
    "kept_shape",
    "modes_from_kept_shape",
    "check_grid",
    "compact_wavenumbers",
]


def as_n_modes(n_modes: int | Sequence[int], *, max_dims: int = 3) -> tuple[int, ...]:
    """Validate ``n_modes`` and return it as a tuple of positive ints (never rewritten).

    Parameters
    ----------
    n_modes : int or sequence of int
        Kept wavenumbers per transformed axis; an int means one axis. Any integer that
        :func:`operator.index` accepts (numpy integers, 0-d integer tensors) is taken
        and returned as a Python ``int``; bools and floats are not.
    max_dims : int
        Largest number of transformed axes accepted.

    Raises
    ------
    TypeError
        If ``n_modes`` or an entry is not an integer (bools, floats, strings, None).
    ValueError
        If an entry is below 1 or the number of entries is not in ``1..max_dims``.

    >>> import numpy as np
    >>> as_n_modes((np.int64(8), 8))
    (8, 8)
    """
    max_dims = check_int("max_dims", max_dims)
    if isinstance(n_modes, (str, bytes)) or n_modes is None:
        raise TypeError(f"n_modes must be an int or a sequence of ints, got {describe(n_modes)}")
    try:
        modes = tuple(n_modes)
    except TypeError:  # not iterable (an int, a numpy integer, a 0-d tensor or array): one axis
        modes = (n_modes,)
    if not 1 <= len(modes) <= max_dims:
        raise ValueError(
            f"n_modes must have 1 to {max_dims} entries (one per transformed axis), "
            f"got {n_modes!r}"
        )
    return tuple(check_int(f"n_modes[{i}]", m, min=1) for i, m in enumerate(modes))


def max_modes(n: int) -> int:
    """Largest ``m`` a grid of ``n`` points admits: ``(n + 1) // 2`` (Nyquist excluded)."""
    return (n + 1) // 2


def kept_shape(n_modes: Sequence[int], *, complex_data: bool = False) -> tuple[int, ...]:
    """Shape ``K`` of the compact spectrum kept for ``n_modes``.

    >>> kept_shape((4, 4))
    (7, 4)
    >>> kept_shape((4, 4), complex_data=True)
    (7, 7)
    """
    shape = [2 * m - 1 for m in n_modes]
    if not complex_data:
        shape[-1] = n_modes[-1]
    return tuple(shape)


def modes_from_kept_shape(kept: Sequence[int], *, complex_data: bool = False) -> tuple[int, ...]:
    """Invert :func:`kept_shape`; raise ValueError for a shape no ``n_modes`` gives.

    Raises
    ------
    ValueError
        If an axis holds no bins (every ``n_modes`` entry is at least 1, so an empty
        spectrum has no ``n_modes``), or a two-sided axis holds an even number of bins.
    """
    modes = []
    last = len(kept) - 1
    for i, k in enumerate(kept):
        if k < 1:
            raise ValueError(
                f"kept-mode axis {i - len(kept)} has {k} bins; every kept axis holds at least "
                f"the DC bin (n_modes >= 1): spectrum shape {tuple(kept)}"
            )
        if i == last and not complex_data:
            modes.append(int(k))
            continue
        if k % 2 == 0:
            raise ValueError(
                f"kept-mode axis {i - len(kept)} has {k} bins; a two-sided axis holds "
                f"2m - 1 (an odd number) bins: spectrum shape {tuple(kept)}"
            )
        modes.append((int(k) + 1) // 2)
    return tuple(modes)


def check_grid(
    grid: Sequence[int], n_modes: Sequence[int], *, name: str = "x", shape: Sequence[int] | None = None
) -> None:
    """Raise ValueError unless every axis of ``grid`` admits its ``n_modes`` entry.

    ``shape`` (the whole tensor shape) is shown in the message when given.
    """
    if len(grid) != len(n_modes):
        raise ValueError(f"{name}: expected {len(n_modes)} grid axes for n_modes={tuple(n_modes)}, got grid {tuple(grid)}")
    d = len(grid)
    for i, (n, m) in enumerate(zip(grid, n_modes)):
        if m > max_modes(n):
            got = f" (got {name} of shape {tuple(shape)})" if shape is not None else ""
            raise ValueError(
                f"n_modes[{i - d}]={m} exceeds the {max_modes(n)} modes a grid of "
                f"{n} points admits (m <= (N + 1) // 2, Nyquist excluded){got}"
            )


def compact_wavenumbers(
    n_modes: Sequence[int], *, complex_data: bool = False, device: torch.device | None = None
) -> list[torch.Tensor]:
    """Integer wavenumbers of each kept axis, in compact (FFT) order.

    >>> [k.tolist() for k in compact_wavenumbers((3, 3))]
    [[0, 1, 2, -2, -1], [0, 1, 2]]
    """
    out = []
    for i, m in enumerate(n_modes):
        pos = torch.arange(m, device=device)
        if i == len(n_modes) - 1 and not complex_data:
            out.append(pos)
        else:
            out.append(torch.cat([pos, torch.arange(-(m - 1), 0, device=device)]))
    return out
