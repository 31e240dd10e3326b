"""LpLoss and H1Loss against analytic norms, naive formulas and grid refinement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from operators.losses import H1Loss, LpLoss


def _periodic_grid(n, d=2):
    t = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(*[t] * d, indexing="ij")


def _node_grid(n, d=2):
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.meshgrid(*[t] * d, indexing="ij")


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, math.inf])
def test_relative_lp_matches_naive_formula(p, generator):
    pred = torch.randn(5, 2, 9, 7, dtype=torch.float64, generator=generator)
    target = torch.randn(5, 2, 9, 7, dtype=torch.float64, generator=generator)
    e, t = (pred - target).numpy().reshape(5, -1), target.numpy().reshape(5, -1)
    ref = np.linalg.norm(e, ord=p, axis=1) / np.linalg.norm(t, ord=p, axis=1)
    np.testing.assert_allclose(LpLoss(2, p)(pred, target).item(), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(LpLoss(2, p, reduction="sum")(pred, target).item(), ref.sum(), rtol=1e-12)


@pytest.mark.parametrize("n", [16, 17, 32])
def test_absolute_l2_is_grid_independent_on_periodic_grids(n):
    x, y = _periodic_grid(n)
    u = (torch.sin(2 * math.pi * x) * torch.sin(2 * math.pi * y))[None, None]  # ||u||_2 = 1/2 exactly
    loss = LpLoss(2, relative=False)
    np.testing.assert_allclose(loss(u, torch.zeros_like(u)).item(), 0.5, rtol=1e-12)
    # extent scales the norm by sqrt(area)
    np.testing.assert_allclose(LpLoss(2, relative=False, extent=(2.0, 3.0))(u, 0 * u).item(), 0.5 * math.sqrt(6), rtol=1e-12)


def test_absolute_l2_non_periodic_converges_to_the_integral():
    errors = []
    for n in (17, 33, 65):
        x, y = _node_grid(n)
        u = (x * y)[None, None]  # ||x y||_2^2 = 1/9
        errors.append(abs(LpLoss(2, relative=False, periodic=False)(u, 0 * u).item() - 1 / 3))
    assert errors[0] < 1e-2 and errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3  # trapezoid: O(h^2)


@pytest.mark.parametrize("n", [12, 13, 24])
def test_h1_periodic_spectral_is_exact(n):
    x, y = _periodic_grid(n)
    u = (torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y))[None, None]
    exact = math.sqrt(0.25 * (1 + (2 * math.pi) ** 2 + (4 * math.pi) ** 2))
    np.testing.assert_allclose(H1Loss(2, relative=False)(u, 0 * u).item(), exact, rtol=1e-10)
    # the error of a scaled copy, relative: |1 - 1.5| exactly
    np.testing.assert_allclose(H1Loss(2)(1.5 * u, u).item(), 0.5, rtol=1e-10)


def test_h1_periodic_1d_complex_and_extent():
    n, length = 16, 3.0
    x = torch.arange(n, dtype=torch.float64) * length / n
    u = torch.exp(2j * math.pi * 2 * x / length)[None]  # |u| = 1, |u'| = 4 pi / L
    exact = math.sqrt(length * (1 + (4 * math.pi / length) ** 2))
    np.testing.assert_allclose(H1Loss(1, relative=False, extent=length)(u, 0 * u).item(), exact, rtol=1e-10)


def test_h1_finite_differences_on_non_periodic_grid():
    # u = x^2 y: ||u||^2 = 1/15, ||u_x||^2 = 4/9, ||u_y||^2 = 1/5 on the unit square
    exact = math.sqrt(1 / 15 + 4 / 9 + 1 / 5)
    errors = []
    for n in (17, 33, 65):
        x, y = _node_grid(n)
        u = (x**2 * y)[None, None]
        errors.append(abs(H1Loss(2, relative=False, periodic=False)(u, 0 * u).item() - exact))
    assert errors[-1] < 1e-3 and errors[2] < errors[0] / 8  # second-order FD + trapezoid


def test_h1_penalises_derivatives_unlike_l2():
    x, y = _periodic_grid(32)
    base = torch.sin(2 * math.pi * x)[None, None]
    low = base + 0.1 * torch.sin(2 * math.pi * y)[None, None]
    high = base + 0.1 * torch.sin(2 * math.pi * 8 * y)[None, None]
    l2, h1 = LpLoss(2), H1Loss(2)
    np.testing.assert_allclose(l2(low, base).item(), l2(high, base).item(), rtol=1e-10)
    assert h1(high, base).item() > 3 * h1(low, base).item()


def test_3d_and_gradient_flow(generator):
    pred = torch.randn(2, 1, 6, 5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.randn(2, 1, 6, 5, 4, dtype=torch.float64, generator=generator)
    for loss in (LpLoss(3), H1Loss(3), H1Loss(3, periodic=False)):
        pred.grad = None
        loss(pred, target).backward()
        assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"pred and target shapes differ: \(2, 1, 8, 8\) vs \(2, 1, 8, 9\)"):
        LpLoss(2)(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match=r"2 grid axes, got shape \(8, 8\)"):
        LpLoss(2)(torch.zeros(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum'\), got 'max'"):
        LpLoss(2, reduction="max")
    with pytest.raises(ValueError, match=r"p must be >= 1"):
        LpLoss(2, 0.5)
    with pytest.raises(ValueError, match=r"ndim must be 1, 2 or 3, got 4"):
        H1Loss(4)
    with pytest.raises(ValueError, match=r"extent must be a positive number or 2 of them"):
        H1Loss(2, extent=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"at least 3 points, got shape \(1, 1, 2, 8\)"):
        H1Loss(2, periodic=False)(torch.zeros(1, 1, 2, 8), torch.zeros(1, 1, 2, 8))
    assert "relative=True" in repr(H1Loss()) and "p=2.0" in repr(LpLoss())
