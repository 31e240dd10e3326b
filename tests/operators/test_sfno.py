"""SphericalConv and SFNO against spherical harmonics evaluated by scipy, rotation equivariance, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y
from torch_harmonics.quadrature import precompute_latitudes

from operators.sfno import SFNO
from operators.spherical_conv import SphericalConv, inverse_real_sht, legendre_table, real_sht, spherical_resample

# ---------------------------------------------------------------------------------------
# Independent reference: fields sum_lm c_lm Y_lm evaluated point by point with scipy's
# orthonormal Y_lm (Condon-Shortley phase); real fields keep m >= 0 and count m > 0 twice.


def _angles(nlat: int, nlon: int, grid: str) -> tuple[np.ndarray, np.ndarray]:
    theta = precompute_latitudes(nlat, grid)[0].numpy()  # colatitude, from the north pole
    phi = 2 * np.pi * np.arange(nlon) / nlon
    return np.meshgrid(theta, phi, indexing="ij")


def _field(c: np.ndarray, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``f = sum_l [Re c_l0 Y_l0 + 2 Re sum_{m>0} c_lm Y_lm]`` at the points; c: (..., L, M)."""
    n_deg, n_ord = c.shape[-2:]
    f = np.zeros(c.shape[:-2] + theta.shape)
    for l in range(n_deg):
        for m in range(min(l + 1, n_ord)):
            y = sph_harm_y(l, m, theta, phi)
            f = f + (1.0 if m == 0 else 2.0) * (c[..., l, m, None, None] * y).real
    return f


def _random_coeffs(rng, lead, n_deg, n_ord) -> np.ndarray:
    c = rng.standard_normal((*lead, n_deg, n_ord)) + 1j * rng.standard_normal((*lead, n_deg, n_ord))
    c = c * (np.arange(n_ord)[None, :] <= np.arange(n_deg)[:, None])  # m <= l
    c[..., 0] = c[..., 0].real
    return c


def _complex(p: torch.Tensor) -> np.ndarray:
    w = p.detach().double().numpy()
    return w[..., 0] + 1j * w[..., 1]


def _reference_output(conv: SphericalConv, c: np.ndarray) -> np.ndarray:
    """Coefficients of the output field: per-degree (dhconv) or per-mode (full) channel mixing."""
    w = _complex(conv.weight)
    if conv.weights == "dhconv":
        out = np.einsum("bilm,lio->bolm", c, w)
    else:
        n_deg, n_ord = c.shape[-2:]
        flat = c.transpose(0, 1, 3, 2).reshape(*c.shape[:2], -1)  # (B, Cin, M * L), index m * L + l
        kept = conv.kept.numpy()
        out = np.zeros((c.shape[0], conv.out_channels, n_ord * n_deg), complex)
        out[..., kept] = np.einsum("bik,kio->bok", flat[..., kept], w)
        out = out.reshape(*out.shape[:2], n_ord, n_deg).transpose(0, 1, 3, 2)
    out[..., 0] = out[..., 0].real  # a real field has a real m = 0 column
    return out


CASES = [  # (img_shape, grid, lmax, mmax, weights, out_shape, out_grid)
    ((12, 24), "legendre-gauss", 8, 5, "dhconv", None, None),
    ((12, 25), "legendre-gauss", 12, 12, "full", None, None),
    ((17, 20), "equiangular", 9, 6, "full", (20, 31), None),
    ((10, 24), "lobatto", 9, 9, "dhconv", (9, 18), "legendre-gauss"),
    ((16, 32), "equiangular", 8, 8, "dhconv", (32, 64), None),
    ((14, 21), "equiangular", 7, 3, "dhconv", None, None),
]


