"""AFNOMixer and AFFMixer against per-frequency numpy loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral.mixers.aff import AFFMixer
from spectral.mixers.afno import AFNOMixer


def cplx(m, name: str) -> np.ndarray:
    w = getattr(m, name).detach().numpy()
    return w[..., 0] + 1j * w[..., 1]


def block_mlp_at(z: np.ndarray, m, shrink: float | None) -> np.ndarray:
    """The complex block MLP at one frequency, block by block: z (D,) complex -> (D,) complex."""
    w1, b1, w2, b2 = (cplx(m, k) for k in ("w1", "b1", "w2", "b2"))
    nb, c = w1.shape[0], w1.shape[1]
    out = np.zeros_like(z)
    for j in range(nb):
        o = z[j * c : (j + 1) * c] @ w1[j] + b1[j]
        o = np.maximum(o.real, 0) + 1j * np.maximum(o.imag, 0)
        o = o @ w2[j] + b2[j]
        if shrink:
            soft = lambda t: np.sign(t) * np.maximum(np.abs(t) - shrink, 0)  # noqa: E731
            o = soft(o.real) + 1j * soft(o.imag)
        out[j * c : (j + 1) * c] = o
    return out


def afno_reference(m: AFNOMixer, x: np.ndarray) -> np.ndarray:
    b, n, d = x.shape
    spec = np.fft.rfft(x, axis=1, norm=m.fft_norm)
    kept = max(1, int(spec.shape[1] * m.hard_thresholding_fraction))
    out = np.zeros_like(spec)
    for i in range(b):
        for k in range(kept):  # the lowest frequencies k = 0 .. kept - 1
            out[i, k] = block_mlp_at(spec[i, k], m, m.sparsity_threshold)
    out[:, 0] = out[:, 0].real
    if n % 2 == 0 and kept == n // 2 + 1:
        out[:, -1] = out[:, -1].real
    return np.fft.irfft(out, n=n, axis=1, norm=m.fft_norm)


def scaled(module):
    with torch.no_grad():  # larger weights than the 0.02 start, so ReLU and shrinkage both act
        for p in module.parameters():
            p.normal_(0.0, 0.7)
    return module


@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.1])
@pytest.mark.parametrize("n", [16, 15, 3])
@pytest.mark.parametrize("hidden_size_factor", [1, 2])
def test_afno_matches_per_frequency_loop(n, fraction, hidden_size_factor):
    m = scaled(
        AFNOMixer(
            8,
            num_blocks=2,
            sparsity_threshold=0.3,
            hard_thresholding_fraction=fraction,
            hidden_size_factor=hidden_size_factor,
            dtype=torch.float64,
        )
    )
    x = torch.randn(2, n, 8, dtype=torch.float64)
    np.testing.assert_allclose(m(x).detach().numpy(), afno_reference(m, x.numpy()), atol=1e-10)


def test_afno_hard_thresholding_keeps_the_lowest_frequencies():
    m = scaled(AFNOMixer(8, num_blocks=4, hard_thresholding_fraction=0.25, dtype=torch.float64))
    y = m(torch.randn(2, 64, 8, dtype=torch.float64))
    spec = torch.fft.rfft(y, dim=1).abs()  # 33 bins, 8 kept
    assert spec[:, :8].amin() > 0 and spec[:, 8:].amax() < 1e-10


def test_afno_errors():
    with pytest.raises(ValueError, match=r"hard_thresholding_fraction must be > 0 and <= 1, got 0.0"):
        AFNOMixer(8, num_blocks=2, hard_thresholding_fraction=0.0)
    with pytest.raises(ValueError, match="dim=10 must be a positive multiple of num_blocks=4"):
        AFNOMixer(10, num_blocks=4)


def aff_reference(m: AFFMixer, x: np.ndarray) -> np.ndarray:
    b, c, h, w = x.shape
    spec = np.fft.rfft2(x, axes=(2, 3), norm=m.fft_norm)  # (B, C, H, F)
    out = np.zeros_like(spec)
    for i in range(b):
        for u in range(h):
            for v in range(spec.shape[-1]):
                z = spec[i, :, u, v]
                out[i, :, u, v] = z * block_mlp_at(z, m, None)
    # irfft2 = ifft over H, drop the imaginary DC column (and Nyquist of an even W), irfft over W
    col = np.fft.ifft(out, axis=2, norm=m.fft_norm)
    col[..., 0] = col[..., 0].real
    if w % 2 == 0:
        col[..., -1] = col[..., -1].real
    return np.fft.irfft(col, n=w, axis=3, norm=m.fft_norm)


@pytest.mark.parametrize("h,w", [(8, 8), (5, 7), (6, 1)])
def test_aff_matches_per_frequency_loop(h, w):
    m = scaled(AFFMixer(8, num_blocks=4, dtype=torch.float64))
    x = torch.randn(2, 8, h, w, dtype=torch.float64)
    np.testing.assert_allclose(m(x).detach().numpy(), aff_reference(m, x.numpy()), atol=1e-10)


def test_aff_pixel_mask():
    m = scaled(AFFMixer(8, num_blocks=2, dtype=torch.float64))
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    mask = torch.rand(2, 6, 6) > 0.3
    got = m(x, mask)
    want = aff_reference(m, torch.where(mask[:, None], x, 0).numpy()) * mask[:, None].numpy()
    np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-10)
    torch.testing.assert_close(m(torch.where(mask[:, None], x, float("nan")), mask), got)


def test_aff_errors():
    m = AFFMixer(8, num_blocks=2)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 8, H, W\), got \(2, 4, 6, 6\)"):
        m(torch.zeros(2, 4, 6, 6))
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 6, 6\).*got \(2, 36\)"):
        m(torch.zeros(2, 8, 6, 6), torch.ones(2, 36, dtype=torch.bool))


@pytest.mark.parametrize("make, shape", [
    (lambda: AFNOMixer(8, num_blocks=2), (2, 8, 8)),
    (lambda: AFNOMixer(8, num_blocks=2), (2, 7, 8)),
    (lambda: AFNOMixer(8, num_blocks=2, hard_thresholding_fraction=0.5), (2, 8, 8)),
    (lambda: AFFMixer(4, num_blocks=2), (2, 4, 6, 8)),
    (lambda: AFFMixer(4, num_blocks=2), (2, 4, 5, 7)),
])
def test_output_does_not_depend_on_how_the_inverse_fft_treats_edge_bin_imaginary_parts(make, shape, request):
    """The block MLP / mask makes the DC and Nyquist bins complex; the layer must project them
    (Hermitian part) itself, so an inverse FFT that does not ignore them gives the same output."""
    torch.manual_seed(0)
    layer = make().double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.5 * torch.randn_like(p))  # large biases: large imaginary parts at the edge bins
    x = torch.randn(*shape, dtype=torch.float64)
    expected = layer(x)
    request.getfixturevalue("leaky_irfft")
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
