"""Exact first and second derivatives of every FFT autograd Function, empty batches and the meta device.

References: torch's own autograd through plain ``torch.fft`` (an independent implementation
of the same maps) and finite differences (``gradcheck`` / ``gradgradcheck`` in float64).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from spectral import _fft_autograd as A
from spectral.complex import complex_bmm, contract_modes, contract_modes_diagonal, contract_modes_packed
from spectral.fft import fft_conv, real_edge_bins, resample, rfft, truncated_fftn, truncated_ifftn

NORMS = ("forward", "backward", "ortho")
F64, C128 = torch.float64, torch.complex128


def _rand(*shape, dtype=F64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)


# ------------------------------------------------------------------ every Function, first and second order

# name -> (function of (norm, *inputs), input specs: a shape, "c" last for complex128)
FUNCTIONS = {
    "RfftKeep-even": (lambda norm, x: A._RfftKeep.apply(x, 4, norm), [(2, 8)]),
    "RfftKeep-odd": (lambda norm, x: A._RfftKeep.apply(x, 3, norm), [(2, 7)]),
    "IrfftPad-even": (lambda norm, y: A._IrfftPad.apply(y, 8, norm), [(2, 3, "c")]),
    "IrfftPad-odd": (lambda norm, y: A._IrfftPad.apply(y, 5, norm), [(2, 3, "c")]),
    "FftKeep-complex": (lambda norm, x: A._FftKeep.apply(x, 3, -2, norm), [(6, 2, "c")]),
    "FftKeep-real": (lambda norm, x: A._FftKeep.apply(x, 2, -1, norm), [(2, 5)]),
    "IfftPad": (lambda norm, y: A._IfftPad.apply(y, 8, -1, norm), [(2, 5, "c")]),
    "RFFT-pad": (lambda norm, x: A._RFFT.apply(x, 6, 1, norm), [(2, 5, 2)]),
    "RFFT-truncate": (lambda norm, x: A._RFFT.apply(x, 4, -1, norm), [(2, 7)]),
    "RFFT-odd": (lambda norm, x: A._RFFT.apply(x, 5, 0, norm), [(5, 2)]),
    "RfftAdjoint-even": (lambda norm, g: A._RfftAdjoint.apply(g, 6, 1, norm, 6), [(2, 4, 2, "c")]),
    "RfftAdjoint-odd-pad": (lambda norm, g: A._RfftAdjoint.apply(g, 5, 1, norm, 4), [(2, 3, "c")]),
    "RfftAdjoint-truncate": (lambda norm, g: A._RfftAdjoint.apply(g, 4, 1, norm, 6), [(2, 3, "c")]),
    "FFTConv": (lambda norm, x, w: A._FFTConv.apply(x, None, w, 8), [(2, 5, 3), (5, 3, "c")]),
}


def _inputs(specs):
    out = []
    for i, spec in enumerate(specs):
        complex_ = spec[-1] == "c"
        out.append(_rand(*(spec[:-1] if complex_ else spec), dtype=C128 if complex_ else F64, seed=i))
    return tuple(out)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_function_passes_gradcheck_and_gradgradcheck(name, norm):
    fn, specs = FUNCTIONS[name]
    inputs = _inputs(specs)
    assert gradcheck(lambda *a: fn(norm, *a), inputs)
    assert gradgradcheck(lambda *a: fn(norm, *a), inputs)


@pytest.mark.parametrize("n,p", [(5, 5), (6, 6), (4, 7), (5, 10)])
def test_fft_conv_passes_gradgradcheck_in_x_and_w(n, p):
    """d(dL/dw)/dx was silently wrong (the backward used a spectrum of x outside the graph)."""
    x = _rand(2, n, 3)
    w = real_edge_bins(torch.randn(p // 2 + 1, 3, dtype=C128), p, dim=0).requires_grad_(True)
    assert gradcheck(lambda a, b: fft_conv(a, b, p), (x, w))
    assert gradgradcheck(lambda a, b: fft_conv(a, b, p), (x, w))


def test_fft_conv_third_derivatives():
    x, p = _rand(2, 4, 2), 7
    w = real_edge_bins(torch.randn(p // 2 + 1, 2, dtype=C128), p, dim=0).requires_grad_(True)
    v = torch.randn(2, 4, 2, dtype=F64)

    def grads(a, b):
        return torch.autograd.grad(fft_conv(a, b, p), (a, b), v, create_graph=True)

    assert gradgradcheck(grads, (x, w))


@pytest.mark.parametrize("n,p", [(6, 6), (5, 9)])
def test_fft_conv_hessian_vector_product_matches_plain_torch(n, p):
    """A gradient penalty through fft_conv against the same penalty through plain torch.fft."""
    x = torch.randn(3, n, 4, dtype=F64, requires_grad=True)
    w = real_edge_bins(torch.randn(p // 2 + 1, 4, dtype=C128), p, dim=0).requires_grad_(True)

    def plain(a, b):
        return torch.fft.irfft(torch.fft.rfft(a, n=p, dim=1) * b, n=p, dim=1)[:, :n]

    def penalty(f):
        y = f(x, w)
        gx, gw = torch.autograd.grad((y.sin() * y).sum(), (x, w), create_graph=True)
        return torch.autograd.grad(gx.square().sum() + real_edge_bins(gw, p, dim=0).abs().square().sum(), (x, w))

    ours, want = penalty(lambda a, b: fft_conv(a, b, p)), penalty(plain)
    torch.testing.assert_close(ours[0], want[0])
    torch.testing.assert_close(ours[1], real_edge_bins(want[1], p, dim=0))  # edge imaginary parts do not act


def test_first_order_and_create_graph_paths_agree():
    """The fast first-order backward and the differentiable one give the same gradients."""
    x = torch.randn(2, 9, 3, dtype=F64, requires_grad=True)
    w = real_edge_bins(torch.randn(9, 3, dtype=C128), 16, dim=0).requires_grad_(True)
    g = torch.randn(2, 9, 3, dtype=F64)
    fast = torch.autograd.grad(fft_conv(x, w, 16), (x, w), g)
    slow = torch.autograd.grad(fft_conv(x, w, 16), (x, w), g, create_graph=True)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b.detach())
    c = truncated_fftn(x, (3, 2))
    gc = torch.randn_like(c)
    torch.testing.assert_close(torch.autograd.grad(c, x, gc)[0], torch.autograd.grad(c, x, gc, create_graph=True)[0])


@pytest.mark.parametrize("complex_data", [False, True])
@pytest.mark.parametrize("grid,modes,out", [((8,), (3,), (7,)), ((6, 5), (2, 3), (5, 8)), ((3, 4, 3), (2, 2, 2), (4, 3, 4))])
def test_truncated_pair_passes_gradgradcheck(grid, modes, out, complex_data):
    x = _rand(1, *grid, dtype=C128 if complex_data else F64)

    def pair(t):
        c = truncated_fftn(t, modes, complex_data=complex_data, norm="ortho")
        return truncated_ifftn(c * c.abs(), out, complex_data=complex_data, norm="ortho")  # nonlinear in between

    assert gradgradcheck(pair, (x,))


@pytest.mark.parametrize("size", [(7, 4), (12, 6), (5, 8)])
def test_resample_and_rfft_pass_gradgradcheck(size):
    x = _rand(2, 6, 6)
    assert gradgradcheck(lambda t: resample(t, size).square(), (x,))
    assert gradgradcheck(lambda t: rfft(t, n=size[0], dim=-1, norm="ortho").abs().square(), (x,))


def test_mode_contraction_passes_gradgradcheck():
    xk, wk = _rand(3, 2, 4, dtype=C128), _rand(3, 4, 2, dtype=C128, seed=1)
    assert gradgradcheck(complex_bmm, (xk, wk))
    x, w = _rand(2, 3, 3, 2, dtype=C128), _rand(3, 2, 3, 2, dtype=C128, seed=1)
    assert gradgradcheck(lambda a, b: contract_modes(a, b) * contract_modes(a, b).conj(), (x, w))
    assert gradgradcheck(contract_modes_diagonal, (x, _rand(3, 3, 2, dtype=C128, seed=2)))


# ------------------------------------------------------------------ rfft and fft_conv against plain torch autograd


@pytest.mark.parametrize("norm", ["backward", "forward", "ortho"])
@pytest.mark.parametrize("length,n,dim", [(8, 8, 1), (7, 7, 1), (5, 12, 1), (6, 11, -1), (1, 4, 1)])
def test_rfft_backward_matches_torch_autograd(length, n, dim, norm):
    shape = (2, length, 3) if dim == 1 else (2, 3, length)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ours = rfft(x, n=n, dim=dim, norm=norm)
    plain = torch.fft.rfft(x, n=n, dim=dim, norm=norm)
    torch.testing.assert_close(ours, plain)
    g = torch.randn_like(ours)
    torch.testing.assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(plain, x, g)[0])


@pytest.mark.parametrize("norm", ["backward", "forward", "ortho"])
@pytest.mark.parametrize("length,n,dim", [(8, 5, 1), (8, 4, 1), (9, 2, -1), (3, 1, 1)])
def test_rfft_backward_when_n_truncates_matches_torch_autograd(length, n, dim, norm):
    """n < length: rfft reads the first n samples only, so the others get a zero gradient (crashed before)."""
    shape = (2, length, 3) if dim == 1 else (2, 3, length)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ours = rfft(x, n=n, dim=dim, norm=norm)
    plain = torch.fft.rfft(x, n=n, dim=dim, norm=norm)
    torch.testing.assert_close(ours, plain)
    got = torch.autograd.grad(ours.abs().sum(), x)[0]
    want = torch.autograd.grad(plain.abs().sum(), x)[0]
    torch.testing.assert_close(got, want)
    assert got.shape == x.shape and (got.narrow(dim, n, length - n) == 0).all()
    assert torch.autograd.gradcheck(lambda t: rfft(t, n=n, dim=dim, norm=norm), (x,))


@pytest.mark.parametrize("n,p", [(8, 8), (7, 7), (6, 12), (5, 9), (9, 20)])
def test_fft_conv_and_its_gradients_match_plain_autograd(n, p):
    x = torch.randn(3, n, 4, dtype=torch.float64, requires_grad=True)
    w = real_edge_bins(torch.randn(p // 2 + 1, 4, dtype=torch.complex128), p, dim=0).requires_grad_(True)
    ours = fft_conv(x, w, p)
    plain = torch.fft.irfft(torch.fft.rfft(x, n=p, dim=1) * w, n=p, dim=1)[:, :n]
    torch.testing.assert_close(ours, plain)
    g = torch.randn_like(ours)
    got = torch.autograd.grad(ours, (x, w), g)
    want = torch.autograd.grad(plain, (x, w), g)
    torch.testing.assert_close(got[0], want[0])
    # the imaginary parts of the DC / Nyquist bins do not act: their gradient is zero
    torch.testing.assert_close(got[1], real_edge_bins(want[1], p, dim=0))
    ours.add_(1.0)  # the output is not a view: in-place use is allowed
    with pytest.raises(ValueError, match=r"fft_conv: expected .* got x \(3, 5, 4\), w \(3, 4\), P=4"):
        fft_conv(torch.zeros(3, 5, 4), torch.zeros(3, 4, dtype=torch.complex64), 4)


# ------------------------------------------------------------------ empty batch


def _assert_empty(y, shape, dtype):
    assert tuple(y.shape) == tuple(shape) and y.dtype == dtype and y.numel() == 0


def test_empty_batch_gives_empty_results_of_the_right_shape_and_dtype():
    x = torch.randn(0, 3, 8, 6, requires_grad=True)
    c = truncated_fftn(x, (3, 2))
    _assert_empty(c, (0, 3, 5, 2), torch.complex64)
    cc = truncated_fftn(x.double(), (3, 2), complex_data=True)
    _assert_empty(cc, (0, 3, 5, 3), C128)
    _assert_empty(truncated_fftn(x.half(), (3, 2)), (0, 3, 5, 2), torch.complex64)
    y = truncated_ifftn(c, (10, 4))
    _assert_empty(y, (0, 3, 10, 4), torch.float32)
    _assert_empty(truncated_ifftn(c, (10, 4), out_dtype=torch.float16), (0, 3, 10, 4), torch.float16)
    _assert_empty(truncated_ifftn(cc, (5, 3), complex_data=True), (0, 3, 5, 3), C128)
    _assert_empty(resample(x, (4, 9)), (0, 3, 4, 9), torch.float32)
    _assert_empty(rfft(x, dim=2), (0, 3, 5, 6), torch.complex64)
    _assert_empty(rfft(x, n=11, dim=-1), (0, 3, 8, 6), torch.complex64)
    y.sum().backward()  # the empty result is in the graph of x
    assert x.grad is not None and x.grad.shape == x.shape


def test_empty_batch_fft_conv_keeps_the_filter_in_the_graph():
    x = torch.randn(0, 5, 4, requires_grad=True)
    w = torch.randn(5, 4, dtype=torch.complex64, requires_grad=True)
    y = fft_conv(x, w, 8)
    _assert_empty(y, (0, 5, 4), torch.float32)
    y.sum().backward()
    assert w.grad is not None and (w.grad == 0).all() and x.grad.shape == x.shape


def test_empty_batch_mode_contraction():
    x = torch.randn(0, 3, 5, 2, dtype=torch.complex64)
    w = torch.randn(3, 4, 5, 2, dtype=torch.complex64, requires_grad=True)
    _assert_empty(contract_modes(x, w), (0, 4, 5, 2), torch.complex64)
    _assert_empty(contract_modes_packed(x, w.flatten(2).permute(2, 0, 1)), (0, 4, 5, 2), torch.complex64)
    _assert_empty(contract_modes_diagonal(x, w[:, 0]), (0, 3, 5, 2), torch.complex64)


# ------------------------------------------------------------------ meta device


def test_meta_inputs_give_meta_outputs_of_the_right_shape():
    x = torch.empty(2, 3, 8, 6, device="meta")
    c = truncated_fftn(x, (3, 2))
    assert c.device.type == "meta" and c.shape == (2, 3, 5, 2) and c.dtype == torch.complex64
    y = truncated_ifftn(c, (10, 4), out_dtype=torch.float16)
    assert y.device.type == "meta" and y.shape == (2, 3, 10, 4) and y.dtype == torch.float16
    r = resample(x, (4, 9))
    assert r.device.type == "meta" and r.shape == (2, 3, 4, 9)
    s = rfft(x, dim=-1)
    assert s.device.type == "meta" and s.shape == (2, 3, 8, 4)
    xs = torch.empty(2, 5, 4, device="meta")
    z = fft_conv(xs, torch.empty(5, 4, dtype=torch.complex64, device="meta"), 8)
    assert z.device.type == "meta" and z.shape == (2, 5, 4) and z.dtype == torch.float32
    w = torch.empty(3, 4, 5, 2, dtype=torch.complex64, device="meta")
    assert contract_modes(torch.empty(2, 3, 5, 2, dtype=torch.complex64, device="meta"), w).shape == (2, 4, 5, 2)


def test_meta_inputs_under_autocast():
    """fft_precision asked torch.is_autocast_enabled("meta"), which raises "unknown device type"."""
    x = torch.empty(2, 3, 8, 6, device="meta")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        c = truncated_fftn(x, (3, 2))
        y = truncated_ifftn(c, (8, 6))
    assert y.device.type == "meta" and y.shape == x.shape


def _edges_reference(y: np.ndarray, n: int, axis: int, *, rest: float | None) -> np.ndarray:
    """numpy: zero the DC (and, for even n with all n // 2 + 1 bins, Nyquist) imaginary parts, or scale the other bins."""
    out = np.moveaxis(y.copy(), axis, -1)
    f = out.shape[-1]
    edges = [0] + ([f - 1] if f > 1 and n % 2 == 0 and f == n // 2 + 1 else [])
    if rest is None:
        for k in edges:
            out[..., k] = out[..., k].real
    else:
        scaled = out * rest
        scaled[..., edges] = out[..., edges]
        out = scaled
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("n, f, dim", [(16, 9, -1), (16, 9, 1), (15, 8, -1), (16, 5, 0), (16, 1, -1), (2, 2, -1)])
@pytest.mark.parametrize("compiled", [False, True])
def test_edge_bin_helpers_match_numpy_eager_and_compiled(n, f, dim, compiled):
    # real_edge_bins and _scale_rfft_bins take another path under torch.compile (a cat of the bins instead of a
    # mask or in-place edits); dynamo's tracing alone (backend="eager") switches it on
    from spectral._fft_autograd import _scale_rfft_bins

    shape = [3, 4, 5]
    shape[dim] = f
    y = torch.randn(*shape, dtype=C128, generator=torch.Generator().manual_seed(f))
    reb = lambda t: real_edge_bins(t, n, dim)  # noqa: E731
    scale = lambda t: _scale_rfft_bins(t, n, 0.5)  # noqa: E731
    if compiled:
        torch._dynamo.reset()
        reb, scale = (torch.compile(fn, backend="eager", fullgraph=True) for fn in (reb, scale))
    np.testing.assert_array_equal(reb(y).numpy(), _edges_reference(y.numpy(), n, dim, rest=None))
    if dim % 3 == 2:  # _scale_rfft_bins acts on the last axis only
        np.testing.assert_allclose(scale(y).numpy(), _edges_reference(y.numpy(), n, dim, rest=0.5), rtol=0, atol=1e-15)
