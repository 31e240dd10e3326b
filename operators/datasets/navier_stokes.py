"""2-D incompressible Navier-Stokes in vorticity form on the unit torus.

Legend: ``n`` samples, ``B`` batch of solves, ``N`` solver points per side, ``S`` returned
points per side, ``T`` recorded times, ``k`` history length, ``F = N // 2 + 1`` rfft bins.

    w_t + u . grad w = nu Delta w + f,   u = (psi_y, -psi_x),   -Delta psi = w,   x in [0, 1)^2.

Set-up of the FNO paper (Li et al. 2021): ``nu = 1e-3``,
``f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``, ``w(0)`` from the GRF with
``sigma = 7^(3/2)``, ``tau = 7``, ``alpha = 2.5`` (covariance ``sigma^2 (-Delta + 49 I)^-2.5``
in the normalisation of :mod:`operators.datasets._grf`; the amplitude of the reference
code), zero mean.

Solver
------
Fourier pseudo-spectral on ``N = solver_resolution`` points per side (``x_i = i / N``,
axis -2 is ``x``, axis -1 is ``y``), the advection term dealiased by the 2/3 rule.
Time stepping: Crank-Nicolson for the viscous term and Heun's predictor-corrector for
advection and forcing (second order overall):

    w* = [(1 - h nu L / 2) w + h (f - A(w))] / (1 + h nu L / 2),
    w' = [(1 - h nu L / 2) w + h (f - (A(w) + A(w*)) / 2)] / (1 + h nu L / 2),

with ``L = 4 pi^2 |k|^2`` and ``A(w)`` the dealiased transform of ``u . grad w``. Batched in
torch, float64 by default. Validated in ``tests/operators/datasets/test_navier_stokes.py``
against the exact decay of the Taylor-Green vortex, the exact forced response of a
``sin/cos 2 pi (x + y)`` mode, and energy/enstrophy conservation without viscosity.

Two forms
---------
* :func:`navier_stokes`: the map ``w(0) -> w(t_final)`` as :class:`PDEData`.
* :func:`navier_stokes_sequences`: trajectories ``(n, T, S, S)`` recorded every
  ``record_interval`` as :class:`PDESequence`; :func:`time_stepping_pairs` turns them into
  ``(last k fields -> next field)`` pairs for autoregressive models.

Cost and defaults
-----------------
Defaults: ``solver_resolution = resolution = 64``, ``dt = 1e-2``; one step is two
advection evaluations (5 FFTs each) on ``(B, 64, 64)``. At 64^2 with the FNO set-up the
``dt = 1e-2`` trajectories differ from ``dt = 5e-3`` ones by under 1e-5 (relative L2) up
to ``t = 40``, and the spectrum beyond ``|k| = 16`` holds under 1e-9 of the enstrophy;
on finer solver grids reduce ``dt`` in proportion (advective CFL ``|u| dt N`` below ~0.3).
Measured (float64, one thread): about 0.4 ms of CPU time per sample and step at 64^2;
100 trajectories of :func:`navier_stokes_sequences` with the defaults (20 records one
time unit apart, 2 000 steps) took 83 s of CPU time (338 s wall on a 2-core machine
shared by ~18 busy processes). :func:`navier_stokes` with ``n = 1200`` and
``t_final = 10`` (1 000 steps) is about 500 s of CPU time by the same rate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from operators.datasets._cache import PDEData, PDESequence, cached
from operators.datasets._common import (
    _by_resolution,
    _check_field,
    _all_positive,
    _check_resolutions,
    _finite,
    _positive,
    _quiet,
    _steps,
    _strides,
)
from operators.datasets._grf import periodic_grf
from spectral.checks import check_int, check_tensor

__all__ = [
    "SOLVER_VERSION",
    "fno_forcing",
    "navier_stokes_solve",
    "navier_stokes",
    "navier_stokes_sequences",
    "time_stepping_pairs",
]

SOLVER_VERSION = "1"


def fno_forcing(size: int, amplitude: float = 0.1, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """``amplitude (sin 2 pi (x + y) + cos 2 pi (x + y))`` at ``x_i = i / size``: ``(size, size)``."""
    size = check_int("size", size)
    amplitude = _finite("amplitude", amplitude)
    x = torch.arange(size, dtype=dtype, device=device) / size
    s = 2 * math.pi * (x[:, None] + x[None, :])
    return amplitude * (torch.sin(s) + torch.cos(s))


def navier_stokes_solve(
    w0: torch.Tensor,
    *,
    viscosity: float,
    dt: float,
    record_steps: int,
    n_records: int,
    forcing: torch.Tensor | None = None,
    progress: tqdm | None = None,
) -> torch.Tensor:
    """Evolve vorticity ``w0`` and record it every ``record_steps`` steps of size ``dt``.

    Parameters
    ----------
    w0 : Tensor
        Initial vorticity at ``(i / N, j / N)``; its mean is irrelevant (the ``k = 0`` mode
        is held at zero, as the vorticity of a periodic velocity field has zero mean).
    viscosity : float
        ``nu >= 0``.
    dt : float
        Time step.
    record_steps, n_records : int
        Steps between records and number of records after the initial state.
    forcing : Tensor, optional
        ``f`` at the grid points, ``(N, N)``; None for no forcing.
    progress : tqdm, optional
        Bar advanced once per step.

    Shape
    -----
    ``w0: (B, N, N)`` real -> ``(B, n_records + 1, N, N)`` (``w`` at ``0, record_steps dt, ...``), dtype of ``w0``;
    ``B = 0`` gives an empty result.

    Raises
    ------
    TypeError
        ``w0`` or ``forcing`` is not a real floating tensor, or a parameter has the wrong kind.
    ValueError
        A wrong shape, a NaN/inf in ``w0`` or ``forcing``, or a parameter out of range.
    FloatingPointError
        The vorticity became non-finite (``dt`` too large for the flow).
    """
    _check_field("navier_stokes_solve", "w0", w0, lambda shape: len(shape) == 3 and shape[-1] == shape[-2] >= 4,
                 "(B, N, N) with N >= 4")  # fmt: skip
    if forcing is not None:
        side = tuple(w0.shape[-2:])
        _check_field("navier_stokes_solve", "forcing", forcing, lambda shape: shape == side, str(side))
    viscosity = float(_positive("viscosity", viscosity, allow_zero=True))
    dt = float(_positive("dt", dt))
    record_steps = check_int("record_steps", record_steps)
    n_records = check_int("n_records", n_records, min=0)
    n, dev, real = w0.shape[-1], w0.device, torch.float64
    if w0.shape[0] == 0:
        return w0.new_empty((0, n_records + 1, n, n))
    kx = 2 * math.pi * torch.fft.fftfreq(n, 1.0 / n, dtype=real, device=dev)[:, None]  # (N, 1)
    ky = 2 * math.pi * torch.fft.rfftfreq(n, 1.0 / n, dtype=real, device=dev)[None, :]  # (1, F)
    lap = kx**2 + ky**2  # (N, F): -Delta in Fourier
    inv_lap = torch.where(lap > 0, 1.0 / lap.clamp_min(1e-30), 0.0)
    cut = 2 * math.pi * n / 3
    dealias = ((kx.abs() < cut) & (ky.abs() < cut)).to(real)
    # psi = w / L;  u = psi_y, v = -psi_x;  then w_x, w_y
    ops = torch.stack(
        [1j * ky * inv_lap, -1j * kx * inv_lap, 1j * kx * torch.ones_like(ky), 1j * ky * torch.ones_like(kx)]
    )  # (4, N, F) complex128
    lhs = 1 + 0.5 * dt * viscosity * lap
    rhs = 1 - 0.5 * dt * viscosity * lap
    f_hat = torch.zeros((), dtype=torch.complex128, device=dev) if forcing is None else torch.fft.rfft2(forcing.to(real))
    zero_mean = (lap > 0).to(real)

    def advection(w_hat: torch.Tensor) -> torch.Tensor:
        u, v, wx, wy = torch.fft.irfft2(ops * w_hat[:, None], s=(n, n)).unbind(1)  # 4 x (B, N, N) float64
        return torch.fft.rfft2(u * wx + v * wy) * dealias  # (B, N, F) complex128

    w_hat = torch.fft.rfft2(w0.to(real)) * zero_mean
    out = torch.empty((w0.shape[0], n_records + 1, n, n), dtype=w0.dtype, device=dev)
    out[:, 0] = torch.fft.irfft2(w_hat, s=(n, n))
    for r in range(1, n_records + 1):
        for _ in range(record_steps):
            a0 = advection(w_hat)
            explicit = rhs * w_hat + dt * f_hat
            w_star = (explicit - dt * a0) / lhs
            w_hat = (explicit - 0.5 * dt * (a0 + advection(w_star))) / lhs
            if progress is not None:
                progress.update(1)
        out[:, r] = torch.fft.irfft2(w_hat, s=(n, n))
        if not torch.isfinite(out[:, r]).all():
            raise FloatingPointError(
                f"navier_stokes_solve: non-finite vorticity at t={r * record_steps * dt:g} (dt={dt}); reduce dt"
            )
    return out


def time_stepping_pairs(sequences: torch.Tensor, history: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(last history fields -> next field)`` pairs from trajectories.

    Shape
    -----
    ``sequences: (n, T, *grid)`` -> inputs ``(n (T - history), history, *grid)``,
    targets ``(n (T - history), 1, *grid)``; pairs of one trajectory are contiguous,
    ordered by time. For ``C``-channel sequences ``(n, T, C, *grid)`` flatten ``T`` into
    the samples or ``C`` into ``history`` first.
    """
    history = check_int("history", history)
    check_tensor("time_stepping_pairs", "sequences", sequences, kind="any")
    if sequences.ndim < 3 or sequences.shape[1] <= history:
        raise ValueError(
            f"sequences: expected shape (n, T, *grid) with T > history={history}, got {tuple(sequences.shape)}"
        )
    windows = sequences.unfold(1, history + 1, 1)  # (n, T - history, *grid, history + 1)
    windows = windows.movedim(-1, 2).flatten(0, 1)  # (n (T - history), history + 1, *grid)
    return windows[:, :history].contiguous(), windows[:, history:].contiguous()


