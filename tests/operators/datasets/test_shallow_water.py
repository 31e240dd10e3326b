"""Shallow water on the sphere: batched stepping vs torch-harmonics, invariants, a steady flow, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from operators.datasets.shallow_water import (
    make_solver,
    random_states,
    shallow_water,
    shallow_water_rollouts,
    shallow_water_step,
)

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = dict(nlat=16, nlon=32, dt=1800.0, solver_dt=300.0, cache=False, progress=False)


@pytest.fixture(scope="module")
def solver():
    return make_solver(24, 48, 300.0)


def test_truncation_is_explicit(solver):
    assert solver.lmax == solver.mmax == math.ceil(24 / 3)
    assert make_solver(24, 48, 300.0, lmax=10).sht.lmax == 10


def test_batched_steps_equal_torch_harmonics_timestep(solver):
    states = random_states(solver, 3, mach=0.2, seed=1)
    batched = shallow_water_step(solver, states, 6)
    for i in range(3):
        reference = solver.timestep(states[i], 6)
        assert (batched[i] - reference).abs().max() <= 1e-12 * reference.abs().max()


def test_mass_and_mean_vorticity_and_divergence_are_conserved(solver):
    """The l = 0 tendencies vanish: the area integrals of phi, zeta and delta stay fixed.

    (torch-harmonics' random states carry a nonzero l = 0 vorticity/divergence coefficient;
    it does not enter the winds and is conserved like the mass.)
    """
    states = random_states(solver, 2, mach=0.2, seed=0)
    history = []
    grids = [solver.spec2grid(states)]
    for _ in range(4):
        states = shallow_water_step(solver, states, 6, history)
        grids.append(solver.spec2grid(states))
    grids = torch.stack(grids, 1)  # (B, T, 3, H, W)
    for c in range(3):  # geopotential (mass), vorticity, divergence
        total = solver.integrate_grid(grids[:, :, c])  # (B, T) integrals over the sphere
        scale = solver.integrate_grid(grids[:, :, c].abs()).max()
        assert (total - total[:, :1]).abs().max() < 1e-12 * scale
    assert (grids[:, -1, 1] - grids[:, 0, 1]).abs().max() > 0.1 * grids[:, 0, 1].abs().max()  # it did evolve


def test_williamson_case_2_steady_zonal_flow_stays_steady():
    """u = u0 cos(lat), v = 0, g h = g h0 - (R Omega u0 + u0^2 / 2) sin^2(lat) is an exact steady state."""
    s = make_solver(32, 64, 300.0)
    radius, omega, gravity = s.radius.item(), s.omega.item(), s.gravity.item()
    u0 = 2 * math.pi * radius / (12 * 86400)
    lat = s.lats[:, None].expand(32, 64)
    wind = torch.stack([u0 * torch.cos(lat), torch.zeros_like(lat)])
    phi = gravity * 2.94e4 / 9.80616 - (radius * omega * u0 + u0**2 / 2) * torch.sin(lat) ** 2
    state = torch.cat([s.grid2spec(phi)[None], s.vrtdivspec(wind)])[None]  # (1, 3, L, M)
    after = shallow_water_step(s, state, 144)  # 12 hours
    before_grid, after_grid = s.spec2grid(state), s.spec2grid(after)
    for c, scale in enumerate([(phi - phi.mean()).abs().max(), before_grid[0, 1].abs().max()]):
        assert (after_grid[0, c] - before_grid[0, c]).abs().max() < 5e-6 * scale
    assert after_grid[0, 2].abs().max() < 5e-6 * before_grid[0, 1].abs().max()  # no divergence appears
    # the wind recovered from (vorticity, divergence) is the prescribed zonal flow
    torch.testing.assert_close(s.getuv(after[:, 1:])[0], wind, rtol=0, atol=1e-6 * u0)


def test_generator_pairs_match_rollouts_and_are_seeded():
    pairs = shallow_water(3, **SMALL)
    assert pairs.inputs.shape == (3, 3, 16, 32) and pairs.inputs.dtype == torch.float32
    assert pairs.meta["lmax"] == pairs.meta["mmax"] == 6
    rollouts = shallow_water_rollouts(3, steps=2, **SMALL)
    assert rollouts.fields.shape == (3, 3, 3, 16, 32)
    assert torch.equal(rollouts.fields[:, 0], pairs.inputs) and torch.equal(rollouts.fields[:, 1], pairs.targets)
    assert torch.equal(rollouts.times, torch.tensor([0.0, 1800.0, 3600.0], dtype=torch.float64))
    # a spin-up of one dt continues the same trajectory: pairs = (record 1, record 2)
    spun = shallow_water(3, spinup=1800.0, **SMALL)
    assert torch.equal(spun.inputs, rollouts.fields[:, 1]) and torch.equal(spun.targets, rollouts.fields[:, 2])
    more = shallow_water(5, **SMALL)  # sample i depends on (seed, i) only
    assert torch.equal(more.inputs[:3], pairs.inputs)
    other = shallow_water(3, **{**SMALL, "seed": 1})
    assert not torch.equal(other.inputs, pairs.inputs)


def test_normalisation_statistics():
    raw = shallow_water(4, **SMALL)
    norm = shallow_water(4, normalize=True, **SMALL)
    mean = raw.inputs.double().mean(dim=(0, 2, 3))
    std = raw.inputs.double().transpose(0, 1).reshape(3, -1).std(1)
    torch.testing.assert_close(torch.tensor(raw.meta["channel_mean"], dtype=torch.float64), mean, rtol=1e-5, atol=0)
    torch.testing.assert_close(torch.tensor(raw.meta["channel_std"], dtype=torch.float64), std, rtol=1e-4, atol=0)
    torch.testing.assert_close(norm.inputs.double().mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64),
                               rtol=0, atol=1e-3)  # fmt: skip
    expected = (raw.targets.double() - mean[:, None, None]) / std[:, None, None]
    torch.testing.assert_close(norm.targets.double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dt=1000.0, solver_dt=300.0), r"dt=1000.0 must be a positive whole multiple of solver_dt=300.0"),
        (dict(grid="healpix"), r"grid must be one of \('equiangular', 'legendre-gauss', 'lobatto'\), got str 'healpix'"),
        (dict(lmax=40), r"lmax=40 exceeds what nlat=16, nlon=32 resolve \(16\)"),
        (dict(mach=0.0), r"mach must be > 0, got 0.0"),
        (dict(nlat=2), r"nlat must be an int >= 4, got 2"),
        (dict(spinup=100.0), r"spinup=100.0 must be a positive whole multiple of solver_dt=300.0"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shallow_water(2, **{**SMALL, **kwargs})
    with pytest.raises(ValueError, match=r"steps must be an int >= 1, got 0"):
        shallow_water_rollouts(2, steps=0, **SMALL)


def test_random_states_seed_only_the_solver_device_and_restore_it(solver, monkeypatch):
    """Sample i is torch-harmonics' initial condition under the CPU seed derived from (seed, i); the
    caller's RNG is unchanged, and torch.manual_seed (which also seeds, lazily, every CUDA device) is unused."""
    before = torch.random.get_rng_state()
    expected = []
    for i in range(2):
        torch.manual_seed(int(np.random.SeedSequence([5, i]).generate_state(1, dtype=np.uint64)[0]))
        expected.append(solver.random_initial_condition(mach=0.2))
    torch.random.set_rng_state(before)

    def no_global_seed(*_):
        raise AssertionError("random_states must not call torch.manual_seed (it reseeds every CUDA device)")

    monkeypatch.setattr(torch, "manual_seed", no_global_seed)
    states = random_states(solver, 2, mach=0.2, seed=5)
    torch.testing.assert_close(states, torch.stack(expected), rtol=0, atol=0)
    assert torch.equal(torch.random.get_rng_state(), before)
