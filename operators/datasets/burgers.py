"""1-D viscous Burgers equation on the periodic unit interval: ``u(., 0) -> u(., T)``.

Legend: ``n`` samples, ``B`` batch of solves, ``N`` solver grid points, ``S`` returned
grid points, ``F = N // 2 + 1`` rfft bins.

    u_t + (u^2 / 2)_x = nu u_xx,   x in [0, 1) periodic,   t in (0, T].

Set-up of the FNO paper (Li et al. 2021): ``nu = 0.1``, ``T = 1``, initial data from
the Gaussian random field with mean 0 and covariance ``625 (-Delta + 25 I)^-2`` (the
constant mode dropped as in the reference data, so each sample has zero mean).

Solver
------
Fourier pseudo-spectral in space on ``N = solver_resolution`` points ``x_j = j / N``,
with the quadratic term dealiased by the 2/3 rule, and ETDRK4 in time (Cox & Matthews
2002), whose ``phi`` functions are evaluated by the contour integrals of Kassam &
Trefethen (2005) (32 points on a unit circle around each ``h L``), so the stiff
diffusion is integrated exactly. Batched in torch, float64. Validated against the
Cole-Hopf solution in ``tests/operators/datasets/test_burgers.py``.

Returned grids
--------------
``resolution=S`` returns ``u`` at ``x_i = i / S``: every ``(N / S)``-th solver point, so a
coarse grid is a subset of every finer one (``N`` must be a multiple of ``S``). A tuple
of resolutions returns one :class:`PDEData` per resolution, all from the same solves.

Cost and defaults
-----------------
Defaults: ``solver_resolution=1024``, ``resolution=256``, ``dt=1e-2`` (100 ETDRK4 steps
of 4 FFT pairs each; max-norm error against Cole-Hopf about 1e-6 relative at 1024 and
8192 points, 6e-8 at ``dt=5e-3``). Measured: 1200 samples returned at 256 and 1024
points take 4.3 s of CPU time in one thread (18 s wall on a 2-core machine shared by
~18 busy processes). Memory: roughly ``100 * batch_size * N`` bytes (50 MB by default).

With ``nu = 0.1`` the slowest mode decays by ``exp(-4 pi^2 nu) = 0.019`` over ``T = 1``:
targets are about 50 times smaller than the inputs and the map is close to the heat
semigroup; lower ``viscosity`` for a more nonlinear problem.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from operators.datasets._cache import PDEData, cached
from operators.datasets._common import (
    _by_resolution,
    _check_field,
    _all_positive,
    _check_resolutions,
    _positive,
    _quiet,
    _steps,
    _strides,
)
from operators.datasets._grf import periodic_grf
from spectral.checks import check_int

__all__ = ["SOLVER_VERSION", "burgers", "burgers_solve", "etdrk4_coefficients"]

SOLVER_VERSION = "1"
_CONTOUR_POINTS = 32


def etdrk4_coefficients(lin: torch.Tensor, h: float) -> tuple[torch.Tensor, ...]:
    """ETDRK4 coefficients ``(E, E2, Q, f1, f2, f3)`` for a diagonal linear operator ``lin``.

    Kassam & Trefethen's contour-integral evaluation: every ``phi``-type function of
    ``z = h L`` is the mean of its values on a circle of radius 1 around ``z``, which avoids
    the cancellation of the closed forms at small ``|z|``.
    """
    z = (h * lin).to(torch.complex128)[..., None]
    j = torch.arange(1, _CONTOUR_POINTS + 1, dtype=torch.float64, device=lin.device)
    r = torch.exp(1j * math.pi * (j - 0.5) / _CONTOUR_POINTS)
    lr = z + r  # (..., M) complex128
    e_lr = torch.exp(lr)
    q = h * ((torch.exp(lr / 2) - 1) / lr).mean(-1).real
    f1 = h * ((-4 - lr + e_lr * (4 - 3 * lr + lr**2)) / lr**3).mean(-1).real
    f2 = h * ((2 + lr + e_lr * (lr - 2)) / lr**3).mean(-1).real
    f3 = h * ((-4 - 3 * lr - lr**2 + e_lr * (4 - lr)) / lr**3).mean(-1).real
    return torch.exp(h * lin), torch.exp(h * lin / 2), q, f1, f2, f3


def burgers_solve(
    u0: torch.Tensor,
    *,
    viscosity: float = 0.1,
    t_final: float = 1.0,
    dt: float = 1e-2,
    progress: tqdm | None = None,
) -> torch.Tensor:
    """Evolve periodic samples ``u0`` of Burgers' equation to ``t_final`` (pseudo-spectral ETDRK4).

    Parameters
    ----------
    u0 : Tensor
        Initial values at ``x_j = j / N`` on ``[0, 1)``.
    viscosity, t_final : float
        ``nu`` and the final time.
    dt : float
        Time step; must divide ``t_final``.
    progress : tqdm, optional
        Bar advanced once per step.

    Shape
    -----
    ``u0: (B, N)`` real -> ``(B, N)`` real, same dtype (computed in float64); ``B = 0``
    gives an empty result.

    Raises
    ------
    TypeError
        ``u0`` is not a real floating tensor, or a parameter is not a real number.
    ValueError
        A wrong shape, a NaN/inf in ``u0``, a parameter out of range, or ``dt`` not
        dividing ``t_final``.
    FloatingPointError
        The solution became non-finite (``dt`` too large for the data).
    """
    _check_field("burgers_solve", "u0", u0, lambda shape: len(shape) == 2 and shape[-1] >= 4, "(B, N) with N >= 4")
    viscosity = float(_positive("viscosity", viscosity, allow_zero=True))
    t_final, dt = float(_positive("t_final", t_final)), float(_positive("dt", dt))
    steps = _steps("dt", t_final, dt, "t_final")
    if u0.shape[0] == 0:
        return torch.empty_like(u0)
    h = t_final / steps
    n = u0.shape[-1]
    k = 2 * math.pi * torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64, device=u0.device)  # (F,)
    dealias = torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64, device=u0.device) < n / 3
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(-viscosity * k**2, h)
    e, e2, q, f1, f2, f3 = (c.to(torch.complex128) for c in (e, e2, q, f1, f2, f3))
    g = -0.5j * k * dealias  # N(v) = -(1/2) i k FFT(u^2), dealiased

    def nonlinear(v: torch.Tensor) -> torch.Tensor:
        u = torch.fft.irfft(v, n=n)
        return torch.fft.rfft(u.square_()).mul_(g)  # (B, F) complex128

    v = torch.fft.rfft(u0.to(torch.float64))  # (B, F) complex128
    for _ in range(steps):
        nv = nonlinear(v)
        e2v = e2 * v
        a = torch.addcmul(e2v, q, nv)
        na = nonlinear(a)
        nb = nonlinear(torch.addcmul(e2v, q, na))
        nc = nonlinear((2 * nb).sub_(nv).mul_(q).addcmul_(e2, a))
        v = (e * v).addcmul_(nv, f1).addcmul_(na.add_(nb), f2, value=2).addcmul_(nc, f3)
        if progress is not None:
            progress.update(1)
    if not torch.isfinite(v).all():
        raise FloatingPointError(f"burgers_solve: non-finite solution (dt={dt}); reduce dt")
    return torch.fft.irfft(v, n=n).to(u0.dtype)


def burgers(
    n: int,
    *,
    resolution: int | Sequence[int] = 256,
    solver_resolution: int = 1024,
    viscosity: float = 0.1,
    t_final: float = 1.0,
    dt: float = 1e-2,
    grf_alpha: float = 2.0,
    grf_tau: float = 5.0,
    grf_sigma: float = 25.0,
    seed: int = 0,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> PDEData | dict[int, PDEData]:
    """Burgers data ``u(., 0) -> u(., t_final)`` from GRF initial conditions.

    Parameters
    ----------
    n : int
        Number of samples.
    resolution : int or sequence of int
        Returned grid size(s) ``S``; each must divide ``solver_resolution``.
    solver_resolution : int
        Solver grid size ``N`` (even).
    viscosity, t_final, dt : float
        ``nu``, final time, ETDRK4 step (must divide ``t_final``).
    grf_alpha, grf_tau, grf_sigma : float
        Initial data covariance ``grf_sigma^2 (-Delta + grf_tau^2 I)^(-grf_alpha)``.
    seed : int
        Seed of the CPU generator drawing the initial data.
    batch_size : int
        Samples solved together (memory: roughly ``100 * batch_size * N`` bytes).
    device : torch.device, optional
        Where the solver runs; results are returned on the CPU.
    cache, cache_dir : bool, path
        Use the on-disk cache (see :func:`operators.datasets.cached`).
    progress : bool, optional
        Show a tqdm bar; ``None`` shows it only on a terminal.

    Returns
    -------
    PDEData, or dict resolution -> PDEData when ``resolution`` is a sequence.

    Shape
    -----
    ``inputs``: ``(n, 1, S)`` float32 (``u(., 0)``); ``targets``: ``(n, 1, S)`` float32.

    Raises
    ------
    TypeError
        A size, count or seed that is not an int, or a physical parameter that is not a
        real number (None, a string, a bool).
    ValueError
        A non-positive or non-finite size/physical parameter, ``dt`` not dividing
        ``t_final``, or a resolution that does not divide ``solver_resolution``.
    """
    n = check_int("n", n)
    resolutions = _check_resolutions(resolution)
    solver_resolution = check_int("solver_resolution", solver_resolution, min=4)
    if solver_resolution % 2:
        raise ValueError(f"solver_resolution must be even, got {solver_resolution}")
    strides = _strides(resolutions, solver_resolution)
    viscosity, t_final, dt = _positive("viscosity", viscosity), _positive("t_final", t_final), _positive("dt", dt)
    steps = _steps("dt", t_final, dt, "t_final")
    _all_positive(grf_alpha=grf_alpha, grf_tau=grf_tau, grf_sigma=grf_sigma)
    seed = check_int("seed", seed, min=0)
    batch_size = check_int("batch_size", batch_size)
    params = dict(
        n=n, resolution=resolutions, solver_resolution=solver_resolution, viscosity=viscosity, t_final=t_final,
        dt=dt, grf_alpha=grf_alpha, grf_tau=grf_tau, grf_sigma=grf_sigma, seed=seed, version=SOLVER_VERSION,
    )

    def generate() -> dict:
        gen = torch.Generator().manual_seed(seed)
        u0 = periodic_grf(
            n, solver_resolution, alpha=grf_alpha, tau=grf_tau, sigma=grf_sigma, generator=gen, device=device
        )
        out = torch.empty_like(u0)
        with tqdm(total=steps * math.ceil(n / batch_size), desc="burgers", unit="step", disable=_quiet(progress)) as bar:
            for i in range(0, n, batch_size):
                out[i : i + batch_size] = burgers_solve(
                    u0[i : i + batch_size], viscosity=viscosity, t_final=t_final, dt=dt, progress=bar
                )
        return {
            s: {"inputs": u0[:, None, ::r].float().cpu(), "targets": out[:, None, ::r].float().cpu()}
            for s, r in strides.items()
        }

    data = cached("burgers", params, generate, cache=cache, cache_dir=cache_dir)
    results = {
        s: PDEData(
            data[s]["inputs"], data[s]["targets"],
            {**params, "resolution": s, "grid": f"x_i = i / {s}, i = 0..{s - 1} on the periodic unit interval"},
        )
        for s in resolutions
    }
    return _by_resolution(resolution, results)

