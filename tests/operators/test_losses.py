"""LpLoss and H1Loss against analytic norms, naive formulas and grid refinement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from operators.losses import H1Loss, LpLoss


def _periodic_grid(n, d=2):
    t = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(*[t] * d, indexing="ij")


def _node_grid(n, d=2):
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.meshgrid(*[t] * d, indexing="ij")


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, math.inf])
def test_relative_lp_matches_naive_formula(p, generator):
    pred = torch.randn(5, 2, 9, 7, dtype=torch.float64, generator=generator)
    target = torch.randn(5, 2, 9, 7, dtype=torch.float64, generator=generator)
    e, t = (pred - target).numpy().reshape(5, -1), target.numpy().reshape(5, -1)
    ref = np.linalg.norm(e, ord=p, axis=1) / np.linalg.norm(t, ord=p, axis=1)
    np.testing.assert_allclose(LpLoss(2, p)(pred, target).item(), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(LpLoss(2, p, reduction="sum")(pred, target).item(), ref.sum(), rtol=1e-12)


@pytest.mark.parametrize("n", [16, 17, 32])
def test_absolute_l2_is_grid_independent_on_periodic_grids(n):
    x, y = _periodic_grid(n)
    u = (torch.sin(2 * math.pi * x) * torch.sin(2 * math.pi * y))[None, None]  # ||u||_2 = 1/2 exactly
    loss = LpLoss(2, relative=False)
    np.testing.assert_allclose(loss(u, torch.zeros_like(u)).item(), 0.5, rtol=1e-12)
    # extent scales the norm by sqrt(area)
    np.testing.assert_allclose(LpLoss(2, relative=False, extent=(2.0, 3.0))(u, 0 * u).item(), 0.5 * math.sqrt(6), rtol=1e-12)


def test_absolute_l2_non_periodic_converges_to_the_integral():
    errors = []
    for n in (17, 33, 65):
        x, y = _node_grid(n)
        u = (x * y)[None, None]  # ||x y||_2^2 = 1/9
        errors.append(abs(LpLoss(2, relative=False, periodic=False)(u, 0 * u).item() - 1 / 3))
    assert errors[0] < 1e-2 and errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3  # trapezoid: O(h^2)


@pytest.mark.parametrize("n", [12, 13, 24])
def test_h1_periodic_spectral_is_exact(n):
    x, y = _periodic_grid(n)
    u = (torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y))[None, None]
    exact = math.sqrt(0.25 * (1 + (2 * math.pi) ** 2 + (4 * math.pi) ** 2))
    np.testing.assert_allclose(H1Loss(2, relative=False)(u, 0 * u).item(), exact, rtol=1e-10)
    # the error of a scaled copy, relative: |1 - 1.5| exactly
    np.testing.assert_allclose(H1Loss(2)(1.5 * u, u).item(), 0.5, rtol=1e-10)


def test_h1_periodic_1d_complex_and_extent():
    n, length = 16, 3.0
    x = torch.arange(n, dtype=torch.float64) * length / n
    u = torch.exp(2j * math.pi * 2 * x / length)[None]  # |u| = 1, |u'| = 4 pi / L
    exact = math.sqrt(length * (1 + (4 * math.pi / length) ** 2))
    np.testing.assert_allclose(H1Loss(1, relative=False, extent=length)(u, 0 * u).item(), exact, rtol=1e-10)


def test_h1_finite_differences_on_non_periodic_grid():
    # u = x^2 y: ||u||^2 = 1/15, ||u_x||^2 = 4/9, ||u_y||^2 = 1/5 on the unit square
    exact = math.sqrt(1 / 15 + 4 / 9 + 1 / 5)
    errors = []
    for n in (17, 33, 65):
        x, y = _node_grid(n)
        u = (x**2 * y)[None, None]
        errors.append(abs(H1Loss(2, relative=False, periodic=False)(u, 0 * u).item() - exact))
    assert errors[-1] < 1e-3 and errors[2] < errors[0] / 8  # second-order FD + trapezoid


def test_h1_penalises_derivatives_unlike_l2():
    x, y = _periodic_grid(32)
    base = torch.sin(2 * math.pi * x)[None, None]
    low = base + 0.1 * torch.sin(2 * math.pi * y)[None, None]
    high = base + 0.1 * torch.sin(2 * math.pi * 8 * y)[None, None]
    l2, h1 = LpLoss(2), H1Loss(2)
    np.testing.assert_allclose(l2(low, base).item(), l2(high, base).item(), rtol=1e-10)
    assert h1(high, base).item() > 3 * h1(low, base).item()


def test_3d_and_gradient_flow(generator):
    pred = torch.randn(2, 1, 6, 5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.randn(2, 1, 6, 5, 4, dtype=torch.float64, generator=generator)
    for loss in (LpLoss(3), H1Loss(3), H1Loss(3, periodic=False)):
        pred.grad = None
        loss(pred, target).backward()
        assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"pred and target shapes differ: \(2, 1, 8, 8\) vs \(2, 1, 8, 9\)"):
        LpLoss(2)(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match=r"2 grid axes, got shape \(8, 8\)"):
        LpLoss(2)(torch.zeros(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum'\), got str 'max'"):
        LpLoss(2, reduction="max")
    with pytest.raises(ValueError, match=r"p must be >= 1"):
        LpLoss(2, 0.5)
    with pytest.raises(ValueError, match=r"ndim must be an int in \[1, 3\], got 4"):
        H1Loss(4)
    with pytest.raises(ValueError, match=r"extent\[1\] must be > 0, got -1.0"):
        H1Loss(2, extent=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"extent must be a positive number or 2 of them, got \(1.0, 2.0, 3.0\)"):
        H1Loss(2, extent=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"at least 3 points, got shape \(1, 1, 2, 8\)"):
        H1Loss(2, periodic=False)(torch.zeros(1, 1, 2, 8), torch.zeros(1, 1, 2, 8))
    assert "relative=True" in repr(H1Loss()) and "p=2.0" in repr(LpLoss())


# --- a sample with exactly zero error: finite gradient, equal to an independent float64 reference ---


def _reference_weights(grid, periodic, extent=1.0):
    """Quadrature weights (*grid) built directly: L / N each (periodic) or the trapezoid rule."""
    w = np.ones(())
    for n in grid:
        wj = np.full(n, extent / n) if periodic else np.full(n, extent / (n - 1))
        if not periodic:
            wj[[0, -1]] /= 2
        w = np.multiply.outer(w, wj)
    return torch.from_numpy(w)


def _reference_derivative_matrices(n, periodic, extent=1.0):
    """(n, n) matrices ``(D, P)``: d/dx and the projection the derivatives of the other axes see.

    Periodic: naive DFT over ``|k| <= (n - 1) // 2`` (every mode but Nyquist, which the spectral
    derivative drops from the whole spectrum, so ``P`` removes it along this axis). Otherwise
    second-order finite differences with one-sided ends, and ``P = I``.
    """
    if periodic:
        k = np.arange(-((n - 1) // 2), (n - 1) // 2 + 1)
        j = np.arange(n)
        phase = np.exp(2j * np.pi * np.subtract.outer(j, j)[:, :, None] * k / n)  # (n, n, K)
        return (torch.from_numpy(((2j * np.pi * k / extent) * phase).sum(-1).real / n),
                torch.from_numpy(phase.sum(-1).real / n))
    h = extent / (n - 1)
    d = np.zeros((n, n))
    for i in range(1, n - 1):
        d[i, i - 1], d[i, i + 1] = -1 / (2 * h), 1 / (2 * h)
    d[0, :3] = np.array([-3, 4, -1]) / (2 * h)
    d[-1, -3:] = np.array([1, -4, 3]) / (2 * h)
    return torch.from_numpy(d), torch.eye(n, dtype=torch.float64)


def _reference_loss(pred, target, *, h1, p, relative, periodic, batch):
    """Naive float64 loss summed over the given samples, divided by ``batch`` (the full batch size for mean)."""
    grid = pred.shape[-2:]
    w = _reference_weights(grid, periodic)
    (d_h, p_h), (d_w, p_w) = (_reference_derivative_matrices(n, periodic) for n in grid)

    def norm(u):  # (B, C, H, W) -> (B,)
        if not h1:
            return ((w * u.abs() ** p).sum((1, 2, 3))) ** (1 / p)
        u_h = torch.einsum("hk,wl,bckl->bchw", d_h, p_w, u)  # d/dy
        u_w = torch.einsum("hk,wl,bckl->bchw", p_h, d_w, u)  # d/dx
        terms = u**2 + u_h**2 + u_w**2
        return (w * terms).sum((1, 2, 3)).sqrt()

    per_sample = norm(pred - target) / norm(target) if relative else norm(pred - target)
    return per_sample.sum() / batch


def _check_zero_error_gradient(loss, dtype, generator, *, h1, p=2.0):
    shape = (4, 2, 8, 7)  # an even and an odd grid axis
    target = torch.randn(shape, dtype=torch.float64, generator=generator)
    pred = torch.randn(shape, dtype=torch.float64, generator=generator)
    pred[1] = target[1]  # sample 1: exactly zero error
    x = pred.to(dtype, copy=True).requires_grad_()
    value = loss(x, target.to(dtype))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all(), f"non-finite gradient: {x.grad}"
    assert torch.equal(x.grad[1], torch.zeros_like(x.grad[1]))  # the norm's subgradient at 0

    nonzero = [0, 2, 3]
    x_ref = pred[nonzero].clone().requires_grad_()  # float64, independent of x
    batch = shape[0] if loss.reduction == "mean" else 1
    ref = _reference_loss(x_ref, target[nonzero], h1=h1, p=p, relative=loss.relative, periodic=loss.periodic, batch=batch)
    ref.backward()
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(value.item(), ref.item(), **tol)
    np.testing.assert_allclose(x.grad[nonzero].double().numpy(), x_ref.grad.numpy(), **tol)


_DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("dtype", _DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("periodic", [True, False], ids=lambda v: f"periodic={v}")
@pytest.mark.parametrize("relative", [True, False], ids=lambda v: f"relative={v}")
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0], ids=lambda v: f"p={v}")
def test_lp_gradient_is_finite_and_exact_when_one_sample_has_zero_error(p, relative, periodic, reduction, dtype, generator):
    loss = LpLoss(2, p, relative=relative, reduction=reduction, periodic=periodic)
    _check_zero_error_gradient(loss, dtype, generator, h1=False, p=p)


@pytest.mark.parametrize("dtype", _DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("periodic", [True, False], ids=lambda v: f"periodic={v}")
@pytest.mark.parametrize("relative", [True, False], ids=lambda v: f"relative={v}")
def test_h1_gradient_is_finite_and_exact_when_one_sample_has_zero_error(relative, periodic, reduction, dtype, generator):
    loss = H1Loss(2, relative=relative, reduction=reduction, periodic=periodic)
    _check_zero_error_gradient(loss, dtype, generator, h1=True)


@pytest.mark.parametrize("loss", [LpLoss(1), LpLoss(1, math.inf), H1Loss(1)], ids=lambda m: type(m).__name__)
def test_gradient_is_zero_when_every_sample_has_zero_error(loss):
    t = torch.randn(3, 1, 16, dtype=torch.float64)
    t_c = torch.randn(3, 1, 16, dtype=torch.complex128)
    for pred, target in ((t.clone().requires_grad_(), t), (t_c.clone().requires_grad_(), t_c)):
        value = loss(pred, target)
        value.backward()
        assert value.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred.grad))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool], ids=str)
@pytest.mark.parametrize("loss", [LpLoss(1), H1Loss(1)], ids=lambda m: type(m).__name__)
def test_integer_input_raises_type_error_naming_the_dtype(loss, dtype):
    name = type(loss).__name__
    ints = torch.ones(2, 1, 8, dtype=dtype)
    floats = torch.ones(2, 1, 8)
    with pytest.raises(TypeError, match=rf"{name}: pred must have a floating or complex dtype, got {dtype}"):
        loss(ints, floats)
    with pytest.raises(TypeError, match=rf"{name}: target must have a floating or complex dtype, got {dtype}"):
        loss(floats, ints)


# --- issue 17: one validation path, second derivatives, empty batches, the meta device ---


_BAD_OPTIONS = [  # (constructor call, error, message pattern)
        (lambda: LpLoss(True), TypeError, r"ndim must be an int, got bool True"),  # was taken as ndim=1
        (lambda: LpLoss(2, True), TypeError, r"p must be a real number, got bool True"),
        (lambda: H1Loss(None), TypeError, r"ndim must be an int, got NoneType None"),
        (lambda: H1Loss(2.0), TypeError, r"ndim must be an int, got float 2.0"),
        (lambda: LpLoss(2, "2"), TypeError, r"p must be a real number, got str '2'"),
        (lambda: LpLoss(2, float("nan")), ValueError, r"p must be >= 1 \(or math.inf\), got nan"),
        (lambda: LpLoss(2, -math.inf), ValueError, r"p must be >= 1 \(or math.inf\), got -inf"),
        (lambda: LpLoss(2, extent=math.inf), ValueError, r"extent must be finite, got inf"),  # gave NaN losses
        (lambda: H1Loss(2, extent=(1.0, float("nan"))), ValueError, r"extent\[1\] must be finite, got nan"),
        (lambda: H1Loss(2, extent="1"), TypeError, r"extent must be a positive number or 2 of them, got str '1'"),
        (lambda: H1Loss(1, extent=0), ValueError, r"extent must be > 0, got 0.0"),
        (lambda: LpLoss(2, relative="no"), TypeError, r"relative must be a bool, got str 'no'"),
        (lambda: H1Loss(2, periodic=None), TypeError, r"periodic must be a bool, got NoneType None"),
        (lambda: H1Loss(2, reduction=None), ValueError, r"reduction must be one of \('mean', 'sum'\), got NoneType"),
]


@pytest.mark.parametrize("make,error,pattern", _BAD_OPTIONS, ids=[f"{c[1].__name__}-{i}" for i, c in enumerate(_BAD_OPTIONS)])
def test_bad_options_raise_named_errors(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_numpy_numbers_and_inf_are_accepted(generator):
    pred = torch.randn(3, 1, 6, 5, dtype=torch.float64, generator=generator)
    target = torch.randn(3, 1, 6, 5, dtype=torch.float64, generator=generator)
    for p in (np.int64(3), np.float64(3.0)):
        assert LpLoss(np.int64(2), p, extent=np.float32(2.0))(pred, target).item() == LpLoss(2, 3, extent=2.0)(pred, target).item()
    e, t = (pred - target).abs().reshape(3, -1), target.abs().reshape(3, -1)
    ref = (e.amax(-1) / t.amax(-1)).mean().item()
    np.testing.assert_allclose(LpLoss(2, np.float64(np.inf))(pred, target).item(), ref, rtol=1e-12)


@pytest.mark.parametrize(
    "loss",
    [LpLoss(2), LpLoss(2, 3.0, relative=False, periodic=False), LpLoss(2, math.inf), H1Loss(2),
     H1Loss(2, periodic=False, reduction="sum"), H1Loss(1, relative=False, extent=2.0)],
    ids=repr,
)
def test_second_derivatives_are_exact(loss, generator):
    shape = (2, 1, 4, 3) if loss.ndim == 2 else (2, 2, 5)
    pred = torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
    assert torch.autograd.gradgradcheck(loss, (pred, target), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_second_derivatives_of_complex_h1_are_exact(generator):
    pred = torch.randn(2, 1, 5, dtype=torch.complex128, generator=generator, requires_grad=True)
    target = torch.randn(2, 1, 5, dtype=torch.complex128, generator=generator, requires_grad=True)
    assert torch.autograd.gradgradcheck(H1Loss(1), (pred, target), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    "loss_type,kwargs",
    [(LpLoss, {}), (LpLoss, dict(p=math.inf)), (H1Loss, {}), (H1Loss, dict(periodic=False, relative=False))],
    ids=["L2", "Linf", "H1", "H1-fd-absolute"],
)
def test_empty_batch_follows_torch_losses(loss_type, kwargs, reduction):
    """B = 0 failed in a reshape (or MKL); now like torch's losses: mean over nothing is NaN, a sum 0."""
    pred = torch.randn(0, 2, 8, 8, requires_grad=True)
    value = loss_type(2, reduction=reduction, **kwargs)(pred, torch.randn(0, 2, 8, 8))
    reference = torch.nn.functional.mse_loss(torch.zeros(0), torch.zeros(0), reduction=reduction)  # nan / 0
    assert value.shape == () and value.dtype == torch.float32
    torch.testing.assert_close(value, reference, equal_nan=True)
    value.backward()
    assert pred.grad.shape == pred.shape


