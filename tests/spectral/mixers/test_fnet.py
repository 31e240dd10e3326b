"""FNetMixer against numpy's 2-D FFT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral.mixers.fnet import FNetMixer, fnet_mix


@pytest.mark.parametrize("norm", ["ortho", "forward", "backward"])
@pytest.mark.parametrize("n,d", [(8, 8), (7, 6), (6, 7), (1, 4), (13, 1), (64, 3)])
def test_matches_real_part_of_numpy_fft2(n, d, norm):
    x = torch.randn(2, n, d, dtype=torch.float64)
    got = FNetMixer(fft_norm=norm)(x)
    want = np.fft.fft2(x.numpy(), axes=(1, 2), norm=norm).real
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


@pytest.mark.parametrize("n,shift", [(16, 3), (15, 4)])
def test_circular_shift_rotates_the_phase(n, shift):
    """FNet is not shift-equivariant: a token shift by s turns into Re(e^{-2 pi i k s / N} Z[k])."""
    x = torch.randn(2, n, 5, dtype=torch.float64)
    z = np.fft.fft2(x.numpy(), axes=(1, 2), norm="ortho")  # (B, N, D)
    phase = np.exp(-2j * np.pi * np.arange(n) * shift / n)[None, :, None]
    got = fnet_mix(torch.roll(x, shift, dims=1))
    np.testing.assert_allclose(got.numpy(), (phase * z).real, atol=1e-12)


def test_padding_is_zero_filling():
    x = torch.randn(2, 10, 4, dtype=torch.float64)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 6:] = False
    got = FNetMixer()(x, mask)
    xz = x.clone()
    xz[0, 6:] = 0
    want = np.fft.fft2(xz.numpy(), axes=(1, 2), norm="ortho").real
    want[0, 6:] = 0
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_bad_norm():
    with pytest.raises(ValueError, match=r"fft_norm must be one of \('forward', 'backward', 'ortho'\), got str 'unit'"):
        FNetMixer(fft_norm="unit")
