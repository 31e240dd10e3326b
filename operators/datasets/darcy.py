"""2-D Darcy flow on the unit square: the map from the permeability ``a`` to the pressure ``u``.

Legend: ``n`` samples, ``M`` solver intervals per side (nodes ``0..M``), ``m = M - 1``
interior nodes per side, ``S`` returned points per side.

    -div(a grad u) = f  in (0, 1)^2,   u = 0 on the boundary,   f = 1.

Set-up of the FNO paper (Li et al. 2021): ``a = 12`` where a Gaussian random field with
covariance ``(-Delta + 9 I)^-2`` is positive and ``a = 3`` elsewhere. The field uses the
zero-flux (cosine) eigenbasis as in the reference data (:func:`~operators.datasets._grf.neumann_grf`);
only its sign matters, so its amplitude is irrelevant.

Solver
------
Second-order finite differences on the nodes ``(i / M, j / M)``: the five-point stencil
with face coefficients the harmonic (default) or arithmetic mean of ``a`` at the two
adjacent nodes, assembled with :mod:`scipy.sparse` (imported on first use) and solved by SuperLU
(:func:`scipy.sparse.linalg.splu`) after a geometric nested-dissection ordering of the
unknowns (less fill than the generic orderings). Validated against a manufactured
solution with a smooth coefficient, observed order 2, in
``tests/operators/datasets/test_darcy.py``.

Returned grids
--------------
``endpoint=False`` (default) returns the nodes ``x_i = i / S``, ``i = 0..S-1`` (every
``M / S``-th solver node, the side ``x = 1`` / ``y = 1`` left out like the last point of a
periodic grid): 64 and 128 are nested when ``M`` is a multiple of 128.
``endpoint=True`` returns ``x_i = i / (S - 1)``, ``i = 0..S-1`` (both sides, the FNO
convention ``421 -> 211, 141, 106, 85, ...``); ``S - 1`` must divide ``M``.

Cost and defaults
-----------------
Defaults: ``solver_resolution=128`` (16 129 unknowns), ``resolution=64``. One sparse LU
per sample (single-threaded, the GIL held). Measured for 1200 samples: 42 s of CPU time
at ``M = 128`` (171 s wall on a 2-core machine shared by ~18 busy processes), 8 s at
``M = 64``; ``M = 256`` costs about 5 times ``M = 128``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from operators.datasets._cache import PDEData, cached
from operators.datasets._common import (
    _by_resolution,
    _all_positive,
    _check_resolutions,
    _finite,
    _quiet,
)
from operators.datasets._grf import neumann_grf
from spectral.checks import check_bool, check_choice, check_int, describe

__all__ = ["SOLVER_VERSION", "FACE_MEANS", "FaceMean", "darcy", "darcy_solve"]

SOLVER_VERSION = "1"
FaceMean = Literal["harmonic", "arithmetic"]
FACE_MEANS: tuple[str, ...] = ("harmonic", "arithmetic")
_GRF_CHUNK = 64


def _nested_dissection(m: int) -> np.ndarray:
    """Elimination order of the ``m x m`` grid (row-major indices): halves first, separators last."""
    idx = np.arange(m * m).reshape(m, m)
    order: list[np.ndarray] = []
    stack = [(0, m, 0, m, False)]
    while stack:  # iterative post-order: a region's separator is emitted after both halves
        r0, r1, c0, c1, done = stack.pop()
        h, w = r1 - r0, c1 - c0
        if h <= 0 or w <= 0:
            continue
        if done or h * w <= 16:
            if h * w <= 16:
                order.append(idx[r0:r1, c0:c1].ravel())
            elif h >= w:
                order.append(idx[(r0 + r1) // 2, c0:c1])
            else:
                order.append(idx[r0:r1, (c0 + c1) // 2])
            continue
        stack.append((r0, r1, c0, c1, True))
        if h >= w:
            mid = (r0 + r1) // 2
            stack += [(mid + 1, r1, c0, c1, False), (r0, mid, c0, c1, False)]
        else:
            mid = (c0 + c1) // 2
            stack += [(r0, r1, mid + 1, c1, False), (r0, r1, c0, mid, False)]
    return np.concatenate(order)


def _face_mean(a0: np.ndarray, a1: np.ndarray, mean: str) -> np.ndarray:
    return 2 * a0 * a1 / (a0 + a1) if mean == "harmonic" else 0.5 * (a0 + a1)


def darcy_solve(a: np.ndarray, forcing: float | np.ndarray = 1.0, *, face_mean: FaceMean = "harmonic") -> np.ndarray:
    """Solve ``-div(a grad u) = forcing`` on ``[0, 1]^2`` with ``u = 0`` on the boundary.

    Parameters
    ----------
    a : ndarray
        Coefficient at the nodes ``(i / M, j / M)``, positive.
    forcing : float or ndarray
        Right-hand side: a constant or nodal values (the interior ones are used).
    face_mean : {"harmonic", "arithmetic"}
        How ``a`` is averaged onto the cell faces.

    Shape
    -----
    ``a: (M + 1, M + 1)`` float64 -> ``u: (M + 1, M + 1)`` float64 (boundary rows zero).

    Raises
    ------
    TypeError
        ``a`` or ``forcing`` is not real (None, a string, a complex array).
    ValueError
        A wrong shape, a non-finite value, ``a`` not positive, or an unknown ``face_mean``.

    Notes
    -----
    Imports :mod:`scipy.sparse` on first use (``import operators`` does not load scipy).
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    check_choice("face_mean", face_mean, FACE_MEANS)
    a = _real_array("a", a)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3:
        raise ValueError(f"a: expected a square (M + 1, M + 1) array with M >= 2, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or a.min() <= 0:
        raise ValueError(f"a must be finite and positive, got min {a.min()}")
    forcing = _real_array("forcing", forcing)
    try:
        rhs = np.broadcast_to(forcing, a.shape)[1:-1, 1:-1]
    except ValueError:
        raise ValueError(f"forcing: expected a number or an array of shape {a.shape}, got shape {forcing.shape}") from None
    if not np.all(np.isfinite(rhs)):
        raise ValueError("forcing must be finite, got NaN or inf values")
    big_m = a.shape[0] - 1
    m = big_m - 1
    ax = _face_mean(a[1:, :], a[:-1, :], face_mean)  # (M, M+1): face (i+1/2, j)
    ay = _face_mean(a[:, 1:], a[:, :-1], face_mean)  # (M+1, M): face (i, j+1/2)
    east, west = ax[1:, 1:-1], ax[:-1, 1:-1]  # (m, m) faces around interior nodes
    north, south = ay[1:-1, 1:], ay[1:-1, :-1]
    order = _nested_dissection(m)
    pos = np.empty(m * m, dtype=np.int64)
    pos[order] = np.arange(m * m)
    idx = pos.reshape(m, m)  # position of node (i, j) in the elimination order
    rows = [idx.ravel(), idx[:-1].ravel(), idx[1:].ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel()]
    cols = [idx.ravel(), idx[1:].ravel(), idx[:-1].ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel()]
    vals = [(east + west + north + south).ravel(), -east[:-1].ravel(), -west[1:].ravel(),
            -north[:, :-1].ravel(), -south[:, 1:].ravel()]  # fmt: skip
    mat = sp.csc_matrix(
        (np.concatenate(vals) * big_m**2, (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m)
    )
    lu = spla.splu(mat, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    u = np.zeros_like(a)
    u[1:-1, 1:-1] = lu.solve(rhs.ravel()[order])[pos].reshape(m, m)
    return u


def _real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array; TypeError unless it holds real numbers (bools and strings are not)."""
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"darcy_solve: {name} must hold real numbers, got {describe(value)} of dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def _grid_indices(s: int, big_m: int, endpoint: bool) -> slice:
    if endpoint:
        if big_m % (s - 1):
            raise ValueError(f"resolution={s} needs resolution - 1 to divide solver_resolution={big_m} (endpoint=True)")
        return slice(0, big_m + 1, big_m // (s - 1))
    if big_m % s:
        raise ValueError(f"resolution={s} must divide solver_resolution={big_m} (endpoint=False)")
    return slice(0, big_m, big_m // s)


def darcy(
    n: int,
    *,
    resolution: int | Sequence[int] = 64,
    solver_resolution: int = 128,
    endpoint: bool = False,
    a_high: float = 12.0,
    a_low: float = 3.0,
    grf_alpha: float = 2.0,
    grf_tau: float = 3.0,
    forcing: float = 1.0,
    face_mean: FaceMean = "harmonic",
    seed: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> PDEData | dict[int, PDEData]:
    """Darcy data ``a -> u`` with piecewise-constant random permeability.

    Parameters
    ----------
    n : int
        Number of samples.
    resolution : int or sequence of int
        Returned points per side ``S`` (see the module notes for ``endpoint``).
    solver_resolution : int
        Solver intervals per side ``M`` (``(M - 1)^2`` unknowns).
    endpoint : bool
        Include the side ``x = 1`` (``x_i = i / (S - 1)``) or not (``x_i = i / S``).
    a_high, a_low : float
        Permeability where the GRF is positive / elsewhere.
    grf_alpha, grf_tau : float
        GRF covariance ``(-Delta + grf_tau^2 I)^(-grf_alpha)`` (zero-flux cosine basis).
    forcing : float
        Constant source ``f``.
    face_mean : {"harmonic", "arithmetic"}
        Face average of ``a`` in the finite-difference stencil.
    seed : int
        Seed of the CPU generator drawing the GRFs.
    cache, cache_dir, progress
        As in :func:`operators.datasets.burgers.burgers`.

    Returns
    -------
    PDEData, or dict resolution -> PDEData when ``resolution`` is a sequence.

    Shape
    -----
    ``inputs``: ``(n, 1, S, S)`` float32 (``a``), ``targets``: ``(n, 1, S, S)`` float32 (``u``);
    axis -2 is ``x``, axis -1 is ``y``.
    """
    n = check_int("n", n)
    resolutions = _check_resolutions(resolution)
    solver_resolution = check_int("solver_resolution", solver_resolution, min=4)
    endpoint = check_bool("endpoint", endpoint)
    slices = {s: _grid_indices(s, solver_resolution, endpoint) for s in resolutions}
    _all_positive(a_high=a_high, a_low=a_low, grf_alpha=grf_alpha, grf_tau=grf_tau)
    forcing = float(_finite("forcing", forcing))
    check_choice("face_mean", face_mean, FACE_MEANS)
    seed = check_int("seed", seed, min=0)
    params = dict(
        n=n, resolution=resolutions, solver_resolution=solver_resolution, endpoint=endpoint, a_high=a_high,
        a_low=a_low, grf_alpha=grf_alpha, grf_tau=grf_tau, forcing=forcing, face_mean=face_mean, seed=seed,
        version=SOLVER_VERSION,
    )

    def generate() -> dict:
        gen = torch.Generator().manual_seed(seed)
        nodes = solver_resolution + 1
        out = {s: (np.empty((n, 1, s, s), np.float32), np.empty((n, 1, s, s), np.float32)) for s in resolutions}
        with tqdm(total=n, desc="darcy", unit="sample", disable=_quiet(progress)) as bar:
            for start in range(0, n, _GRF_CHUNK):
                count = min(_GRF_CHUNK, n - start)
                field = neumann_grf(count, (nodes, nodes), alpha=grf_alpha, tau=grf_tau, generator=gen).numpy()
                for j, g in enumerate(field):
                    a = np.where(g > 0, a_high, a_low)
                    u = darcy_solve(a, forcing, face_mean=face_mean)
                    for s, sl in slices.items():
                        out[s][0][start + j, 0] = a[sl, sl]
                        out[s][1][start + j, 0] = u[sl, sl]
                    bar.update(1)
        return {s: {"inputs": torch.from_numpy(x), "targets": torch.from_numpy(y)} for s, (x, y) in out.items()}

    data = cached("darcy", params, generate, cache=cache, cache_dir=cache_dir)
    results = {}
    for s in resolutions:
        grid = f"x_i = i / {s - 1 if endpoint else s}, i = 0..{s - 1} on [0, 1] (axes -2: x, -1: y)"
        results[s] = PDEData(data[s]["inputs"], data[s]["targets"], {**params, "resolution": s, "grid": grid})
    return _by_resolution(resolution, results)
