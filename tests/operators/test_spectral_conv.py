"""SpectralConv against naive DFT references, circular convolution, equivariance, resolution invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from operators.spectral_conv import SpectralConv, spectral_conv

# ---------------------------------------------------------------------------------------
# Independent reference: naive DFT analysis + naive synthesis, float64/complex128 numpy.


def _wavenumbers(n_modes, complex_data):
    """Kept integer wavenumbers per axis, compact order [0..m-1, -(m-1)..-1] (last rfft axis: 0..m-1)."""
    out = []
    for j, m in enumerate(n_modes):
        if j == len(n_modes) - 1 and not complex_data:
            out.append(np.arange(m))
        else:
            out.append(np.concatenate([np.arange(m), np.arange(-(m - 1), 0)]))
    return out


def _dense_weight(conv: SpectralConv) -> np.ndarray:
    """The layer's weight as a dense complex (Cin, Cout, *K) array, built from its parameters."""
    c = lambda p: p.detach().double().numpy()[..., 0] + 1j * p.detach().double().numpy()[..., 1]  # noqa: E731
    if conv.separable:
        w = c(conv.weight)  # (C, *K)
        eye = np.eye(conv.in_channels).reshape(conv.in_channels, conv.in_channels, *([1] * len(conv.kept)))
        return eye * w[:, None]
    if conv.rank is None:
        return np.moveaxis(c(conv.weight).reshape(*conv.kept, conv.in_channels, conv.out_channels), (-2, -1), (0, 1))
    w = np.einsum("ir,or->ior", c(conv.factor_in), c(conv.factor_out))
    for u in conv.factor_modes:
        w = w[..., None, :] * c(u)  # (..., K_j, R)
    return w.sum(-1)


def _naive_conv(conv: SpectralConv, x: np.ndarray, out_grid=None) -> np.ndarray:
    """y(t) = sum_k c_k W_k xhat_k e^{2 pi i k.t} (Re for real data, c_k = 2 off the DC rfft column)."""
    d = len(conv.n_modes)
    grid = x.shape[2:]
    out_grid = grid if out_grid is None else out_grid
    ks = _wavenumbers(conv.n_modes, conv.complex_data)
    xhat = x.astype(np.complex128)
    for j in range(d):  # naive DFT, norm="forward": coefficient = grid mean
        e = np.exp(-2j * np.pi * np.outer(np.arange(grid[j]), ks[j]) / grid[j]) / grid[j]  # (N_j, K_j)
        xhat = np.moveaxis(np.tensordot(xhat, e, axes=([2 + j], [0])), -1, 2 + j)
    yhat = np.einsum("bi...,io...->bo...", xhat, _dense_weight(conv))
    if not conv.complex_data:
        yhat = yhat * np.where(ks[-1] == 0, 1.0, 2.0)
    for j in range(d):
        e = np.exp(2j * np.pi * np.outer(ks[j], np.arange(out_grid[j])) / out_grid[j])  # (K_j, N_j)
        yhat = np.moveaxis(np.tensordot(yhat, e, axes=([2 + j], [0])), -1, 2 + j)
    y = yhat if conv.complex_data else yhat.real
    if conv.bias is not None:
        b = conv.bias.detach().double().numpy()
        b = b[..., 0] + 1j * b[..., 1] if conv.complex_data else b
        y = y + b.reshape(-1, *([1] * d))
    return y


def _band_limited(grid, band, channels, rng, batch=2):
    """Real field sum_{|k_j| <= band} a_k cos + b_k sin sampled on ``grid`` (periodic unit cube)."""
    d = len(grid)
    ks = np.stack(np.meshgrid(*[np.arange(-band, band + 1)] * d, indexing="ij"), -1).reshape(-1, d)
    a = rng.standard_normal((batch, channels, len(ks))) / len(ks) ** 0.5
    b = rng.standard_normal((batch, channels, len(ks))) / len(ks) ** 0.5

    def sample(g):
        t = np.stack(np.meshgrid(*[np.arange(n) / n for n in g], indexing="ij"), -1)  # (*g, d)
        phase = 2 * np.pi * t @ ks.T  # (*g, nk)
        return np.einsum("bck,...k->bc...", a, np.cos(phase)) + np.einsum("bck,...k->bc...", b, np.sin(phase))

    return sample(grid), sample


# ---------------------------------------------------------------------------------------


