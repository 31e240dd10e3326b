"""Shallow water equations on the rotating sphere, through torch-harmonics' solver.

Legend: ``n`` samples, ``B`` batch, ``C = 3`` channels (geopotential ``phi = g h``,
relative vorticity ``zeta``, divergence ``delta``), ``H = nlat``, ``W = nlon``,
``L = lmax``, ``M = mmax`` spherical-harmonic degrees/orders, ``T`` recorded times.

Physics, spectral transforms, hyperdiffusion and initial conditions are those of
:class:`torch_harmonics.examples.ShallowWaterSolver` (Earth radius, rotation and
gravity; vorticity-divergence form; third-order Adams-Bashforth started by forward
Euler and AB2; implicit hyperdiffusion of vorticity and divergence). Random initial
states come from its ``random_initial_condition(mach)`` (white spherical-harmonic
coefficients), drawn for sample ``i`` from a CPU RNG seeded with a hash of
``(seed, i)``, so sample ``i`` does not depend on ``n``.

The solver's ``timestep`` handles one state at a time; this module steps a batch with
the same scheme (:func:`shallow_water_step`, built from the solver's transforms and
operators), which ``tests/operators/datasets/test_shallow_water.py`` checks against
``ShallowWaterSolver.timestep`` sample by sample, together with exact mass conservation
and the steady zonal flow of Williamson et al. (1992), test case 2.

Truncation: torch-harmonics 0.9 truncates triangularly, ``lmax = mmax = min(lmax, mmax)``;
both are passed explicitly (default ``ceil(nlat / 3)``, as in torch-harmonics' SFNO
example) and recorded in ``meta``.

* :func:`shallow_water`: pairs ``state(t) -> state(t + dt)`` from random states.
* :func:`shallow_water_rollouts`: trajectories of ``steps + 1`` states ``dt`` apart, to
  evaluate autoregressive models over several steps.

Cost and defaults
-----------------
Defaults: ``64 x 128`` equiangular grid, ``lmax = mmax = 22``, ``dt = 3600`` s made of
24 solver steps of 150 s (each: 8 spherical transforms of the batch), float64.
Measured (one thread): 256 pairs in 5.2 s of CPU time, 32 rollouts of 8 steps in 5.4 s
(about 20 s wall each on a 2-core machine shared by ~18 busy processes).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from operators.datasets._cache import PDEData, PDESequence, cached
from operators.datasets._common import _positive, _quiet, _steps
from spectral.checks import check_bool, check_choice, check_int, check_tensor

if TYPE_CHECKING:  # torch-harmonics is imported by make_solver, on first use
    from torch_harmonics.examples import ShallowWaterSolver

__all__ = [
    "SOLVER_VERSION",
    "SPHERE_GRIDS",
    "SphereGrid",
    "make_solver",
    "random_states",
    "shallow_water_tendency",
    "shallow_water_step",
    "shallow_water",
    "shallow_water_rollouts",
]

SOLVER_VERSION = "1"
SphereGrid = Literal["equiangular", "legendre-gauss", "lobatto"]
SPHERE_GRIDS: tuple[str, ...] = ("equiangular", "legendre-gauss", "lobatto")
CHANNELS = ("geopotential", "vorticity", "divergence")


def make_solver(
    nlat: int, nlon: int, solver_dt: float, *, lmax: int | None = None, grid: SphereGrid = "equiangular"
) -> ShallowWaterSolver:
    """A float64 :class:`ShallowWaterSolver` with ``lmax = mmax`` (default ``ceil(nlat / 3)``).

    Imports torch-harmonics on first use (``import operators`` does not load it).
    """
    from torch_harmonics.examples import ShallowWaterSolver

    nlat, nlon = check_int("nlat", nlat, min=4), check_int("nlon", nlon, min=4)
    solver_dt = _positive("solver_dt", solver_dt)
    check_choice("grid", grid, SPHERE_GRIDS)
    lmax = math.ceil(nlat / 3) if lmax is None else check_int("lmax", lmax, min=2)
    return ShallowWaterSolver(nlat, nlon, solver_dt, lmax=lmax, mmax=lmax, grid=grid).double()


def random_states(solver: ShallowWaterSolver, n: int, *, mach: float, seed: int) -> torch.Tensor:
    """Spectral states from ``solver.random_initial_condition(mach)``, sample ``i`` seeded by ``(seed, i)``.

    Shape
    -----
    returns ``(n, 3, L, M)`` complex128 on the solver's device.
    """
    n, seed = check_int("n", n), check_int("seed", seed, min=0)
    mach = _positive("mach", mach)
    states = []
    device = solver.lap.device  # where random_initial_condition draws
    # Seed (and afterwards restore) only that device's generator: torch.manual_seed would also seed every
    # CUDA device, which fork_rng(devices=[]) does not restore, so the caller's CUDA stream would change.
    cuda = device.type == "cuda"
    if cuda and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    for i in range(n):
        sample_seed = int(np.random.SeedSequence([seed, i]).generate_state(1, dtype=np.uint64)[0])
        with torch.random.fork_rng(devices=[device.index] if cuda else []):
            generator = torch.cuda.default_generators[device.index] if cuda else torch.default_generator
            generator.manual_seed(sample_seed)
            states.append(solver.random_initial_condition(mach=mach))
    return torch.stack(states)


def shallow_water_tendency(solver: ShallowWaterSolver, uspec: torch.Tensor) -> torch.Tensor:
    """Time derivative of a batch of spectral states (``ShallowWaterSolver.dudtspec``, batched).

    Shape
    -----
    ``uspec: (B, 3, L, M)`` complex -> ``(B, 3, L, M)`` complex.
    """
    ugrid = solver.spec2grid(uspec)  # (B, 3, H, W): phi, zeta, delta
    uv = solver.getuv(uspec[:, 1:])  # (B, 2, H, W): eastward, northward wind
    flux = solver.vrtdivspec(uv * (ugrid[:, 1:2] + solver.coriolis))  # (B, 2, L, M)
    mass = solver.vrtdivspec(uv * ugrid[:, 0:1])
    energy = solver.grid2spec(ugrid[:, 0] + 0.5 * (uv[:, 0] ** 2 + uv[:, 1] ** 2))  # (B, L, M)
    d_phi = -mass[:, 1]
    d_zeta = -flux[:, 1]
    d_delta = flux[:, 0] - solver.lap * energy
    return torch.stack([d_phi, d_zeta, d_delta], dim=1)


def shallow_water_step(
    solver: ShallowWaterSolver,
    uspec: torch.Tensor,
    nsteps: int,
    history: list[torch.Tensor] | None = None,
    progress: tqdm | None = None,
) -> torch.Tensor:
    """Advance a batch ``nsteps`` solver steps (AB3 + implicit hyperdiffusion, as ``ShallowWaterSolver.timestep``).

    ``history`` (a list, updated in place) holds the previous tendencies, newest first.
    An empty list starts like ``timestep``: forward Euler, then a second step that weights
    the new and previous tendencies ``7/3`` and ``-4/3`` (torch-harmonics' start-up), then
    AB3. Reuse the list to continue a trajectory without restarting the scheme.

    Shape
    -----
    ``uspec: (B, 3, L, M)`` complex -> ``(B, 3, L, M)`` complex.
    """
    check_tensor("shallow_water_step", "uspec", uspec, kind="complex")
    nsteps = check_int("nsteps", nsteps, min=0)
    history = [] if history is None else history
    dt = solver.dt
    for _ in range(nsteps):
        new = shallow_water_tendency(solver, uspec)
        if not history:
            now, old = new, new
        elif len(history) == 1:
            now, old = history[0], new
        else:
            now, old = history[0], history[1]
        uspec = uspec + dt * ((23.0 / 12.0) * new - (16.0 / 12.0) * now + (5.0 / 12.0) * old)
        uspec = torch.cat([uspec[:, :1], solver.hyperdiff * uspec[:, 1:]], dim=1)
        history[:] = [new, *history[:1]]
        if progress is not None:
            progress.update(1)
    return uspec


def _check_sw(n, nlat, nlon, dt, solver_dt, spinup, lmax, grid, mach, seed, batch_size) -> tuple[int, int, int]:
    n = check_int("n", n)
    nlat = check_int("nlat", nlat, min=4)
    nlon = check_int("nlon", nlon, min=4)
    steps = _steps("solver_dt", _positive("dt", dt), _positive("solver_dt", solver_dt), "dt")
    spin = _positive("spinup", spinup, allow_zero=True)
    spin = 0 if spin == 0 else _steps("solver_dt", spin, solver_dt, "spinup")
    lmax = math.ceil(nlat / 3) if lmax is None else check_int("lmax", lmax, min=2)
    if lmax > min(nlat, nlon // 2 + 1):
        raise ValueError(f"lmax={lmax} exceeds what nlat={nlat}, nlon={nlon} resolve ({min(nlat, nlon // 2 + 1)})")
    check_choice("grid", grid, SPHERE_GRIDS)
    _positive("mach", mach)
    seed = check_int("seed", seed, min=0)
    batch_size = check_int("batch_size", batch_size)
    return steps, spin, lmax


def _simulate(n, nlat, nlon, dt, solver_dt, spinup, lmax, grid, mach, seed, batch_size, device, progress, n_records,
              desc):  # fmt: skip
    """``(n, n_records + 1, 3, H, W)`` float64 grid states on the CPU, ``dt`` apart after ``spinup``."""
    steps, spin, lmax = _check_sw(n, nlat, nlon, dt, solver_dt, spinup, lmax, grid, mach, seed, batch_size)
    solver = make_solver(nlat, nlon, solver_dt, lmax=lmax, grid=grid)
    states = random_states(solver, n, mach=mach, seed=seed)  # on the CPU: same draws on any device
    solver = solver.to(device)
    out = torch.empty((n, n_records + 1, 3, nlat, nlon), dtype=torch.float64)
    with torch.no_grad(), tqdm(
        total=(spin + steps * n_records) * math.ceil(n / batch_size), desc=desc, unit="step", disable=_quiet(progress)
    ) as bar:
        for i in range(0, n, batch_size):
            uspec, history = states[i : i + batch_size].to(solver.lap.device), []
            uspec = shallow_water_step(solver, uspec, spin, history, progress=bar)
            out[i : i + batch_size, 0] = solver.spec2grid(uspec).cpu()
            for r in range(1, n_records + 1):
                uspec = shallow_water_step(solver, uspec, steps, history, progress=bar)
                out[i : i + batch_size, r] = solver.spec2grid(uspec).cpu()
    if not torch.isfinite(out).all():
        raise FloatingPointError(f"shallow water: non-finite state (solver_dt={solver_dt}); reduce solver_dt")
    return out, lmax


def _stats(fields: torch.Tensor) -> dict:
    """Per-channel mean and standard deviation over samples, times and grid points."""
    flat = fields.transpose(0, -3).reshape(3, -1)  # (3, everything else)
    return {"channels": list(CHANNELS), "channel_mean": flat.mean(1).tolist(), "channel_std": flat.std(1).tolist()}


def _normalise(x: torch.Tensor, stats: dict, channel_dim: int) -> torch.Tensor:
    shape = [1] * x.ndim
    shape[channel_dim] = 3
    mean = torch.tensor(stats["channel_mean"], dtype=x.dtype).reshape(shape)
    std = torch.tensor(stats["channel_std"], dtype=x.dtype).reshape(shape)
    return (x - mean) / std


def _cached_states(name, params, sim, n_records, normalize, cache, cache_dir, *, pairs: bool) -> tuple[dict, dict]:
    """The cached data of :func:`shallow_water` (``n_records = 1``: pairs) or its rollouts, and their meta.

    ``sim`` is :func:`_simulate`'s arguments up to ``progress``. Pairs (``pairs=True``) store ``inputs`` and
    ``targets`` with the statistics of the inputs; rollouts store ``fields`` with the
    statistics of every record.
    """

    def generate() -> dict:
        out, used_lmax = _simulate(*sim, n_records, name)
        if pairs:
            return {"inputs": out[:, 0].float(), "targets": out[:, 1].float(), "lmax": used_lmax,
                    "stats": _stats(out[:, :1])}  # fmt: skip
        return {"fields": out.float(), "lmax": used_lmax, "stats": _stats(out)}

    data = cached(name, params, generate, cache=cache, cache_dir=cache_dir)
    meta = {**params, "lmax": data["lmax"], "mmax": data["lmax"], "normalized": normalize, **data["stats"]}
    return data, meta


def shallow_water(
    n: int,
    *,
    nlat: int = 64,
    nlon: int = 128,
    dt: float = 3600.0,
    solver_dt: float = 150.0,
    spinup: float = 0.0,
    lmax: int | None = None,
    grid: SphereGrid = "equiangular",
    mach: float = 0.2,
    normalize: bool = False,
    seed: int = 0,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> PDEData:
    """Shallow-water pairs ``state(0) -> state(dt)`` from random initial states.

    Parameters
    ----------
    n : int
        Number of pairs.
    nlat, nlon : int
        Grid (``grid`` latitudes, equispaced longitudes).
    dt, solver_dt : float
        Seconds between input and target, and the solver step (must divide ``dt``).
    spinup : float
        Seconds integrated from the random state before the input (0 or a multiple of
        ``solver_dt``); the multistep scheme runs on from the spin-up into the pair. Random
        states are unbalanced, so the first hours are dominated by gravity waves.
    lmax : int, optional
        Spectral truncation ``lmax = mmax``; default ``ceil(nlat / 3)``.
    grid : {"equiangular", "legendre-gauss", "lobatto"}
        Latitude grid.
    mach : float
        Wind amplitude of the random states relative to the gravity-wave speed.
    normalize : bool
        Return ``(x - channel_mean) / channel_std`` (statistics of the inputs, in ``meta``
        either way) instead of physical units.
    seed, batch_size, device, cache, cache_dir, progress
        As in :func:`operators.datasets.burgers.burgers`.

    Shape
    -----
    ``inputs``, ``targets``: ``(n, 3, H, W)`` float32, channels (phi, zeta, delta) in SI units.
    """
    normalize = check_bool("normalize", normalize)
    _check_sw(n, nlat, nlon, dt, solver_dt, spinup, lmax, grid, mach, seed, batch_size)
    params = dict(n=n, nlat=nlat, nlon=nlon, dt=dt, solver_dt=solver_dt, spinup=spinup, lmax=lmax, grid=grid,
                  mach=mach, seed=seed, version=SOLVER_VERSION)  # fmt: skip
    sim = (n, nlat, nlon, dt, solver_dt, spinup, lmax, grid, mach, seed, batch_size, device, progress)
    data, meta = _cached_states("shallow_water", params, sim, 1, normalize, cache, cache_dir, pairs=True)
    inputs, targets = data["inputs"], data["targets"]
    if normalize:
        inputs, targets = _normalise(inputs, data["stats"], 1), _normalise(targets, data["stats"], 1)
    return PDEData(inputs, targets, meta)


def shallow_water_rollouts(
    n: int,
    *,
    steps: int = 8,
    nlat: int = 64,
    nlon: int = 128,
    dt: float = 3600.0,
    solver_dt: float = 150.0,
    spinup: float = 0.0,
    lmax: int | None = None,
    grid: SphereGrid = "equiangular",
    mach: float = 0.2,
    normalize: bool = False,
    seed: int = 0,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> PDESequence:
    """Shallow-water trajectories of ``steps + 1`` states ``dt`` apart, for autoregressive evaluation.

    The multistep scheme runs on across records (no restart). With the same ``seed``
    and grid parameters, record 0 equals :func:`shallow_water`'s inputs and record 1
    its targets. Other parameters as in :func:`shallow_water`; the normalisation
    statistics are taken over all records.

    Shape
    -----
    ``fields``: ``(n, steps + 1, 3, H, W)`` float32; ``times``: ``(steps + 1,)`` seconds since the
    random state (``spinup + i dt``).
    """
    steps = check_int("steps", steps)
    normalize = check_bool("normalize", normalize)
    _check_sw(n, nlat, nlon, dt, solver_dt, spinup, lmax, grid, mach, seed, batch_size)
    params = dict(n=n, steps=steps, nlat=nlat, nlon=nlon, dt=dt, solver_dt=solver_dt, spinup=spinup, lmax=lmax,
                  grid=grid, mach=mach, seed=seed, version=SOLVER_VERSION)  # fmt: skip
    sim = (n, nlat, nlon, dt, solver_dt, spinup, lmax, grid, mach, seed, batch_size, device, progress)
    data, meta = _cached_states("shallow_water_rollouts", params, sim, steps, normalize, cache, cache_dir, pairs=False)
    fields = _normalise(data["fields"], data["stats"], 2) if normalize else data["fields"]
    return PDESequence(fields, spinup + dt * torch.arange(steps + 1, dtype=torch.float64), meta)
