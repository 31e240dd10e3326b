"""FANLayer, FAN and FANAttention against naive formulas and torch's own attention."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradgradcheck
from torch.func import functional_call

from spectral.activations import ACTIVATIONS
from spectral.fan import FAN, FANLayer, fan_features
from spectral.fan_attention import FANAttention, _attention

DTYPES = [torch.float32, torch.float64]


def _naive_fan_layer(layer: FANLayer, x: torch.Tensor) -> torch.Tensor:
    """The FAN formula written out: cos/sin of the periodic rows, activation of the others."""
    d_p = math.floor(layer.p_ratio * layer.out_features)
    w_p, w_g = layer.weight[:d_p], layer.weight[d_p:]
    b_p = layer.bias[:d_p] if layer.p_bias else torch.zeros(d_p, dtype=x.dtype, device=x.device)
    b_g = layer.bias[d_p:] if layer.p_bias else layer.bias
    h_p, h_g = x @ w_p.T + b_p, x @ w_g.T + b_g
    act = {"gelu": F.gelu, "relu": torch.relu, "silu": F.silu, "tanh": torch.tanh,
           "identity": lambda t: t}[layer.activation]
    s = torch.sigmoid(layer.gate) if layer.gated else torch.tensor(1.0, dtype=x.dtype)
    rest = (1 - s) * act(h_g) if layer.gated else act(h_g)
    return torch.cat([s * torch.cos(h_p), s * torch.sin(h_p), rest], dim=-1)


@pytest.mark.parametrize("p_ratio", [0.1, 0.25, 0.4, 0.49], ids=lambda p: f"p={p}")
def test_fan_layer_width_is_exact_for_every_out_features(p_ratio):
    x = torch.randn(3, 5)
    for out_features in range(1, 33):
        layer = FANLayer(5, out_features, p_ratio=p_ratio)
        y = layer(x)
        assert y.shape == (3, out_features), out_features
        assert layer.d_p == math.floor(p_ratio * out_features)
        assert 2 * layer.d_p + layer.d_g == out_features


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", ["gelu", "relu", "silu", "tanh", "identity"])
@pytest.mark.parametrize("gated", [False, True], ids=["plain", "gated"])
@pytest.mark.parametrize("p_bias", [True, False], ids=["p_bias", "no_p_bias"])
def test_fan_layer_matches_naive_formula(device, dtype, activation, gated, p_bias):
    layer = FANLayer(7, 13, p_ratio=0.3, activation=activation, gated=gated, p_bias=p_bias,
                     device=device, dtype=dtype)
    if gated:
        with torch.no_grad():
            layer.gate.fill_(0.7)
    x = torch.randn(2, 4, 7, device=device, dtype=dtype)
    y = layer(x)
    assert y.dtype == dtype and y.device.type == device.type
    torch.testing.assert_close(y, _naive_fan_layer(layer, x))
    torch.testing.assert_close(y, fan_features(layer.pre_activation(x), layer.d_p, activation, layer.gate))


def test_fan_layer_without_periodic_bias_is_phase_free():
    layer = FANLayer(4, 8, p_bias=False)
    y = layer(torch.zeros(1, 4))
    torch.testing.assert_close(y[0, :2], torch.ones(2))  # cos(0)
    torch.testing.assert_close(y[0, 2:4], torch.zeros(2))  # sin(0)
    assert layer.bias.shape == (layer.d_g,)


def test_gate_balances_periodic_and_rest():
    layer = FANLayer(3, 8, gated=True)
    x = torch.randn(5, 3)
    plain = FANLayer(3, 8)
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "gate"})
    torch.testing.assert_close(layer(x), 0.5 * plain(x))  # gate initialised at 0: sigmoid = 1/2
    with torch.no_grad():
        layer.gate.fill_(30.0)
    y = layer(x)
    torch.testing.assert_close(y[:, 4:], torch.zeros(5, 4), atol=1e-12, rtol=0)
    torch.testing.assert_close(y[:, :4], plain(x)[:, :4])
    with torch.no_grad():
        layer.gate.fill_(-30.0)
    torch.testing.assert_close(layer(x)[:, :4], torch.zeros(5, 4), atol=1e-12, rtol=0)
    layer.gate.grad = None
    with torch.no_grad():
        layer.gate.fill_(0.3)
    layer(x).square().sum().backward()
    assert layer.gate.grad is not None and layer.gate.grad.abs() > 0


@pytest.mark.parametrize("p_ratio", [0.0, 0.5, -0.1, 0.7, 1.0])
def test_p_ratio_outside_open_interval_raises(p_ratio):
    with pytest.raises(ValueError, match=r"p_ratio must be > 0(\.0)? and < 0\.5, got"):
        FANLayer(4, 8, p_ratio=p_ratio)


def test_fan_layer_bad_arguments_and_input():
    with pytest.raises(ValueError, match=r"activation must be one of .*'gelu'.*got str 'swish'"):
        FANLayer(4, 8, activation="swish")
    with pytest.raises(ValueError, match="out_features must be an int >= 1, got 0"):
        FANLayer(4, 0)
    with pytest.raises(ValueError, match="in_features must be an int >= 1, got 0"):
        FANLayer(0, 4)
    layer = FANLayer(4, 8)
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., 4\), got \(2, 5\)"):
        layer(torch.randn(2, 5))
    with pytest.raises(TypeError, match="complex64"):
        layer(torch.randn(2, 4, dtype=torch.complex64))


@pytest.mark.parametrize("gated", [False, True], ids=["plain", "gated"])
def test_fan_equals_composition_and_trains(gated):
    net = FAN(3, 2, hidden_features=16, n_layers=3, gated=gated)
    assert len(net.layers) == 3
    x = torch.randn(6, 3)
    h = net.embedding(x)
    for layer in net.layers:
        h = _naive_fan_layer(layer, h)
    torch.testing.assert_close(net(x), net.readout(h))
    net(x).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_fan_state_dict_round_trip_and_errors():
    a, b = FAN(2, 3, hidden_features=12, gated=True), FAN(2, 3, hidden_features=12, gated=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 2)
    torch.testing.assert_close(a(x), b(x))
    with pytest.raises(ValueError, match=r"FAN: expected x of shape \(\.\.\., 2\), got \(4, 3\)"):
        a(torch.randn(4, 3))
    with pytest.raises(ValueError, match="n_layers must be an int >= 1, got 0"):
        FAN(2, 3, n_layers=0)


# ----------------------------------------------------------------------------------- attention
def _naive_attention(attn: FANAttention, q_in, k_in, v_in, keep=None, additive=None):
    """ATF written with explicit matmuls, a per-head loop and softmax."""
    fan = lambda t: _naive_fan_layer(attn.fan_proj, t)  # noqa: E731
    w_q, w_k, w_v = attn.in_proj.weight.chunk(3)
    b_q, b_k, b_v = attn.in_proj.bias.chunk(3)
    q, k, v = fan(q_in) @ w_q.T + b_q, fan(k_in) @ w_k.T + b_k, fan(v_in) @ w_v.T + b_v
    e = attn.head_dim
    heads = []
    for h in range(attn.num_heads):
        sl = slice(h * e, (h + 1) * e)
        scores = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(e)
        if additive is not None:
            scores = scores + additive
        if keep is not None:
            scores = scores.masked_fill(~keep, float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ v[..., sl])
    return torch.cat(heads, dim=-1) @ attn.out_proj.weight.T + attn.out_proj.bias


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_attention_matches_naive_self_and_cross(device, dtype):
    attn = FANAttention(12, 3, p_ratio=0.25, device=device, dtype=dtype)
    x = torch.randn(2, 5, 12, device=device, dtype=dtype)
    mem = torch.randn(2, 7, 12, device=device, dtype=dtype)
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {}
    out, weights = attn(x)
    assert weights is None
    torch.testing.assert_close(out, _naive_attention(attn, x, x, x), **tol)
    out, _ = attn(x, mem, mem)
    torch.testing.assert_close(out, _naive_attention(attn, x, mem, mem), **tol)
    other = torch.randn_like(mem)
    out, _ = attn(x, mem, other)
    torch.testing.assert_close(out, _naive_attention(attn, x, mem, other), **tol)


def test_attention_masks_match_naive():
    attn = FANAttention(8, 2)
    x = torch.randn(3, 6, 8)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[0, 4:] = False
    mask[2, 1] = False
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    keep = mask[:, None, :] & causal
    out, w = attn(x, x, x, mask=mask, is_causal=True, need_weights=True)
    torch.testing.assert_close(out, _naive_attention(attn, x, x, x, keep=keep), atol=1e-5, rtol=1e-4)
    out_sdpa, _ = attn(x, x, x, mask=mask, is_causal=True)
    torch.testing.assert_close(out_sdpa, out, atol=1e-5, rtol=1e-4)
    assert w.shape == (3, 6, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 6))
    assert (w.masked_select(~keep) == 0).all()
    additive = torch.randn(6, 6)
    out, _ = attn(x, attn_mask=additive, mask=mask)
    torch.testing.assert_close(out, _naive_attention(attn, x, x, x, keep=mask[:, None, :], additive=additive),
                               atol=1e-5, rtol=1e-4)
    bool_mask = torch.rand(3, 6, 6) > 0.3
    bool_mask[..., 0] = True
    out, _ = attn(x, attn_mask=bool_mask)
    torch.testing.assert_close(out, _naive_attention(attn, x, x, x, keep=bool_mask), atol=1e-5, rtol=1e-4)


def test_attention_equals_torch_multihead_on_fan_features():
    """Same weights in nn.MultiheadAttention fed FAN'(x): documents the mask polarity difference."""
    attn = FANAttention(8, 2)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.in_proj.weight)
        mha.in_proj_bias.copy_(attn.in_proj.bias)
        mha.out_proj.weight.copy_(attn.out_proj.weight)
        mha.out_proj.bias.copy_(attn.out_proj.bias)
    x = torch.randn(2, 5, 8)
    keep = torch.tensor([[True] * 5, [True, True, True, False, False]])
    f = attn.fan_proj(x)
    ref, ref_w = mha(f, f, f, key_padding_mask=~keep)
    out, w = attn(x, x, x, mask=keep, need_weights=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)


