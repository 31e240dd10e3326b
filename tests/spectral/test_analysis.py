"""radial_spectrum: Parseval, analytic single-mode spectra, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral import radial_spectrum


@pytest.mark.parametrize("grid", [(64,), (17,), (32, 32), (15, 20), (8, 9, 10)], ids=lambda g: "x".join(map(str, g)))
def test_parseval_shells_sum_to_mean_energy(grid):
    x = torch.randn(3, 2, *grid, dtype=torch.float64)
    energy, k = radial_spectrum(x, ndim=len(grid))
    torch.testing.assert_close(energy.sum(-1), x.pow(2).mean(tuple(range(-len(grid), 0))))
    assert energy.shape[:2] == (3, 2) and k.shape == energy.shape[-1:]
    assert (energy >= 0).all()


def test_single_mode_lands_in_its_shell():
    n = 32
    t = torch.arange(n, dtype=torch.float64) / n
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    u = torch.cos(2 * torch.pi * (3 * xx + 4 * yy))  # |k| = 5, mean(u^2) = 1/2
    energy, _ = radial_spectrum(u, ndim=2)
    expected = np.zeros(energy.shape[-1])
    expected[5] = 0.5
    np.testing.assert_allclose(energy.numpy(), expected, atol=1e-12)


def test_complex_and_errors():
    z = torch.randn(2, 16, dtype=torch.complex128)
    energy, _ = radial_spectrum(z, ndim=1)
    torch.testing.assert_close(energy.sum(-1), z.abs().pow(2).mean(-1))
    with pytest.raises(ValueError, match=r"ndim must be an int in \[1, 3\], got 4"):
        radial_spectrum(z, ndim=4)
    with pytest.raises(ValueError, match=r"expected at least 2 dims \(\.\.\., \*grid\), got \(16,\)"):
        radial_spectrum(torch.randn(16), ndim=2)
    with pytest.raises(TypeError, match="floating or complex dtype, got torch.int64"):
        radial_spectrum(torch.arange(16), ndim=1)


def test_non_tensor_raises_type_error_naming_the_type():
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        radial_spectrum([[1.0, 2.0], [3.0, 4.0]], ndim=1)


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_complex32_is_transformed_in_complex64():
    """complex32 has no CPU FFT (NotImplementedError before): its spectrum is computed in complex64."""
    z = torch.randn(2, 3, 8, 6, dtype=torch.complex64).to(torch.complex32)
    energy, k = radial_spectrum(z, ndim=2)
    want, want_k = radial_spectrum(z.to(torch.complex128), ndim=2)  # the same half-precision values, exactly
    assert energy.dtype == torch.float32
    torch.testing.assert_close(energy, want.float())
    torch.testing.assert_close(k, want_k)


@pytest.mark.parametrize("ndim,error,pattern", [
    (True, TypeError, r"ndim must be an int, got bool True"),  # was taken as ndim=1
    (2.0, TypeError, r"ndim must be an int, got float 2.0"),
    ("2", TypeError, r"ndim must be an int, got str '2'"),
    (0, ValueError, r"ndim must be an int in \[1, 3\], got 0"),
])
def test_ndim_errors_name_the_argument(ndim, error, pattern):
    with pytest.raises(error, match=pattern):
        radial_spectrum(torch.randn(2, 8, 8), ndim)


def test_empty_grid_axis_is_a_named_error():
    with pytest.raises(ValueError, match=r"empty grid axis: shape \(2, 0, 8\)"):
        radial_spectrum(torch.randn(2, 0, 8), 2)


@pytest.mark.parametrize("grid", [(1,), (2,), (7,), (8,), (5, 6), (9, 9), (2, 3, 4), (7, 8, 9), (33, 17)])
def test_shell_count_matches_the_largest_shell_index(grid):
    """The number of shells is computed from the grid (no device sync, works on meta): check it against
    the shells themselves."""
    from spectral.analysis import shell_index

    energy, k = radial_spectrum(torch.randn(*grid, dtype=torch.float64), len(grid))
    assert energy.shape[-1] == k.shape[0] == int(shell_index(grid).max()) + 1


def test_empty_batch_and_meta():
    x = torch.randn(0, 3, 8, 9, requires_grad=True)
    energy, k = radial_spectrum(x, 2)
    assert energy.shape == (0, 3, 7) and energy.dtype == torch.float32 and k.tolist() == list(range(7))
    energy.sum().backward()
    assert x.grad.shape == x.shape
    e64, _ = radial_spectrum(torch.zeros(2, 0, 5, dtype=torch.complex128), 1)
    assert e64.shape == (2, 0, 3) and e64.dtype == torch.float64
    em, km = radial_spectrum(torch.empty(2, 3, 8, 9, device="meta"), 2)
    assert em.device.type == "meta" and em.shape == (2, 3, 7) and km.shape == (7,)