@pytest.mark.parametrize("loss", [LpLoss(2), LpLoss(2, math.inf), H1Loss(2), H1Loss(2, periodic=False)], ids=repr)
def test_meta_inputs_give_a_meta_scalar(loss):
    value = loss(torch.empty(3, 1, 8, 8, device="meta"), torch.empty(3, 1, 8, 8, device="meta"))
    assert value.is_meta and value.shape == ()


# --------------------------------------------------------------------------- SphereLoss
def _colatitudes(nlat: int, grid: str) -> np.ndarray:
    """Independent nodes: equiangular ``pi i / (H - 1)``; Legendre-Gauss from numpy (``cos theta`` = nodes)."""
    if grid == "equiangular":
        return np.pi * np.arange(nlat) / (nlat - 1)
    return np.arccos(np.polynomial.legendre.leggauss(nlat)[0])


@pytest.mark.parametrize("grid", ["equiangular", "legendre-gauss", "lobatto"])
@pytest.mark.parametrize("nlat", [7, 16])
def test_sphere_mean_of_a_constant_is_the_constant(grid, nlat):
    from operators.losses import SphereLoss

    f = torch.full((2, 3, nlat, 2 * nlat), 2.5, dtype=torch.float64)
    np.testing.assert_allclose(SphereLoss(grid).mean(f).numpy(), np.full((2, 3), 2.5), rtol=1e-12)


