"""Gaussian random fields: sample statistics against the analytic covariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from operators.datasets._grf import neumann_grf, periodic_grf

pytestmark = pytest.mark.usefixtures("one_thread")


N_SAMPLES = 20000


def _amp(lam: np.ndarray, alpha: float, tau: float, sigma: float) -> np.ndarray:
    return sigma * (lam + tau**2) ** (-alpha / 2)


@pytest.mark.parametrize("zero_mean", [True, False], ids=lambda z: f"zero_mean={z}")
def test_periodic_1d_covariance_function(zero_mean):
    n, alpha, tau, sigma = 32, 2.0, 5.0, 25.0
    u = periodic_grf(N_SAMPLES, n, alpha=alpha, tau=tau, sigma=sigma, zero_mean=zero_mean,
                     generator=torch.Generator().manual_seed(0)).numpy()  # fmt: skip
    k = np.arange(-(n // 2) + 1, n // 2 + 1)  # every bin once, Nyquist included
    c2 = _amp(4 * np.pi**2 * k**2, alpha, tau, sigma) ** 2
    if zero_mean:
        c2[k == 0] = 0.0
    lags = np.arange(6)
    expected = np.array([np.sum(c2 * np.cos(2 * np.pi * k * r / n)) for r in lags])  # C(r / n)
    empirical = np.array([np.mean(u * np.roll(u, -r, axis=1)) for r in lags])
    np.testing.assert_allclose(empirical, expected, rtol=0.04, atol=0.02 * expected[0])
    if zero_mean:
        np.testing.assert_allclose(u.mean(axis=1), 0.0, atol=1e-12)


def test_periodic_2d_variance_and_spectrum():
    n, alpha, tau, sigma = 16, 2.5, 7.0, 7.0**1.5
    u = periodic_grf(N_SAMPLES // 4, (n, n), alpha=alpha, tau=tau, sigma=sigma,
                     generator=torch.Generator().manual_seed(1)).numpy()  # fmt: skip
    k = np.fft.fftfreq(n, 1 / n)
    lam = 4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2)
    c2 = _amp(lam, alpha, tau, sigma) ** 2
    c2[0, 0] = 0.0
    np.testing.assert_allclose(u.var(), c2.sum(), rtol=0.03)
    # E|u_hat_k|^2 = c_k^2 with numpy's forward-normalised FFT
    power = (np.abs(np.fft.fft2(u, norm="forward")) ** 2).mean(0)
    for kx, ky in [(1, 0), (0, 1), (1, 1), (2, 3), (-2, 1)]:
        assert power[kx, ky] == pytest.approx(c2[kx, ky], rel=0.08)


def test_neumann_1d_pointwise_variance():
    n, alpha, tau = 33, 2.0, 3.0
    u = neumann_grf(N_SAMPLES, n, alpha=alpha, tau=tau, generator=torch.Generator().manual_seed(2)).numpy()
    x = np.arange(n) / (n - 1)
    k = np.arange(n)
    basis = np.where(k == 0, 1.0, math.sqrt(2.0)) * np.cos(np.pi * x[:, None] * k[None, :])
    c2 = _amp(np.pi**2 * k**2, alpha, tau, 1.0) ** 2
    c2[0] = 0.0
    expected = basis**2 @ c2
    np.testing.assert_allclose(u.var(axis=0), expected, rtol=0.05)
    # full covariance matrix sum_k c_k^2 phi_k(x) phi_k(y)
    cov = u.T @ u / u.shape[0]
    np.testing.assert_allclose(cov, (basis * c2) @ basis.T, atol=0.05 * expected.max())


def test_seed_determinism_and_device_independent_draws():
    a = periodic_grf(3, (8, 8), alpha=2, tau=3, generator=torch.Generator().manual_seed(5))
    b = periodic_grf(3, (8, 8), alpha=2, tau=3, generator=torch.Generator().manual_seed(5))
    c = periodic_grf(3, (8, 8), alpha=2, tau=3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0, size=8, alpha=2, tau=3), r"n must be an int >= 1, got 0"),
        (dict(n=1, size=(8, 8, 8), alpha=2, tau=3), r"size must be 1 or 2 ints >= 2, got \(8, 8, 8\)"),
        (dict(n=1, size=8, alpha=-1, tau=3), r"alpha must be > 0, got -1.0"),
        (dict(n=1, size=8, alpha=2, tau=0.0), r"tau must be > 0, got 0.0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        periodic_grf(**kwargs)
    with pytest.raises(ValueError, match=match):
        neumann_grf(**kwargs)
