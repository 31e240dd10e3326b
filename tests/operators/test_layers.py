"""operators.layers: references for the pointwise pieces, padding and grid, the Fourier block;
exact second derivatives, empty batches, the meta device and named errors for every module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import operators.layers as layers
from operators.layers import (
    ChannelLinear,
    ChannelMLP,
    DomainPadding,
    FourierBlock,
    GridEmbedding,
    SoftGating,
    channel_linear,
    check_operator_options,
    make_skip,
    pointwise_mlp,
)
from operators.spectral_conv import SpectralConv
from spectral.activations import ACTIVATIONS

F64 = torch.float64
ACT_REF = {"gelu": torch.nn.functional.gelu, "relu": torch.relu, "silu": torch.nn.functional.silu,
           "tanh": torch.tanh, "identity": lambda t: t}


def _gradgradcheck_module(module: nn.Module, *inputs: torch.Tensor, **call_kwargs) -> bool:
    """gradgradcheck over the inputs and every parameter of ``module`` (float64; fast mode: random
    projections of the second derivative against finite differences, which is what keeps the
    Fourier-block cases to a second or two)."""
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in module.parameters())
    n_in = len(inputs)

    def f(*args):
        out = functional_call(module, dict(zip(names, args[n_in:])), args[:n_in], call_kwargs)
        return out.abs() if out.is_complex() else out

    args = tuple(t.detach().clone().requires_grad_(True) for t in inputs) + params
    return torch.autograd.gradgradcheck(f, args, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


# ---------------------------------------------------------------------------------------
# References


def test_public_names_and_all():
    assert set(layers.__all__) <= set(dir(layers))
    for name in ("ChannelMLP", "GridEmbedding", "DomainPadding", "FourierBlock", "SoftGating", "make_skip", "SKIPS"):
        assert name in layers.__all__


def test_channel_linear_and_mlp_match_einsum(generator):
    lin = ChannelLinear(3, 5, dtype=F64)
    x = torch.randn(2, 3, 4, 5, 6, dtype=F64, generator=generator)
    ref = torch.einsum("oi,bihwd->bohwd", lin.weight, x) + lin.bias.reshape(1, 5, 1, 1, 1)
    torch.testing.assert_close(lin(x), ref)
    mlp = ChannelMLP(3, 2, 7, n_layers=3, activation="tanh", dtype=F64)
    h = x
    for i, layer in enumerate(mlp.layers):
        h = torch.einsum("oi,bihwd->bohwd", layer.weight, h) + layer.bias.reshape(1, -1, 1, 1, 1)
        h = torch.tanh(h) if i < 2 else h
    torch.testing.assert_close(mlp(x), h)
    gate = SoftGating(3)
    with torch.no_grad():
        gate.weight.copy_(torch.tensor([1.0, 2.0, -1.0]))
    torch.testing.assert_close(gate(x.float()), x.float() * torch.tensor([1.0, 2.0, -1.0]).reshape(1, 3, 1, 1, 1))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("with_bias,with_residual", [(True, False), (False, True), (True, True)], ids=["bias", "residual", "both"])
def test_channel_linear_fused_activation_matches_autograd(activation, with_bias, with_residual, generator):
    """The recompute-in-backward path gives the plain composition's values and gradients."""
    x = torch.randn(2, 3, 5, 4, dtype=F64, generator=generator, requires_grad=True)
    w = torch.randn(4, 3, dtype=F64, generator=generator, requires_grad=True)
    b = torch.randn(4, dtype=F64, generator=generator, requires_grad=True) if with_bias else None
    r = torch.randn(2, 4, 5, 4, dtype=F64, generator=generator, requires_grad=True) if with_residual else None
    ref = torch.einsum("oi,bihw->bohw", w, ACT_REF[activation](x))
    ref = ref + (b.reshape(1, 4, 1, 1) if b is not None else 0) + (r if r is not None else 0)
    got = channel_linear(x, w, b, residual=r, activation=activation)
    torch.testing.assert_close(got, ref)
    inputs = [t for t in (x, w, b, r) if t is not None]
    g = torch.randn(ref.shape, dtype=F64, generator=generator)
    for a, e in zip(torch.autograd.grad(got, inputs, g), torch.autograd.grad(ref, inputs, g)):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("grid", [(7,), (5, 4), (3, 4, 2)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("activation,with_bias,with_residual", [(None, True, False), ("gelu", True, True), ("silu", False, True)])
def test_channel_linear_compiled_is_the_einsum(grid, activation, with_bias, with_residual, generator):
    """Under torch.compile channel_linear takes plain ops instead of its fused Function (dynamo's tracing
    alone switches that on): values and gradients still those of the einsum, in 1-D, 2-D and 3-D."""
    x = torch.randn(2, 3, *grid, dtype=F64, generator=generator, requires_grad=True)
    w = torch.randn(4, 3, dtype=F64, generator=generator, requires_grad=True)
    b = torch.randn(4, dtype=F64, generator=generator, requires_grad=True) if with_bias else None
    r = torch.randn(2, 4, *grid, dtype=F64, generator=generator, requires_grad=True) if with_residual else None
    a = x if activation is None else ACT_REF[activation](x)
    ref = torch.einsum("oi,bi...->bo...", w, a)
    ref = ref + (b.reshape(1, 4, *[1] * len(grid)) if b is not None else 0) + (r if r is not None else 0)
    torch._dynamo.reset()
    fn = torch.compile(lambda *t: channel_linear(*t, residual=r, activation=activation), backend="eager", fullgraph=True)
    got = fn(x, w, b)
    torch.testing.assert_close(got, ref)
    inputs = [t for t in (x, w, b, r) if t is not None]
    g = torch.randn(ref.shape, dtype=F64, generator=generator)
    for u, e in zip(torch.autograd.grad(got, inputs, g), torch.autograd.grad(ref, inputs, g)):
        torch.testing.assert_close(u, e)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_channel_linear_is_twice_differentiable(activation, generator):
    """gradgradcheck of the fused Function (x, W, b, residual), and its Hessian-vector product equals
    the plain composition's (the old backward used aten.silu_backward, which has no derivative)."""
    x = torch.randn(2, 3, 5, dtype=F64, generator=generator) + 0.3  # relu: keep away from the kink
    x = torch.where(x.abs() < 0.05, x + 0.2, x).requires_grad_(True)
    w = torch.randn(4, 3, dtype=F64, generator=generator, requires_grad=True)
    b = torch.randn(4, dtype=F64, generator=generator, requires_grad=True)
    r = torch.randn(2, 4, 5, dtype=F64, generator=generator, requires_grad=True)
    fn = lambda x, w, b, r: channel_linear(x, w, b, residual=r, activation=activation)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (x, w, b, r))
    ref_fn = lambda x, w, b, r: torch.einsum("oi,bin->bon", w, ACT_REF[activation](x)) + b[:, None] + r  # noqa: E731
    v = tuple(torch.randn(t.shape, dtype=F64, generator=generator) for t in (x, w, b, r))
    got = torch.autograd.functional.hvp(lambda *a: fn(*a).square().sum(), (x, w, b, r), v)[1]
    ref = torch.autograd.functional.hvp(lambda *a: ref_fn(*a).square().sum(), (x, w, b, r), v)[1]
    for a, e in zip(got, ref):
        torch.testing.assert_close(a, e)


def test_fused_channel_linear_first_order_keeps_only_x(generator):
    """The fast first-order path: the Function saves x and W only (act(x) is recomputed)."""
    x = torch.randn(2, 3, 5, dtype=F64, generator=generator, requires_grad=True)
    w = torch.randn(4, 3, dtype=F64, generator=generator, requires_grad=True)
    y = channel_linear(x, w, activation="gelu")
    node = y.grad_fn.next_functions[0][0] if y.grad_fn.name().startswith("View") else y.grad_fn
    assert len(node.saved_tensors) == 2


def test_grid_embedding_is_nested_across_resolutions():
    emb = GridEmbedding(2)
    a, b = emb(torch.zeros(1, 1, 8, 6)), emb(torch.zeros(1, 1, 16, 12))
    torch.testing.assert_close(b[:, :, ::2, ::2], a)
    np.testing.assert_allclose(a[0, 1, :, 0].numpy(), np.arange(8) / 8)
    np.testing.assert_allclose(a[0, 2, 0, :].numpy(), np.arange(6) / 6)


@pytest.mark.parametrize("mode", ["one-sided", "symmetric"])
def test_domain_padding_roundtrip(mode, generator):
    pad = DomainPadding((0.25, 0.5), mode=mode)
    x = torch.randn(2, 3, 8, 10, generator=generator)
    p = pad.pad(x)
    assert p.shape == (2, 3, 10, 15) == (2, 3, *pad.padded_shape((8, 10)))
    torch.testing.assert_close(pad.crop(p, (8, 10)), x)
    assert p.abs().sum() == x.abs().sum()  # zeros only in the padding
    torch.testing.assert_close(pad(x), p)


def test_domain_padding_of_an_output_grid_scales_the_input_padding():
    one = DomainPadding(0.25)
    assert one.amounts((10,)) == [(0, 2)] and one.padded_shape((30,), (10,)) == (36,)  # not round(0.25 * 30) = 8
    sym = DomainPadding(0.1, mode="symmetric")
    assert sym.amounts((32,)) == [(1, 2)] and sym.amounts((64,), (32,)) == [(2, 4)]  # not (3, 3)
    x = torch.arange(36.0).reshape(1, 1, 36)
    torch.testing.assert_close(one.crop(x, (30,), (10,)), x[..., :30])
    assert sym.crop(torch.arange(70.0).reshape(1, 1, 70), (64,), (32,))[0, 0, 0] == 2
    with pytest.raises(ValueError, match=r"input grid \(10,\) does not scale .* output grid \(15,\)"):
        DomainPadding(0.3).padded_shape((15,), (10,))  # 3 * 15 / 10 = 4.5 points


def test_fourier_block_reduces_to_its_conv_and_skip(generator):
    conv = SpectralConv(4, 4, (3, 3), dtype=F64)
    block = FourierBlock(conv, mlp_expansion=0, skip="identity", activation="identity", last=True)
    x = torch.randn(2, 4, 8, 8, dtype=F64, generator=generator)
    torch.testing.assert_close(block(x), conv(x) + x)
    separable = FourierBlock(SpectralConv(4, 4, (3, 3), separable=True), norm="group")
    assert separable(x.float()).shape == x.shape


def test_fourier_block_matches_its_formula(generator):
    """h = K x + S x, y = act(MLP(act(h)) + G x) with every piece written out by hand."""
    conv = SpectralConv(3, 3, (3, 3), dtype=F64)
    block = FourierBlock(conv, mlp_expansion=1.0, skip="linear", mlp_skip="soft-gating", activation="tanh", dtype=F64)
    with torch.no_grad():
        block.mlp_skip.weight.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(2, 3, 8, 7, dtype=F64, generator=generator)
    h = conv(x) + torch.einsum("oi,bihw->bohw", block.skip.weight, x)
    m = torch.tanh(h)
    for i, layer in enumerate(block.mlp.layers):
        m = torch.einsum("oi,bihw->bohw", layer.weight, m) + layer.bias[:, None, None]
        m = torch.tanh(m) if i == 0 else m
    ref = torch.tanh(m + block.mlp_skip.weight[:, None, None] * x)
    torch.testing.assert_close(block(x), ref)


def test_pointwise_mlp_and_make_skip():
    assert isinstance(pointwise_mlp(3, 4, 0), ChannelLinear) and isinstance(pointwise_mlp(3, 4, 5), ChannelMLP)
    assert isinstance(make_skip("linear", 3, 4), ChannelLinear) and make_skip("linear", 3, 4).bias is None
    assert isinstance(make_skip("identity", 3, 3), nn.Identity) and make_skip(None, 3, 4) is None


# ---------------------------------------------------------------------------------------
# Exact second derivatives, empty batches, the meta device


def _block(**kw):
    def make(device=None, dtype=None):
        conv = SpectralConv(2, 2, (2, 2), device=device, dtype=dtype)
        return FourierBlock(conv, mlp_expansion=kw.pop("mlp_expansion", 1.0), device=device, dtype=dtype, **kw)
    return make


MODULES = {  # id: (factory(device, dtype), input shape without the batch, call kwargs)
    "channel-linear": (lambda device=None, dtype=None: ChannelLinear(3, 2, device=device, dtype=dtype), (3, 4, 3), {}),
    "channel-linear-gelu": (lambda device=None, dtype=None: ChannelLinear(3, 2, device=device, dtype=dtype), (3, 5),
                            {"activation": "gelu"}),
    "channel-linear-silu": (lambda device=None, dtype=None: ChannelLinear(3, 2, device=device, dtype=dtype), (3, 5),
                            {"activation": "silu"}),
    "channel-mlp-silu": (lambda device=None, dtype=None: ChannelMLP(3, 2, 4, activation="silu", device=device, dtype=dtype),
                         (3, 4, 3), {"pre_activation": True}),
    "channel-mlp-tanh-3": (lambda device=None, dtype=None: ChannelMLP(2, 2, 3, n_layers=3, activation="tanh", device=device,
                                                                     dtype=dtype), (2, 5), {}),
    "soft-gating": (lambda device=None, dtype=None: SoftGating(3, device=device, dtype=dtype), (3, 4), {}),
    "grid-embedding": (lambda device=None, dtype=None: GridEmbedding(2), (2, 3, 4), {}),
    "domain-padding": (lambda device=None, dtype=None: DomainPadding((0.5, 0.25), mode="symmetric"), (2, 4, 4), {}),
    "block-linear-softgating": (_block(), (2, 4, 5), {}),
    "block-identity-linear-group": (_block(skip="identity", mlp_skip="linear", norm="group"), (2, 4, 5), {}),
    "block-softgating-identity-instance-last": (_block(skip="soft-gating", mlp_skip="identity", norm="instance", last=True),
                                                (2, 4, 5), {}),
    "block-no-mlp-no-skip": (_block(skip=None, mlp_expansion=0, activation="silu"), (2, 4, 5), {}),
    "block-output-shape": (_block(activation="gelu"), (2, 4, 5), {"output_shape": (8, 10)}),
}


@pytest.mark.parametrize("case", list(MODULES), ids=list(MODULES))
def test_gradgradcheck_every_layer(case, generator):
    make, shape, kwargs = MODULES[case]
    module = make(dtype=F64)
    x = torch.randn(2, *shape, dtype=F64, generator=generator)
    assert _gradgradcheck_module(module, x, **kwargs)


def _out_shape(make, shape, kwargs):
    with torch.no_grad():
        return make()(torch.randn(1, *shape), **kwargs).shape[1:]


@pytest.mark.parametrize("case", list(MODULES), ids=list(MODULES))
def test_empty_batch_every_layer(case):
    make, shape, kwargs = MODULES[case]
    module = make()
    x = torch.randn(0, *shape, requires_grad=True)
    y = module(x, **kwargs)
    assert y.shape == (0, *_out_shape(make, shape, kwargs)) and y.dtype == x.dtype
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("case", list(MODULES), ids=list(MODULES))
def test_meta_device_every_layer(case):
    make, shape, kwargs = MODULES[case]
    module = make(device="meta")
    assert all(p.device.type == "meta" for p in module.parameters())
    y = module(torch.empty(2, *shape, device="meta"), **kwargs)
    assert y.device.type == "meta" and y.shape == (2, *_out_shape(make, shape, kwargs))


def test_meta_input_with_a_dtype_mismatch_is_a_named_error():
    lin = ChannelLinear(3, 2, device="meta")
    with pytest.raises(TypeError, match=r"ChannelLinear: got x of dtype torch\.float64 but the parameters have torch\.float32"):
        lin(torch.empty(2, 3, 4, device="meta", dtype=F64))


# ---------------------------------------------------------------------------------------
# Named errors


@pytest.mark.parametrize(
    "build,exc,match",
    [
        (lambda: ChannelLinear(0, 2), ValueError, r"in_channels must be an int >= 1, got 0"),
        (lambda: ChannelLinear(True, 2), TypeError, r"in_channels must be an int, got bool True"),
        (lambda: ChannelLinear(3, None), TypeError, r"out_channels must be an int, got NoneType None"),
        (lambda: ChannelLinear(3, "4"), TypeError, r"out_channels must be an int, got str '4'"),
        (lambda: ChannelLinear(3, 4.0), TypeError, r"out_channels must be an int, got float 4\.0"),
        (lambda: ChannelMLP(3, 2, float("nan")), TypeError, r"hidden_channels must be an int, got float nan"),
        (lambda: ChannelMLP(3, 2, 4, n_layers=0), ValueError, r"n_layers must be an int >= 1, got 0"),
        (lambda: SoftGating(True), TypeError, r"channels must be an int, got bool True"),
        (lambda: GridEmbedding(4), ValueError, r"ndim must be an int in \[1, 3\], got 4"),
        (lambda: GridEmbedding("2"), TypeError, r"ndim must be an int, got str '2'"),
        (lambda: pointwise_mlp(3, 2, -1), ValueError, r"hidden_channels must be an int >= 0, got -1"),
    ],
    ids=["zero", "bool", "none", "str", "float", "nan-width", "n_layers", "gating-bool", "ndim-4", "ndim-str", "hidden-neg"],
)
def test_sizes_are_checked(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize(
    "build,exc,match",
    [
        (lambda: ChannelLinear(3, 2, dtype=torch.complex64), TypeError, r"dtype must be a real floating torch\.dtype .*complex64"),
        (lambda: ChannelMLP(3, 2, 4, dtype=torch.int32), TypeError, r"dtype must be a real floating torch\.dtype .*int32"),
        (lambda: SoftGating(3, dtype="float32"), TypeError, r"dtype must be a real floating torch\.dtype .*str 'float32'"),
        (lambda: _block(skip="linear")(dtype=torch.complex128), TypeError, r"dtype must be a real floating"),
    ],
    ids=["linear", "mlp", "gating-str", "block"],
)
def test_complex_or_int_dtype_is_refused(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize(
    "build,exc,match",
    [
        (lambda: ChannelMLP(3, 2, 4, activation="elu"), ValueError,
         r"activation must be one of \('gelu', 'relu', 'silu', 'tanh', 'identity'\), got str 'elu'"),
        (lambda: make_skip("dense", 3, 3), ValueError, r"skip must be one of \('linear', 'identity', 'soft-gating'\) or None"),
        (lambda: make_skip("identity", 3, 4, name="mlp_skip"), ValueError,
         r"mlp_skip='identity' needs in_channels == out_channels, got 3 and 4"),
        (lambda: _block(norm="batch")(), ValueError, r"norm must be one of \('instance', 'group'\) or None, got str 'batch'"),
        (lambda: DomainPadding(0.1, mode="reflect"), ValueError, r"mode must be one of \('one-sided', 'symmetric'\)"),
        (lambda: FourierBlock(nn.Linear(2, 2)), TypeError, r"conv\.in_channels must be an int, got NoneType None"),
        (lambda: FourierBlock(SpectralConv(2, 2, 2), last=1), TypeError, r"last must be a bool, got int 1"),
        (lambda: FourierBlock(SpectralConv(2, 2, 2), mlp_expansion=math.inf), ValueError, r"mlp_expansion must be finite"),
        (lambda: FourierBlock(SpectralConv(2, 2, 2), mlp_expansion="1"), TypeError, r"mlp_expansion must be a real number, got str"),
        (lambda: channel_linear(torch.zeros(1, 2, 3), torch.zeros(2, 2), activation="elu"), ValueError, r"activation must be one of"),
    ],
    ids=["activation", "skip", "identity-width", "norm", "padding-mode", "conv-without-channels", "last-int", "inf-expansion",
         "str-expansion", "functional-activation"],
)
def test_choices_and_options_are_checked(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize(
    "fraction,exc,match",
    [
        (float("nan"), ValueError, r"fraction must be a number in \[0, 10\) or one per axis, got nan"),
        (-0.1, ValueError, r"fraction must be a number in \[0, 10\) or one per axis, got -0\.1"),
        ("0.1", TypeError, r"fraction must be a number in \[0, 10\) or a sequence of them, got str '0\.1'"),
        (None, TypeError, r"fraction must be a number .* got NoneType None"),
        (True, TypeError, r"fraction must be a number .* got bool True"),
        ((0.1, "a"), TypeError, r"fraction must be a number in \[0, 10\) or one per axis, got \(0\.1, 'a'\)"),
        ((), ValueError, r"fraction must be a number in \[0, 10\) or one per axis, got \(\)"),
    ],
    ids=["nan", "negative", "str", "none", "bool", "str-entry", "empty"],
)
def test_domain_padding_fraction_is_checked(fraction, exc, match):
    with pytest.raises(exc, match=match):
        DomainPadding(fraction)
    assert DomainPadding(np.float32(0.25)).fraction == (0.25,)


@pytest.mark.parametrize(
    "module,x,exc,match",
    [
        (ChannelLinear(3, 2), torch.zeros(2, 4, 5), ValueError, r"ChannelLinear: expected x of shape \(B, 3, \*grid\), got \(2, 4, 5\)"),
        (ChannelLinear(3, 2), torch.zeros(2, 3), ValueError, r"ChannelLinear: expected x of shape \(B, 3, \*grid\), got \(2, 3\)"),
        (ChannelLinear(3, 2), np.zeros((2, 3, 5), np.float32), TypeError,
         r"ChannelLinear: x must be a torch\.Tensor, got numpy\.ndarray of shape \(2, 3, 5\) \(convert with torch\.as_tensor\)"),
        (ChannelLinear(3, 2), torch.zeros(2, 3, 5, dtype=torch.int64), TypeError, r"ChannelLinear: x must have a real floating dtype"),
        (ChannelLinear(3, 2), torch.zeros(2, 3, 5, dtype=F64), TypeError,
         r"ChannelLinear: got x of dtype torch\.float64 but the parameters have torch\.float32"),
        (SoftGating(3), torch.zeros(2, 2, 5), ValueError, r"SoftGating: expected x of shape \(B, 3, \*grid\), got \(2, 2, 5\)"),
        (GridEmbedding(2), torch.zeros(2, 3, 5), ValueError, r"GridEmbedding: expected x of shape \(B, C, H, W\), got \(2, 3, 5\)"),
        (GridEmbedding(1), [1.0, 2.0], TypeError, r"GridEmbedding: x must be a torch\.Tensor, got list"),
    ],
    ids=["linear-channels", "linear-rank", "linear-numpy", "linear-int", "linear-f64", "gating", "grid-rank", "grid-list"],
)
def test_forward_input_is_checked(module, x, exc, match):
    with pytest.raises(exc, match=match):
        module(x)


def test_operator_options_are_normalised_and_checked():
    opts = dict(in_channels=np.int64(1), out_channels=1, hidden_channels=8, n_layers=2, lifting_ratio=np.float32(2),
                projection_ratio=0, mlp_expansion=0.5, activation="gelu", norm=None, skip="linear", mlp_skip=None)
    out = check_operator_options(**opts)
    assert out["in_channels"] == 1 and type(out["in_channels"]) is int and out["lifting_ratio"] == 2.0
    with pytest.raises(ValueError, match=r"projection_ratio must be finite, got nan"):
        check_operator_options(**{**opts, "projection_ratio": float("nan")})
    with pytest.raises(TypeError, match=r"n_layers must be an int, got bool True"):
        check_operator_options(**{**opts, "n_layers": True})
    with pytest.raises(TypeError, match=r"lifting_ratio must be a real number, got str '1'"):
        check_operator_options(**{**opts, "lifting_ratio": "1"})
    with pytest.raises(TypeError, match=r"dtype must be a real floating torch\.dtype"):
        check_operator_options(**opts, dtype=torch.complex64)


def test_empty_batch_keeps_a_real_output_real_with_complex_parameters():
    w = torch.randn(3, dtype=torch.complex64, requires_grad=True)
    x = torch.zeros(0, 2, 4, requires_grad=True)
    y = layers.empty_batch(x, (0, 3, 8), [w])
    assert y.shape == (0, 3, 8) and y.dtype == torch.float32
    y.sum().backward()
    torch.testing.assert_close(w.grad, torch.zeros_like(w))