@pytest.mark.parametrize("grid", ["equiangular", "legendre-gauss"])
@pytest.mark.parametrize("nlat", [9, 16])
def test_sphere_integral_of_y10_squared_is_one(grid, nlat):
    """``Y_1^0 = sqrt(3 / 4 pi) cos theta`` has unit L2 norm: mean of its square ``1 / (4 pi)``, norm 1."""
    from operators.losses import SphereLoss

    theta = _colatitudes(nlat, grid)
    y10 = np.sqrt(3 / (4 * np.pi)) * np.cos(theta)[:, None] * np.ones((1, 2 * nlat))
    y = torch.as_tensor(y10)[None, None]  # (1, 1, H, W)
    loss = SphereLoss(grid, relative=False)
    assert loss.mean(y**2).item() == pytest.approx(1 / (4 * np.pi), rel=1e-12)
    assert loss.norm(y).item() == pytest.approx(1.0, rel=1e-12)
    assert loss.mean(y).item() == pytest.approx(0.0, abs=1e-14)  # odd about the equator


def test_sphere_loss_matches_an_area_weighted_numpy_formula(generator):
    from torch_harmonics.quadrature import precompute_latitudes

    from operators.losses import SphereLoss

    pred, target = torch.randn(2, 4, 3, 8, 16, generator=generator, dtype=torch.float64)
    area = np.sin(_colatitudes(8, "equiangular"))  # continuous weights: the quadrature only approximates them
    q = precompute_latitudes(8, "equiangular")[1].numpy()
    w = (q * 2 * np.pi / 16)[:, None]
    d, t = (pred - target).numpy(), target.numpy()
    expected = np.sqrt((d**2 * w).sum((1, 2, 3)) / (t**2 * w).sum((1, 2, 3)))
    assert SphereLoss()(pred, target).item() == pytest.approx(expected.mean(), rel=1e-12)
    assert SphereLoss(reduction="sum")(pred, target).item() == pytest.approx(expected.sum(), rel=1e-12)
    absolute = np.abs(d).reshape(4, -1).max(1)
    assert SphereLoss(p=math.inf, relative=False)(pred, target).item() == pytest.approx(absolute.mean(), rel=1e-12)
    assert np.corrcoef(q, area)[0, 1] > 0.99  # the weights are areas: small at the poles
    # poles count less than the equator: an error at a pole costs less than the same error at the equator
    base = torch.ones(1, 1, 8, 16, dtype=torch.float64)
    pole, equator = base.clone(), base.clone()
    pole[..., 1, 0] += 1
    equator[..., 4, 0] += 1
    assert SphereLoss()(pole, base) < SphereLoss()(equator, base)