def test_causal_attention_leaks_nothing():
    attn = FANAttention(8, 2)
    x = torch.randn(2, 7, 8, requires_grad=True)
    out, _ = attn(x, is_causal=True)
    j = 4
    x2 = x.detach().clone()
    x2[:, j:] = torch.randn(2, 7 - j, 8) * 10
    out2, _ = attn(x2, is_causal=True)
    torch.testing.assert_close(out2[:, :j], out[:, :j])
    assert (out2[:, j:] - out[:, j:]).abs().max() > 1e-3
    out[:, 2].sum().backward()
    assert (x.grad[:, 3:] == 0).all() and (x.grad[:, :3].abs().sum() > 0)


def test_padded_keys_have_no_influence_and_gradients_flow():
    attn = FANAttention(8, 4)
    x = torch.randn(2, 6, 8)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    out, _ = attn(x, mask=mask)
    x2 = x.clone()
    x2[1, 4:] += 5.0
    out2, _ = attn(x2, mask=mask)
    torch.testing.assert_close(out2[1, :4], out[1, :4])
    out.square().sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_attention_dropout_and_state_dict():
    attn = FANAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 5, 8)
    attn.eval()
    a, _ = attn(x)
    b, _ = attn(x)
    torch.testing.assert_close(a, b)
    attn.train()
    c, _ = attn(x)
    assert not torch.allclose(a, c)
    other = FANAttention(8, 2, dropout=0.5).eval()
    other.load_state_dict(attn.state_dict())
    torch.testing.assert_close(other(x)[0], a)