def _simulate(
    c: dict, *, record_steps: int, n_records: int, spinup_steps: int, device, progress: bool | None, desc: str
) -> torch.Tensor:
    """``(n, n_records + 1, N, N)`` float64 trajectories on the CPU; ``c`` from :func:`_check_common`."""
    n, solver_resolution, viscosity, dt, batch_size = (
        c[k] for k in ("n", "solver_resolution", "viscosity", "dt", "batch_size")
    )
    gen = torch.Generator().manual_seed(c["seed"])
    w0 = periodic_grf(
        n, (solver_resolution,) * 2, alpha=c["grf_alpha"], tau=c["grf_tau"], sigma=c["grf_sigma"], generator=gen,
        device=device,
    )
    f = fno_forcing(solver_resolution, c["forcing"], device=w0.device) if c["forcing"] != 0 else None
    steps = spinup_steps + record_steps * n_records
    out = torch.empty((n, n_records + 1, solver_resolution, solver_resolution), dtype=torch.float64)
    batches = math.ceil(n / batch_size)
    with tqdm(total=steps * batches, desc=desc, unit="step", disable=_quiet(progress)) as bar:
        for i in range(0, n, batch_size):
            w = w0[i : i + batch_size]
            if spinup_steps:
                w = navier_stokes_solve(
                    w, viscosity=viscosity, dt=dt, record_steps=spinup_steps, n_records=1, forcing=f, progress=bar
                )[:, -1]
            out[i : i + batch_size] = navier_stokes_solve(
                w, viscosity=viscosity, dt=dt, record_steps=record_steps, n_records=n_records, forcing=f, progress=bar
            ).cpu()
    return out


