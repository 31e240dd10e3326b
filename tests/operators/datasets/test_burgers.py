"""Burgers generator: the solver against the Cole-Hopf solution, grids, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from operators.datasets._grf import periodic_grf
from operators.datasets.burgers import burgers, burgers_solve

pytestmark = pytest.mark.usefixtures("one_thread")


def cole_hopf(u0: np.ndarray, nu: float, t: float) -> np.ndarray:
    """Exact u(., t) for periodic zero-mean u0 (numpy only).

    u = -2 nu phi_x / phi with phi_t = nu phi_xx, phi(x, 0) = exp(-(1 / 2 nu) int_0^x u0): the heat
    equation is solved exactly in Fourier space (phi(., 0) is smooth and periodic because u0 has
    zero mean, so the FFT is spectrally accurate).
    """
    n = u0.size
    k = np.fft.fftfreq(n, 1.0 / n)
    u_hat = np.fft.fft(u0)
    primitive_hat = np.where(k != 0, u_hat / (2j * np.pi * np.where(k != 0, k, 1)), 0)
    primitive = np.fft.ifft(primitive_hat).real  # an antiderivative of u0
    phi_hat = np.fft.fft(np.exp(-(primitive - primitive.mean()) / (2 * nu))) * np.exp(-nu * (2 * np.pi * k) ** 2 * t)
    return -2 * nu * np.fft.ifft(2j * np.pi * k * phi_hat).real / np.fft.ifft(phi_hat).real


@pytest.mark.parametrize("nu", [0.1, 0.02], ids=lambda v: f"nu={v}")
def test_sine_matches_cole_hopf(nu):
    n = 256
    x = np.arange(n) / n
    u0 = np.sin(2 * np.pi * x) + 0.5 * np.cos(4 * np.pi * x)
    ref = cole_hopf(u0, nu, 0.5)
    got = burgers_solve(torch.tensor(u0)[None], viscosity=nu, t_final=0.5, dt=5e-3)[0].numpy()
    assert np.abs(got - ref).max() < 1e-6 * np.abs(ref).max()


def test_grf_initial_data_matches_cole_hopf_at_default_settings():
    """A batch of the generator's own initial data (FNO set-up), solved with the default dt."""
    u0 = periodic_grf(4, 512, alpha=2, tau=5, sigma=25, generator=torch.Generator().manual_seed(0))
    got = burgers_solve(u0, viscosity=0.1, t_final=1.0, dt=1e-2).numpy()
    for i in range(4):
        ref = cole_hopf(u0[i].numpy(), 0.1, 1.0)
        assert np.abs(got[i] - ref).max() < 1e-5 * np.abs(ref).max()


def test_time_convergence_is_fourth_order():
    n, nu = 128, 0.05
    x = np.arange(n) / n
    u0 = np.sin(2 * np.pi * x)
    ref = cole_hopf(u0, nu, 0.5)
    errors = [np.abs(burgers_solve(torch.tensor(u0)[None], viscosity=nu, t_final=0.5, dt=dt)[0].numpy() - ref).max()
              for dt in (0.025, 0.0125)]  # fmt: skip
    assert 3.5 < np.log2(errors[0] / errors[1]) < 4.8


def test_generator_pairs_and_nested_resolutions():
    data = burgers(3, resolution=(8, 32, 256), solver_resolution=256, dt=0.05, cache=False, progress=False)
    coarse, fine, full = data[8], data[32], data[256]
    assert coarse.inputs.shape == (3, 1, 8) and fine.targets.shape == (3, 1, 32)
    assert coarse.inputs.dtype == torch.float32
    # coarse points x = i / 8 are every 4th fine point
    assert torch.equal(coarse.inputs, fine.inputs[..., ::4])
    assert torch.equal(coarse.targets, fine.targets[..., ::4])
    assert torch.equal(fine.targets, full.targets[..., ::8])
    # on the solver grid the targets are the Cole-Hopf evolution of the inputs (to float32 storage)
    for i in range(3):
        ref = cole_hopf(full.inputs[i, 0].double().numpy(), 0.1, 1.0)
        assert np.abs(full.targets[i, 0].numpy() - ref).max() < 1e-4 * np.abs(ref).max()
    assert coarse.meta["resolution"] == 8 and coarse.meta["solver_resolution"] == 256
    single = burgers(3, resolution=32, solver_resolution=256, dt=0.05, cache=False, progress=False)
    assert torch.equal(single.inputs, fine.inputs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0), r"n must be an int >= 1, got 0"),
        (dict(n=2, viscosity=-0.1), r"viscosity must be > 0, got -0.1"),
        (dict(n=2, resolution=100), r"resolution=100 must divide solver_resolution=1024"),
        (dict(n=2, solver_resolution=1023, resolution=3), r"solver_resolution must be even, got 1023"),
        (dict(n=2, dt=0.3), r"t_final=1.0 must be a positive whole multiple of dt=0.3"),
        (dict(n=2, resolution=()), r"resolution must be an int or a non-empty sequence of ints, got \(\)"),
        (dict(n=2, grf_tau=0), r"grf_tau must be > 0, got 0.0"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        burgers(**kwargs, cache=False)


def test_bad_solver_input():
    with pytest.raises(ValueError, match=r"u0: expected shape \(B, N\) with N >= 4, got \(2, 3, 8\)"):
        burgers_solve(torch.zeros(2, 3, 8))


def test_resolution_types():
    tiny = dict(solver_resolution=16, t_final=0.5, dt=0.25, cache=False, progress=False)
    single = burgers(2, resolution=np.int64(8), **tiny)  # numpy integers count as one size
    assert single.inputs.shape == (2, 1, 8)
    assert list(burgers(2, resolution=[8, 16], **tiny)) == [8, 16]
    with pytest.raises(TypeError, match=r"resolution must be an int or a sequence of ints, got str '64'"):
        burgers(2, resolution="64", **tiny)
    with pytest.raises(TypeError, match=r"n must be an int, got float 2.5"):
        burgers(2.5, **tiny)
