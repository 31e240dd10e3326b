"""The shared interface of every mixer: shapes, dtypes, gradients, masks, any length, bad input."""

from __future__ import annotations

import pytest
import torch

from spectral.mixers import (
    AFFMixer,
    AFNOMixer,
    CausalFourierMixer,
    FFTNetMixer,
    FNetMixer,
    GlobalFilterMixer,
)

D = 8
FACTORIES = {
    "fnet": lambda **kw: FNetMixer(),
    "gfnet": lambda **kw: GlobalFilterMixer(D, 32, init_std=0.5, **kw),
    "gfnet-zero": lambda **kw: GlobalFilterMixer(D, 32, boundary="zero", init_std=0.5, **kw),
    "fftnet": lambda **kw: FFTNetMixer(D, 32, num_heads=2, **kw),
    "afno": lambda **kw: AFNOMixer(D, num_blocks=2, sparsity_threshold=0.0, **kw),
    "causal": lambda **kw: CausalFourierMixer(D, 32, **kw),
    "aff": lambda **kw: AFFMixer(D, num_blocks=2, **kw),
}
SEQUENCE = [k for k in FACTORIES if k != "aff"]


def make(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    m = FACTORIES[name](**kw)
    with torch.no_grad():  # leave the near-identity / near-zero starts so every parameter acts
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


def sample(name: str, n: int, **kw) -> torch.Tensor:
    """(B, N, D) for sequence mixers; (B, D, 4, N // 4) for AFF."""
    if name == "aff":
        return torch.randn(2, D, 4, max(1, n // 4), **kw)
    return torch.randn(2, n, D, **kw)


def token_mask(name: str, x: torch.Tensor) -> torch.Tensor:
    shape = (x.shape[0], *x.shape[2:]) if name == "aff" else x.shape[:2]
    mask = torch.rand(shape, device=x.device) > 0.3
    mask.view(x.shape[0], -1)[:, 0] = True
    return mask


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16], ids=str)
def test_shape_and_dtype(name, dtype, device):
    m = make(name).to(device)
    x = sample(name, 24, device=device)
    ref = make(name).double().to(device)(x.double())
    y = m(x.to(dtype))
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()
    tol = {torch.float32: 1e-5, torch.float64: 1e-5, torch.bfloat16: 3e-2, torch.float16: 5e-3}[dtype]
    scale = ref.abs().max().item()
    assert (y.double() - ref).abs().max().item() <= tol * scale * 4


@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_parameter_gets_a_finite_gradient(name):
    m = make(name)
    x = sample(name, 20).requires_grad_(True)
    mask = token_mask(name, x)
    (m(x, mask) * torch.randn_like(x)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list(FACTORIES))
def test_padded_values_change_no_unmasked_output(name, device):
    m = make(name).to(device)
    x = sample(name, 24, device=device)
    mask = token_mask(name, x)
    keep = mask.unsqueeze(1) if name == "aff" else mask.unsqueeze(-1)
    y1 = m(x, mask)
    y2 = m(torch.where(keep, x, 100 * torch.randn_like(x)), mask)
    y3 = m(torch.where(keep, x, float("nan")), mask)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(y1, y3)
    assert (torch.where(keep, 0, y1) == 0).all()


@pytest.mark.parametrize("name", list(FACTORIES))
def test_any_length_and_batch_independence(name):
    m = make(name)
    for n in (17, 64, 1000):
        x = sample(name, n)
        y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        torch.testing.assert_close(m(x[1:]), y[1:], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", SEQUENCE)
def test_bad_input_names_the_shape(name):
    m = make(name)
    want = r"\(B, N, D\)" if name == "fnet" else rf"\(B, N, {D}\)"
    if name != "fnet":
        with pytest.raises(ValueError, match=want + r", got \(2, 5, 7\)"):
            m(torch.zeros(2, 5, 7))
    with pytest.raises(ValueError, match=want + r", got \(5, 8\)"):
        m(torch.zeros(5, 8))
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 5\).*got \(2, 6\)"):
        m(torch.zeros(2, 5, D), torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(TypeError, match="torch.complex64"):
        m(torch.zeros(2, 5, D, dtype=torch.complex64))


@pytest.mark.parametrize("name", [k for k in FACTORIES if k != "fnet"])
def test_state_dict_round_trip_and_double(name):
    m = make(name)
    other = FACTORIES[name]()
    other.load_state_dict(m.state_dict())
    x = sample(name, 16)
    torch.testing.assert_close(other(x), m(x))
    torch.testing.assert_close(m.double()(x.double()).float(), other(x), atol=1e-5, rtol=1e-4)
    assert all(p.dtype == torch.float64 for p in m.parameters())


@pytest.mark.parametrize("name", list(FACTORIES))
def test_gradcheck_double(name):
    m = make(name, dtype=torch.float64)
    x = sample(name, 8, dtype=torch.float64).requires_grad_(True)
    params = [p for p in m.parameters()]

    def fn(x, *ps):
        return m(x)

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5, fast_mode=True)


def test_repr_shows_the_configuration():
    assert "boundary='zero', filter_len=64" in repr(GlobalFilterMixer(8, 32, boundary="zero"))
    assert "num_heads=2" in repr(FFTNetMixer(8, 32, num_heads=2))
    assert "hard_thresholding_fraction=0.5" in repr(AFNOMixer(8, num_blocks=2, hard_thresholding_fraction=0.5))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FACTORIES))
def test_torch_compile_fullgraph(name):
    m = make(name)
    x = sample(name, 16)
    mask = token_mask(name, x)
    compiled = torch.compile(m, fullgraph=True)
    torch.testing.assert_close(compiled(x, mask), m(x, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("name", list(FACTORIES))
def test_a_non_finite_token_spreads_to_every_token_of_its_sample_only(name, bad):
    """As the docstrings say: FFT mixing is global, so one NaN/inf token reaches every token (earlier ones too)."""
    m = make(name)
    x = sample(name, 16)
    if name == "aff":
        x[0, 0, 2, 3] = bad
    else:
        x[0, 9, 0] = bad
    y = m(x)
    hit = ~torch.isfinite(y[0])
    per_token = hit.any(0) if name == "aff" else hit.any(-1)  # (H, W) or (N,)
    assert per_token.all()
    assert torch.isfinite(y[1]).all()
    if name == "aff":  # ... and a masked-out pixel is never read
        mask = torch.ones(2, *x.shape[2:], dtype=torch.bool)
        mask[0, 2, 3] = False
    else:
        mask = torch.ones(2, 16, dtype=torch.bool)
        mask[0, 9] = False
    assert torch.isfinite(m(x, mask)).all()