def _case_id(case) -> str:
    shape, grid, lmax, mmax, weights, out_shape, out_grid = case
    return f"{shape[0]}x{shape[1]}-{grid}-l{lmax}-m{mmax}-{weights}" + (f"-to{out_shape}" if out_shape else "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_conv_matches_spherical_harmonic_formula(case):
    """Band-limited input in, W applied per degree (or mode), output field evaluated by scipy."""
    shape, grid, lmax, mmax, weights, out_shape, out_grid = case
    conv = SphericalConv(2, 3, shape, grid=grid, lmax=lmax, mmax=mmax, weights=weights, out_shape=out_shape,
                         out_grid=out_grid, dtype=torch.float64)
    with torch.no_grad():
        conv.bias.normal_()
    assert (conv.lmax, conv.mmax) == (lmax, mmax)  # not truncated to min(lmax, mmax)
    n_w = lmax if weights == "dhconv" else sum(min(l + 1, mmax) for l in range(lmax))
    assert conv.weight.shape == (n_w, 2, 3, 2)
    rng = np.random.default_rng(0)
    c = _random_coeffs(rng, (2, 2), lmax, mmax)
    x = torch.from_numpy(_field(c, *_angles(*shape, grid)))
    y = conv(x).detach().numpy()
    out_shape = out_shape or shape
    ref = _field(_reference_output(conv, c), *_angles(*out_shape, out_grid or grid))
    ref = ref + conv.bias.detach().numpy()[:, None, None]
    assert y.shape == (2, 3, *out_shape)
    np.testing.assert_allclose(y, ref, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("grid", ["equiangular", "legendre-gauss"])
@pytest.mark.parametrize("shape,lmax,mmax", [((16, 32), 8, 8), ((15, 22), 7, 4), ((20, 40), 10, 6)], ids=str)
def test_sht_round_trip_of_band_limited_fields(grid, shape, lmax, mmax):
    """Analysis recovers the coefficients of a scipy-built field; synthesis gives the field back."""
    if grid == "legendre-gauss":
        lmax = shape[0] if shape[0] <= (shape[1] + 1) // 2 else lmax + 2
    rng = np.random.default_rng(1)
    c = _random_coeffs(rng, (3,), lmax, mmax)
    f = _field(c, *_angles(*shape, grid))
    fwd = legendre_table(*shape, lmax, mmax, grid, dtype=torch.float64)
    inv = legendre_table(*shape, lmax, mmax, grid, inverse=True, dtype=torch.float64)
    coeffs = real_sht(torch.from_numpy(f), fwd)
    assert coeffs.shape == (3, lmax, mmax)
    np.testing.assert_allclose(coeffs.numpy(), c, atol=1e-11)
    back = inverse_real_sht(coeffs, inv, shape[1])
    np.testing.assert_allclose(back.numpy(), f, atol=1e-11 * np.abs(f).max())


def test_spherical_resample_between_grid_kinds_is_exact_for_band_limited_fields():
    """Equiangular 17x24 -> Legendre-Gauss 12x30, checked against the field evaluated by scipy."""
    c = _random_coeffs(np.random.default_rng(3), (2,), 8, 6)
    f = torch.from_numpy(_field(c, *_angles(17, 24, "equiangular")))
    fwd = legendre_table(17, 24, 8, 6, "equiangular", dtype=torch.float64)
    inv = legendre_table(12, 30, 8, 6, "legendre-gauss", inverse=True, dtype=torch.float64)
    ref = _field(c, *_angles(12, 30, "legendre-gauss"))
    np.testing.assert_allclose(spherical_resample(f, fwd, inv, 30).numpy(), ref, atol=1e-11 * np.abs(ref).max())


@pytest.mark.parametrize("weights", ["dhconv", "full"])
@pytest.mark.parametrize("shift", [1, 5, -3])
def test_roll_in_longitude_commutes_with_conv(weights, shift, generator):
    """A rotation about the pole by whole grid steps: roll in, same roll out (any input)."""
    conv = SphericalConv(3, 2, (12, 24), grid="equiangular", lmax=6, mmax=5, weights=weights, dtype=torch.float64)
    x = torch.randn(2, 3, 12, 24, dtype=torch.float64, generator=generator)
    y = conv(x)
    y_rolled = conv(torch.roll(x, shift, dims=-1))
    torch.testing.assert_close(y_rolled, torch.roll(y, shift, dims=-1), rtol=0, atol=1e-12)
    # onto a grid twice as fine, a roll by s grid steps is a roll by 2 s there
    up = SphericalConv(3, 2, (12, 24), lmax=6, weights=weights, out_shape=(24, 48), dtype=torch.float64)
    torch.testing.assert_close(up(torch.roll(x, shift, dims=-1)), torch.roll(up(x), 2 * shift, dims=-1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("weights,norm", [("dhconv", "instance"), ("full", None)])
def test_roll_in_longitude_commutes_with_sfno(weights, norm, generator):
    model = SFNO(3, 2, (10, 20), hidden_channels=6, n_layers=3, weights=weights, norm=norm, dtype=torch.float64)
    x = torch.randn(2, 3, 10, 20, dtype=torch.float64, generator=generator)
    for shift in (1, 7):
        torch.testing.assert_close(model(torch.roll(x, shift, -1)), torch.roll(model(x), shift, -1), rtol=0, atol=1e-11)


def _rotation(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """z-y-z Euler rotation matrix."""
    def rz(a):
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])

    rb = np.array([[np.cos(beta), 0, np.sin(beta)], [0, 1, 0], [-np.sin(beta), 0, np.cos(beta)]])
    return rz(alpha) @ rb @ rz(gamma)


def _rotated_angles(theta, phi, rot):
    """Angles of R^T x for the grid points x (so f(R^T x) is f rotated by R)."""
    xyz = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    r = xyz @ rot  # (R^T x)^T = x^T R
    return np.arccos(np.clip(r[..., 2], -1, 1)), np.arctan2(r[..., 1], r[..., 0])


def test_dhconv_with_real_weights_commutes_with_any_rotation():
    """conv(f o R^T) = conv(f) o R^T on band-limited fields; imaginary weights break it (Notes)."""
    shape, lmax = (12, 24), 10
    conv = SphericalConv(2, 2, shape, grid="legendre-gauss", lmax=lmax, mmax=lmax, bias=False, dtype=torch.float64)
    theta, phi = _angles(*shape, "legendre-gauss")
    rot_angles = _rotated_angles(theta, phi, _rotation(0.7, 1.1, -0.4))
    c = _random_coeffs(np.random.default_rng(2), (1, 2), lmax, lmax)
    x, x_rot = (torch.from_numpy(_field(c, *a)) for a in ((theta, phi), rot_angles))
    table = legendre_table(*shape, lmax, lmax, "legendre-gauss", dtype=torch.float64)

    def rotation_error() -> float:
        y = conv(x)
        y_then_rotated = _field(real_sht(y, table).detach().numpy(), *rot_angles)  # conv(f) at R^T x
        return float(np.abs(conv(x_rot).detach().numpy() - y_then_rotated).max() / np.abs(y_then_rotated).max())

    with torch.no_grad():
        conv.weight[..., 1] = 0.0
    assert rotation_error() < 1e-11
    with torch.no_grad():
        conv.weight[..., 1] = 0.3
    assert rotation_error() > 1e-2


@pytest.mark.parametrize("weights", ["dhconv", "full"])
def test_gradients_reach_every_parameter(weights, generator):
    model = SFNO(3, 2, (8, 16), hidden_channels=6, n_layers=3, weights=weights, lmax=4, mmax=3,
                 out_shape=(12, 24), norm="group")
    x = torch.randn(2, 3, 8, 16, generator=generator)
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bad_shapes_raise_value_error_showing_the_shape():
    conv = SphericalConv(3, 4, (16, 32))
    for shape in [(2, 3, 16, 31), (2, 3, 15, 32), (2, 4, 16, 32), (3, 16, 32)]:
        pattern = r"expected x of shape \(B, 3, 16, 32\), got " + str(shape).replace("(", r"\(").replace(")", r"\)")
        with pytest.raises(ValueError, match=pattern):
            conv(torch.randn(shape))
    model = SFNO(3, 1, (8, 16), hidden_channels=4, n_layers=1)
    with pytest.raises(ValueError, match=r"SFNO: expected x of shape \(B, 3, 8, 16\), got \(2, 3, 8, 17\)"):
        model(torch.randn(2, 3, 8, 17))
    with pytest.raises(ValueError, match=r"got \(2, 2, 8, 16\)"):
        model(torch.randn(2, 2, 8, 16))
    with pytest.raises(TypeError, match="complex"):
        conv(torch.randn(2, 3, 16, 32, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"built for out_shape=\(16, 32\), got output_shape=\(32, 64\)"):
        conv(torch.randn(2, 3, 16, 32), output_shape=(32, 64))


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(lmax=17), r"lmax must be an int in \[1, 16\].*got 17"),
        (dict(lmax=8, mmax=9), r"mmax must be an int in \[1, 8\].*got 9"),
        (dict(lmax=16, mmax=17), r"mmax must be an int in \[1, 16\].*Nyquist excluded.*got 17"),
        (dict(lmax=12, mmax=12, out_shape=(16, 20)), r"mmax must be an int in \[1, 10\]"),
        (dict(grid="gauss"), r"grid must be one of \('equiangular', 'legendre-gauss'"),
        (dict(out_grid="healpix"), r"out_grid must be one of"),
        (dict(weights="diagonal"), r"weights must be one of \('dhconv', 'full'\), got str 'diagonal'"),
        (dict(out_shape=(16,)), r"out_shape must be \(nlat, nlon\).*got \(16,\)"),
    ],
)
def test_bad_config_raises_value_error(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SphericalConv(3, 4, (16, 32), **kwargs)


def test_defaults_follow_the_grids():
    """Default lmax is each grid's exact-quadrature degree (the smaller of in and out); mmax <= lmax."""
    assert (SphericalConv(1, 1, (16, 32)).lmax, SphericalConv(1, 1, (16, 32)).mmax) == (8, 8)
    lg = SphericalConv(1, 1, (16, 40), grid="legendre-gauss")
    assert (lg.lmax, lg.mmax) == (16, 16)
    narrow = SphericalConv(1, 1, (16, 20), grid="legendre-gauss")
    assert (narrow.lmax, narrow.mmax) == (16, 10)
    down = SphericalConv(1, 1, (16, 32), grid="legendre-gauss", out_shape=(8, 16), out_grid="legendre-gauss")
    assert (down.lmax, down.mmax) == (8, 8)


def test_sfno_shares_tables_and_moves_them_with_to():
    model = SFNO(2, 2, (8, 16), hidden_channels=4, n_layers=3)
    convs = [b.conv for b in model.blocks]
    assert all(c.sht is convs[0].sht and c.isht is convs[0].isht for c in convs)
    model = model.to(torch.float64)
    assert all(c.sht.table.dtype == torch.float64 for c in convs)
    x = torch.randn(2, 2, 8, 16, dtype=torch.float64)
    assert model(x).dtype == torch.float64


@pytest.mark.parametrize("n_layers,out_shape", [(1, None), (1, (12, 24)), (3, (6, 12))], ids=str)
def test_sfno_has_n_layers_blocks_and_predicts_on_out_shape(n_layers, out_shape, generator):
    model = SFNO(2, 3, (8, 16), hidden_channels=4, n_layers=n_layers, out_shape=out_shape)
    assert len(model.blocks) == n_layers
    assert [b.conv.out_shape for b in model.blocks][-1] == (out_shape or (8, 16))
    assert model(torch.randn(2, 2, 8, 16, generator=generator)).shape == (2, 3, *(out_shape or (8, 16)))


def test_config_and_state_dict_round_trip(generator):
    model = SFNO(3, 2, (8, 16), hidden_channels=5, n_layers=2, grid="legendre-gauss", lmax=6, mmax=4, weights="full",
                 out_shape=(10, 20))
    clone = SFNO.from_config(model.config)
    assert clone.config == model.config
    clone.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 16, generator=generator)
    torch.testing.assert_close(clone(x), model(x))
    assert not any("table" in k for k in model.state_dict())  # Legendre tables are rebuilt, not stored


def test_double_keeps_imaginary_weights(generator):
    conv = SphericalConv(2, 2, (8, 16), lmax=4)
    x = torch.randn(1, 2, 8, 16, generator=generator)
    y32 = conv(x)
    conv = conv.double()
    assert conv.weight.dtype == torch.float64 and conv.weight[..., 1].abs().sum() > 0
    torch.testing.assert_close(conv(x.double()).float(), y32, rtol=1e-5, atol=1e-5)


def test_bfloat16_autocast_runs_the_transform_in_float32(generator):
    model = SFNO(2, 2, (8, 16), hidden_channels=8, n_layers=2)
    x = torch.randn(2, 2, 8, 16, generator=generator)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert torch.isfinite(y).all()
    assert (y.float() - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.slow
def test_torch_compile_fullgraph(generator):
    model = SFNO(2, 2, (8, 16), hidden_channels=4, n_layers=2)
    x = torch.randn(2, 2, 8, 16, generator=generator)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_explicit_lmax_beyond_the_exact_quadrature_warns(recwarn):
    """On an 8-latitude equiangular grid degrees >= 4 are aliased (a Y_6^2 field comes back with a 0.2 error)."""
    with pytest.warns(UserWarning, match=r"lmax=8 exceeds degree_limit\(8, 'equiangular'\) = 4"):
        SphericalConv(2, 2, (8, 16), grid="equiangular", lmax=8, mmax=8)
    SphericalConv(2, 2, (8, 16), grid="equiangular", lmax=4)  # the exact limit: no warning
    SphericalConv(2, 2, (8, 16), grid="legendre-gauss", lmax=8)
    assert not [w for w in recwarn if "exceeds degree_limit" in str(w.message)]


@pytest.mark.parametrize(
    "model_dtype,x_dtype",
    [(torch.float32, torch.float16), (torch.float32, torch.bfloat16), (torch.float32, torch.float64), (torch.float64, torch.float32)],
    ids=["f16-on-f32", "bf16-on-f32", "f64-on-f32", "f32-on-f64"],
)
def test_dtype_mismatch_raises_type_error_naming_the_model(model_dtype, x_dtype):
    model = SFNO(1, 1, (8, 16), hidden_channels=4, n_layers=1, dtype=model_dtype)
    x = torch.randn(2, 1, 8, 16).to(x_dtype)
    with pytest.raises(TypeError, match=rf"SFNO: got x of dtype {x_dtype} but the parameters have {model_dtype}"):
        model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if torch.float64 in (x_dtype, model_dtype):  # autocast never casts float64: still a TypeError
            with pytest.raises(TypeError, match=r"SFNO: .*autocast does not cast float64"):
                model(x)
        elif x_dtype == torch.bfloat16:  # autocast casts by itself: exempt
            assert model(x).shape == (2, 1, 8, 16) and model(x).dtype == torch.bfloat16


@pytest.mark.parametrize("out_shape", [None, (16, 32)], ids=["same-grid", "out-shape"])
def test_empty_batch_gives_an_empty_output_in_the_graph(out_shape):
    """B = 0, like torch's layers: an empty (0, Cout, Ho, Wo) output whose backward gives zero gradients."""
    model = SFNO(2, 3, (8, 16), hidden_channels=4, n_layers=2, out_shape=out_shape, norm="instance")
    x = torch.randn(0, 2, 8, 16, requires_grad=True)
    y = model(x)
    assert y.shape == (0, 3, *(out_shape or (8, 16))) and y.dtype == torch.float32
    y.sum().backward()
    assert x.grad.shape == x.shape
    for p in model.parameters():
        torch.testing.assert_close(p.grad, torch.zeros_like(p))


# --- issue 17: one validation path, second derivatives, empty batches, the meta device ---


def test_numpy_integers_are_accepted_like_python_ints(generator):
    """``SFNO(mmax=np.int64(4))`` was refused as "must be an int in [1, 4] ... got np.int64(4)"."""
    i64 = np.int64
    model = SFNO(i64(2), i64(1), (i64(8), i64(16)), hidden_channels=i64(4), n_layers=i64(2), lmax=i64(4), mmax=i64(4))
    plain = SFNO(2, 1, (8, 16), hidden_channels=4, n_layers=2, lmax=4, mmax=4)
    assert model.config == plain.config and type(model.config.mmax) is int
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 2, 8, 16, generator=generator)
    torch.testing.assert_close(model(x), plain(x), rtol=0, atol=0)
    conv = SphericalConv(i64(2), i64(3), [i64(8), i64(16)], lmax=i64(4), mmax=i64(3), out_shape=(i64(10), i64(20)))
    assert (conv.img_shape, conv.out_shape, conv.lmax, conv.mmax) == ((8, 16), (10, 20), 4, 3)


_BAD_SFNO_OPTIONS = [  # (kwargs, error, message pattern)
        (dict(n_layers=True), TypeError, r"n_layers must be an int, got bool True"),
        (dict(hidden_channels=None), TypeError, r"hidden_channels must be an int, got NoneType None"),
        (dict(hidden_channels="8"), TypeError, r"hidden_channels must be an int, got str '8'"),
        (dict(hidden_channels=8.0), TypeError, r"hidden_channels must be an int, got float 8.0"),
        (dict(hidden_channels=0), ValueError, r"hidden_channels must be an int >= 1, got 0"),
        (dict(lifting_ratio=float("nan")), ValueError, r"lifting_ratio must be finite, got nan"),
        (dict(mlp_expansion=float("inf")), ValueError, r"mlp_expansion must be finite, got inf"),
        (dict(projection_ratio="2"), TypeError, r"projection_ratio must be a real number, got str '2'"),
        (dict(projection_ratio=-1.0), ValueError, r"projection_ratio must be >= 0, got -1.0"),
        (dict(dtype=torch.complex64), TypeError, r"dtype must be a real floating torch.dtype .*complex64"),
        (dict(activation="swish"), ValueError, r"activation must be one of \(.*'gelu'.*\), got str 'swish'"),
        (dict(norm="batch"), ValueError, r"norm must be one of \('instance', 'group'\) or None, got str 'batch'"),
        (dict(skip="none"), ValueError, r"skip must be one of \(.*\) or None, got str 'none'"),
        (dict(grid="gauss"), ValueError, r"grid must be one of \('equiangular'.*got str 'gauss'"),
        (dict(positional_embedding="yes"), TypeError, r"positional_embedding must be a bool, got str 'yes'"),
        (dict(bias=None), TypeError, r"bias must be a bool, got NoneType None"),
        (dict(lmax=True), TypeError, r"lmax must be an int or None, got bool True"),
        (dict(mmax=4.0), TypeError, r"mmax must be an int or None, got float 4.0"),
]


@pytest.mark.parametrize("kwargs,error,pattern", _BAD_SFNO_OPTIONS,
                         ids=[",".join(f"{k}={v!r}" for k, v in c[0].items()) for c in _BAD_SFNO_OPTIONS])
def test_sfno_bad_options_raise_named_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        SFNO(2, 1, (8, 16), **{"hidden_channels": 4, "n_layers": 1, **kwargs})


_BAD_CONV_OPTIONS = [  # (args, kwargs, error, message pattern)
        ((0, 3, (8, 16)), {}, ValueError, r"in_channels must be an int >= 1, got 0"),
        ((2, None, (8, 16)), {}, TypeError, r"out_channels must be an int, got NoneType None"),
        ((2, 3, (8.0, 16)), {}, TypeError, r"img_shape\[0\] must be an int, got float 8.0"),
        ((2, 3, (8, True)), {}, TypeError, r"img_shape\[1\] must be an int, got bool True"),
        ((2, 3, (1, 16)), {}, ValueError, r"img_shape\[0\] must be an int >= 2, got 1"),
        ((2, 3, "ab"), {}, TypeError, r"img_shape must be \(nlat, nlon\), two ints >= 2, got str 'ab'"),
        ((2, 3, 16), {}, TypeError, r"img_shape must be \(nlat, nlon\), two ints >= 2, got int 16"),
        ((2, 3, (8, 16)), dict(out_shape=(8, None)), TypeError, r"out_shape\[1\] must be an int, got NoneType None"),
        ((2, 3, (8, 16)), dict(dtype=torch.complex128), TypeError, r"dtype must be a real floating torch.dtype"),
        ((2, 3, (8, 16)), dict(weights=None), ValueError, r"weights must be one of \('dhconv', 'full'\), got NoneType"),
        ((2, 3, (8, 16)), dict(bias="no"), TypeError, r"bias must be a bool, got str 'no'"),
]


@pytest.mark.parametrize("args,kwargs,error,pattern", _BAD_CONV_OPTIONS,
                         ids=[" ".join([repr(c[0])] + [f"{k}={v!r}" for k, v in c[1].items()]) for c in _BAD_CONV_OPTIONS])
def test_spherical_conv_bad_options_raise_named_errors(args, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        SphericalConv(*args, **kwargs)


def _gradgradcheck_with_parameters(module, *inputs) -> None:
    """gradgradcheck over the inputs and every parameter (float64, finite differences)."""
    names, params = zip(*((n, p.detach().clone().requires_grad_()) for n, p in module.named_parameters()))

    def f(*args):
        return torch.func.functional_call(module, dict(zip(names, args[len(inputs):])), args[: len(inputs)])

    assert torch.autograd.gradgradcheck(f, (*inputs, *params), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("weights,out_shape", [("dhconv", None), ("full", (6, 10))], ids=["dhconv", "full-to-6x10"])
def test_spherical_conv_second_derivatives_are_exact(weights, out_shape, generator):
    conv = SphericalConv(2, 2, (4, 8), grid="legendre-gauss", lmax=3, mmax=3, weights=weights, out_shape=out_shape,
                         dtype=torch.float64)
    x = torch.randn(1, 2, 4, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    _gradgradcheck_with_parameters(conv, x)


def test_sfno_second_derivatives_are_exact(generator):
    """Lifting, a block onto another grid (spherical conv, resampled linear skip, norm) and projection."""
    model = SFNO(1, 1, (4, 8), hidden_channels=2, n_layers=1, lifting_ratio=0, projection_ratio=0, mlp_expansion=0,
                 grid="legendre-gauss", lmax=2, mmax=2, out_shape=(3, 6), norm="instance", dtype=torch.float64)
    x = torch.randn(1, 1, 4, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    _gradgradcheck_with_parameters(model, x)


@pytest.mark.parametrize("weights,out_shape", [("dhconv", None), ("full", (10, 20))], ids=["dhconv", "full-to-10x20"])
def test_spherical_conv_empty_batch_gives_an_empty_output_in_the_graph(weights, out_shape):
    """B = 0 failed inside MKL ("Inconsistent configuration parameters"); now (0, Cout, Ho, Wo), zero gradients."""
    conv = SphericalConv(2, 3, (8, 16), weights=weights, out_shape=out_shape, dtype=torch.float64)
    x = torch.randn(0, 2, 8, 16, dtype=torch.float64, requires_grad=True)
    y = conv(x)
    assert y.shape == (0, 3, *(out_shape or (8, 16))) and y.dtype == torch.float64
    y.sum().backward()
    assert x.grad.shape == x.shape
    for p in conv.parameters():
        torch.testing.assert_close(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("out_shape", [None, (10, 20)], ids=["same-grid", "out-shape"])
def test_built_on_meta_maps_meta_to_meta(out_shape):
    """device="meta" (shape inference, deferred initialisation): a meta input gives a meta output of the real shape."""
    for weights in ("dhconv", "full"):
        conv = SphericalConv(2, 3, (8, 16), weights=weights, out_shape=out_shape, device="meta")
        assert all(t.is_meta for t in (*conv.parameters(), *conv.buffers()))
        y = conv(torch.empty(2, 2, 8, 16, device="meta"))
        assert y.is_meta and y.shape == (2, 3, *(out_shape or (8, 16)))
    model = SFNO(2, 3, (8, 16), hidden_channels=4, n_layers=2, out_shape=out_shape, device="meta")
    for batch in (2, 0):
        y = model(torch.empty(batch, 2, 8, 16, device="meta"))
        assert y.is_meta and y.shape == (batch, 3, *(out_shape or (8, 16))) and y.dtype == torch.float32