def _check_common(
    n, resolution, solver_resolution, viscosity, dt, forcing, grf_alpha, grf_tau, grf_sigma, seed, batch_size
) -> tuple[dict, dict[int, int]]:
    """The checked arguments both generators share (ints and floats keep their kind), and the strides."""
    resolutions = _check_resolutions(resolution)
    solver_resolution = check_int("solver_resolution", solver_resolution, min=4)
    _all_positive(grf_alpha=grf_alpha, grf_tau=grf_tau, grf_sigma=grf_sigma)
    checked = dict(
        n=check_int("n", n), resolution=resolutions, solver_resolution=solver_resolution,
        viscosity=_positive("viscosity", viscosity), dt=_positive("dt", dt), forcing=_finite("forcing", forcing),
        grf_alpha=grf_alpha, grf_tau=grf_tau, grf_sigma=grf_sigma, seed=check_int("seed", seed, min=0),
        batch_size=check_int("batch_size", batch_size),
    )
    return checked, _strides(resolutions, solver_resolution)


def _params(c: dict, after: str, **extra) -> dict:
    """The cache key's parameters (also ``meta``): the shared ones but ``batch_size``, with ``extra``
    inserted after the key ``after``, then the solver version."""
    params: dict = {}
    for key, value in c.items():
        if key != "batch_size":
            params[key] = value
        if key == after:
            params.update(extra)
    return {**params, "version": SOLVER_VERSION}


