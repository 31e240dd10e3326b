"""Navier-Stokes generator: exact solutions, inviscid invariants, time-stepping pairs, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from operators.datasets._grf import periodic_grf
from operators.datasets.navier_stokes import (
    fno_forcing,
    navier_stokes,
    navier_stokes_sequences,
    navier_stokes_solve,
    time_stepping_pairs,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(x, x, indexing="ij")


@pytest.mark.parametrize("k, amplitude", [(1, 1.0), (2, 5.0)], ids=["k=1", "k=2"])
def test_taylor_green_vortex_decays_exactly(k, amplitude):
    """w = A sin(2 pi k x) sin(2 pi k y) is a steady Euler flow: w(t) = w(0) exp(-8 pi^2 k^2 nu t)."""
    n, nu, steps = 32, 0.02, 25
    x, y = _grid(n)
    w0 = amplitude * torch.sin(2 * math.pi * k * x) * torch.sin(2 * math.pi * k * y)
    errors = []
    for dt in (1 / 40, 1 / 80):
        out = navier_stokes_solve(w0[None], viscosity=nu, dt=dt, record_steps=round(0.25 / dt), n_records=4)[0]
        exact = torch.stack([w0 * math.exp(-8 * math.pi**2 * k**2 * nu * 0.25 * r) for r in range(5)])
        errors.append((out - exact).abs().max().item() / amplitude)
    assert errors[1] < 2e-4
    assert 3.5 < errors[0] / errors[1] < 4.5  # Crank-Nicolson: second order in dt
    assert exact[-1].abs().max() < 0.21 * amplitude  # the decay is substantial over the run


def test_forced_mode_approaches_the_exact_steady_state():
    """From rest, f = F (sin + cos) 2 pi (x + y) gives w = f / (8 pi^2 nu) (1 - exp(-8 pi^2 nu t))."""
    n, nu, dt = 16, 0.05, 1e-2
    f = fno_forcing(n, 0.1)
    out = navier_stokes_solve(torch.zeros(1, n, n, dtype=torch.float64), viscosity=nu, dt=dt, record_steps=20,
                              n_records=5, forcing=f)[0]  # fmt: skip
    rate = 8 * math.pi**2 * nu
    for r in range(6):
        exact = f / rate * (1 - math.exp(-rate * r * 20 * dt))
        assert (out[r] - exact).abs().max() < 2e-4 * (f / rate).abs().max()


def test_inviscid_dealiased_flow_conserves_energy_and_enstrophy():
    """With nu = 0, f = 0 and only modes |k| < N/3, the 2/3-dealiased Galerkin system conserves both."""
    n = 32
    w0 = periodic_grf(2, (n, n), alpha=2.5, tau=7, sigma=7**1.5 * 10, generator=torch.Generator().manual_seed(0))
    k = np.fft.fftfreq(n, 1 / n)
    kept = (np.abs(k)[:, None] < n / 3) & (np.abs(k)[None, :] < n / 3)
    w0 = torch.from_numpy(np.fft.ifft2(np.fft.fft2(w0.numpy()) * kept).real)
    out = navier_stokes_solve(w0, viscosity=0.0, dt=2e-3, record_steps=50, n_records=4).numpy()

    w_hat = np.fft.fft2(out, norm="forward")  # (B, T, N, N)
    k2 = 4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2)
    enstrophy = (np.abs(w_hat) ** 2).sum((-2, -1))
    energy = (np.abs(w_hat) ** 2 / np.where(k2 > 0, k2, np.inf)).sum((-2, -1))
    np.testing.assert_allclose(enstrophy, enstrophy[:, :1].repeat(5, 1), rtol=1e-6)
    np.testing.assert_allclose(energy, energy[:, :1].repeat(5, 1), rtol=1e-6)
    assert np.abs(out[:, -1] - out[:, 0]).max() > 0.1 * np.abs(out[:, 0]).max()  # the flow did evolve
    np.testing.assert_allclose(out.mean((-2, -1)), 0.0, atol=1e-12)


def test_sequences_pairs_and_map_agree():
    common = dict(solver_resolution=16, dt=0.05, viscosity=1e-2, cache=False, progress=False)
    seq = navier_stokes_sequences(3, n_steps=4, record_interval=0.25, resolution=(8, 16), **common)
    fine = seq[16]
    assert fine.fields.shape == (3, 5, 16, 16) and fine.fields.dtype == torch.float32
    assert torch.equal(fine.times, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    assert torch.equal(seq[8].fields, fine.fields[..., ::2, ::2])
    mapped = navier_stokes(3, t_final=0.5, resolution=16, **common)
    assert torch.equal(mapped.inputs[:, 0], fine.fields[:, 0])
    torch.testing.assert_close(mapped.targets[:, 0], fine.fields[:, 2], rtol=0, atol=1e-6)
    # spinup shifts the records: record 0 after spinup equals record 1 without it
    spun = navier_stokes_sequences(3, n_steps=2, record_interval=0.25, spinup=0.25, resolution=16, **common)
    torch.testing.assert_close(spun.fields[:, 0], fine.fields[:, 1], rtol=0, atol=1e-6)
    assert torch.equal(spun.times, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))


def test_time_stepping_pairs_layout():
    seq = torch.arange(2 * 5 * 3 * 3, dtype=torch.float32).reshape(2, 5, 3, 3)
    x, y = time_stepping_pairs(seq, 2)
    assert x.shape == (6, 2, 3, 3) and y.shape == (6, 1, 3, 3)
    for traj in range(2):
        for t in range(3):
            assert torch.equal(x[traj * 3 + t], seq[traj, t : t + 2])
            assert torch.equal(y[traj * 3 + t, 0], seq[traj, t + 2])
    with pytest.raises(ValueError, match=r"T > history=5, got \(2, 5, 3, 3\)"):
        time_stepping_pairs(seq, 5)


def test_blow_up_is_reported():
    w0 = periodic_grf(1, (16, 16), alpha=1.0, tau=1.0, sigma=1e4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(FloatingPointError, match="non-finite vorticity.*reduce dt"):
        navier_stokes_solve(w0, viscosity=0.0, dt=1.0, record_steps=50, n_records=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(viscosity=0.0), r"viscosity must be > 0, got 0.0"),
        (dict(t_final=1.0, dt=0.3), r"t_final=1.0 must be a positive whole multiple of dt=0.3"),
        (dict(resolution=48), r"resolution=48 must divide solver_resolution=64"),
        (dict(forcing=float("inf")), r"forcing must be finite, got inf"),
        (dict(batch_size=0), r"batch_size must be an int >= 1, got 0"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        navier_stokes(2, **kwargs, cache=False)


def test_bad_sequence_parameters():
    with pytest.raises(ValueError, match=r"record_interval=0.015 must be a positive whole multiple of dt=0.01"):
        navier_stokes_sequences(2, record_interval=0.015, cache=False)
    with pytest.raises(ValueError, match=r"spinup must be >= 0, got -1.0"):
        navier_stokes_sequences(2, spinup=-1.0, cache=False)
    with pytest.raises(ValueError, match=r"w0: expected shape \(B, N, N\) with N >= 4, got \(8, 8\)"):
        navier_stokes_solve(torch.zeros(8, 8), viscosity=0.1, dt=0.1, record_steps=1, n_records=1)
