"""spectral.analysis.error_spectrum / fraction_above / plot_error_spectra against numpy and analytic spectra."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from spectral.analysis import error_spectrum, fraction_above, plot_error_spectra


def _numpy_error_spectrum(pred: np.ndarray, target: np.ndarray, ndim: int) -> np.ndarray:
    """Independent reference: numpy FFT, radii from fftfreq, bincount, ratio of sums."""
    grid = pred.shape[-ndim:]
    axes = tuple(range(-ndim, 0))
    coeff = np.fft.fftn(pred - target, axes=axes) / np.prod(grid)
    power = (np.abs(coeff) ** 2).reshape(-1, *grid).sum(0)
    k = np.meshgrid(*[np.fft.fftfreq(n) * n for n in grid], indexing="ij")
    shells = np.rint(np.sqrt(sum(ki**2 for ki in k))).astype(int).ravel()
    ref = (np.abs(target) ** 2).sum() / np.prod(grid)
    return np.bincount(shells, weights=power.ravel()) / ref


@pytest.mark.parametrize("grid", [(16,), (12, 15), (9, 8, 7)], ids=lambda g: "x".join(map(str, g)))
def test_matches_numpy_and_adds_up_to_normalised_mse(grid, generator):
    ndim = len(grid)
    target = torch.randn(5, 2, *grid, generator=generator, dtype=torch.float64)
    pred = target + 0.3 * torch.randn(5, 2, *grid, generator=generator, dtype=torch.float64)
    spectrum, k = error_spectrum(pred, target, ndim=ndim)
    want = _numpy_error_spectrum(pred.numpy(), target.numpy(), ndim)
    np.testing.assert_allclose(spectrum.numpy(), want, rtol=1e-10, atol=1e-14)
    assert spectrum.dtype == torch.float64 and torch.equal(k, torch.arange(len(want)))
    nmse = ((pred - target) ** 2).sum() / (target**2).sum()
    assert spectrum.sum().item() == pytest.approx(nmse.item(), rel=1e-12)


def test_per_sample_adds_up_to_mean_squared_relative_error(generator):
    target = torch.randn(6, 1, 10, 10, generator=generator, dtype=torch.float64)
    target = target * torch.arange(1, 7, dtype=torch.float64)[:, None, None, None]  # unequal sample norms
    pred = target + torch.randn(6, 1, 10, 10, generator=generator, dtype=torch.float64)
    spectrum, _ = error_spectrum(pred, target, normalization="per-sample")
    rel2 = ((pred - target) ** 2).sum((1, 2, 3)) / (target**2).sum((1, 2, 3))
    assert spectrum.sum().item() == pytest.approx(rel2.mean().item(), rel=1e-12)
    glob, _ = error_spectrum(pred, target)
    assert abs(glob.sum().item() - spectrum.sum().item()) > 1e-3  # the two normalisations differ here


def test_single_mode_error_lands_in_its_shell():
    n = 32
    x = torch.arange(n, dtype=torch.float64) / n
    target = 2.0 * torch.ones(3, 1, n, n, dtype=torch.float64)  # mean energy 4
    error = 0.5 * torch.cos(2 * math.pi * (3 * x[:, None] + 4 * x[None, :]))  # |k| = 5, mean energy 0.125
    spectrum, k = error_spectrum(target + error, target)
    expected = torch.zeros_like(spectrum)
    expected[5] = 0.125 / 4.0
    torch.testing.assert_close(spectrum, expected, rtol=0, atol=1e-15)
    assert fraction_above(spectrum, k, 4) == pytest.approx(1.0)
    assert fraction_above(spectrum, k, 5) == pytest.approx(0.0, abs=1e-12)


def test_fraction_above_two_modes():
    n = 24
    x = torch.arange(n, dtype=torch.float64) / n
    target = torch.ones(2, n, n, dtype=torch.float64)
    low = 1.0 * torch.sin(2 * math.pi * 2 * x)[:, None].expand(n, n)  # shell 2, energy 1/2
    high = 0.5 * torch.cos(2 * math.pi * 9 * x)[None, :].expand(n, n)  # shell 9, energy 1/8
    spectrum, k = error_spectrum(target + low + high, target)
    assert fraction_above(spectrum, k, 7) == pytest.approx(0.125 / 0.625, rel=1e-12)
    assert fraction_above(spectrum, k, 1) == pytest.approx(1.0, rel=1e-12)


def test_complex_and_float32_inputs(generator):
    t = torch.randn(3, 8, 8, generator=generator, dtype=torch.complex128)
    p = t + 0.1 * torch.randn(3, 8, 8, generator=generator, dtype=torch.complex128)
    s, _ = error_spectrum(p, t)
    assert s.sum().item() == pytest.approx(((p - t).abs() ** 2).sum().item() / (t.abs() ** 2).sum().item(), rel=1e-12)
    s32, _ = error_spectrum(p.real.float(), t.real.float())
    s64, _ = error_spectrum(p.real, t.real)
    torch.testing.assert_close(s32, s64, rtol=1e-5, atol=1e-9)


def test_plot_error_spectra(tmp_path):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    t = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    spectra = {"a": error_spectrum(t + 0.1, t), "b": error_spectrum(t * 1.1, t)}
    ax = plot_error_spectra(spectra, kept_mode=5, title="errors", log_x=True)
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log" and ax.get_title() == "errors"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["a", "b", "highest kept mode (5)"]
    assert tuple(ax.get_lines()[2].get_xdata()) == (5, 5)
    ax.figure.savefig(tmp_path / "spectra.png")
    assert (tmp_path / "spectra.png").stat().st_size > 0


def test_bad_input():
    t = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"same shape .* got \(2, 1, 8, 8\) and \(2, 1, 8, 9\)"):
        error_spectrum(t, torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match=r"with 3 grid axes, got \(8, 8\)"):
        error_spectrum(t[0, 0], t[0, 0], ndim=3)
    with pytest.raises(ValueError, match=r"normalization must be one of \('global', 'per-sample'\), got str 'sum'"):
        error_spectrum(t, t, normalization="sum")
    with pytest.raises(ValueError, match=r"ndim must be an int in \[1, 3\], got 4"):
        error_spectrum(t, t, ndim=4)
    with pytest.raises(TypeError, match="pred must have a floating or complex dtype, got torch.int64"):
        error_spectrum(t.long(), t)
    spectrum, k = error_spectrum(t + 1, t + 1e-3)
    with pytest.raises(ValueError, match=r"equal length, got \(5,\) and \(7,\)"):
        fraction_above(spectrum[:5], k, 2)
    with pytest.raises(ValueError, match="positive total, got 0.0"):
        fraction_above(torch.zeros(3), torch.arange(3), 1)
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_error_spectra({})


def test_the_old_import_path_re_exports_the_same_functions():
    import operators.error_spectrum as old
    import spectral.analysis as new

    assert old.__all__ == ["error_spectrum", "fraction_above", "plot_error_spectra", "NORMALIZATIONS"]
    for name in old.__all__:
        assert getattr(old, name) is getattr(new, name)


def test_importing_spectral_analysis_does_not_import_matplotlib():
    code = "import sys, spectral.analysis; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("normalization", ["global", "per-sample"])
def test_all_zero_target_is_a_named_error(normalization):
    """An all-zero target returned 1e304 (the energy was clamped to the smallest float64)."""
    t = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"error_spectrum: target .*zero energy .*undefined"):
        error_spectrum(t + 1, t, normalization=normalization)


def test_per_sample_names_the_zero_energy_samples():
    t = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    t[1] = 0
    t[3] = 0
    with pytest.raises(ValueError, match=r"target samples \[1, 3\] have zero energy"):
        error_spectrum(t + 1, t, normalization="per-sample")
    spectrum, _ = error_spectrum(t + 1, t)  # global: the set as a whole has energy
    assert spectrum.sum().item() == pytest.approx(4 * 64 / (t**2).sum().item(), rel=1e-12)


def test_argument_types_are_named():
    t = torch.randn(2, 1, 8, 8)
    with pytest.raises(TypeError, match=r"ndim must be an int, got bool True"):
        error_spectrum(t, t, ndim=True)
    with pytest.raises(TypeError, match=r"error_spectrum: target must be a torch.Tensor, got numpy.ndarray"):
        error_spectrum(t, t.numpy())
    with pytest.raises(TypeError, match=r"k must be a real number, got str '2'"):
        fraction_above(torch.ones(3), torch.arange(3), "2")
    with pytest.raises(TypeError, match=r"kept_mode must be an int or None, got float 5.5"):
        plot_error_spectra({"a": error_spectrum(t + 1, t)}, kept_mode=5.5)


def test_empty_set_of_samples_and_meta():
    p = torch.zeros(0, 2, 8, 8, requires_grad=True)
    spectrum, k = error_spectrum(p, torch.zeros(0, 2, 8, 8))
    assert spectrum.shape == k.shape == (7,) and spectrum.dtype == torch.float64 and (spectrum == 0).all()
    spectrum.sum().backward()
    assert p.grad.shape == p.shape
    m = torch.empty(3, 2, 8, 8, device="meta")
    sm, km = error_spectrum(m, m, normalization="per-sample")
    assert sm.device.type == "meta" and sm.shape == (7,) and sm.dtype == torch.float64
