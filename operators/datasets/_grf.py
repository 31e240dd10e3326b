"""Gaussian random fields with covariance ``sigma^2 (-Delta + tau^2 I)^(-alpha)``.

Legend: ``n`` samples, ``*size`` grid points per axis (1-D or 2-D), ``k`` wavenumbers.

A centred Gaussian measure on a domain with an orthonormal eigenbasis ``phi_k`` of the
Laplacian (``-Delta phi_k = lambda_k phi_k``) and covariance operator
``sigma^2 (-Delta + tau^2 I)^(-alpha)`` is sampled by the Karhunen-Loeve sum

    u(x) = sum_k  sigma (lambda_k + tau^2)^(-alpha / 2)  xi_k  phi_k(x),   xi_k ~ N(0, 1) iid,

truncated to the wavenumbers the grid resolves.

* :func:`periodic_grf`: the unit torus ``[0, 1)^d``, ``phi_k = e^{2 pi i k.x}`` (real
  combinations), ``lambda_k = 4 pi^2 |k|^2``; sampled at ``x_j = j / N`` by filtering white
  noise with the FFT (the Nyquist bin of an even grid holds the real cosine only).
* :func:`neumann_grf`: the unit square/interval with zero-flux boundary,
  ``phi_k = prod_i c_{k_i} cos(pi k_i x_i)`` (``c_0 = 1``, ``c_k = sqrt 2``),
  ``lambda_k = pi^2 |k|^2``; sampled at the nodes ``x_j = j / (N - 1)`` (both ends
  included) with the modes ``k_i = 0 .. N - 1``. This is the field of the FNO paper's
  Darcy data.

``zero_mean=True`` drops the constant mode (``k = 0``), as in the FNO reference data
sets, so every sample has zero spatial mean. The random numbers come from a CPU
``torch.Generator`` and are moved to ``device`` afterwards, so a seed gives the same
field on every device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from spectral.checks import check_int, check_ints, check_number

__all__ = ["periodic_grf", "neumann_grf", "grf_coefficients"]


def grf_coefficients(eigenvalues: torch.Tensor, *, alpha: float, tau: float, sigma: float) -> torch.Tensor:
    """Karhunen-Loeve amplitudes ``sigma (lambda + tau^2)^(-alpha / 2)`` for Laplacian eigenvalues."""
    return sigma * (eigenvalues + tau**2) ** (-alpha / 2)


def _check_args(n: int, size: Sequence[int], alpha: float, tau: float, sigma: float, min_points: int) -> tuple[int, ...]:
    check_int("n", n)
    size = check_ints("size", size, min=min_points)
    if len(size) not in (1, 2):
        raise ValueError(f"size must be 1 or 2 ints >= {min_points}, got {size!r}")
    for name, value in (("alpha", alpha), ("tau", tau), ("sigma", sigma)):
        check_number(name, value, min=0, min_open=True)
    return size


def _amplitudes(
    ks: list[torch.Tensor], scale: float, *, alpha: float, tau: float, sigma: float, zero_mean: bool
) -> torch.Tensor:
    """Karhunen-Loeve amplitudes on the mode grid ``ks`` (one 1-D tensor per axis), ``lambda = scale |k|^2``.

    ``zero_mean`` zeroes the constant mode (the first entry).
    """
    k2 = sum(k.reshape([-1 if i == j else 1 for j in range(len(ks))]) ** 2 for i, k in enumerate(ks))
    amp = grf_coefficients(scale * k2, alpha=alpha, tau=tau, sigma=sigma)
    if zero_mean:
        amp = amp.clone()
        amp.view(-1)[0] = 0.0
    return amp


def periodic_grf(
    n: int,
    size: int | Sequence[int],
    *,
    alpha: float,
    tau: float,
    sigma: float = 1.0,
    zero_mean: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Samples of a periodic GRF on ``[0, 1)^d`` at ``x_j = j / N``.

    Shape
    -----
    returns ``(n, *size)`` real, ``dtype``.
    """
    size = _check_args(n, size, alpha, tau, sigma, 2)
    noise = torch.randn((n, *size), generator=generator, dtype=torch.float64).to(device)
    freqs = [torch.fft.fftfreq(s, 1.0 / s, dtype=torch.float64, device=noise.device) for s in size[:-1]]
    freqs.append(torch.fft.rfftfreq(size[-1], 1.0 / size[-1], dtype=torch.float64, device=noise.device))
    amp = _amplitudes(freqs, 4 * math.pi**2, alpha=alpha, tau=tau, sigma=sigma, zero_mean=zero_mean)  # (*size[:-1], F)
    axes = tuple(range(-len(size), 0))
    # ortho-normalised white noise has unit-variance Hermitian coefficients; norm="forward"
    # then sums amp_k xi_k e^{2 pi i k x}
    white = torch.fft.rfftn(noise, dim=axes, norm="ortho")  # (n, *size[:-1], F) complex128
    field = torch.fft.irfftn(amp * white, s=size, dim=axes, norm="forward")
    return field.to(dtype)


def neumann_grf(
    n: int,
    size: int | Sequence[int],
    *,
    alpha: float,
    tau: float,
    sigma: float = 1.0,
    zero_mean: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Samples of a GRF with zero-flux (cosine) eigenbasis at the nodes ``j / (N - 1)`` of ``[0, 1]^d``.

    Shape
    -----
    returns ``(n, *size)`` real, ``dtype``.
    """
    size = _check_args(n, size, alpha, tau, sigma, 2)
    xi = torch.randn((n, *size), generator=generator, dtype=torch.float64).to(device)
    bases, ks = [], []
    for s in size:
        k = torch.arange(s, dtype=torch.float64, device=xi.device)
        x = torch.arange(s, dtype=torch.float64, device=xi.device) / (s - 1)
        norm = torch.where(k == 0, 1.0, math.sqrt(2.0))
        bases.append(norm * torch.cos(math.pi * x[:, None] * k[None, :]))  # (N points, N modes)
        ks.append(k)
    amp = _amplitudes(ks, math.pi**2, alpha=alpha, tau=tau, sigma=sigma, zero_mean=zero_mean)  # (*size)
    coef = amp * xi  # (n, *modes)
    if len(size) == 1:
        field = coef @ bases[0].T
    else:
        field = bases[0] @ coef @ bases[1].T  # (n, N0, N1)
    return field.to(dtype)
