"""FNO and the shared blocks: equivariance, resolution invariance, references for the pointwise pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.bench_fno_accuracy import load_neuralop_weights
from operators.layers import ChannelLinear, ChannelMLP, DomainPadding, FourierBlock, GridEmbedding, SoftGating, channel_linear
from spectral.activations import ACTIVATIONS
from operators.fno import FNO, FNOConfig
from operators.spectral_conv import SpectralConv
from tests.operators.test_spectral_conv import _band_limited


@pytest.mark.parametrize(
    "n_modes,grid,kwargs",
    [
        ((6,), (20,), dict()),
        ((4, 5), (11, 12), dict()),
        ((4, 4), (9, 10), dict(domain_padding=0.2, norm="instance")),
        ((4, 4), (9, 10), dict(domain_padding=(0.1, 0.3), padding_mode="symmetric", norm="group", positional_embedding=False)),
        ((3, 3, 2), (6, 7, 5), dict(separable=True, skip="identity", mlp_skip="linear")),
        ((3, 3), (8, 8), dict(rank=3, mlp_expansion=0, lifting_ratio=0, projection_ratio=0, activation="silu")),
    ],
    ids=["1d", "2d-odd", "2d-pad-instance", "2d-pad-sym-group-nopos", "3d-separable", "2d-cp-linear"],
)
def test_shapes_grads_and_output_shape(n_modes, grid, kwargs, device, generator):
    model = FNO(2, 3, n_modes, hidden_channels=8, n_layers=2, device=device, **kwargs)
    x = torch.randn(2, 2, *grid, generator=generator).to(device)
    y = model(x)
    assert y.shape == (2, 3, *grid) and y.dtype == x.dtype and torch.isfinite(y).all()
    y.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    finer = tuple(2 * n + 1 for n in grid)
    if model.padding is not None:  # the padding must scale to whole points: use a multiple of the grid
        with pytest.raises(ValueError, match=r"does not scale to a whole number of points"):
            model(x, output_shape=finer)
        finer = tuple(2 * n for n in grid)
    assert model(x, output_shape=finer).shape == (2, 3, *finer)


@pytest.mark.parametrize("grid,shift", [((12, 11), (4, -3)), ((6, 7, 5), (1, 3, -2))], ids=["2d", "3d"])
def test_shift_equivariance_without_embedding_and_padding(grid, shift, generator):
    d = len(grid)
    model = FNO(2, 2, (3,) * d, hidden_channels=6, n_layers=3, positional_embedding=False, norm="instance", dtype=torch.float64)
    x = torch.randn(2, 2, *grid, dtype=torch.float64, generator=generator)
    dims = tuple(range(2, 2 + d))
    torch.testing.assert_close(model(torch.roll(x, shift, dims)), torch.roll(model(x), shift, dims), rtol=1e-10, atol=1e-12)


def test_positional_embedding_breaks_shift_equivariance(generator):
    model = FNO(1, 1, (3, 3), hidden_channels=6, n_layers=2, dtype=torch.float64)
    x = torch.randn(1, 1, 12, 12, dtype=torch.float64, generator=generator)
    assert not torch.allclose(model(torch.roll(x, 3, 2)), torch.roll(model(x), 3, 2), atol=1e-6)


def test_resolution_invariance_within_tolerance():
    """A band-limited input at 32, 33 (odd), 64 and 128 points: outputs agree on shared points and converge."""
    torch.manual_seed(0)
    _, sample = _band_limited((64, 64), 3, 1, np.random.default_rng(0))
    model = FNO(1, 1, (8, 8), hidden_channels=8, n_layers=3, dtype=torch.float64)
    out = {n: model(torch.from_numpy(sample((n, n)))).detach().numpy() for n in (32, 33, 64, 128)}
    scale = np.abs(out[128]).max()
    err_32 = np.abs(out[64][..., ::2, ::2] - out[32]).max() / scale
    err_64 = np.abs(out[128][..., ::2, ::2] - out[64]).max() / scale
    assert err_32 < 5e-3 and err_64 < err_32  # aliasing of the nonlinearities shrinks with resolution
    # 33 and 64 share no interior point: compare through the model's own output_shape and Fourier resampling
    from_33 = model(torch.from_numpy(sample((33, 33))), output_shape=(64, 64)).detach().numpy()
    assert np.abs(from_33 - out[64]).max() / scale < 5e-2
    assert np.abs(from_33 - out[64]).max() > 0  # (a real evaluation, not a copy)


def test_channel_linear_and_mlp_match_einsum(generator):
    lin = ChannelLinear(3, 5, dtype=torch.float64)
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64, generator=generator)
    ref = torch.einsum("oi,bihwd->bohwd", lin.weight, x) + lin.bias.reshape(1, 5, 1, 1, 1)
    torch.testing.assert_close(lin(x), ref)
    mlp = ChannelMLP(3, 2, 7, n_layers=3, activation="tanh", dtype=torch.float64)
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
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=generator, requires_grad=True) if with_bias else None
    r = torch.randn(2, 4, 5, 4, dtype=torch.float64, generator=generator, requires_grad=True) if with_residual else None
    act = {"gelu": torch.nn.functional.gelu, "relu": torch.relu, "silu": torch.nn.functional.silu,
           "tanh": torch.tanh, "identity": lambda t: t}[activation]
    ref = torch.einsum("oi,bihw->bohw", w, act(x))
    ref = ref + (b.reshape(1, 4, 1, 1) if b is not None else 0) + (r if r is not None else 0)
    got = channel_linear(x, w, b, residual=r, activation=activation)
    torch.testing.assert_close(got, ref)
    inputs = [t for t in (x, w, b, r) if t is not None]
    g = torch.randn(ref.shape, dtype=torch.float64, generator=generator)
    for a, e in zip(torch.autograd.grad(got, inputs, g), torch.autograd.grad(ref, inputs, g)):
        torch.testing.assert_close(a, e)


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


def test_fourier_block_reduces_to_its_conv_and_skip(generator):
    conv = SpectralConv(4, 4, (3, 3), dtype=torch.float64)
    block = FourierBlock(conv, mlp_expansion=0, skip="identity", activation="identity", last=True)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(block(x), conv(x) + x)
    separable = FourierBlock(SpectralConv(4, 4, (3, 3), separable=True), norm="group")
    assert separable(x.float()).shape == x.shape


def test_state_dict_config_and_double(generator):
    a = FNO(2, 1, (4, 4), hidden_channels=8, n_layers=2, domain_padding=0.25, norm="group", rank=2)
    b = FNO.from_config(a.config)
    assert b.config == a.config and isinstance(a.config, FNOConfig)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 2, 12, 12, generator=generator)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)
    ref = a(x).detach()
    a.double()
    torch.testing.assert_close(a(x.double()).float(), ref, rtol=1e-4, atol=1e-5)
    assert "hidden_channels=8" in repr(a)


def test_autocast_bfloat16_and_half_module(generator):
    """Mixed precision: FFTs in float32 inside, results close to the float32 model, gradients flow."""
    model = FNO(1, 1, (5, 5), hidden_channels=8, n_layers=2)
    x = torch.randn(2, 1, 16, 16, generator=generator)
    ref = model(x).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), ref, rtol=0.05, atol=0.05 * ref.abs().max().item())
    y.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    half = FNO(1, 1, (5, 5), hidden_channels=8, n_layers=2, dtype=torch.bfloat16)
    assert half(x.bfloat16()).dtype == torch.bfloat16


def test_matches_neuraloperator_fno_with_the_same_weights(generator):
    """An independent implementation: neuraloperator 2.0.0's FNO (bench extra) with n_modes (2m-1, 2m-2)
    keeps exactly our |k| < m set; on an even grid (where its fftshift handling is right) the two agree."""
    neuralop_models = pytest.importorskip("neuralop.models")
    m = 5
    torch.manual_seed(0)
    theirs = neuralop_models.FNO((2 * m - 1, 2 * m - 2), 2, 1, 8, n_layers=3)
    ours = FNO(2, 1, (m, m), hidden_channels=8, n_layers=3)
    load_neuralop_weights(ours, theirs, m)
    x = torch.randn(3, 2, 20, 16, generator=generator)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5 * theirs(x).abs().max().item())


def test_bad_input_messages():
    model = FNO(3, 1, (8, 8), hidden_channels=8, n_layers=1)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 3, H, W\), got \(8, 4, 64, 64\)"):
        model(torch.randn(8, 4, 64, 64))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 3, H, W\), got \(8, 3, 64\)"):
        model(torch.randn(8, 3, 64))
    with pytest.raises(ValueError, match=r"n_modes\[-1\]=8 exceeds .*got x of shape \(2, 3, 20, 14\)"):
        model(torch.randn(2, 3, 20, 14))
    with pytest.raises(ValueError, match=r"FNO\(2-d\): output_shape must have 2 entries, got 3: \(40, 40, 40\)"):
        model(torch.randn(2, 3, 20, 20), output_shape=(40, 40, 40))
    with pytest.raises(TypeError, match=r"FNO\(2-d\): x must have a real floating dtype, got torch\.complex64"):
        model(torch.randn(2, 3, 20, 20, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"activation must be one of \('gelu', 'relu', 'silu', 'tanh', 'identity'\), got str 'elu'"):
        FNO(1, 1, 4, activation="elu")
    with pytest.raises(ValueError, match=r"norm must be one of \('instance', 'group'\) or None, got str 'batch'"):
        FNO(1, 1, 4, norm="batch")
    with pytest.raises(ValueError, match=r"skip must be one of"):
        FNO(1, 1, 4, skip="dense")
    with pytest.raises(ValueError, match=r"padding_mode must be one of"):
        FNO(1, 1, 4, domain_padding=0.1, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"hidden_channels must be an int >= 1, got 0"):
        FNO(1, 1, 4, hidden_channels=0)


@pytest.mark.slow
def test_torch_compile_fullgraph(generator):
    model = FNO(2, 1, (4, 4), hidden_channels=8, n_layers=2, domain_padding=0.25)
    x = torch.randn(2, 2, 12, 11, generator=generator)
    compiled = torch.compile(model, fullgraph=True)
    y = compiled(x)
    torch.testing.assert_close(y, model(x), rtol=1e-4, atol=1e-5)
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("fft_norm", ["forward", "backward", "ortho"])
@pytest.mark.parametrize("padding_mode", [None, "one-sided", "symmetric"], ids=["no-pad", "one-sided", "symmetric"])
@pytest.mark.parametrize(
    "n_modes,grid,refine,fraction",
    [((4,), (10,), 3, 0.25), ((5,), (32,), 2, 0.1), ((4, 4), (10, 12), 2, (0.25, 0.3))],
    ids=["1d-10x3", "1d-32x2", "2d-x2"],
)
def test_output_shape_with_domain_padding_is_the_same_operator(n_modes, grid, refine, fraction, padding_mode, fft_norm, generator):
    """Only the last block changes grid: its output on r * grid, taken every r-th point, is the same-grid output.

    The lifting, projection, MLPs and activations are pointwise and the last block's conv
    and Fourier-resampled skip interpolate exactly, so this holds to rounding for a
    nonlinear FNO as long as the padded output grid covers the same padded domain.
    """
    pad = dict() if padding_mode is None else dict(domain_padding=fraction, padding_mode=padding_mode)
    model = FNO(2, 3, n_modes, hidden_channels=6, n_layers=2, fft_norm=fft_norm, dtype=torch.float64, **pad)
    x = torch.randn(2, 2, *grid, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        same = model(x)
        fine = model(x, output_shape=tuple(refine * n for n in grid))
    every_r = (Ellipsis, *[slice(None, None, refine)] * len(grid))
    torch.testing.assert_close(fine[every_r], same, rtol=1e-9, atol=1e-11 * same.abs().max().item())


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
    model = FNO(1, 1, 4, hidden_channels=4, n_layers=1, domain_padding=0.3)
    with pytest.raises(ValueError, match=r"input grid \(10,\) does not scale to a whole number of points on the output grid \(15,\)"):
        model(torch.randn(1, 1, 10), output_shape=(15,))


def test_bad_mlp_expansion_and_domain_padding():
    with pytest.raises(ValueError, match=r"mlp_expansion must be >= 0, got -1\.0"):
        FNO(1, 1, 4, mlp_expansion=-1)
    with pytest.raises(ValueError, match=r"domain_padding must be a number in \[0, 10\) or one per axis \(1\), got -0\.1"):
        FNO(1, 1, 4, domain_padding=-0.1)
    with pytest.raises(ValueError, match=r"domain_padding must be .* one per axis \(2\), got \(0\.1, -0\.2\)"):
        FNO(1, 1, (4, 4), domain_padding=(0.1, -0.2))
    with pytest.raises(ValueError, match=r"one per axis \(2\), got \(0\.1, 0\.1, 0\.1\)"):
        FNO(1, 1, (4, 4), domain_padding=(0.1, 0.1, 0.1))


@pytest.mark.parametrize(
    "model_dtype,x_dtype",
    [(torch.float32, torch.float16), (torch.float32, torch.float64), (torch.float32, torch.bfloat16), (torch.float64, torch.float32)],
    ids=["f16-on-f32", "f64-on-f32", "bf16-on-f32", "f32-on-f64"],
)
def test_dtype_mismatch_raises_type_error_naming_the_model(model_dtype, x_dtype):
    model = FNO(1, 1, (3, 3), hidden_channels=4, n_layers=1, dtype=model_dtype)
    x = torch.randn(2, 1, 8, 8).to(x_dtype)
    with pytest.raises(TypeError, match=rf"FNO\(2-d\): got x of dtype {x_dtype} but the parameters have {model_dtype}"):
        model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if torch.float64 in (x_dtype, model_dtype):  # autocast never casts float64: still a TypeError
            with pytest.raises(TypeError, match=r"FNO\(2-d\): .*autocast does not cast float64"):
                model(x)
        elif x_dtype == torch.bfloat16:  # autocast casts by itself: exempt
            assert model(x).shape == (2, 1, 8, 8) and model(x).dtype == torch.bfloat16
    with pytest.raises(TypeError, match=r"FNO\(2-d\): x must have a real floating dtype, got torch\.int64"):
        model(torch.ones(2, 1, 8, 8, dtype=torch.int64))


@pytest.mark.parametrize(
    "kwargs,output_shape",
    [
        (dict(), None),
        (dict(), (16, 18)),
        (dict(domain_padding=0.25, norm="group"), (16, 18)),
        (dict(rank=2, mlp_expansion=0, lifting_ratio=0, projection_ratio=0, positional_embedding=False), None),
    ],
    ids=["plain", "output-shape", "pad-group-output-shape", "cp-linear-nopos"],
)
def test_empty_batch_gives_an_empty_output_in_the_graph(kwargs, output_shape):
    """B = 0, like torch's layers: an empty (0, Cout, *out) output whose backward gives zero gradients."""
    model = FNO(2, 3, (3, 3), hidden_channels=4, n_layers=2, **kwargs)
    x = torch.randn(0, 2, 8, 9, requires_grad=True)
    y = model(x, output_shape=output_shape)
    assert y.shape == (0, 3, *(output_shape or (8, 9))) and y.dtype == torch.float32
    y.sum().backward()
    assert x.grad.shape == x.shape
    for p in model.parameters():
        torch.testing.assert_close(p.grad, torch.zeros_like(p))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the dtype a non-empty batch gets
        assert model(x).dtype == model(torch.randn(1, 2, 8, 9)).dtype == torch.bfloat16


def test_channel_linear_on_an_empty_batch():
    lin = ChannelLinear(3, 5)
    y = lin(torch.randn(0, 3, 4, 6), activation="gelu")
    assert y.shape == (0, 5, 4, 6)
    assert channel_linear(torch.randn(0, 3, 4), lin.weight, residual=torch.randn(0, 5, 4)).shape == (0, 5, 4)


def test_numpy_integer_n_modes_build_the_same_model():
    torch.manual_seed(0)
    ref = FNO(1, 1, (8, 8), hidden_channels=4, n_layers=1)
    torch.manual_seed(0)
    model = FNO(1, 1, (np.int64(8), 8), hidden_channels=4, n_layers=1)
    assert model.n_modes == model.config.n_modes == (8, 8) and "n_modes=(8, 8)" in repr(model)
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)
