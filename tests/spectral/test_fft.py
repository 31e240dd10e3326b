"""Truncated transforms and resampling against numpy.fft, a naive DFT and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral.fft import resample, truncated_fftn, truncated_fftn_backward, truncated_ifftn, truncated_ifftn_backward
from spectral.modes import compact_wavenumbers

NORMS = ("forward", "backward", "ortho")


def naive_dft(x: np.ndarray, ks: list[np.ndarray], norm: str) -> np.ndarray:
    """O(n^2) DFT of the last len(ks) axes at the given integer wavenumbers (complex128)."""
    d = len(ks)
    grid = x.shape[-d:]
    out = x.astype(np.complex128)
    for axis, (n, k) in enumerate(zip(grid, ks)):
        mat = np.exp(-2j * np.pi * np.outer(k, np.arange(n)) / n)  # (K, N)
        out = np.moveaxis(np.tensordot(out, mat, axes=([axis - d], [1])), -1, axis - d)
    scale = {"forward": 1 / np.prod(grid), "backward": 1.0, "ortho": 1 / np.sqrt(np.prod(grid))}[norm]
    return out * scale


def naive_synthesis(c: np.ndarray, ks: list[np.ndarray], grid, real: bool, norm: str) -> np.ndarray:
    """Sum of c_k exp(2 pi i k.x / N) over the kept ks; for real data the rfft axis is mirrored.

    A real field keeps the real part of the sum with each k_last > 0 counted twice (for
    +k and its conjugate -k): the DC column's odd, imaginary part never reaches it.
    """
    d = len(ks)
    out = c.astype(np.complex128)
    if real:
        out = out * np.where(ks[-1] == 0, 1.0, 2.0)
    for axis, (n, k) in enumerate(zip(grid, ks)):
        mat = np.exp(2j * np.pi * np.outer(np.arange(n), k) / n)  # (N, K)
        out = np.moveaxis(np.tensordot(out, mat, axes=([axis - d], [1])), -1, axis - d)
    scale = {"forward": 1.0, "backward": 1 / np.prod(grid), "ortho": 1 / np.sqrt(np.prod(grid))}[norm]
    out = out * scale
    return out.real if real else out


CASES = [  # (grid, n_modes): even, odd and prime sizes in 1-D, 2-D, 3-D
    ((16,), (8,)),
    ((17,), (9,)),
    ((13,), (4,)),
    ((8, 12), (4, 6)),
    ((9, 7), (5, 4)),
    ((11, 13), (3, 7)),
    ((6, 5, 8), (3, 2, 4)),
    ((7, 7, 5), (4, 4, 3)),
]


def _case_id(case):
    grid, modes = case
    return f"grid={'x'.join(map(str, grid))}-modes={'x'.join(map(str, modes))}"


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_forward_matches_naive_dft(case, norm):
    grid, modes = case
    x = np.random.default_rng(0).standard_normal((2, 3, *grid))
    got = truncated_fftn(torch.from_numpy(x), modes, norm=norm).numpy()
    ks = [k.numpy() for k in compact_wavenumbers(modes)]
    np.testing.assert_allclose(got, naive_dft(x, ks, norm), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_forward_matches_numpy_rfftn_bins(case):
    grid, modes = case
    x = np.random.default_rng(1).standard_normal((2, *grid))
    full = np.fft.rfftn(x, axes=range(-len(grid), 0), norm="forward")
    ks = [k.numpy() for k in compact_wavenumbers(modes)]
    index = np.ix_(*[k % n for k, n in zip(ks, grid)])
    ref = full[(slice(None), *index)]
    got = truncated_fftn(torch.from_numpy(x), modes).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-13)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_complex_forward_matches_numpy_fftn(case, norm):
    grid, modes = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, *grid)) + 1j * rng.standard_normal((2, *grid))
    full = np.fft.fftn(x, axes=range(-len(grid), 0), norm=norm)
    ks = [k.numpy() for k in compact_wavenumbers(modes, complex_data=True)]
    ref = full[(slice(None), *np.ix_(*[k % n for k, n in zip(ks, grid)]))]
    got = truncated_fftn(torch.from_numpy(x), modes, complex_data=True, norm=norm).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize("complex_data", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("out_grid_offset", [0, 1, 5], ids=lambda o: f"grid+{o}")
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_inverse_matches_naive_synthesis_on_any_grid(case, out_grid_offset, norm, complex_data):
    grid, modes = case
    out_grid = tuple(n + out_grid_offset for n in grid)
    rng = np.random.default_rng(3)
    ks = [k.numpy() for k in compact_wavenumbers(modes, complex_data=complex_data)]
    shape = (2, *[len(k) for k in ks])
    c = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    got = truncated_ifftn(torch.from_numpy(c), out_grid, complex_data=complex_data, norm=norm).numpy()
    ref = naive_synthesis(c, ks, out_grid, real=not complex_data, norm=norm)
    np.testing.assert_allclose(got, ref, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_round_trip_of_band_limited_field_on_finer_grid(case):
    grid, modes = case
    rng = np.random.default_rng(4)
    ks = [k.numpy() for k in compact_wavenumbers(modes)]
    shape = (3, *[len(k) for k in ks])
    c = torch.from_numpy(rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    field = truncated_ifftn(c, grid)  # band-limited real field on the coarse grid
    back = truncated_fftn(field, modes)
    # A real field cannot carry an imaginary DC-column part that is odd in k: project c first.
    c_herm = truncated_fftn(truncated_ifftn(c, tuple(2 * n for n in grid)), modes)
    torch.testing.assert_close(back, c_herm, atol=1e-12, rtol=0)
    fine = truncated_ifftn(back, tuple(2 * n + 1 for n in grid))
    torch.testing.assert_close(truncated_fftn(fine, modes), c_herm, atol=1e-12, rtol=0)


def test_full_band_round_trip_reproduces_field_on_odd_grid():
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    torch.testing.assert_close(truncated_ifftn(truncated_fftn(x, (5, 6)), (9, 11)), x)


def test_even_grid_round_trip_drops_only_the_nyquist_bins():
    x = torch.randn(2, 8, 10, dtype=torch.float64)
    ref = np.fft.rfft2(x.numpy())
    ref[..., 4, :] = 0  # Nyquist row of H = 8
    ref[..., :, 5] = 0  # Nyquist column of W = 10
    expected = np.fft.irfft2(ref, s=(8, 10))
    got = truncated_ifftn(truncated_fftn(x, (4, 5)), (8, 10)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("complex_data", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("grid,modes", [((7,), (3,)), ((6, 5), (3, 2)), ((3, 4, 5), (2, 2, 2))], ids=["1d", "2d", "3d"])
def test_gradcheck_forward_and_inverse(grid, modes, complex_data, norm):
    dtype = torch.complex128 if complex_data else torch.float64
    x = torch.randn(1, *grid, dtype=dtype, requires_grad=True)
    fast = len(grid) == 3  # random-projection check: the full Jacobian of 3-D cases is slow
    assert torch.autograd.gradcheck(
        lambda t: truncated_fftn(t, modes, complex_data=complex_data, norm=norm), (x,), fast_mode=fast
    )
    c = truncated_fftn(x.detach(), modes, complex_data=complex_data, norm=norm).requires_grad_(True)
    out_grid = tuple(n + 2 for n in grid)
    assert torch.autograd.gradcheck(
        lambda t: truncated_ifftn(t, out_grid, complex_data=complex_data, norm=norm), (c,), fast_mode=fast
    )


def test_gradgradcheck_pair():
    x = torch.randn(1, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: truncated_ifftn(truncated_fftn(t, (2, 2)), (5, 6)), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_transform_in_float32(dtype):
    x = torch.randn(2, 3, 12, 10).to(dtype)
    c = truncated_fftn(x, (4, 4))
    assert c.dtype == torch.complex64
    ref = truncated_fftn(x.float(), (4, 4))
    torch.testing.assert_close(c, ref)
    y = truncated_ifftn(c, (12, 10), out_dtype=dtype)
    assert y.dtype == dtype and y.device == x.device


def test_autocast_region_runs_in_float32():
    x = torch.randn(2, 3, 12, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        c = truncated_fftn(x, (4, 4))
        y = truncated_ifftn(c, (12, 10))
    assert c.dtype == torch.complex64 and y.dtype == torch.float32
    torch.testing.assert_close(y, truncated_ifftn(truncated_fftn(x, (4, 4)), (12, 10)))


def test_double_stays_double():
    x = torch.randn(2, 8, dtype=torch.float64)
    assert truncated_fftn(x, (3,)).dtype == torch.complex128
    assert truncated_ifftn(truncated_fftn(x, (3,)), (8,)).dtype == torch.float64


def test_output_keeps_device(device):
    x = torch.randn(2, 3, 16, 16, device=device)
    c = truncated_fftn(x, (5, 5))
    y = truncated_ifftn(c, (20, 24))
    assert c.device == x.device and y.device == x.device
    ref = np.fft.rfft2(x.cpu().double().numpy(), norm="forward")
    np.testing.assert_allclose(c[..., :5, :].cpu().numpy(), ref[..., :5, :5], atol=1e-5)


# ---------------------------------------------------------------------------- errors


def test_error_modes_too_large_for_grid():
    with pytest.raises(ValueError, match=r"n_modes\[-1\]=9 exceeds the 8 modes .*got x of shape \(2, 3, 16, 16\)"):
        truncated_fftn(torch.randn(2, 3, 16, 16), (4, 9))
    with pytest.raises(ValueError, match=r"n_modes\[-2\]=9 exceeds the 8 modes"):
        truncated_fftn(torch.randn(2, 3, 16, 16), (9, 4))


def test_error_inverse_grid_too_small():
    c = truncated_fftn(torch.randn(2, 16, 16), (6, 6))
    with pytest.raises(ValueError, match=r"n_modes\[-1\]=6 exceeds the 5 modes a grid of 10 points admits"):
        truncated_ifftn(c, (16, 10))


def test_error_wrong_rank():
    with pytest.raises(ValueError, match=r"expected at least 3 dims .* got shape \(4, 4\)"):
        truncated_fftn(torch.randn(4, 4), (2, 2, 2))


def test_error_unknown_norm():
    with pytest.raises(ValueError, match=r"norm must be one of \('forward', 'backward', 'ortho'\), got 'none'"):
        truncated_fftn(torch.randn(2, 8), (3,), norm="none")


def test_error_complex_input_without_flag():
    with pytest.raises(TypeError, match=r"complex dtype torch.complex64; pass complex_data=True"):
        truncated_fftn(torch.randn(2, 8, dtype=torch.complex64), (3,))


def test_error_integer_input():
    with pytest.raises(TypeError, match=r"floating or complex dtype, got torch.int64"):
        truncated_fftn(torch.arange(8), (3,))


def test_error_even_two_sided_kept_axis():
    with pytest.raises(ValueError, match=r"holds 2m - 1 \(an odd number\) bins: spectrum shape \(6, 4\)"):
        truncated_ifftn(torch.zeros(2, 6, 4, dtype=torch.complex64), (16, 16))


def test_error_real_modes_to_inverse():
    with pytest.raises(TypeError, match="truncated_ifftn: modes must have a complex dtype, got torch.float32"):
        truncated_ifftn(torch.zeros(2, 7, 4), (16, 16))


def test_error_bad_n_modes():
    with pytest.raises(ValueError, match=r"n_modes\[1\] must be an int >= 1, got 0"):
        truncated_fftn(torch.randn(2, 8, 8), (3, 0))
    with pytest.raises(TypeError, match=r"n_modes\[0\] must be an int, got float 2.5"):
        truncated_fftn(torch.randn(2, 8), (2.5,))


def test_error_bad_inverse_grid():
    c = truncated_fftn(torch.randn(2, 8, 8), (3, 3))
    with pytest.raises(ValueError, match=r"grid must not be empty, got \(\)"):
        truncated_ifftn(c, ())
    with pytest.raises(ValueError, match=r"grid must have 1 to 3 entries .* got \(8, 8, 8, 8\)"):
        truncated_ifftn(c.reshape(1, 1, 2, 5, 3), (8, 8, 8, 8))
    with pytest.raises(TypeError, match=r"grid\[0\] must be an int, got float 8.0"):
        truncated_ifftn(c, (8.0, 8))
    with pytest.raises(TypeError, match=r"grid\[1\] must be an int, got bool True"):
        truncated_ifftn(c, (8, True))
    with pytest.raises(TypeError, match=r"grid must be an int or a sequence of ints, got str '8'"):
        truncated_ifftn(c, "8")
    with pytest.raises(ValueError, match=r"grid\[0\] must be an int >= 1, got 0"):
        truncated_ifftn(c, (0, 8))


def test_error_bad_out_dtype():
    """out_dtype='float32' reached Tensor.to as a device string ("Invalid device string")."""
    c = truncated_fftn(torch.randn(2, 8, 8), (3, 3))
    with pytest.raises(TypeError, match=r"out_dtype must be None or a floating or complex torch.dtype, got str 'float32'"):
        truncated_ifftn(c, (8, 8), out_dtype="float32")
    with pytest.raises(TypeError, match=r"out_dtype must be None or a floating or complex torch.dtype, got dtype torch.int64"):
        truncated_ifftn(c, (8, 8), out_dtype=torch.int64)
    z = truncated_fftn(torch.randn(2, 8, 8, dtype=torch.complex64), (3, 3), complex_data=True)
    with pytest.raises(TypeError, match=r"out_dtype must be None or a complex torch.dtype, got dtype torch.float32"):
        truncated_ifftn(z, (8, 8), complex_data=True, out_dtype=torch.float32)  # dropped the imaginary part
    assert truncated_ifftn(c, (8, 8), out_dtype=torch.float64).dtype == torch.float64


def test_error_bad_flags_and_inputs():
    with pytest.raises(TypeError, match=r"complex_data must be a bool, got str 'yes'"):
        truncated_fftn(torch.randn(2, 8), (3,), complex_data="yes")
    with pytest.raises(TypeError, match=r"truncated_fftn: x must be a torch.Tensor, got list"):
        truncated_fftn([1.0, 2.0, 3.0], (1,))
    with pytest.raises(TypeError, match=r"truncated_ifftn: modes must be a torch.Tensor, got numpy.ndarray of shape \(2, 3\)"):
        truncated_ifftn(np.zeros((2, 3), dtype=np.complex64), 8)
    with pytest.raises(ValueError, match=r"norm must be one of .*got 1"):
        truncated_ifftn(torch.zeros(2, 3, dtype=torch.complex64), 8, norm=1)


def test_error_bad_rfft_and_fft_conv_arguments():
    from spectral.fft import fft_conv, rfft

    x = torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"n must be an int >= 1, got 0"):
        rfft(x, n=0)
    with pytest.raises(ValueError, match=r"dim must be an int in \[-3, 2\], got 3"):
        rfft(x, dim=3)
    with pytest.raises(TypeError, match=r"rfft: x must have a real floating dtype, got torch.complex64"):
        rfft(x.to(torch.complex64))
    with pytest.raises(ValueError, match=r"norm must be one of"):
        rfft(x, norm="unitary")
    w = torch.zeros(4, 3, dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"p must be an int, got bool True"):
        fft_conv(x, w, True)
    with pytest.raises(TypeError, match=r"fft_conv: w must be a torch.Tensor, got numpy.ndarray of shape \(4, 3\)"):
        fft_conv(x, w.numpy(), 6)
    with pytest.raises(TypeError, match=r"fft_conv: x must have a real floating dtype, got torch.int64"):
        fft_conv(x.long(), w, 6)
    with pytest.raises(ValueError, match=r"fft_conv: expected .* got x \(2, 6, 3\), w \(4, 3\), P=8"):
        fft_conv(x, w, 8)


# ---------------------------------------------------------------------------- hypothesis


@settings(max_examples=25, deadline=None)
@given(
    grid=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    data=st.data(),
)
def test_property_forward_equals_numpy_and_inverse_is_projection(grid, batch, data):
    modes = tuple(data.draw(st.integers(1, (n + 1) // 2)) for n in grid)
    x = np.random.default_rng(5).standard_normal((*batch, *grid))
    got = truncated_fftn(torch.from_numpy(x), modes).numpy()
    ks = [k.numpy() for k in compact_wavenumbers(modes)]
    full = np.fft.rfftn(x, axes=range(-len(grid), 0), norm="forward") if x.ndim else None
    np.testing.assert_allclose(got, full[(Ellipsis, *np.ix_(*[k % n for k, n in zip(ks, grid)]))], atol=1e-12)
    # The inverse onto the same grid is the orthogonal projection onto the kept band: idempotent.
    proj = truncated_ifftn(torch.from_numpy(got), tuple(grid))
    torch.testing.assert_close(truncated_ifftn(truncated_fftn(proj, modes), tuple(grid)), proj, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------- resample


@pytest.mark.parametrize("n,new", [(16, 40), (15, 40), (16, 9), (17, 8), (12, 12), (10, 11), (13, 20)])
def test_resample_1d_matches_scipy(n, new):
    x = np.random.default_rng(6).standard_normal((3, n))
    ref = scipy.signal.resample(x, new, axis=-1)
    np.testing.assert_allclose(resample(torch.from_numpy(x), new).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("n,new", [(16, 40), (15, 9), (16, 10), (9, 16)])
def test_resample_complex_matches_scipy(n, new):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n))
    ref = scipy.signal.resample(x, new, axis=-1)
    np.testing.assert_allclose(resample(torch.from_numpy(x), new).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("size", [(24, 40), (9, 8), (32, 33)])
def test_resample_2d_matches_scipy_axis_by_axis(size):
    x = np.random.default_rng(8).standard_normal((2, 16, 20))
    ref = scipy.signal.resample(scipy.signal.resample(x, size[0], axis=-2), size[1], axis=-1)
    np.testing.assert_allclose(resample(torch.from_numpy(x), size).numpy(), ref, atol=1e-12)


def _band_limited(points, kmax: int, dims: int, seed: int = 0):
    """Sum of random Fourier modes |k_i| <= kmax sampled on the given grid (float64)."""
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*[np.arange(n) / n for n in points], indexing="ij")
    out = np.zeros(points)
    for k in itertools.product(range(-kmax, kmax + 1), repeat=dims):
        phase = 2 * np.pi * sum(ki * a for ki, a in zip(k, axes))
        out += rng.standard_normal() * np.cos(phase) + rng.standard_normal() * np.sin(phase)
    return torch.from_numpy(out)


@pytest.mark.parametrize("src,dst", [((12, 15), (32, 33)), ((32, 33), (12, 13)), ((9, 9, 9), (16, 11, 13))])
def test_resample_is_exact_for_band_limited_fields(src, dst):
    f_src = _band_limited(src, kmax=2, dims=len(src))
    f_dst = _band_limited(dst, kmax=2, dims=len(dst))
    torch.testing.assert_close(resample(f_src, dst), f_dst, atol=1e-10, rtol=0)


def test_resample_down_below_band_gives_low_pass_projection():
    t = torch.arange(32, dtype=torch.float64) / 32
    x = torch.cos(2 * torch.pi * 2 * t) + torch.cos(2 * torch.pi * 7 * t)  # k = 7 does not fit in 8 points
    t8 = torch.arange(8, dtype=torch.float64) / 8
    torch.testing.assert_close(resample(x, 8), torch.cos(2 * torch.pi * 2 * t8), atol=1e-12, rtol=0)


def test_resample_half_precision_keeps_dtype():
    x = torch.randn(2, 16).to(torch.bfloat16)
    y = resample(x, 32)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), resample(x.float(), 32), atol=1e-2, rtol=1e-2)


def test_resample_errors():
    with pytest.raises(ValueError, match=r"size\[0\] must be an int >= 1, got 0"):
        resample(torch.randn(4, 4), (0, 4))
    with pytest.raises(ValueError, match=r"expected at least 3 dims .* got shape \(4, 4\)"):
        resample(torch.randn(4, 4), (8, 8, 8))
    with pytest.raises(TypeError, match=r"size\[0\] must be an int, got bool True"):
        resample(torch.randn(4, 4), (True, 4))  # resampled to 1 point before
    with pytest.raises(TypeError, match=r"size must be an int or a sequence of ints, got str '8'"):
        resample(torch.randn(4, 4), "8")
    with pytest.raises(ValueError, match=r"size must be 1 to 3 positive ints, got \(2, 2, 2, 2\)"):
        resample(torch.randn(4, 4, 4, 4), (2, 2, 2, 2))
    assert resample(torch.randn(2, 4), np.int64(8)).shape == (2, 8)


# ---------------------------------------------------------------------------- torch.compile


def _pair(x):
    return truncated_ifftn(truncated_fftn(x, (5, 5)), (20, 18))


def test_compile_fullgraph_has_no_graph_breaks():
    # backend="aot_eager" traces forward and backward graphs (a graph break raises) without codegen.
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    compiled = torch.compile(_pair, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y.square().sum().backward()
    torch.testing.assert_close(y, _pair(x.detach()))
    torch.testing.assert_close(x.grad, torch.autograd.grad(_pair(x).square().sum(), x)[0])


@pytest.mark.slow
def test_compile_inductor_matches_eager():
    torch._dynamo.reset()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(torch.compile(_pair, fullgraph=True)(x), _pair(x))


@pytest.mark.parametrize("n, new", [(16, 8), (15, 8), (12, 6), (9, 4)])
def test_resample_down_does_not_leave_the_nyquist_imaginary_part_to_the_backend(n, new, request):
    """Folding to an even length makes the new Nyquist bin 2 X_{new/2}, complex; the result must be
    scipy's (2 Re X) even under an inverse FFT that does not ignore that bin's imaginary part."""
    x = torch.randn(3, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    request.getfixturevalue("leaky_irfft")
    np.testing.assert_allclose(resample(x, new).numpy(), scipy.signal.resample(x.numpy(), new, axis=-1), atol=1e-12)



def _adjoint_dft(g: np.ndarray, ks: list[np.ndarray], grid, scale: float) -> np.ndarray:
    """A^H g for the naive DFT A at wavenumbers ks scaled by ``scale``: sum_k g_k exp(+2 pi i k.x / N) * scale."""
    d = len(ks)
    out = g.astype(np.complex128)
    for axis, (n, k) in enumerate(zip(grid, ks)):
        mat = np.exp(2j * np.pi * np.outer(np.arange(n), k) / n)  # (N, K)
        out = np.moveaxis(np.tensordot(out, mat, axes=([axis - d], [1])), -1, axis - d)
    return out * scale


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("complex_data", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_backward_helpers_are_the_conjugate_transposes_of_the_naive_dft(case, complex_data, norm):
    """With torch's gradient convention for a linear map M (grad_in = M^H grad_out, its real part for a real
    input): truncated_fftn_backward is A^H for the naive DFT A at the kept wavenumbers, truncated_ifftn_backward
    is B^H for the naive synthesis B (rfft bins after DC weighted 2 for real data); numpy references, and
    autograd through the transforms agrees."""
    grid, n_modes = case
    rng = np.random.default_rng(7)
    ks = [k.numpy() for k in compact_wavenumbers(n_modes, complex_data=complex_data)]
    kept = tuple(len(k) for k in ks)
    n = np.prod(grid)
    fwd_scale = {"forward": 1 / n, "backward": 1.0, "ortho": 1 / np.sqrt(n)}[norm]
    inv_scale = {"forward": 1.0, "backward": 1 / n, "ortho": 1 / np.sqrt(n)}[norm]

    g = rng.standard_normal((2, *kept)) + 1j * rng.standard_normal((2, *kept))
    want = _adjoint_dft(g, ks, grid, fwd_scale)
    got = truncated_fftn_backward(torch.from_numpy(g), grid, complex_data=complex_data, norm=norm)
    np.testing.assert_allclose(got.numpy(), want if complex_data else want.real, rtol=1e-10, atol=1e-12)
    x = torch.randn(2, *grid, dtype=torch.complex128 if complex_data else torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(truncated_fftn(x, n_modes, complex_data=complex_data, norm=norm), x, torch.from_numpy(g))
    torch.testing.assert_close(got, auto, rtol=1e-10, atol=1e-12)

    h = rng.standard_normal((2, *grid)) + (1j * rng.standard_normal((2, *grid)) if complex_data else 0)
    weights = 1.0 if complex_data else np.where(ks[-1] == 0, 1.0, 2.0)  # along the last (rfft) axis
    want = naive_dft(h, ks, "backward") * inv_scale * weights  # B^H h = conj(B)^T h
    got = truncated_ifftn_backward(torch.from_numpy(h), n_modes, complex_data=complex_data, norm=norm)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    c = torch.randn(2, *kept, dtype=torch.complex128, requires_grad=True)
    (auto,) = torch.autograd.grad(truncated_ifftn(c, grid, complex_data=complex_data, norm=norm), c, torch.from_numpy(h))
    torch.testing.assert_close(got, auto, rtol=1e-10, atol=1e-12)