def navier_stokes(
    n: int,
    *,
    resolution: int | Sequence[int] = 64,
    solver_resolution: int = 64,
    viscosity: float = 1e-3,
    t_final: float = 10.0,
    dt: float = 1e-2,
    forcing: float = 0.1,
    grf_alpha: float = 2.5,
    grf_tau: float = 7.0,
    grf_sigma: float = 7.0**1.5,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> PDEData | dict[int, PDEData]:
    """Navier-Stokes data ``w(0) -> w(t_final)`` from GRF initial vorticity.

    Parameters
    ----------
    n : int
        Number of samples.
    resolution : int or sequence of int
        Returned points per side ``S``; each must divide ``solver_resolution``.
    solver_resolution : int
        Solver points per side ``N``.
    viscosity, t_final, dt : float
        ``nu``, final time, time step (must divide ``t_final``).
    forcing : float
        Amplitude of ``sin 2 pi (x + y) + cos 2 pi (x + y)``; 0 for none.
    grf_alpha, grf_tau, grf_sigma : float
        Initial vorticity covariance ``grf_sigma^2 (-Delta + grf_tau^2 I)^(-grf_alpha)``.
    seed, batch_size, device, cache, cache_dir, progress
        As in :func:`operators.datasets.burgers.burgers`.

    Returns
    -------
    PDEData, or dict resolution -> PDEData when ``resolution`` is a sequence.

    Shape
    -----
    ``inputs``: ``(n, 1, S, S)`` float32 (``w(0)``); ``targets``: ``(n, 1, S, S)`` float32.

    Notes
    -----
    Cost: ``t_final / dt`` steps, each two advection evaluations; see the module notes.
    """
    c, strides = _check_common(
        n, resolution, solver_resolution, viscosity, dt, forcing, grf_alpha, grf_tau, grf_sigma, seed, batch_size
    )
    t_final = _positive("t_final", t_final)
    steps = _steps("dt", t_final, c["dt"], "t_final")
    params = _params(c, "viscosity", t_final=t_final)

    def generate() -> dict:
        w = _simulate(
            c, record_steps=steps, n_records=1, spinup_steps=0, device=device, progress=progress, desc="navier_stokes"
        )
        return {
            s: {"inputs": w[:, :1, ::r, ::r].float(), "targets": w[:, 1:, ::r, ::r].float()}
            for s, r in strides.items()
        }

    data = cached("navier_stokes", params, generate, cache=cache, cache_dir=cache_dir)
    results = {s: PDEData(data[s]["inputs"], data[s]["targets"], {**params, **_grid_meta(s)}) for s in strides}
    return _by_resolution(resolution, results)


def navier_stokes_sequences(
    n: int,
    *,
    n_steps: int = 20,
    record_interval: float = 1.0,
    spinup: float = 0.0,
    resolution: int | Sequence[int] = 64,
    solver_resolution: int = 64,
    viscosity: float = 1e-3,
    dt: float = 1e-2,
    forcing: float = 0.1,
    grf_alpha: float = 2.5,
    grf_tau: float = 7.0,
    grf_sigma: float = 7.0**1.5,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> PDESequence | dict[int, PDESequence]:
    """Navier-Stokes vorticity trajectories for time-stepping (autoregressive) models.

    Parameters
    ----------
    n : int
        Number of trajectories.
    n_steps : int
        Recorded intervals: ``n_steps + 1`` fields at ``spinup + i * record_interval``.
    record_interval : float
        Time between records (a whole multiple of ``dt``).
    spinup : float
        Time integrated from the random initial field before the first record (0 or a
        whole multiple of ``dt``).
    resolution, solver_resolution, viscosity, dt, forcing, grf_alpha, grf_tau, grf_sigma
        As in :func:`navier_stokes`.
    seed, batch_size, device, cache, cache_dir, progress
        As in :func:`operators.datasets.burgers.burgers`.

    Returns
    -------
    PDESequence, or dict resolution -> PDESequence when ``resolution`` is a sequence.
    Use :func:`time_stepping_pairs` for ``(last k fields -> next)`` training pairs.

    Shape
    -----
    ``fields``: ``(n, n_steps + 1, S, S)`` float32; ``times``: ``(n_steps + 1,)`` float64.
    """
    c, strides = _check_common(
        n, resolution, solver_resolution, viscosity, dt, forcing, grf_alpha, grf_tau, grf_sigma, seed, batch_size
    )
    n_steps = check_int("n_steps", n_steps)
    record_interval = _positive("record_interval", record_interval)
    record_steps = _steps("dt", record_interval, c["dt"], "record_interval")
    spinup = _positive("spinup", spinup, allow_zero=True)
    spinup_steps = 0 if spinup == 0 else _steps("dt", spinup, c["dt"], "spinup")
    params = _params(c, "n", n_steps=n_steps, record_interval=record_interval, spinup=spinup)

    def generate() -> dict:
        w = _simulate(
            c, record_steps=record_steps, n_records=n_steps, spinup_steps=spinup_steps, device=device,
            progress=progress, desc="navier_stokes_sequences",
        )
        return {s: {"fields": w[:, :, ::r, ::r].float()} for s, r in strides.items()}

    data = cached("navier_stokes_sequences", params, generate, cache=cache, cache_dir=cache_dir)
    times = spinup + record_interval * torch.arange(n_steps + 1, dtype=torch.float64)
    results = {s: PDESequence(data[s]["fields"], times, {**params, **_grid_meta(s)}) for s in strides}
    return _by_resolution(resolution, results)


def _grid_meta(s: int) -> dict:
    return {"resolution": s, "grid": f"(x_i, y_j) = (i / {s}, j / {s}) on the unit torus (axes -2: x, -1: y)"}
