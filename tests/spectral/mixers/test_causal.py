"""CausalFourierMixer: direct causal convolution, causality, prefix and padding invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral.mixers.causal import CausalFourierMixer


def direct_causal(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """y[:, t, d] = sum_{l=0}^{min(t, L-1)} kernel[l, d] x[:, t-l, d], by np.convolve per channel."""
    b, n, d = x.shape
    out = np.zeros_like(x)
    for i in range(b):
        for c in range(d):
            out[i, :, c] = np.convolve(x[i, :, c], kernel[:, c])[:n]
    return out


@pytest.mark.parametrize("max_len,n", [(32, 32), (32, 17), (16, 45), (1, 9), (24, 1)])
def test_matches_direct_convolution(max_len, n):
    m = CausalFourierMixer(3, max_len, dtype=torch.float64)
    x = torch.randn(2, n, 3, dtype=torch.float64)
    np.testing.assert_allclose(m(x).detach().numpy(), direct_causal(x.numpy(), m.kernel.detach().numpy()), atol=1e-12)


@pytest.mark.parametrize("n", [17, 64, 1000])
def test_perturbing_token_t_changes_no_earlier_output(n):
    m = CausalFourierMixer(16, 1024)
    x = torch.randn(2, n, 16)
    t = n // 2
    x2 = x.clone()
    x2[:, t] += torch.randn(2, 16)
    y, y2 = m(x), m(x2)
    # float32 FFT rounding only: at most 1e-6 of the output scale (about 1e-6 absolute here,
    # where |y| reaches ~5; see test_causality_is_exact_up_to_double_rounding for float64)
    assert (y2[:, :t] - y[:, :t]).abs().max() <= 1e-6 * y.abs().max()
    assert (y2[:, t] - y[:, t]).abs().max() > 1e-3  # ... while token t itself does change


def test_causality_is_exact_up_to_double_rounding():
    m = CausalFourierMixer(4, 256, dtype=torch.float64)
    x = torch.randn(1, 200, 4, dtype=torch.float64, requires_grad=True)
    m(x)[0, 120].sum().backward()
    assert x.grad[0, 121:].abs().max() < 1e-14 and x.grad[0, 100:121].abs().amin() > 0


@pytest.mark.parametrize("max_len", [64, 20])
def test_prefix_gives_the_same_outputs(max_len):
    m = CausalFourierMixer(8, max_len, dtype=torch.float64)
    x = torch.randn(2, 50, 8, dtype=torch.float64)
    full = m(x)
    for p in (1, 7, 32, 49):
        torch.testing.assert_close(m(x[:, :p]), full[:, :p], atol=1e-12, rtol=0)


def test_padding_at_either_end_gives_the_unpadded_outputs():
    m = CausalFourierMixer(8, 64, dtype=torch.float64)
    x = torch.randn(2, 20, 8, dtype=torch.float64)
    want = m(x)
    xp = torch.cat(
        [torch.randn(2, 5, 8, dtype=torch.float64), x, torch.full((2, 7, 8), float("nan"), dtype=torch.float64)], 1
    )
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, 5:25] = True
    yp = m(xp, mask)
    torch.testing.assert_close(yp[:, 5:25], want)
    assert (yp[~mask] == 0).all()


def test_init_scales_and_errors():
    m = CausalFourierMixer(6, 100)
    energy = m.kernel.detach().double().square().sum(0)  # per channel; decay profile has unit energy
    assert energy.shape == (6,) and ((energy > 0.05) & (energy < 10)).all()
    with pytest.raises(ValueError, match=r"expected x of shape \(B, N, 6\), got \(2, 7\)"):
        m(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="max_len=0"):
        CausalFourierMixer(6, 0)
