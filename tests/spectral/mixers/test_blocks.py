"""MixerBlock and SequenceClassifier: shapes, padding invariance end to end, gradients, errors."""

from __future__ import annotations

import functools

import pytest
import torch

from spectral.mixers import (
    AFNOMixer,
    CausalFourierMixer,
    FFTNetMixer,
    FNetMixer,
    GlobalFilterMixer,
    MixerBlock,
    SequenceClassifier,
)

D, V, Q, MAX_LEN = 16, 11, 5, 40
MIXERS = {
    "fnet": FNetMixer,
    "gfnet": functools.partial(GlobalFilterMixer, D, MAX_LEN),
    "fftnet": functools.partial(FFTNetMixer, D, MAX_LEN, num_heads=4),
    "afno": functools.partial(AFNOMixer, D, num_blocks=4),
    "causal": functools.partial(CausalFourierMixer, D, MAX_LEN),
}


def model(name: str, pool: str = "mean", **kw) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(V, Q, MIXERS[name], dim=D, depth=2, max_len=MAX_LEN, pool=pool, **kw)


@pytest.mark.parametrize("name", list(MIXERS))
@pytest.mark.parametrize("pool", ["mean", "last", "none"])
def test_shapes_and_padding_tokens_change_nothing(name, pool):
    m = model(name, pool)
    tokens = torch.randint(0, V, (3, 25))
    mask = torch.ones(3, 25, dtype=torch.bool)
    mask[0, 18:] = False
    mask[2, 9:] = False
    out = m(tokens, mask)
    assert out.shape == ((3, 25, Q) if pool == "none" else (3, Q))
    other = torch.where(mask, tokens, torch.randint(0, V, tokens.shape))
    out2 = m(other, mask)
    if pool == "none":
        out, out2 = out[mask], out2[mask]
    torch.testing.assert_close(out, out2)


@pytest.mark.parametrize(
    "name,pool",
    [("causal", "last"), ("causal", "mean"), ("gfnet-zero", "mean")],
)
def test_right_padded_batch_equals_unpadded_sequences(name, pool):
    """Linear (zero-boundary or causal) mixers: padding changes no real token's computation."""
    mixers = dict(
        MIXERS, **{"gfnet-zero": functools.partial(GlobalFilterMixer, D, MAX_LEN, boundary="zero", init_std=0.3)}
    )
    torch.manual_seed(0)
    m = SequenceClassifier(V, Q, mixers[name], dim=D, depth=2, max_len=MAX_LEN, pool=pool).double()
    lengths = [30, 12, 21]
    tokens = torch.randint(0, V, (3, 30))
    mask = torch.arange(30)[None] < torch.tensor(lengths)[:, None]
    batched = m(tokens, mask)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(batched[i], m(tokens[i : i + 1, :n])[0])


def test_every_parameter_trains():
    m = model("fftnet")
    tokens = torch.randint(0, V, (4, 20))
    torch.nn.functional.cross_entropy(m(tokens), torch.randint(0, Q, (4,))).backward()
    for name, p in m.named_parameters():
        if name.startswith("pos.") or name.startswith("embed."):
            rows = p.grad.abs().sum(-1)
            assert rows[: 20 if name.startswith("pos.") else V].sum() > 0, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_block_is_pre_norm_residual():
    block = MixerBlock(D, FNetMixer(), mlp_ratio=2.0)
    x = torch.randn(2, 10, D)
    want = x + FNetMixer()(block.norm1(x))
    want = want + block.mlp(block.norm2(want))
    torch.testing.assert_close(block(x), want)


def test_errors():
    m = model("fnet")
    with pytest.raises(TypeError, match="integer tensor, got torch.float32"):
        m(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=rf"N <= {MAX_LEN}, got \(2, 41\)"):
        m(torch.zeros(2, 41, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 5\)"):
        m(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"pool must be one of \('mean', 'last', 'none'\), got str 'max'"):
        model("fnet", pool="max")