LAYER_CASES = [
    pytest.param(dict(n_modes=(5,)), (2, 3, 13), id="1d-odd"),
    pytest.param(dict(n_modes=(4, 5)), (2, 3, 12, 11), id="2d"),
    pytest.param(dict(n_modes=(3, 3, 2)), (1, 3, 7, 6, 5), id="3d"),
    pytest.param(dict(n_modes=(4, 3), separable=True), (2, 3, 9, 8), id="2d-separable"),
    pytest.param(dict(n_modes=(4, 3), rank=3), (2, 3, 9, 8), id="2d-cp"),
    pytest.param(dict(n_modes=(3, 2, 2), rank=2), (1, 3, 6, 5, 4), id="3d-cp"),
    pytest.param(dict(n_modes=(4, 3), complex_data=True), (2, 3, 9, 8), id="2d-complex"),
    pytest.param(dict(n_modes=(4,), complex_data=True, separable=True), (2, 3, 10), id="1d-complex-separable"),
]


@pytest.mark.parametrize("kwargs,shape", LAYER_CASES)
def test_matches_naive_dft(kwargs, shape, generator):
    conv = SpectralConv(3, 3, dtype=torch.float64, **kwargs)
    with torch.no_grad():  # non-zero bias so the bias layout is checked too
        conv.bias.normal_(generator=generator)
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    if conv.complex_data:
        x = torch.complex(x, torch.randn(shape, dtype=torch.float64, generator=generator))
    out_grid = tuple(n + 3 for n in shape[2:])
    for grid in (None, out_grid):
        ref = _naive_conv(conv, x.numpy(), grid)
        got = conv(x, output_shape=grid)
        np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("in_ch,out_ch,n_modes,grid", [(2, 3, (6,), (16,)), (3, 2, (5, 4), (12, 9)), (2, 2, (3, 3, 3), (6, 7, 5))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=lambda t: str(t).split(".")[-1])
def test_shapes_and_dtypes(in_ch, out_ch, n_modes, grid, dtype, device):
    conv = SpectralConv(in_ch, out_ch, n_modes, device=device, dtype=dtype)
    x = torch.randn(4, in_ch, *grid, device=device, dtype=dtype)
    y = conv(x)
    assert y.shape == (4, out_ch, *grid) and y.dtype == dtype and y.device == x.device
    big = tuple(2 * n + 1 for n in grid)
    assert conv(x, output_shape=big).shape == (4, out_ch, *big)


def test_circular_convolution_1d(generator):
    """All modes of an odd grid kept, bias off: the layer is circular convolution with its impulse response."""
    n, cin, cout = 15, 2, 3
    conv = SpectralConv(cin, cout, (n + 1) // 2, bias=False, dtype=torch.float64)
    with torch.no_grad():
        h = conv(torch.eye(n, dtype=torch.float64)[0].expand(cin, 1, n).clone() * torch.eye(cin, dtype=torch.float64)[:, :, None])
    h = h.numpy()  # (Cin, Cout, N): response to a unit impulse at 0 in channel i
    x = torch.randn(4, cin, n, dtype=torch.float64, generator=generator)
    xn = x.numpy()
    ref = np.zeros((4, cout, n))
    for t in range(n):  # direct O(N^2) circular convolution
        for s in range(n):
            ref[:, :, t] += np.einsum("bi,io->bo", xn[:, :, s], h[:, :, (t - s) % n])
    np.testing.assert_allclose(conv(x).detach().numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_modes,grid,shift", [((5, 4), (16, 13), (3, -5)), ((3, 3, 2), (8, 7, 6), (2, 1, -3))], ids=["2d", "3d"])
def test_shift_equivariance(n_modes, grid, shift, generator):
    conv = SpectralConv(3, 4, n_modes, dtype=torch.float64)
    x = torch.randn(2, 3, *grid, dtype=torch.float64, generator=generator)
    dims = tuple(range(2, 2 + len(grid)))
    torch.testing.assert_close(conv(torch.roll(x, shift, dims)), torch.roll(conv(x), shift, dims), rtol=1e-10, atol=1e-12)


def test_resolution_invariance_odd_and_even_grids():
    """One band-limited field at 32x32, 33x33, 64x64: outputs match the continuous operator (and each other)."""
    rng = np.random.default_rng(0)
    conv = SpectralConv(3, 2, (8, 8))
    with torch.no_grad():
        conv.bias.normal_()
    _, sample = _band_limited((64, 64), 12, 3, rng)
    outs = {}
    for n in (32, 33, 64):
        x = torch.from_numpy(sample((n, n))).float()
        outs[n] = conv(x).detach().double().numpy()
        ref = _naive_conv(conv, sample((64, 64)), (n, n))  # analysis on the finest grid, synthesis on this one
        scale = np.abs(ref).max()
        np.testing.assert_allclose(outs[n], ref, rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(outs[64][:, :, ::2, ::2], outs[32], rtol=0, atol=2e-5 * np.abs(outs[32]).max())
    # 32 -> 33 and 33 -> 64 through output_shape: the same operator on another grid
    x33 = torch.from_numpy(sample((33, 33))).float()
    np.testing.assert_allclose(conv(x33, output_shape=(64, 64)).detach().numpy(), outs[64], rtol=0, atol=2e-5 * np.abs(outs[64]).max())


def test_init_variance_of_order_of_input():
    rng = np.random.default_rng(1)
    for kwargs in (dict(), dict(separable=True), dict(rank=8)):
        conv = SpectralConv(32, 32, (8, 8), **kwargs)
        x, _ = _band_limited((32, 32), 5, 32, rng, batch=4)
        y = conv(torch.from_numpy(x).float()).detach()
        ratio = y.var().item() / x.var()
        assert 0.3 < ratio < 3.0, (kwargs, ratio)


@pytest.mark.parametrize("kwargs", [dict(), dict(separable=True), dict(rank=2), dict(complex_data=True)], ids=["dense", "separable", "cp", "complex"])
def test_gradients(kwargs, generator):
    conv = SpectralConv(2, 2, (2, 2), dtype=torch.float64, **kwargs)
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, generator=generator)
    if conv.complex_data:
        x = torch.complex(x, torch.randn(x.shape, dtype=torch.float64, generator=generator))
    x.requires_grad_(True)
    out = conv(x, output_shape=(5, 4))
    (out.abs() if out.is_complex() else out).square().sum().backward()
    for name, p in conv.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    params = tuple(conv.parameters())

    def f(inp, *ps):
        return torch.func.functional_call(conv, dict(zip([n for n, _ in conv.named_parameters()], ps)), (inp,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6, fast_mode=True)


def test_functional_equals_module(generator):
    conv = SpectralConv(3, 2, (4, 3), dtype=torch.float64)
    with torch.no_grad():
        conv.bias.normal_(generator=generator)
    x = torch.randn(2, 3, 10, 9, dtype=torch.float64, generator=generator)
    got = spectral_conv(x, conv.weight, conv.n_modes, bias=conv.bias, output_shape=(12, 11))
    torch.testing.assert_close(got, conv(x, output_shape=(12, 11)), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs", [dict(), dict(rank=3), dict(complex_data=True)], ids=["dense", "cp", "complex"])
def test_state_dict_roundtrip_and_double(kwargs, generator):
    a = SpectralConv(3, 3, (4, 4), **kwargs)
    b = SpectralConv(3, 3, (4, 4), **kwargs)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 12, 12, generator=generator)
    if a.complex_data:
        x = torch.complex(x, torch.randn(x.shape, generator=generator))
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)
    ref = a(x).detach()
    a.double()  # the imaginary parts of the weights survive the cast
    imag = [p[..., 1] for n, p in a.named_parameters() if n != "bias"]  # bias starts at zero
    assert all(p.dtype == torch.float64 for p in a.parameters()) and all(i.abs().sum() > 0 for i in imag)
    y64 = a(x.to(torch.complex128 if a.complex_data else torch.float64))
    torch.testing.assert_close(y64.to(ref.dtype), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_input_runs_in_float32_and_casts_back(dtype, generator):
    conv = SpectralConv(3, 3, (4, 4))
    x = torch.randn(2, 3, 16, 16, generator=generator).to(dtype)
    y = conv(x)
    assert y.dtype == dtype
    ref = conv(x.float())
    torch.testing.assert_close(y.float(), ref, rtol=0.02, atol=0.02 * ref.abs().max().item())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x.float()).shape == (2, 3, 16, 16)


def test_extra_repr_and_reset():
    conv = SpectralConv(3, 4, (5, 6), rank=2, bias=False)
    assert "n_modes=(5, 6)" in repr(conv) and "rank=2" in repr(conv) and "bias=False" in repr(conv)
    before = conv.factor_in.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.factor_in)


def test_bad_input_messages():
    conv = SpectralConv(3, 4, (8, 8))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 3, H, W\), got \(8, 4, 64, 64\)"):
        conv(torch.randn(8, 4, 64, 64))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 3, H, W\), got \(8, 3, 64\)"):
        conv(torch.randn(8, 3, 64))
    with pytest.raises(ValueError, match=r"n_modes\[-2\]=8 exceeds .*got x of shape \(2, 3, 14, 20\)"):
        conv(torch.randn(2, 3, 14, 20))
    with pytest.raises(ValueError, match=r"output_shape"):
        conv(torch.randn(2, 3, 20, 20), output_shape=(20, 12))
    with pytest.raises(ValueError, match=r"SpectralConv\(2-d\): output_shape must have 2 entries, got 1: \(20,\)"):
        conv(torch.randn(2, 3, 20, 20), output_shape=(20,))
    with pytest.raises(TypeError, match=r"complex dtype torch.complex64"):
        conv(torch.randn(2, 3, 20, 20, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"separable=True needs in_channels == out_channels, got 3 and 4"):
        SpectralConv(3, 4, (4, 4), separable=True)
    with pytest.raises(ValueError, match=r"rank must be an int >= 1, got 0"):
        SpectralConv(3, 4, (4, 4), rank=0)
    with pytest.raises(ValueError, match=r"n_modes must have 1 to 3 entries"):
        SpectralConv(3, 4, (4, 4, 4, 4))
    with pytest.raises(ValueError, match=r"in_channels must be an int >= 1, got 0"):
        SpectralConv(0, 4, 4)
    with pytest.raises(ValueError, match=r"fft_norm must be one of \('forward', 'backward', 'ortho'\), got str 'bogus'"):
        SpectralConv(3, 4, 4, fft_norm="bogus")


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [dict(), dict(rank=2)], ids=["dense", "cp"])
def test_torch_compile_fullgraph(kwargs, generator):
    conv = SpectralConv(3, 2, (4, 4), **kwargs)
    x = torch.randn(2, 3, 12, 11, generator=generator, requires_grad=True)
    compiled = torch.compile(conv, fullgraph=True)
    y = compiled(x)
    torch.testing.assert_close(y, conv(x), rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    assert x.grad is not None and math.isfinite(x.grad.abs().sum().item())


@pytest.mark.parametrize("fft_norm", ["backward", "ortho"])
def test_fft_norms_give_the_same_layer_on_the_input_grid(fft_norm, generator):
    """The two transforms' scales cancel on the same grid, and the bias stays a constant field."""
    ref = SpectralConv(2, 3, (3, 4), dtype=torch.float64)
    other = SpectralConv(2, 3, (3, 4), fft_norm=fft_norm, dtype=torch.float64)
    with torch.no_grad():
        ref.bias.normal_(generator=generator)
    other.load_state_dict(ref.state_dict())
    x = torch.randn(2, 2, 9, 10, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(other(x), ref(x), rtol=1e-10, atol=1e-12)
    zero = torch.zeros(1, 2, 9, 10, dtype=torch.float64)
    out = other(zero, output_shape=(11, 12))  # the bias alone, on another grid
    torch.testing.assert_close(out, ref.bias.detach().reshape(1, 3, 1, 1).expand(1, 3, 11, 12), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fft_norm", ["forward", "backward", "ortho"])
@pytest.mark.parametrize(
    "n_modes,grid,refine,complex_data",
    [((4,), (8,), 2, False), ((3, 4), (9, 10), 3, False), ((3, 3), (8, 7), 2, True)],
    ids=["1d-x2", "2d-x3", "2d-complex-x2"],
)
def test_refined_output_grid_is_the_same_operator_for_every_norm(fft_norm, n_modes, grid, refine, complex_data, generator):
    """output_shape = r * grid, subsampled every r-th point, equals the same-grid output; also vs the naive DFT."""
    conv = SpectralConv(2, 3, n_modes, complex_data=complex_data, fft_norm=fft_norm, dtype=torch.float64)
    with torch.no_grad():
        conv.bias.normal_(generator=generator)
    x = torch.randn(2, 2, *grid, dtype=torch.float64, generator=generator)
    if complex_data:
        x = torch.complex(x, torch.randn(x.shape, dtype=torch.float64, generator=generator))
    fine_grid = tuple(refine * n for n in grid)
    same, fine = conv(x).detach(), conv(x, output_shape=fine_grid).detach()
    every_r = (Ellipsis, *[slice(None, None, refine)] * len(grid))
    torch.testing.assert_close(fine[every_r], same, rtol=1e-10, atol=1e-12)
    # the same function on any grid (coarser and non-multiple ones too): naive DFT, norm-independent
    for out_grid in (fine_grid, tuple(n + 3 for n in grid), tuple(2 * m - 1 for m in n_modes)):
        ref = _naive_conv(conv, x.numpy(), out_grid)
        np.testing.assert_allclose(conv(x, output_shape=out_grid).detach().numpy(), ref, rtol=1e-10, atol=1e-10)
    if not complex_data:  # the functional form applies the same rescaling
        got = spectral_conv(x, conv.weight, n_modes, bias=conv.bias, output_shape=fine_grid, fft_norm=fft_norm)
        torch.testing.assert_close(got, conv(x, output_shape=fine_grid), rtol=0, atol=0)


@pytest.mark.parametrize("fft_norm", ["forward", "backward", "ortho"])
def test_identity_weights_reproduce_a_constant_field_on_a_finer_grid(fft_norm):
    """The reviewer's case: identity weights, no bias, x = 2 on 8 points -> 2 on 16 points for every norm."""
    conv = SpectralConv(1, 1, 3, bias=False, fft_norm=fft_norm, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[..., 0] = 1.0  # W_k = 1 for every kept k
    x = torch.full((1, 1, 8), 2.0, dtype=torch.float64)
    torch.testing.assert_close(conv(x, output_shape=(16,)), torch.full((1, 1, 16), 2.0, dtype=torch.float64))


def test_complex_data_rejects_a_real_input():
    conv = SpectralConv(2, 2, (3, 3), complex_data=True)
    with pytest.raises(TypeError, match=r"x has real dtype torch\.float32, but complex_data=True needs a complex x"):
        conv(torch.randn(1, 2, 8, 8))
    with pytest.raises(TypeError, match=r"spectral_conv: x has real dtype torch\.float64, but complex_data=True needs a complex x"):
        spectral_conv(torch.randn(1, 2, 8, 8, dtype=torch.float64), conv.weight.double(), (3, 3), complex_data=True)


def test_functional_checks_weight_and_bias_shapes(generator):
    x = torch.randn(2, 3, 10, 9, generator=generator)
    weight = torch.randn(7 * 3, 3, 4, 2, generator=generator)  # kept_shape((4, 3)) = (7, 3)
    assert spectral_conv(x, weight, (4, 3)).shape == (2, 4, 10, 9)
    with pytest.raises(ValueError, match=r"expected weight of shape \(21, 3, Cout, 2\) .*got \(21, 2, 4, 2\)"):
        spectral_conv(x, weight[:, :2], (4, 3))
    with pytest.raises(ValueError, match=r"expected weight of shape \(21, 3, Cout, 2\) .*got \(20, 3, 4, 2\)"):
        spectral_conv(x, weight[:20], (4, 3))
    with pytest.raises(ValueError, match=r"expected weight of shape \(21, 3, Cout, 2\) .*got \(21, 3, 4\)"):
        spectral_conv(x, weight[..., 0], (4, 3))
    with pytest.raises(ValueError, match=r"expected bias of shape \(4,\), got \(3,\)"):
        spectral_conv(x, weight, (4, 3), bias=torch.zeros(3))
    with pytest.raises(ValueError, match=r"expected bias of shape \(4, 2\), got \(4,\)"):
        spectral_conv(torch.complex(x, x), torch.randn(49, 3, 4, 2), (4, 4), bias=torch.zeros(4), complex_data=True)
    with pytest.raises(ValueError, match=r"spectral_conv: expected x of shape \(B, Cin, H, W\), got \(3, 10, 9\)"):
        spectral_conv(x[0], weight, (4, 3))


@pytest.mark.parametrize(
    "kwargs,x_dtype,got",
    [
        (dict(), torch.float64, r"got x of dtype torch\.float64 but the parameters have torch\.float32"),
        (dict(rank=2), torch.float64, r"got x of dtype torch\.float64 but the parameters have torch\.float32"),
        (dict(dtype=torch.float64), torch.float32, r"got x of dtype torch\.float32 but the parameters have torch\.float64"),
        (dict(dtype=torch.float64), torch.float16, r"got x of dtype torch\.float16 but the parameters have torch\.float64"),
        (dict(complex_data=True), torch.complex128, r"got x\.real of dtype torch\.float64 but the parameters have torch\.float32"),
    ],
    ids=["f64-on-f32", "cp-f64-on-f32", "f32-on-f64", "f16-on-f64", "c128-on-f32"],
)
def test_dtype_mismatch_raises_type_error(kwargs, x_dtype, got):
    """Like FourierKANLayer / FNO: only the documented half-on-float32 path (and autocast) may differ."""
    conv = SpectralConv(2, 3, (3, 3), **kwargs)
    x = torch.randn(2, 2, 8, 8).to(x_dtype)
    with pytest.raises(TypeError, match=r"SpectralConv\(2-d\): " + got):
        conv(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts by itself: exempt
        assert conv(x).shape == (2, 3, 8, 8)


def test_functional_dtype_mismatch_raises_type_error():
    w = torch.randn(5 * 3, 2, 3, 2)
    with pytest.raises(TypeError, match=r"spectral_conv: got x of dtype torch\.float64 but the parameters have torch\.float32"):
        spectral_conv(torch.randn(1, 2, 8, 8, dtype=torch.float64), w, (3, 3))


@pytest.mark.parametrize(
    "kwargs,grid,output_shape",
    [
        (dict(), (8, 9), None),
        (dict(), (8, 9), (16, 18)),
        (dict(separable=True), (8,), None),
        (dict(rank=2, bias=False), (7, 6, 5), None),
        (dict(complex_data=True), (8, 8), (12, 12)),
    ],
    ids=["dense", "dense-output-shape", "separable-1d", "cp-3d", "complex"],
)
def test_empty_batch_gives_an_empty_output_in_the_graph(kwargs, grid, output_shape):
    """B = 0 (the FFT backend rejects it): an empty (0, Cout, *out) output like torch's layers, zero gradients."""
    conv = SpectralConv(3, 3, (2,) * len(grid), **kwargs)
    dtype = torch.complex64 if conv.complex_data else torch.float32
    x = torch.randn(0, 3, *grid, dtype=dtype, requires_grad=True)
    y = conv(x, output_shape=output_shape)
    assert y.shape == (0, 3, *(output_shape or grid)) and y.dtype == dtype
    y.abs().sum().backward()
    assert x.grad.shape == x.shape
    for p in conv.parameters():
        torch.testing.assert_close(p.grad, torch.zeros_like(p))


def test_functional_empty_batch():
    w, b = torch.randn(5 * 3, 2, 4, 2), torch.randn(4)
    y = spectral_conv(torch.randn(0, 2, 8, 8), w, (3, 3), bias=b, output_shape=(10, 10))
    assert y.shape == (0, 4, 10, 10) and y.dtype == torch.float32


@pytest.mark.parametrize("kwargs", [dict(), dict(separable=True), dict(rank=2), dict(complex_data=True), dict(complex_data=True, rank=2)],
                         ids=["dense", "separable", "cp", "complex", "complex-cp"])
@pytest.mark.parametrize("output_shape", [None, (5, 7)], ids=["same-grid", "output-shape"])
def test_gradgradcheck(kwargs, output_shape, generator):
    """Exact second derivatives in x and every parameter (float64, tiny sizes), on and off the input grid."""
    conv = SpectralConv(2, 2, (2, 2), dtype=torch.float64, **kwargs)
    with torch.no_grad():
        conv.bias.normal_(generator=generator)
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, generator=generator)
    if conv.complex_data:
        x = torch.complex(x, torch.randn(x.shape, dtype=torch.float64, generator=generator))
    names = [n for n, _ in conv.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in conv.parameters())

    def f(inp, *ps):
        out = torch.func.functional_call(conv, dict(zip(names, ps)), (inp,), {"output_shape": output_shape})
        return torch.view_as_real(out) if out.is_complex() else out

    fast = bool(kwargs) or output_shape is not None  # full Jacobians for the plain case, random projections for the rest
    assert torch.autograd.gradgradcheck(f, (x.requires_grad_(True), *params), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=fast)


@pytest.mark.parametrize("kwargs", [dict(), dict(separable=True), dict(rank=2), dict(complex_data=True)],
                         ids=["dense", "separable", "cp", "complex"])
def test_meta_device_gives_a_meta_output_of_the_right_shape(kwargs):
    """device="meta": built without memory, a meta input maps to a meta output (it raised "unknown device type
    for autocast" before)."""
    conv = SpectralConv(3, 3, (3, 3), device="meta", **kwargs)
    assert all(p.device.type == "meta" for p in conv.parameters())
    dtype = torch.complex64 if conv.complex_data else torch.float32
    for batch, out in ((2, None), (2, (16, 18)), (0, (16, 18))):
        y = conv(torch.empty(batch, 3, 8, 9, device="meta", dtype=dtype), output_shape=out)
        assert y.device.type == "meta" and y.shape == (batch, 3, *(out or (8, 9))) and y.dtype == dtype


@pytest.mark.parametrize("kwargs,shape", [LAYER_CASES[i] for i in (3, 4, 5, 7)])
def test_functional_factorizations_match_naive_dft(kwargs, shape, generator):
    """spectral_conv with factorization="separable" / "cp" (the module's path) against the naive reference."""
    conv = SpectralConv(3, 3, dtype=torch.float64, **kwargs)
    with torch.no_grad():
        conv.bias.normal_(generator=generator)
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    if conv.complex_data:
        x = torch.complex(x, torch.randn(shape, dtype=torch.float64, generator=generator))
    weight = conv.weight if conv.rank is None else (conv.factor_in, conv.factor_out, *conv.factor_modes)
    out_grid = tuple(n + 2 for n in shape[2:])
    got = spectral_conv(x, weight, conv.n_modes, bias=conv.bias, output_shape=out_grid, complex_data=conv.complex_data,
                        factorization=conv.factorization)
    np.testing.assert_allclose(got.detach().numpy(), _naive_conv(conv, x.numpy(), out_grid), rtol=1e-10, atol=1e-10)


def test_functional_checks_separable_and_cp_weights(generator):
    x = torch.randn(2, 3, 10, 9, generator=generator)
    conv = SpectralConv(3, 3, (4, 3), rank=2)
    factors = (conv.factor_in, conv.factor_out, *conv.factor_modes)
    assert spectral_conv(x, factors, (4, 3), factorization="cp").shape == (2, 3, 10, 9)
    with pytest.raises(ValueError, match=r"expected CP factors of shapes \[\(3, 2, 2\), \(3, 2, 2\), \(7, 2, 2\), \(3, 2, 2\)\]"):
        spectral_conv(x, (*factors[:3], factors[2]), (4, 3), factorization="cp")
    with pytest.raises(TypeError, match=r"factorization='cp' needs weight = \(A, B, U_1, \.\.\., U_2\), got Tensor"):
        spectral_conv(x, conv.factor_in.detach(), (4, 3), factorization="cp")
    with pytest.raises(ValueError, match=r"expected weight of shape \(3, 7, 3, 2\) .*got \(3, 7, 2, 2\)"):
        spectral_conv(x, torch.zeros(3, 7, 2, 2), (4, 3), factorization="separable")
    with pytest.raises(ValueError, match=r"factorization must be one of \('dense', 'separable', 'cp'\), got str 'tucker'"):
        spectral_conv(x, torch.zeros(3, 7, 3, 2), (4, 3), factorization="tucker")
    with pytest.raises(TypeError, match=r"spectral_conv: x has complex dtype torch\.complex64; use complex_data=True"):
        spectral_conv(torch.complex(x, x), torch.zeros(21, 3, 3, 2), (4, 3))
    with pytest.raises(ValueError, match=r"n_modes\[-1\]=3 exceeds the 2 modes .*output_shape of shape \(10, 4\)"):
        spectral_conv(x, torch.zeros(21, 3, 3, 2), (4, 3), output_shape=(10, 4))


@pytest.mark.parametrize(
    "build,exc,match",
    [
        (lambda: SpectralConv(None, 4, 4), TypeError, r"in_channels must be an int, got NoneType None"),
        (lambda: SpectralConv("3", 4, 4), TypeError, r"in_channels must be an int, got str '3'"),
        (lambda: SpectralConv(3, 4.0, 4), TypeError, r"out_channels must be an int, got float 4\.0"),
        (lambda: SpectralConv(True, 4, 4), TypeError, r"in_channels must be an int, got bool True"),
        (lambda: SpectralConv(3, 4, 4, rank=2.5), TypeError, r"rank must be an int or None, got float 2\.5"),
        (lambda: SpectralConv(3, 4, 4, dtype=torch.complex64), TypeError, r"dtype must be a real floating torch\.dtype .*complex64"),
        (lambda: SpectralConv(3, 4, 4, complex_data="yes"), TypeError, r"complex_data must be a bool, got str 'yes'"),
        (lambda: SpectralConv(3, 4, 4, bias=None), TypeError, r"bias must be a bool, got NoneType None"),
        (lambda: SpectralConv(3, 4, 4)(torch.randn(1, 3, 8), output_shape=(8.0,)), TypeError,
         r"SpectralConv\(1-d\): output_shape\[0\] must be an int, got float 8\.0"),
        (lambda: SpectralConv(3, 4, 4)(np.zeros((1, 3, 8), np.float32)), TypeError,
         r"SpectralConv\(1-d\): x must be a torch\.Tensor, got numpy\.ndarray of shape \(1, 3, 8\) \(convert with torch\.as_tensor\)"),
        (lambda: SpectralConv(3, 4, 4)(torch.ones(1, 3, 8, dtype=torch.int64)), TypeError,
         r"SpectralConv\(1-d\): x must have a floating or complex dtype, got torch\.int64"),
    ],
    ids=["none", "str", "float", "bool", "float-rank", "complex-dtype", "str-flag", "none-bias", "float-output-shape", "numpy-x",
         "int-x"],
)
def test_bad_sizes_dtypes_and_inputs_are_named_errors(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


# ---------------------------------------------------------------------------------------
# Under torch.compile the dense real-data layer is one custom operator (operators._compiled_conv).

COMPILED_OP_CASES = [
    pytest.param((5,), (13,), (16,), "forward", id="1d-odd-to-even"),
    pytest.param((4, 5), (12, 11), None, "backward", id="2d-backward"),
    pytest.param((4, 5), (12, 11), (9, 10), "ortho", id="2d-ortho-coarser"),
    pytest.param((3, 3, 2), (7, 6, 5), (8, 6, 7), "backward", id="3d-backward-other-grid"),
]


def _graph_ops(record: list):
    """A torch.compile backend that records the call targets of every graph dynamo hands it, then runs it
    through AOT autograd (the custom operators' registered backward)."""
    def backend(gm, example_inputs):
        record.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)
    return backend


@pytest.mark.parametrize("n_modes,grid,out_grid,fft_norm", COMPILED_OP_CASES)
def test_compiled_dense_conv_is_one_op_and_matches_the_naive_dft(n_modes, grid, out_grid, fft_norm, generator, device):
    """Compiled (fullgraph), the layer is a single spectral_conv_dense call whose output is the naive DFT's and
    whose gradients are the eager layer's (itself gradchecked against finite differences above)."""
    conv = SpectralConv(3, 2, n_modes, fft_norm=fft_norm, dtype=torch.float64)
    with torch.no_grad():
        conv.bias.normal_(generator=generator)
    x = torch.randn(2, 3, *grid, dtype=torch.float64, generator=generator)
    ref = _naive_conv(conv, x.numpy(), out_grid)
    conv, x = conv.to(device), x.to(device).requires_grad_(True)
    ops: list[str] = []
    torch._dynamo.reset()
    got = torch.compile(conv, backend=_graph_ops(ops), fullgraph=True)(x, output_shape=out_grid)
    assert sum("spectral_conv_dense" in op for op in ops) == 1 and not any("fft" in op for op in ops), ops
    np.testing.assert_allclose(got.detach().cpu().numpy(), ref, rtol=1e-10, atol=1e-10)
    g = torch.randn(got.shape, dtype=torch.float64, generator=generator).to(device)
    compiled_grads = torch.autograd.grad(got, (x, conv.weight, conv.bias), g)
    eager_grads = torch.autograd.grad(conv(x, output_shape=out_grid), (x, conv.weight, conv.bias), g)
    for c, e in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(c, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_modes,grid,out_grid,fft_norm", COMPILED_OP_CASES)
def test_compiled_dense_op_gradcheck_and_opcheck(n_modes, grid, out_grid, fft_norm, generator):
    """The custom operator's hand-written backward against finite differences, and torch.library's checks of its
    schema, fake (shape-only) implementation and autograd registration."""
    from operators._compiled_conv import spectral_conv_dense

    conv = SpectralConv(2, 3, n_modes, dtype=torch.float64)
    x = torch.randn(2, 2, *grid, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(conv.weight.shape, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, generator=generator, requires_grad=True)
    out = list(out_grid or grid)
    assert torch.autograd.gradcheck(lambda *t: spectral_conv_dense(*t, list(n_modes), out, fft_norm)[0], (x, w, b), fast_mode=True)
    for bias in (b, None):
        torch.library.opcheck(spectral_conv_dense, (x, w, bias, list(n_modes), out, fft_norm))


def test_compiled_dense_op_refuses_double_backward_by_name(generator):
    from operators._compiled_conv import spectral_conv_dense

    x = torch.randn(1, 2, 8, 7, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(7 * 4, 2, 2, 2, dtype=torch.float64, generator=generator, requires_grad=True)
    y = spectral_conv_dense(x, w, None, [4, 4], [8, 7], "forward")[0]
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"differentiable once .* without torch.compile for second derivatives"):
        gx.sum().backward()


@pytest.mark.parametrize("kwargs,x_dtype", [(dict(separable=True), torch.float64), (dict(rank=2), torch.float64),
                                            (dict(complex_data=True), torch.complex128), (dict(), torch.float32)],
                         ids=["separable", "cp", "complex", "half-input"])
def test_compiled_conv_traces_the_eager_path_outside_the_op(kwargs, x_dtype, generator):
    """Other factorizations, complex data and inputs in another dtype than the weights are traced, not the op."""
    conv = SpectralConv(3, 3, (4, 3), dtype=torch.float64 if x_dtype != torch.float32 else torch.float32, **kwargs)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, generator=generator).to(x_dtype if x_dtype.is_complex else torch.float64)
    x = x.to(torch.float16) if x_dtype == torch.float32 else x
    if conv.complex_data:
        x = torch.complex(x.real, torch.randn(x.shape, dtype=torch.float64, generator=generator))
    ops: list[str] = []
    torch._dynamo.reset()
    got = torch.compile(conv, backend=_graph_ops(ops), fullgraph=True)(x)
    assert not any("spectral_conv_dense" in op for op in ops)
    torch.testing.assert_close(got, conv(x), rtol=1e-6, atol=1e-6)


def test_compiled_functional_conv_takes_a_strided_weight(generator):
    """spectral_conv compiled with a weight that is a strided view (not laid out as complex): same as eager."""
    # (28, 3, 2, 2) with the real/imaginary axis outermost in memory: view_as_complex refuses it
    weight = torch.randn(2, 7 * 4, 3, 2, dtype=torch.float64, generator=generator).permute(1, 2, 3, 0)
    x = torch.randn(2, 3, 12, 11, dtype=torch.float64, generator=generator)
    compiled = torch.compile(spectral_conv, backend="aot_eager", fullgraph=True)
    torch._dynamo.reset()
    torch.testing.assert_close(compiled(x, weight, (4, 4)), spectral_conv(x, weight, (4, 4)), rtol=1e-12, atol=1e-12)