def test_sphere_loss_gradgrad_empty_batch_and_meta(generator):
    from operators.losses import SphereLoss

    loss = SphereLoss()
    pred, target = torch.randn(2, 2, 1, 5, 8, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradgradcheck(loss, (pred.requires_grad_(), target.requires_grad_()))
    empty = torch.zeros(0, 1, 5, 8, requires_grad=True)
    out = loss(empty, empty.detach())
    assert out.shape == () and math.isnan(out.item())
    out.sum().backward()
    assert loss(torch.zeros(2, 1, 5, 8, device="meta"), torch.zeros(2, 1, 5, 8, device="meta")).device.type == "meta"


def test_sphere_loss_bad_input():
    from operators.losses import SphereLoss

    with pytest.raises(ValueError, match="grid must be one of"):
        SphereLoss("healpix")
    with pytest.raises(ValueError, match="p must be >= 1"):
        SphereLoss(p=0.5)
    with pytest.raises(ValueError, match=r"expected pred of shape \(B, \.\.\., H, W\) with H >= 2 latitudes, got \(4, 8\)"):
        SphereLoss()(torch.zeros(4, 8), torch.zeros(4, 8))
    with pytest.raises(ValueError, match=r"shapes differ: \(1, 1, 4, 8\) vs \(1, 1, 4, 9\)"):
        SphereLoss()(torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 4, 9))
    with pytest.raises(TypeError, match="target must have a floating or complex dtype"):
        SphereLoss()(torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 4, 8, dtype=torch.long))
