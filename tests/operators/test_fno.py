"""FNO and the shared blocks: equivariance, resolution invariance, references for the pointwise pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from operators.fno import FNO, FNOConfig
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
    ours = FNO.from_neuralop(theirs)
    assert ours.n_modes == (m, m)
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


def test_domain_padding_that_does_not_scale_to_the_output_grid_is_a_named_error():
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


def test_numpy_integer_n_modes_build_the_same_model():
    torch.manual_seed(0)
    ref = FNO(1, 1, (8, 8), hidden_channels=4, n_layers=1)
    torch.manual_seed(0)
    model = FNO(1, 1, (np.int64(8), 8), hidden_channels=4, n_layers=1)
    assert model.n_modes == model.config.n_modes == (8, 8) and "n_modes=(8, 8)" in repr(model)
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(lifting_ratio=float("nan")), ValueError, r"lifting_ratio must be finite, got nan"),
        (dict(projection_ratio=float("inf")), ValueError, r"projection_ratio must be finite, got inf"),
        (dict(mlp_expansion="1"), TypeError, r"mlp_expansion must be a real number, got str '1'"),
        (dict(lifting_ratio=True), TypeError, r"lifting_ratio must be a real number, got bool True"),
        (dict(n_layers=True), TypeError, r"n_layers must be an int, got bool True"),
        (dict(hidden_channels=None), TypeError, r"hidden_channels must be an int, got NoneType None"),
        (dict(hidden_channels="8"), TypeError, r"hidden_channels must be an int, got str '8'"),
        (dict(hidden_channels=8.0), TypeError, r"hidden_channels must be an int, got float 8\.0"),
        (dict(rank=True), TypeError, r"rank must be an int or None, got bool True"),
        (dict(rank=0), ValueError, r"rank must be an int >= 1, got 0"),
        (dict(separable="yes"), TypeError, r"separable must be a bool, got str 'yes'"),
        (dict(positional_embedding=None), TypeError, r"positional_embedding must be a bool, got NoneType None"),
        (dict(domain_padding=float("nan")), ValueError, r"domain_padding must be a number in \[0, 10\) or one per axis \(2\), got nan"),
        (dict(domain_padding="0.1"), TypeError, r"domain_padding must be a number in \[0, 10\) or a sequence of them, got str"),
    ],
    ids=["nan-ratio", "inf-ratio", "str-ratio", "bool-ratio", "bool-depth", "none-width", "str-width", "float-width",
         "bool-rank", "zero-rank", "str-flag", "none-flag", "nan-padding", "str-padding"],
)
def test_bad_sizes_and_numbers_are_named_errors(kwargs, exc, match):
    """The sweep's classes: NaN/inf/str/bool sizes and ratios (NaN gave "cannot convert float NaN to integer")."""
    with pytest.raises(exc, match=match):
        FNO(1, 1, (4, 4), **kwargs)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(dtype=torch.complex64), TypeError, r"dtype must be a real floating torch\.dtype .*complex64"),
        (dict(dtype="float32"), TypeError, r"dtype must be a real floating torch\.dtype .*str 'float32'"),
        (dict(fft_norm="none"), ValueError, r"fft_norm must be one of \('forward', 'backward', 'ortho'\), got str 'none'"),
        (dict(mlp_skip="gate"), ValueError, r"mlp_skip must be one of \('linear', 'identity', 'soft-gating'\) or None"),
        (dict(activation=None), ValueError, r"activation must be one of .* got NoneType None"),
    ],
    ids=["complex-dtype", "str-dtype", "fft-norm", "mlp-skip", "none-activation"],
)
def test_bad_dtype_and_choices_are_named_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        FNO(1, 1, (4, 4), **kwargs)


@pytest.mark.parametrize(
    "output_shape,exc,match",
    [
        ((16, "16"), TypeError, r"FNO\(2-d\): output_shape\[1\] must be an int, got str '16'"),
        ((16.0, 16), TypeError, r"FNO\(2-d\): output_shape\[0\] must be an int, got float 16\.0"),
        ((16, True), TypeError, r"FNO\(2-d\): output_shape\[1\] must be an int, got bool True"),
        ((16, 0), ValueError, r"FNO\(2-d\): output_shape\[1\] must be an int >= 1, got 0"),
        ("16", TypeError, r"FNO\(2-d\): output_shape must be an int or a sequence of ints, got str '16'"),
    ],
    ids=["str-entry", "float-entry", "bool-entry", "zero-entry", "str"],
)
def test_bad_output_shape_entries_are_named_errors(output_shape, exc, match):
    model = FNO(1, 1, (3, 3), hidden_channels=4, n_layers=1)
    with pytest.raises(exc, match=match):
        model(torch.randn(1, 1, 8, 8), output_shape=output_shape)
    assert model(torch.randn(1, 1, 8, 8), output_shape=(np.int64(16), 16)).shape == (1, 1, 16, 16)


