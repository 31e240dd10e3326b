"""Darcy generator: second-order convergence to a manufactured solution, invariants, grids, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from operators.datasets.darcy import _nested_dissection, darcy, darcy_solve

pytestmark = pytest.mark.usefixtures("one_thread")


PI = np.pi


def manufactured(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u = sin(pi x) sin(pi y) e^{x y}, a = 2 + sin(2 pi x + 1) cos(3 pi y); f = -div(a grad u) by hand."""
    x = np.arange(m + 1) / m
    X, Y = np.meshgrid(x, x, indexing="ij")
    s, e = np.sin(PI * X) * np.sin(PI * Y), np.exp(X * Y)
    u = s * e
    ux = (PI * np.cos(PI * X) * np.sin(PI * Y) + Y * s) * e
    uy = (PI * np.sin(PI * X) * np.cos(PI * Y) + X * s) * e
    uxx = (-(PI**2) * s + 2 * Y * PI * np.cos(PI * X) * np.sin(PI * Y) + Y**2 * s) * e
    uyy = (-(PI**2) * s + 2 * X * PI * np.sin(PI * X) * np.cos(PI * Y) + X**2 * s) * e
    a = 2 + np.sin(2 * PI * X + 1) * np.cos(3 * PI * Y)
    ax = 2 * PI * np.cos(2 * PI * X + 1) * np.cos(3 * PI * Y)
    ay = -3 * PI * np.sin(2 * PI * X + 1) * np.sin(3 * PI * Y)
    f = -(ax * ux + ay * uy + a * (uxx + uyy))
    return a, f, u


@pytest.mark.parametrize("face_mean", ["harmonic", "arithmetic"])
def test_manufactured_solution_converges_at_second_order(face_mean):
    errors = []
    for m in (16, 32, 64):
        a, f, u = manufactured(m)
        errors.append(np.abs(darcy_solve(a, f, face_mean=face_mean) - u).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.85) & (orders < 2.15)), orders
    assert errors[-1] < 2e-3


def test_constant_coefficient_matches_the_series_solution():
    """a = 1, f = 1: u = sum over odd j, k of 16 / (pi^4 j k (j^2 + k^2)) sin(j pi x) sin(k pi y)."""
    m = 64
    u = darcy_solve(np.ones((m + 1, m + 1)))
    x = np.arange(m + 1) / m
    j = np.arange(1, 400, 2)
    sj = np.sin(PI * np.outer(x, j))  # (M+1, J)
    coef = 16 / (PI**4 * j[:, None] * j[None, :] * (j[:, None] ** 2 + j[None, :] ** 2))
    exact = sj @ coef @ sj.T
    assert np.abs(u - exact).max() < 1e-3 * exact.max()  # O(h^2) = O(2.4e-4)
    assert u[m // 2, m // 2] == pytest.approx(0.0736713532814, rel=1e-3)  # the known centre value


def test_nested_dissection_is_a_permutation():
    for m in (1, 2, 5, 7, 31):
        assert np.array_equal(np.sort(_nested_dissection(m)), np.arange(m * m))


def test_generator_invariants_and_nested_grids():
    data = darcy(3, resolution=(8, 16), solver_resolution=32, cache=False, progress=False)
    coarse, fine = data[8], data[16]
    assert fine.inputs.shape == (3, 1, 16, 16) and fine.inputs.dtype == torch.float32
    assert set(fine.inputs.unique().tolist()) == {3.0, 12.0}
    assert torch.equal(coarse.inputs, fine.inputs[..., ::2, ::2])
    assert torch.equal(coarse.targets, fine.targets[..., ::2, ::2])
    # boundary x = 0 and y = 0 are on the returned grid (u = 0 there); maximum principle: u > 0 inside
    assert torch.all(fine.targets[..., 0, :] == 0) and torch.all(fine.targets[..., :, 0] == 0)
    assert torch.all(fine.targets[..., 1:, 1:] > 0)
    # the solution is the FD solution of its own coefficient (solver grid = 2 x returned grid here)
    closed = darcy(3, resolution=(17, 33), endpoint=True, solver_resolution=32, cache=False, progress=False)
    a = closed[33].inputs[0, 0].double().numpy()
    np.testing.assert_allclose(darcy_solve(a), closed[33].targets[0, 0].numpy(), rtol=1e-5, atol=1e-9)
    assert torch.equal(closed[33].inputs[..., :-1:2, :-1:2], fine.inputs)
    assert torch.all(closed[17].targets[..., -1, :] == 0)  # endpoint=True keeps x = 1


def test_total_pressure_obeys_the_energy_bounds():
    """Dirichlet principle: 3 <= a <= 12 gives sum(u_1) / 12 <= sum(u) <= sum(u_1) / 3 (f = 1).

    min_v 1/2 v'A(a)v - sum(v) = -1/2 sum(u_a) and A(a) is monotone in the face coefficients, which
    lie in [3, 12]; u_1 is the constant-coefficient solution, u_c = u_1 / c.
    """
    data = darcy(4, resolution=32, solver_resolution=32, cache=False, progress=False)  # full solver grid
    total_1 = darcy_solve(np.ones((33, 33))).sum()
    totals = data.targets.double().sum(dim=(1, 2, 3))
    assert torch.all(totals <= total_1 / 3 * (1 + 1e-6)) and torch.all(totals >= total_1 / 12 * (1 - 1e-6))
    assert totals.min() > total_1 / 11 and totals.max() < total_1 / 3.5  # mixed media: strictly inside


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=-1), r"n must be an int >= 1, got -1"),
        (dict(n=2, resolution=48), r"resolution=48 must divide solver_resolution=128 \(endpoint=False\)"),
        (dict(n=2, resolution=64, endpoint=True), r"resolution=64 needs resolution - 1 to divide solver_resolution=128"),
        (dict(n=2, a_low=0), r"a_low must be > 0, got 0.0"),
        (dict(n=2, face_mean="geometric"), r"face_mean must be one of \('harmonic', 'arithmetic'\), got str 'geometric'"),
        (dict(n=2, forcing=float("nan")), r"forcing must be finite, got nan"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        darcy(**kwargs, cache=False)


def test_bad_solver_input():
    with pytest.raises(ValueError, match=r"expected a square \(M \+ 1, M \+ 1\) array with M >= 2, got shape \(4, 5\)"):
        darcy_solve(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"a must be finite and positive, got min -1.0"):
        darcy_solve(-np.ones((5, 5)))
