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
    with pytest.raises(ValueError, match="max_len must be an int >= 1, got 0"):
        CausalFourierMixer(6, 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("n,max_len", [(2, 16), (7, 16), (64, 64), (300, 32), (1024, 4096)])
def test_causal_up_to_the_documented_rounding_bound(n, max_len, dtype):
    """Notes: a change v at a later token moves an earlier output of channel d by at most
    about 3 eps max(|v|, max_t |x[t, d]|) ||h[:, d]||_2, and it does move the token itself."""
    torch.manual_seed(n)
    eps = torch.finfo(dtype).eps
    m = CausalFourierMixer(8, max_len, dtype=dtype)
    with torch.no_grad():
        m.kernel.mul_(torch.logspace(-2, 2, 8, dtype=dtype))  # channels of very different gains
    h_norm = m.kernel.detach().norm(dim=0)  # (D,)
    x = torch.randn(2, n, 8, dtype=dtype) * torch.logspace(-2, 2, 2, dtype=dtype)[:, None, None]
    with torch.no_grad():
        y = m(x)
        for v in (1e-3, 1.0, 1e4):
            x2 = x.clone()
            x2[:, -1] += v * torch.randn(2, 8, dtype=dtype).sign()
            y2 = m(x2)
            moved = (y2[:, :-1] - y[:, :-1]).abs().amax(1) if n > 1 else torch.zeros(2, 8, dtype=dtype)  # (B, D)
            scale = torch.clamp(x.abs().amax(1), min=v)  # max(|v|, max_t |x[t, d]|), (B, D)
            assert (moved <= 3 * eps * scale * h_norm).all()
            small = x.abs().flatten(1).amax(1) < v / 10  # samples whose tokens are small next to v
            assert small[0] or v < 1  # sample 0 (tokens ~ 0.01) for v >= 1
            # ... while the last token itself moves by about v h[0]
            assert ((y2 - y)[small, -1].abs() > 0.5 * v * m.kernel[0].abs().detach()).all()