@pytest.mark.parametrize(
    "kwargs,output_shape",
    [
        (dict(), None),
        (dict(domain_padding=0.25, padding_mode="symmetric", skip="soft-gating", mlp_skip="identity"), None),
        (dict(positional_embedding=False, skip="identity", mlp_skip="linear", norm="group"), (8, 10)),
        (dict(skip=None, mlp_skip=None, activation="silu", rank=2), None),
        (dict(separable=True, mlp_expansion=0, lifting_ratio=0, projection_ratio=0, activation="tanh"), None),
    ],
    ids=["plain-grid-embedding", "padding-softgating-identity", "identity-linear-group-output-shape", "no-skips-silu-cp",
         "separable-linear-lift"],
)
def test_gradgradcheck(kwargs, output_shape, generator):
    """Exact second derivatives through the whole operator (float64, tiny, inputs and every parameter)."""
    model = FNO(1, 1, (2, 2), hidden_channels=2, n_layers=2, dtype=torch.float64, **kwargs)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
    x = torch.randn(1, 1, 4, 5, dtype=torch.float64, generator=generator, requires_grad=True)

    def f(x, *ps):
        return torch.func.functional_call(model, dict(zip(names, ps)), (x,), {"output_shape": output_shape})

    assert torch.autograd.gradgradcheck(f, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


@pytest.mark.parametrize(
    "kwargs,output_shape",
    [(dict(), None), (dict(domain_padding=0.25, norm="group"), (16, 18)), (dict(rank=2, norm="instance", skip="identity"), None)],
    ids=["plain", "pad-group-output-shape", "cp-instance"],
)
def test_meta_device_gives_a_meta_output_of_the_right_shape(kwargs, output_shape):
    """device="meta" (shape inference, deferred init): a meta input maps to a meta output (it raised before)."""
    model = FNO(2, 3, (3, 3), hidden_channels=4, n_layers=2, device="meta", **kwargs)
    assert all(p.device.type == "meta" for p in model.parameters())
    for batch in (2, 0):
        y = model(torch.empty(batch, 2, 8, 9, device="meta"), output_shape=output_shape)
        assert y.device.type == "meta" and y.shape == (batch, 3, *(output_shape or (8, 9))) and y.dtype == torch.float32


def test_compiled_with_dynamic_shapes_traces_one_graph_for_every_grid(generator):
    """torch.compile(dynamic=True, fullgraph=True): new grids, odd or even, reuse the first graph.

    A backend that records what dynamo hands it (public ``backend=`` callable) counts the
    graphs; each output is checked against the eager model.
    """
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch.compiler.reset()
    model = FNO(2, 1, (4, 4), hidden_channels=8, n_layers=1, domain_padding=0.25)
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=backend)
    for grid in ((12, 11), (16, 16), (9, 30)):
        x = torch.randn(2, 2, *grid, generator=generator)
        y = compiled(x)
        torch.testing.assert_close(y, model(x), rtol=1e-5, atol=1e-6)
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert len(graphs) == 1, f"{len(graphs)} graphs for 3 grids"


def test_inductor_compiled_training_step_runs_on_a_new_grid(generator):
    """Inductor with dynamic shapes: the code compiled on one grid trains on another, values and gradients exact.

    Inductor's generated code asserts every buffer's sizes and strides; an in-place edit of
    a narrowed spectrum once made it assert the first grid's strides on the second. After
    the first grid, any recompile fails the test (``torch.compiler.set_stance``), including one
    for guards that inductor adds for its own lowering (a 1x1-convolution form of the channel
    maps, tried and dropped, specialised every size). The first grid is not square: on a
    square one, dynamo's duck sizing would tie H to W.
    """
    torch.compiler.reset()
    model = FNO(1, 1, (4, 4), hidden_channels=8, n_layers=1)
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for i, grid in enumerate(((16, 15), (24, 24), (20, 19))):
        x = torch.randn(2, 1, *grid, generator=generator)
        with torch.compiler.set_stance("fail_on_recompile" if i else "default"):
            got = torch.autograd.grad(compiled(x).square().mean(), list(model.parameters()))
        want = torch.autograd.grad(model(x).square().mean(), list(model.parameters()))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_export_holds_only_aten_operators_and_matches_eager(generator):
    """torch.export traces the eager path: no Python custom operator (spectral_operators::*) in the exported
    program, which AOTInductor and other runtimes could not call, and the same outputs as the model."""
    model = FNO(1, 1, (5, 5), hidden_channels=8, n_layers=2)
    x = torch.randn(2, 1, 16, 15, generator=generator)
    program = torch.export.export(model, (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("spectral_operators" in t for t in targets), sorted(targets)
    assert any("fft" in t for t in targets) and any("gelu" in t for t in targets)
    torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-6)
