"""Filter resampling, masks and helpers of spectral.mixers._common against naive references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral.fft import resample
from spectral.mixers._common import (
    check_mask,
    check_sequence,
    filter_kernel,
    masked_mean,
    next_fast_len,
    resample_filter,
)


def random_response(n: int, d: int, seed: int = 0) -> np.ndarray:
    """rfft bins of a random real kernel of length n: (n // 2 + 1, d) complex128."""
    return np.fft.rfft(np.random.default_rng(seed).standard_normal((n, d)), axis=0)


def interpolant(w: np.ndarray, n: int, freqs: np.ndarray) -> np.ndarray:
    """Trigonometric interpolant H(f) of the rfft response w (n points) by a naive DTFT.

    H(f) = sum over two-sided lags l of h[l] exp(-2 pi i f l), with the lag n/2 of an
    even n split in halves between +n/2 and -n/2.
    """
    h = np.fft.irfft(w, n=n, axis=0)  # (n, d)
    lags, vals = [], []
    for t in range(n):
        if 2 * t == n:
            lags += [t, -t]
            vals += [h[t] / 2, h[t] / 2]
        else:
            lags.append(t if 2 * t < n else t - n)
            vals.append(h[t])
    mat = np.exp(-2j * np.pi * np.outer(freqs, lags))  # (len(freqs), lags)
    return mat @ np.array(vals)


@pytest.mark.parametrize("n_src", [8, 9, 12])
@pytest.mark.parametrize("n_dst", [1, 2, 5, 6, 8, 9, 12, 13, 24, 31])
def test_wrap_samples_the_trigonometric_interpolant(n_src, n_dst):
    w = random_response(n_src, 3)
    got = resample_filter(torch.from_numpy(w), n_src, n_dst, "wrap").numpy()
    want = interpolant(w, n_src, np.arange(n_dst // 2 + 1) / n_dst)
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("n_src,factor", [(8, 2), (9, 3), (12, 2)])
def test_wrap_is_exact_on_shared_frequencies(n_src, factor):
    w = random_response(n_src, 2, seed=1)
    w[0] = w[0].real  # a real kernel's DC bin
    up = resample_filter(torch.from_numpy(w), n_src, n_src * factor, "wrap").numpy()
    np.testing.assert_allclose(up[::factor], w, atol=1e-12)
    if n_src % factor == 0:
        down = resample_filter(torch.from_numpy(w), n_src, n_src // factor, "wrap").numpy()
        np.testing.assert_allclose(down, w[::factor][: n_src // factor // 2 + 1], atol=1e-12)


@pytest.mark.parametrize("n_src,n_dst", [(8, 16), (9, 20), (12, 30)])
def test_wrap_upsampling_matches_fourier_interpolation_of_the_response(n_src, n_dst):
    w = random_response(n_src, 2, seed=2)
    full = np.concatenate([w, np.conj(w[1 : (n_src + 1) // 2][::-1])], axis=0)  # two-sided, (n_src, d)
    want = resample(torch.from_numpy(full.T.copy()), n_dst).numpy().T[: n_dst // 2 + 1]
    got = resample_filter(torch.from_numpy(w), n_src, n_dst, "wrap").numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("n_src", [8, 9, 16])
@pytest.mark.parametrize("n", [3, 8, 11])
def test_crop_gives_linear_convolution(n_src, n):
    """Placing the kernel for a 2n FFT gives the exact linear convolution with its lags |l| < n_src / 2."""
    rng = np.random.default_rng(3)
    h = rng.standard_normal(n_src)
    x = rng.standard_normal(n)
    hp = filter_kernel(torch.from_numpy(h), n_src, 2 * n, "crop").numpy()
    y = np.fft.irfft(np.fft.rfft(x, n=2 * n) * np.fft.rfft(hp), n=2 * n)[:n]

    def lag(k):  # two-sided reading of the circular kernel at lag k; an even n_src's lag n_src/2 is dropped
        return h[k % n_src] if 2 * abs(k) < n_src else 0.0

    want = np.array([sum(lag(t - s) * x[s] for s in range(n)) for t in range(n)])
    np.testing.assert_allclose(y, want, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(n_src=st.integers(1, 20), n_dst=st.integers(1, 40))
def test_real_response_stays_real_and_matches(n_src, n_dst):
    w = np.random.default_rng(n_src * 41 + n_dst).standard_normal((n_src // 2 + 1, 2))
    got = resample_filter(torch.from_numpy(w), n_src, n_dst, "wrap", dim=0)
    assert not got.is_complex()
    want = interpolant(w.astype(np.complex128), n_src, np.arange(n_dst // 2 + 1) / n_dst)
    # a real response means a real, even kernel: its interpolant is real
    np.testing.assert_allclose(got.numpy(), want.real, atol=1e-12)
    np.testing.assert_allclose(want.imag, 0.0, atol=1e-12)


def test_resample_filter_on_another_axis_and_errors():
    w = torch.from_numpy(random_response(10, 4).T.copy())  # (d, 6)
    got = resample_filter(w, 10, 7, dim=-1)
    want = resample_filter(w.T, 10, 7, dim=0).T
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match=r"expected 6 rfft bins for n_src=10.*got shape \(4, 5\)"):
        resample_filter(w[:, :5], 10, 7, dim=-1)
    with pytest.raises(ValueError, match=r"placement must be one of \('wrap', 'crop'\)"):
        filter_kernel(torch.zeros(4), 4, 8, "mirror")
    with pytest.raises(ValueError, match=r"placement must be one of \('wrap', 'crop'\), got str 'mirror'"):
        resample_filter(w, 10, 7, "mirror", dim=-1)
    with pytest.raises(TypeError, match=r"n_dst must be an int, got bool True"):
        resample_filter(w, 10, True, dim=-1)
    with pytest.raises(TypeError, match=r"n_src must be an int, got float 10.0"):
        resample_filter(w, 10.0, 7, dim=-1)


def test_next_fast_len():
    def smooth(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 300):
        m = next_fast_len(n)
        assert m >= n and smooth(m) and all(not smooth(k) for k in range(n, m))
    with pytest.raises(ValueError, match=r"n must be an int >= 1, got 0"):
        next_fast_len(0)
    with pytest.raises(TypeError, match=r"n must be an int, got float 7.5"):
        next_fast_len(7.5)  # looped forever before


def test_masked_mean_ignores_padding_and_empty_rows():
    x = torch.randn(3, 5, 2, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    x_nan = x.masked_fill(~mask[..., None], float("nan"))
    got = masked_mean(x_nan, mask)
    torch.testing.assert_close(got[0], x[0, [0, 1, 3]].mean(0))
    torch.testing.assert_close(got[1], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(got[2], x[2].mean(0))


def test_checks_name_the_argument_and_shape():
    with pytest.raises(ValueError, match=r"Mix: expected x of shape \(B, N, 4\), got \(2, 3, 5\)"):
        check_sequence(torch.zeros(2, 3, 5), 4, "Mix")
    with pytest.raises(TypeError, match="real floating dtype, got torch.complex64"):
        check_sequence(torch.zeros(2, 3, 4, dtype=torch.complex64), 4, "Mix")
    with pytest.raises(TypeError, match="real floating dtype, got torch.int64"):
        check_sequence(torch.zeros(2, 3, 4, dtype=torch.long), 4, "Mix")
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 3\).*got \(2, 4\)"):
        check_mask(torch.ones(2, 4, dtype=torch.bool), (2, 3), "Mix")
    with pytest.raises(TypeError, match="dtype torch.bool.*got torch.float32"):
        check_mask(torch.ones(2, 3), (2, 3), "Mix")


@pytest.mark.parametrize("n_src, n_dst, placement", [(8, 16, "wrap"), (8, 12, "wrap"), (9, 16, "wrap"), (8, 15, "crop")])
def test_resample_filter_does_not_leave_edge_bin_imaginary_parts_to_the_backend(n_src, n_dst, placement, request):
    """A learned filter's DC and Nyquist bins have imaginary parts; the kernel is the Hermitian part's,
    whatever the inverse FFT backend does with them (some complex-to-real transforms do not drop them)."""
    w = torch.randn(n_src // 2 + 1, 3, dtype=torch.complex128, generator=torch.Generator().manual_seed(n_src))
    expected = resample_filter(w, n_src, n_dst, placement)
    request.getfixturevalue("leaky_irfft")
    torch.testing.assert_close(resample_filter(w, n_src, n_dst, placement), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("placement", ["wrap", "crop"])
def test_resample_filter_on_meta_gives_meta_of_the_right_shape(placement):
    """"crop" selected its lags with nonzero() on the filter's device, which meta tensors cannot do."""
    w = torch.empty(5, 3, dtype=torch.complex64, device="meta")
    out = resample_filter(w, 8, 15, placement)
    assert out.device.type == "meta" and out.shape == (8, 3) and out.dtype == torch.complex64
    h = torch.empty(3, 8, device="meta")
    assert filter_kernel(h, 8, 12, placement, dim=-1).shape == (3, 12)
