"""FFTNetMixer against a numpy reference built from its parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import erf

from spectral.mixers.fftnet import FFTNetMixer


def interpolate_response(w: np.ndarray, n_src: int, n_dst: int) -> np.ndarray:
    """Zero-phase response w (..., n_src//2+1) sampled at j / n_dst by a naive DTFT of its kernel."""
    h = np.fft.irfft(w, n=n_src, axis=-1)  # (..., n_src)
    lags = np.array([t if 2 * t < n_src else t - n_src for t in range(n_src)], dtype=float)
    weights = np.ones(n_src)
    if n_src % 2 == 0:  # lag n/2 counts as +n/2 and -n/2, half each: cos(pi f n) in total
        weights[n_src // 2] = 1.0
    f = np.arange(n_dst // 2 + 1) / n_dst
    mat = np.cos(2 * np.pi * np.outer(lags, f)) * weights[:, None]  # even kernel -> cosine series
    return h @ mat


def reference(m: FFTNetMixer, x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    b, n, d = x.shape
    keep = np.ones((b, n), bool) if mask is None else mask
    xz = np.where(keep[..., None], x, 0.0)
    ctx = xz.sum(1) / np.maximum(keep.sum(1, keepdims=True), 1)
    p = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    hid = ctx @ p["context.0.weight"].T + p["context.0.bias"]
    hid = 0.5 * hid * (1 + erf(hid / np.sqrt(2)))
    filt = p["base_filter"] + np.tanh(hid @ p["context.2.weight"].T + p["context.2.bias"]).reshape(b, m.num_heads, -1)
    filt = interpolate_response(filt, m.max_len, n)  # (B, h, F)
    spec = np.fft.rfft(xz, axis=1, norm=m.fft_norm).reshape(b, n // 2 + 1, m.num_heads, -1)
    spec = (spec * filt.transpose(0, 2, 1)[..., None]).reshape(b, n // 2 + 1, d)
    mag = np.abs(spec)
    spec = np.where(mag > 0, np.maximum(mag + p["bias"], 0) / np.where(mag > 0, mag, 1), 0) * spec
    y = np.fft.irfft(spec, n=n, axis=1, norm=m.fft_norm)
    return np.where(keep[..., None], y, 0.0)


def make(max_len: int, **kw) -> FFTNetMixer:
    m = FFTNetMixer(8, max_len, num_heads=2, hidden=6, dtype=torch.float64, **kw)
    with torch.no_grad():  # move away from the identity start so every part matters
        m.base_filter.normal_()
        m.context[2].weight.normal_()
        m.bias.uniform_(-0.3, 0.1)
    return m


@pytest.mark.parametrize("max_len,n", [(16, 16), (16, 11), (9, 24), (10, 5)])
def test_matches_numpy_reference(max_len, n):
    m = make(max_len)
    x = torch.randn(3, n, 8, dtype=torch.float64)
    np.testing.assert_allclose(m(x).detach().numpy(), reference(m, x.numpy(), None), atol=1e-10)


def test_mask_excludes_padding_from_fft_and_context():
    m = make(16, fft_norm="forward")
    x = torch.randn(3, 12, 8, dtype=torch.float64)
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[0, 7:] = False
    mask[2, :3] = False
    got = m(x, mask)
    np.testing.assert_allclose(got.detach().numpy(), reference(m, x.numpy(), mask.numpy()), atol=1e-10)
    x2 = torch.where(mask[..., None], x, 1e3 * torch.randn_like(x))
    torch.testing.assert_close(m(x2, mask), got)


def test_identity_at_initialisation():
    """W_base = 1, a 0.02-scale adaptive part and zero bias: close to the identity map."""
    m = FFTNetMixer(16, 32, num_heads=4)
    x = torch.randn(2, 32, 16)
    assert (m(x) - x).abs().max() < 0.1 * x.abs().max()


def test_errors():
    with pytest.raises(ValueError, match="dim=10 must be divisible by num_heads=4"):
        FFTNetMixer(10, 16, num_heads=4)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, N, 8\), got \(2, 5, 6\)"):
        FFTNetMixer(8, 16, num_heads=2)(torch.zeros(2, 5, 6))


def test_fused_filter_modrelu_equals_the_primitive_composition():
    """The fused step and its hand-written backward against spectral.complex.modrelu under autograd."""
    from spectral.complex import modrelu
    from spectral.mixers.fftnet import _FilterModReLU

    b_, f_, h, c = 2, 5, 2, 3
    z = torch.randn(b_, f_, h, c, dtype=torch.complex128, requires_grad=True)
    filt = torch.randn(b_, f_, h, 1, dtype=torch.float64, requires_grad=True)
    bias = (0.5 * torch.randn(h, c, dtype=torch.float64)).requires_grad_(True)
    fused = _FilterModReLU.apply(z, filt, bias)
    plain = modrelu((z * filt).reshape(b_, f_, h * c), bias.reshape(-1)).reshape(b_, f_, h, c)
    torch.testing.assert_close(fused, plain)
    g = torch.randn_like(fused)
    for a, b in zip(torch.autograd.grad(fused, (z, filt, bias), g), torch.autograd.grad(plain, (z, filt, bias), g)):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(_FilterModReLU.apply, (z, filt, bias))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_fused_filter_modrelu_gradients_stay_finite_at_zero_coefficients(dtype):
    """An exactly zero coefficient (|z| clamped to the smallest normal float) must not give NaN.

    Regression: dividing by the clamped |z|^2 underflowed to 0 / 0 and a training run on
    the digits task went NaN after 454 steps.
    """
    from spectral.mixers.fftnet import _FilterModReLU

    real = torch.float32 if dtype == torch.complex64 else torch.float64
    z = torch.randn(2, 4, 1, 3, dtype=dtype)
    z[0, 0] = 0  # exact zeros, as a zero-mean channel's DC bin can be
    z.requires_grad_(True)
    filt = torch.randn(2, 4, 1, 1, dtype=real, requires_grad=True)
    bias = torch.full((1, 3), -0.1, dtype=real).requires_grad_(True)
    out = _FilterModReLU.apply(z, filt, bias)
    grads = torch.autograd.grad(out, (z, filt, bias), torch.randn_like(out))
    for g in grads:
        assert torch.isfinite(torch.view_as_real(g) if g.is_complex() else g).all()
    # the zero coefficients are inactive (|f| 0 + b < 0): no gradient flows through them
    assert torch.count_nonzero(grads[0][0, 0]) == 0


@pytest.mark.parametrize("bias", [0.5, 4.5, 50.0])
def test_fused_filter_modrelu_is_zero_at_zero_coefficients_for_any_bias(bias):
    """modReLU maps z = 0 to 0; with b > ~4, relu(b) / (clamped |z|) overflowed and 0 * inf gave NaN,
    e.g. for constant tokens, whose non-DC coefficients are exactly 0."""
    from spectral.mixers.fftnet import _FilterModReLU

    z = torch.randn(2, 4, 1, 3, dtype=torch.complex64)
    z[:, 1:] = 0
    z.requires_grad_(True)
    filt = torch.randn(2, 4, 1, 1, requires_grad=True)
    b = torch.full((1, 3), bias, requires_grad=True)
    out = _FilterModReLU.apply(z, filt, b)
    assert torch.count_nonzero(out[:, 1:]) == 0 and torch.isfinite(torch.view_as_real(out)).all()
    for g in torch.autograd.grad(out, (z, filt, b), torch.randn_like(out)):
        assert torch.isfinite(torch.view_as_real(g) if g.is_complex() else g).all()
    mixer = FFTNetMixer(4, 8, num_heads=2)
    with torch.no_grad():
        mixer.bias.fill_(bias)
    assert torch.isfinite(mixer(torch.ones(1, 8, 4))).all()  # constant tokens