def test_attention_bad_input():
    with pytest.raises(ValueError, match="embed_dim=10 is not divisible by num_heads=3"):
        FANAttention(10, 3)
    with pytest.raises(ValueError, match=r"p_ratio must be > 0(\.0)? and < 0\.5, got 0\.6"):
        FANAttention(8, 2, p_ratio=0.6)
    attn = FANAttention(8, 2)
    with pytest.raises(ValueError, match=r"expected query of shape \(B, N, 8\), got \(2, 5, 6\)"):
        attn(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"must agree, got \(2, 5, 8\), \(3, 4, 8\)"):
        attn(torch.randn(2, 5, 8), torch.randn(3, 4, 8), torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of shape \(B, S\) = \(2, 5\).*\(2, 4\)"):
        attn(torch.randn(2, 5, 8), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must be a bool tensor.*torch.float32"):
        attn(torch.randn(2, 5, 8), mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"attn_mask must have shape .* got \(4, 4\)"):
        attn(torch.randn(2, 5, 8), attn_mask=torch.ones(4, 4, dtype=torch.bool))
    # nn.MultiheadAttention's (B*H, N, S) layout, or a wrong B or H, would broadcast into the batch.
    for shape in [(4, 5, 5), (3, 2, 5, 5), (2, 3, 5, 5)]:
        with pytest.raises(ValueError, match=rf"attn_mask .*B=2, H=2, N=5, S=5 .*got {re.escape(str(shape))}"):
            attn(torch.randn(2, 5, 8), attn_mask=torch.ones(shape, dtype=torch.bool), need_weights=True)
    for shape in [(1, 5, 5), (2, 1, 5, 5), (1, 2, 5, 5)]:  # size-1 leading axes broadcast
        out, _ = attn(torch.randn(2, 5, 8), attn_mask=torch.ones(shape, dtype=torch.bool), need_weights=True)
        assert out.shape == (2, 5, 8)
    with pytest.raises(TypeError, match=r"FANLayer: got x of dtype torch.float64 but the parameters have torch.float32"):
        attn(torch.randn(2, 5, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="key_padding_mask"):
        attn(torch.randn(2, 5, 8), key_padding_mask=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="complex64"):
        attn(torch.randn(2, 5, 8, dtype=torch.complex64))


@pytest.mark.slow
def test_compile_fullgraph_smoke():
    net = FAN(2, 1, hidden_features=8, gated=True)
    attn = FANAttention(8, 2)
    x, seq = torch.randn(4, 2), torch.randn(2, 5, 8)
    torch.testing.assert_close(torch.compile(net, fullgraph=True)(x), net(x), atol=1e-5, rtol=1e-4)
    mask = torch.ones(2, 5, dtype=torch.bool)
    got = torch.compile(attn, fullgraph=True)(seq, mask=mask, is_causal=True)[0]
    torch.testing.assert_close(got, attn(seq, mask=mask, is_causal=True)[0], atol=1e-5, rtol=1e-4)


def test_fan_features_d_p_must_fit_the_last_axis():
    h = torch.randn(3, 4)
    assert fan_features(h, 4).shape == (3, 8) and fan_features(h, 0).shape == (3, 4)
    with pytest.raises(ValueError, match=r"d_p must be an int in \[0, h.shape\[-1\]\], got 6 for h of shape \(3, 4\)"):
        fan_features(h, 6)
    with pytest.raises(ValueError, match=r"got -1"):
        fan_features(h, -1)


def test_float64_input_to_a_float32_layer_is_a_type_error_naming_both_dtypes():
    for name, module in (("FANLayer", FANLayer(4, 8)), ("FAN", FAN(4, 8, hidden_features=8))):
        with pytest.raises(TypeError, match=rf"{name}: got x of dtype torch.float64 but the parameters have torch.float32"):
            module(torch.randn(3, 4, dtype=torch.float64))
    assert FANLayer(4, 8).double()(torch.randn(3, 4, dtype=torch.float64)).dtype == torch.float64


def test_float64_input_under_autocast_is_still_a_type_error():
    """Autocast casts float32 but never float64, so a float64 input would fail inside torch's matmul."""
    layer = FANLayer(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(TypeError, match=r"FANLayer: got x of dtype torch.float64 .*autocast does not cast float64"):
            layer(torch.randn(3, 4, dtype=torch.float64))
        assert layer(torch.randn(3, 4)).dtype == torch.bfloat16  # float32 input: autocast's business


# ------------------------------------------------------ second derivatives, empty batch, meta device
F64 = torch.float64


def _gradgradcheck_module(module: nn.Module, inputs: tuple, **kwargs) -> bool:
    """gradgradcheck (float64, finite differences) over the inputs and every parameter."""
    names, params = zip(*module.named_parameters())
    n = len(inputs)

    def f(*args):
        out = functional_call(module, dict(zip(names, args[n:])), args[:n], kwargs)
        return out[0] if isinstance(out, tuple) else out

    return gradgradcheck(f, [t.detach().requires_grad_() for t in (*inputs, *params)])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("gated, p_bias", [(False, True), (True, False)], ids=["plain", "gated-no-p-bias"])
def test_fan_layer_passes_gradgradcheck(activation, gated, p_bias):
    layer = FANLayer(3, 7, activation=activation, gated=gated, p_bias=p_bias, dtype=F64)
    assert _gradgradcheck_module(layer, (torch.randn(2, 3, dtype=F64),))


def test_fan_and_fan_features_pass_gradgradcheck():
    net = FAN(2, 2, hidden_features=6, n_layers=2, gated=True, activation="silu", dtype=F64)
    assert _gradgradcheck_module(net, (torch.randn(3, 2, dtype=F64),))
    h, gate = torch.randn(2, 5, dtype=F64, requires_grad=True), torch.zeros((), dtype=F64, requires_grad=True)
    assert gradgradcheck(lambda h, g: fan_features(h, 2, "tanh", g), (h, gate))


_MASK = torch.tensor([[True, True, False, True], [True, False, True, True]])
_ADDITIVE = torch.linspace(-1.0, 1.0, 24, dtype=torch.float64).reshape(2, 1, 3, 4)
_ATTENTION_CALLS = {
    "self": lambda m, q, kv: m(q),
    "cross": lambda m, q, kv: m(q, kv, kv),
    "mask-causal": lambda m, q, kv: m(q, kv, kv, mask=_MASK, is_causal=True),
    "causal": lambda m, q, kv: m(kv, is_causal=True),
    "bool-attn_mask": lambda m, q, kv: m(q, kv, kv, attn_mask=torch.ones(3, 4, dtype=torch.bool).tril(1)),
    "float-attn_mask": lambda m, q, kv: m(q, kv, kv, mask=_MASK, attn_mask=_ADDITIVE),
    "need_weights": lambda m, q, kv: m(q, kv, kv, mask=_MASK, need_weights=True),
}


@pytest.mark.parametrize("call", _ATTENTION_CALLS)
def test_attention_passes_gradgradcheck(call):
    # Torch's fused attention kernels have no double backward: FANAttention's recorded backward
    # recomputes attention with differentiable ops (before: "derivative ... not implemented").
    attn = FANAttention(4, 2, dtype=F64)
    q, kv = torch.randn(2, 3, 4, dtype=F64), torch.randn(2, 4, 4, dtype=F64)
    names, params = zip(*attn.named_parameters())

    def f(q, kv, *p):
        return _ATTENTION_CALLS[call](lambda *a, **k: functional_call(attn, dict(zip(names, p)), a, k), q, kv)[0]

    assert gradgradcheck(f, [t.detach().requires_grad_() for t in (q, kv, *params)])


@pytest.mark.parametrize("only_causal", [False, True], ids=["mask", "causal"])
def test_attention_first_backward_is_torchs_own_kernel(only_causal):
    """First-order gradients (retained graph included) are bitwise those of F.scaled_dot_product_attention."""
    q, k, v = (torch.randn(2, 2, 5, 4, requires_grad=True) for _ in range(3))
    keep = torch.ones(5, 5, dtype=torch.bool).tril()
    grad = torch.randn(2, 2, 5, 4)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=None if only_causal else keep, is_causal=only_causal)
    ref = torch.autograd.grad(ref, (q, k, v), grad)
    out = _attention(q, k, v, keep, 0.0, only_causal)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=keep), rtol=0, atol=1e-6)
    for _ in range(2):
        got = torch.autograd.grad(out, (q, k, v), grad, retain_graph=True)
        assert all(torch.equal(a, b) for a, b in zip(got, ref))


def test_attention_under_torch_func_transforms_matches_autograd():
    attn = FANAttention(8, 2)
    x = torch.randn(2, 5, 8, requires_grad=True)
    got = torch.func.grad(lambda t: attn(t, is_causal=True)[0].sum())(x.detach())
    attn(x, is_causal=True)[0].sum().backward()
    torch.testing.assert_close(got, x.grad)


def test_attention_double_backward_with_active_dropout_is_a_clear_error():
    attn = FANAttention(4, 2, dropout=0.5, dtype=F64)
    x = torch.randn(2, 3, 4, dtype=F64, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"FANAttention: double backward .* dropout .*\.eval\(\)"):
        torch.autograd.grad(attn(x)[0].sum(), x, create_graph=True)
    attn(x)[0].sum().backward()  # first order trains with dropout as before
    attn.eval()
    torch.autograd.grad(attn(x)[0].sum(), x, create_graph=True)


_FAN_MODULES = {
    "FANLayer": (lambda **f: FANLayer(3, 8, gated=True, **f), (3,), 8),
    "FAN": (lambda **f: FAN(3, 2, hidden_features=8, **f), (3,), 2),
}


@pytest.mark.parametrize("name", _FAN_MODULES)
def test_fan_empty_batch_and_meta_device(name):
    make, tail, out_features = _FAN_MODULES[name]
    module = make()
    x = torch.randn(0, 5, *tail, requires_grad=True)
    y = module(x)
    assert y.shape == (0, 5, out_features)
    y.sum().backward()
    assert x.grad.shape == x.shape
    y = make(device="meta")(torch.empty(4, *tail, device="meta"))
    assert y.device.type == "meta" and y.shape == (4, out_features)


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("batch", [0, 2])
def test_attention_empty_batch_and_meta_device(device, batch):
    attn = FANAttention(8, 2, device=device)
    x = torch.randn(batch, 5, 8, device=device, requires_grad=device == "cpu")
    mem = torch.randn(batch, 6, 8, device=device)
    mask = torch.ones(batch, 6, dtype=torch.bool, device=device)
    for kwargs in ({}, {"mask": mask}, {"mask": mask, "need_weights": True}):
        out, weights = attn(x, mem, mem, **kwargs)
        assert out.shape == (batch, 5, 8) and out.device.type == device
        assert weights is None or weights.shape == (batch, 5, 6)
    out, _ = attn(x, is_causal=True)
    assert out.shape == (batch, 5, 8) and out.device.type == device
    if device == "cpu":
        out.sum().backward()
        assert x.grad.shape == x.shape


# ------------------------------------------------------------------------------- bad arguments
_BAD = {
    "size-None": (lambda: FANLayer(None, 4), TypeError, r"in_features must be an int, got NoneType None"),
    "size-str": (lambda: FANLayer(4, "8"), TypeError, r"out_features must be an int, got str '8'"),
    "size-float": (lambda: FAN(2.0, 1), TypeError, r"in_features must be an int, got float 2.0"),
    "size-bool": (lambda: FAN(2, 1, hidden_features=True), TypeError, r"hidden_features must be an int, got bool True"),
    "size-nan": (lambda: FAN(2, 1, n_layers=float("nan")), TypeError, r"n_layers must be an int, got float nan"),
    "heads-None": (lambda: FANAttention(8, None), TypeError, r"num_heads must be an int, got NoneType None"),
    "embed-str": (lambda: FANAttention("8", 2), TypeError, r"embed_dim must be an int, got str '8'"),
    "p_ratio-nan": (lambda: FANLayer(4, 8, p_ratio=float("nan")), ValueError, r"p_ratio must be finite, got nan"),
    "p_ratio-str": (lambda: FAN(4, 8, p_ratio="0.25"), TypeError, r"p_ratio must be a real number, got str '0.25'"),
    "dropout-nan": (lambda: FANAttention(8, 2, dropout=float("nan")), ValueError, r"dropout must be finite, got nan"),
    "dropout-str": (lambda: FANAttention(8, 2, dropout="0.1"), TypeError, r"dropout must be a real number, got str"),
    "flag-str": (lambda: FANLayer(4, 8, gated="yes"), TypeError, r"gated must be a bool, got str 'yes'"),
    "flag-None": (lambda: FANAttention(8, 2, bias=None), TypeError, r"bias must be a bool, got NoneType None"),
    "dtype-complex": (lambda: FANLayer(4, 8, dtype=torch.complex64), TypeError,
                      r"dtype must be a real floating torch.dtype .*complex64"),
    "dtype-int": (lambda: FAN(2, 1, dtype=torch.int64), TypeError, r"dtype must be a real floating torch.dtype .*int64"),
    "dtype-attention": (lambda: FANAttention(8, 2, dtype=torch.complex128), TypeError, r"complex128"),
    "activation": (lambda: FAN(2, 1, activation="swish"), ValueError,
                   r"activation must be one of \('gelu', 'relu', 'silu', 'tanh', 'identity'\), got str 'swish'"),
    "d_p-float": (lambda: fan_features(torch.randn(2, 4), 1.0), TypeError, r"d_p must be an int, got float 1.0"),
    "numpy-layer": (lambda: FANLayer(4, 8)(np.ones((2, 4), np.float32)), TypeError,
                    r"FANLayer: x must be a torch.Tensor, got numpy.ndarray of shape \(2, 4\) \(convert with torch.as_tensor\)"),
    "numpy-query": (lambda: FANAttention(8, 2)(np.ones((2, 5, 8), np.float32)), TypeError,
                    r"FANAttention: query must be a torch.Tensor, got numpy.ndarray of shape \(2, 5, 8\)"),
    "numpy-mask": (lambda: FANAttention(8, 2)(torch.ones(2, 5, 8), mask=np.ones((2, 5), bool)), TypeError,
                   r"FANAttention: mask must be a torch.Tensor, got numpy.ndarray of shape \(2, 5\)"),
    "is_causal-str": (lambda: FANAttention(8, 2)(torch.ones(2, 5, 8), is_causal="yes"), TypeError,
                      r"is_causal must be a bool, got str 'yes'"),
}


@pytest.mark.parametrize("case", _BAD)
def test_bad_arguments_name_the_argument_and_value(case):
    build, error, match = _BAD[case]
    with pytest.raises(error, match=match):
        build()
