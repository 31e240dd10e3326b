"""FNO.from_neuralop: a neuraloperator 2.x FNO converted to ours gives the same outputs.

Run where neuraloperator is installed (``make test-interop``); skipped otherwise. The
reference is neuraloperator's own forward pass, and for odd grids a numpy spectral conv.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from operators import FNO
from operators.interop import neuralop_n_modes

pytest.importorskip("neuralop")
from neuralop.layers.embeddings import GridEmbeddingND  # noqa: E402
from neuralop.models import FNO as NeuralopFNO  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CONFIGS = {
    "default-16x16": dict(n_modes=(16, 16)),
    "odd-15x15": dict(n_modes=(15, 15)),
    "mixed-12x16-separable-linear-lift": dict(n_modes=(12, 16), separable=True, lifting_channel_ratio=0),
    "padding-0.125": dict(n_modes=(16, 16), domain_padding=0.125),
    "instance-norm": dict(n_modes=(16, 16), norm="instance_norm"),
    "group-norm-gating-linear": dict(n_modes=(16, 16), norm="group_norm", fno_skip="soft-gating", channel_mlp_skip="linear"),
    "no-mlp-relu-no-embedding-identity": dict(n_modes=(16, 16), use_channel_mlp=False, non_linearity=F.relu,
                                              positional_embedding=None, fno_skip="identity"),
    "no-skips": dict(n_modes=(16, 16), fno_skip=None, channel_mlp_skip=None),
}


def _neuralop(seed: int = 0, **kw) -> NeuralopFNO:
    torch.manual_seed(seed)
    model = NeuralopFNO(in_channels=2, out_channels=3, hidden_channels=8, n_layers=3, **kw)
    with torch.no_grad():  # move every parameter off its init (gating ones, zero biases)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _max_diff(theirs, ours, grid) -> float:
    x = torch.randn(2, theirs.in_channels, *grid, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (theirs(x) - ours(x)).abs().max().item()


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("n", [64, 128])
def test_outputs_agree_on_even_grids(name, n):
    theirs = _neuralop(**CONFIGS[name])
    ours = FNO.from_neuralop(theirs)
    assert not ours.training
    assert _max_diff(theirs, ours, (n, n)) < 1e-5


@pytest.mark.parametrize("n_modes, grid", [((16,), (64,)), ((16,), (128,)), ((8, 8, 8), (32, 32, 32))])
def test_outputs_agree_in_1d_and_3d(n_modes, grid):
    theirs = _neuralop(n_modes=n_modes)
    assert _max_diff(theirs, FNO.from_neuralop(theirs), grid) < 1e-5


def test_mode_counts_translate():
    assert neuralop_n_modes((16, 16)) == (9, 9) and neuralop_n_modes((15, 15)) == (8, 8)
    ours = FNO.from_neuralop(_neuralop(n_modes=(16, 12)))
    assert ours.n_modes == (9, 7)
    # (2m, .) keeps -m but not +m on the two-sided axis: our +m row (index m) holds zeros
    w = torch.view_as_complex(ours.blocks[0].conv.weight).reshape(17, 7, 8, 8)
    assert torch.count_nonzero(w[8]) == 0 and torch.count_nonzero(w[9]) == 7 * 8 * 8  # +8 zero, -8 kept


def _numpy_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """neuraloperator's 2-D spectral conv with the shifts undone correctly (ifftshift)."""
    xf = np.fft.fftshift(np.fft.rfft2(x, norm="forward"), axes=-2)
    k0, k1 = w.shape[-2:]
    c = x.shape[-2] // 2
    out = np.zeros((x.shape[0], w.shape[1], *xf.shape[-2:]), dtype=complex)
    out[:, :, c - k0 // 2 : c + k0 // 2 + k0 % 2, :k1] = np.einsum(
        "bixy,ioxy->boxy", xf[:, :, c - k0 // 2 : c + k0 // 2 + k0 % 2, :k1], w)
    out = np.fft.ifftshift(out, axes=-2)
    return np.fft.irfft2(out, s=x.shape[-2:], norm="forward") + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("n", [33, 64])
def test_spectral_conv_is_the_operator_its_weights_define_on_odd_grids(n):
    theirs = _neuralop(n_modes=(16, 16))
    ours = FNO.from_neuralop(theirs).double()
    conv = theirs.fno_blocks.convs[0]
    x = torch.randn(2, 8, n, n, dtype=torch.float64)
    ref = _numpy_conv(x.numpy(), conv.weight.to_tensor().detach().numpy().astype(complex), conv.bias.detach().numpy())
    with torch.no_grad():
        got = ours.blocks[0].conv(x).numpy()
    assert np.abs(got - ref).max() < 1e-12


def test_neuralop_differs_on_odd_grids():
    """Documented in FNO.from_neuralop: neuraloperator 2.0.0 misplaces bins on odd grids."""
    theirs = _neuralop(n_modes=(16, 16))
    ours = FNO.from_neuralop(theirs)
    x = torch.randn(2, 2, 33, 33, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = theirs(x), ours(x)
    assert (a - b).norm() / a.norm() > 0.05


def test_keeps_device_dtype_and_mode():
    theirs = _neuralop(n_modes=(8, 8)).train()
    ours = FNO.from_neuralop(theirs)
    assert ours.training and next(ours.parameters()).dtype == torch.float32


@pytest.mark.parametrize("kw, match", [
    (dict(factorization="tucker", rank=0.5), "factorization='tucker'"),
    (dict(complex_data=True), "complex_data=True"),
    (dict(preactivation=True), "preactivation=True"),
    (dict(stabilizer="tanh"), "stabilizer='tanh'"),
    (dict(non_linearity=F.relu), "non_linearity=.*GELU inside"),
    (dict(non_linearity=F.elu, use_channel_mlp=False), "non_linearity=.*only F.gelu"),
    (dict(norm="batch_norm"), "norm='BatchNorm'"),
    (dict(norm="group_norm", use_channel_mlp=False), "norm='group_norm'.*second norm"),
    (dict(fno_block_precision="mixed"), "fno_block_precision='mixed'"),
    (dict(channel_mlp_dropout=0.1), "channel_mlp_dropout=0.1"),
    (dict(resolution_scaling_factor=2), r"resolution_scaling_factor=\[2, 2\]"),
    (dict(positional_embedding=GridEmbeddingND(2, 2, [[0.0, 2.0], [0.0, 1.0]])), "positional_embedding=.*on \\[0, 1\\]"),
])
def test_refuses_what_it_cannot_map(kw, match):
    theirs = NeuralopFNO(n_modes=(8, 8), in_channels=2, out_channels=1, hidden_channels=4, n_layers=2, **kw)
    with pytest.raises(ValueError, match=match):
        FNO.from_neuralop(theirs)


def test_refuses_max_n_modes_in_use():
    theirs = NeuralopFNO(n_modes=(8, 8), in_channels=2, out_channels=1, hidden_channels=4, n_layers=2)
    theirs.fno_blocks.convs[0].n_modes = (6, 6)
    with pytest.raises(ValueError, match="max_n_modes=.*set max_n_modes=None"):
        FNO.from_neuralop(theirs)


def test_refuses_other_models():
    with pytest.raises(TypeError, match="neuraloperator FNO .*got FNO"):
        FNO.from_neuralop(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1))
