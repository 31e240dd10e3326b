"""GlobalFilterMixer against materialised circulant / Toeplitz convolutions built in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral.mixers.global_filter import GlobalFilterMixer


def two_sided_kernel(w: np.ndarray, n_src: int) -> dict[int, np.ndarray]:
    """{lag: (D,) values} of the kernel irfft(w, n_src) read two-sided (lag n_src/2 split in halves)."""
    h = np.fft.irfft(w, n=n_src, axis=0)
    out: dict[int, np.ndarray] = {}
    for t in range(n_src):
        if 2 * t == n_src:
            out[t], out[-t] = h[t] / 2, h[t] / 2
        else:
            out[t if 2 * t < n_src else t - n_src] = h[t]
    return out


def conv_matrix(kernel: dict[int, np.ndarray], n: int, circular: bool) -> np.ndarray:
    """(D, N, N) matrix of y_t = sum_s k[t - s] x_s: the lags wrapped mod N, or not at all."""
    d = next(iter(kernel.values())).shape[0]
    mat = np.zeros((d, n, n))
    for t in range(n):
        for s in range(n):
            for lag, val in kernel.items():
                if (circular and (lag - (t - s)) % n == 0) or (not circular and lag == t - s):
                    mat[:, t, s] += val
    return mat


def reference(module: GlobalFilterMixer, x: torch.Tensor) -> np.ndarray:
    w = torch.view_as_complex(module.weight.detach()).numpy()
    kern = two_sided_kernel(w, module.filter_len)
    if module.boundary == "zero":  # documented lags -(max_len - 1) .. max_len - 1
        kern = {lag: val for lag, val in kern.items() if abs(lag) < module.max_len}
    mat = conv_matrix(kern, x.shape[1], module.boundary == "circular")
    return np.einsum("dts,bsd->btd", mat, x.numpy())


@pytest.mark.parametrize("boundary", ["circular", "zero"])
@pytest.mark.parametrize("max_len,n", [(16, 16), (16, 9), (15, 40), (12, 5), (7, 7)])
def test_matches_materialised_convolution(boundary, max_len, n):
    module = GlobalFilterMixer(3, max_len, boundary=boundary, init_std=1.0, dtype=torch.float64)
    x = torch.randn(2, n, 3, dtype=torch.float64)
    np.testing.assert_allclose(module(x).detach().numpy(), reference(module, x), atol=1e-12)


@pytest.mark.parametrize("max_len", [4, 5, 16])
@pytest.mark.parametrize("n_rel", ["below", "at", "above"])
def test_zero_boundary_impulse_response_spans_the_documented_lags(max_len, n_rel):
    """Impulses at every token against a direct convolution over lags -(max_len-1)..max_len-1 only.

    Before the fix the split tap h[max_len] / 2 appeared at lags +-max_len once N > max_len
    (it links no tokens for N <= max_len, so it was never trained there).
    """
    n = {"below": max_len - 1, "at": max_len, "above": 2 * max_len + 3}[n_rel]
    module = GlobalFilterMixer(2, max_len, boundary="zero", init_std=1.0, dtype=torch.float64)
    h = np.fft.irfft(torch.view_as_complex(module.weight.detach()).numpy(), n=2 * max_len, axis=0)  # (2 max_len, D)
    x = torch.eye(n, dtype=torch.float64)[:, :, None].expand(n, n, 2)  # batch s: impulse at token s
    want = np.zeros((n, n, 2))
    for s in range(n):
        for t in range(n):
            if abs(t - s) <= max_len - 1:
                want[s, t] = h[(t - s) % (2 * max_len)]
    np.testing.assert_allclose(module(x).detach().numpy(), want, atol=1e-12)


@pytest.mark.parametrize("n,shift", [(17, 5), (64, 13), (20, 7)])
def test_circular_shift_equivariance(n, shift):
    module = GlobalFilterMixer(4, 32, init_std=1.0, dtype=torch.float64)
    x = torch.randn(2, n, 4, dtype=torch.float64)
    torch.testing.assert_close(module(torch.roll(x, shift, dims=1)), torch.roll(module(x), shift, dims=1))


@pytest.mark.parametrize("pad", [(0, 5), (3, 0), (2, 4)])
def test_zero_boundary_padding_gives_the_unpadded_outputs(pad):
    module = GlobalFilterMixer(4, 16, boundary="zero", init_std=1.0, dtype=torch.float64)
    x = torch.randn(2, 11, 4, dtype=torch.float64)
    left, right = pad
    xp = torch.cat([torch.randn(2, left, 4, dtype=torch.float64), x, torch.randn(2, right, 4, dtype=torch.float64)], 1)
    mask = torch.zeros(2, xp.shape[1], dtype=torch.bool)
    mask[:, left : left + 11] = True
    yp = module(xp, mask)
    torch.testing.assert_close(yp[:, left : left + 11], module(x))
    assert (yp[~mask] == 0).all()


def test_circular_padding_is_zero_filling():
    module = GlobalFilterMixer(4, 16, init_std=1.0, dtype=torch.float64)
    x = torch.randn(2, 12, 4, dtype=torch.float64)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 8:] = False
    xz = x.clone()
    xz[1, 8:] = 0
    want = module(xz)
    want[1, 8:] = 0
    torch.testing.assert_close(module(x, mask), want)


def test_weight_shape_and_errors():
    assert GlobalFilterMixer(8, 10).weight.shape == (6, 8, 2)
    assert GlobalFilterMixer(8, 10, boundary="zero").weight.shape == (11, 8, 2)
    with pytest.raises(ValueError, match=r"boundary must be one of \('circular', 'zero'\), got str 'reflect'"):
        GlobalFilterMixer(8, 10, boundary="reflect")
    with pytest.raises(ValueError, match="max_len must be an int >= 1, got 0"):
        GlobalFilterMixer(8, 0)
