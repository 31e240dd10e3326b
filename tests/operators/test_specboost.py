"""SpecBoost: sum of stages, residual targets, freezing, training per stage, save/load, output grids."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from operators.fno import FNO
from operators.sfno import SFNO
from operators.losses import LpLoss
import operators.specboost
from operators.specboost import SpecBoost
from operators.training import fit_specboost_stage

MODES = ("input", "input+previous")


def _stages(n: int, mode: str, *, cin: int = 2, cout: int = 1, dtype=torch.float64) -> list[FNO]:
    extra = cout if mode == "input+previous" else 0
    return [
        FNO(cin + (extra if m else 0), cout, (3, 3), hidden_channels=4, n_layers=1, dtype=dtype)
        for m in range(n)
    ]


def _hand_predictions(stages, x, mode, output_shape=None):
    """Running predictions P_1..P_M (input grid) and the stage inputs z_0..z_{M-1}, by hand."""
    running, zs, outs = torch.zeros(()), [], []
    for m, stage in enumerate(stages):
        z = x if (mode == "input" or m == 0) else torch.cat([x, running], dim=1)
        zs.append(z)
        outs.append(stage(z, output_shape=output_shape))
        running = running + stage(z)
    return zs, outs


@pytest.mark.parametrize("mode", MODES)
def test_ensemble_is_sum_of_stages(mode, device):
    torch.manual_seed(0)
    stages = [s.to(device) for s in _stages(3, mode)]
    boost = SpecBoost(stages, stage_input=mode)
    x = torch.randn(4, 2, 10, 9, dtype=torch.float64, device=device)
    _, outs = _hand_predictions(stages, x, mode)
    torch.testing.assert_close(boost(x), outs[0] + outs[1] + outs[2], rtol=0, atol=1e-12)
    torch.testing.assert_close(boost(x, n_stages=2), outs[0] + outs[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(boost(x, n_stages=1), outs[0], rtol=0, atol=0)
    if mode == "input":  # the stages are independent: same as plain sum of stage(x)
        torch.testing.assert_close(boost(x), sum(s(x) for s in stages), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_output_shape_is_sum_of_stages_on_that_grid(mode):
    torch.manual_seed(1)
    stages = _stages(2, mode)
    boost = SpecBoost(stages, stage_input=mode)
    x = torch.randn(3, 2, 12, 12, dtype=torch.float64)
    for shape in ((20, 20), (9, 15)):
        _, outs = _hand_predictions(stages, x, mode, output_shape=shape)
        got = boost(x, output_shape=shape)
        assert got.shape == (3, 1, *shape)
        torch.testing.assert_close(got, outs[0] + outs[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(boost(x, output_shape=(12, 12)), boost(x), rtol=0, atol=0)


class _Pointwise(nn.Module):
    """A stage without ``output_shape``: SpecBoost Fourier-resamples its output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 1, dtype=torch.float64)

    def forward(self, x):
        return self.conv(x)


def test_output_shape_resamples_stages_without_it():
    torch.manual_seed(2)
    fno, plain = _stages(1, "input")[0], _Pointwise()
    boost = SpecBoost([fno, plain])
    # a band-limited input: Fourier resampling of the pointwise stage is exact
    n, up = 12, 24
    i = torch.arange(n, dtype=torch.float64) / n
    field = lambda t: torch.stack([torch.sin(2 * torch.pi * (t[:, None] + 2 * t[None, :])),
                                   torch.cos(2 * torch.pi * 3 * t[:, None]) + 0 * t[None, :]])
    x = field(i)[None]
    x_up = field(torch.arange(up, dtype=torch.float64) / up)[None]
    want = fno(x, output_shape=(up, up)) + plain(x_up)
    torch.testing.assert_close(boost(x, output_shape=(up, up)), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_residual_targets_match_hand_computation(mode):
    torch.manual_seed(3)
    stages = _stages(3, mode)
    boost = SpecBoost(stages, stage_input=mode)
    x = torch.randn(7, 2, 8, 8, dtype=torch.float64)
    y = torch.randn(7, 1, 8, 8, dtype=torch.float64)
    zs, outs = _hand_predictions(stages, x, mode)
    with torch.no_grad():
        for m in range(3):
            z, r = boost.residual_targets(m, x, y, batch_size=3)  # batches of 3 over 7 samples
            torch.testing.assert_close(z, zs[m], rtol=0, atol=1e-12)
            torch.testing.assert_close(r, y - sum(outs[:m], torch.zeros_like(y)), rtol=0, atol=1e-12)
    if mode == "input+previous":
        assert boost.residual_targets(2, x, y)[0].shape == (7, 3, 8, 8)


def test_frozen_stages_receive_no_gradient():
    torch.manual_seed(4)
    boost = SpecBoost(_stages(3, "input"))
    boost.freeze_before(2)
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    boost(x).square().mean().backward()
    for m in (0, 1):
        assert all(p.grad is None and not p.requires_grad for p in boost.stages[m].parameters())
    grads = [p.grad for p in boost.stages[2].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    boost.train()
    assert [s.training for s in boost.stages] == [False, False, True]
    boost.freeze_before(0)
    assert all(p.requires_grad for p in boost.parameters())


@pytest.mark.parametrize("objective", ["residual", "ensemble"])
@pytest.mark.parametrize("mode", MODES)
def test_fit_stage_trains_only_that_stage_on_its_objective(mode, objective):
    torch.manual_seed(5)
    boost = SpecBoost(_stages(2, mode, dtype=torch.float32), stage_input=mode)
    x, y = torch.randn(8, 2, 8, 8), torch.randn(8, 1, 8, 8)
    before = [p.detach().clone() for p in boost.parameters()]
    n0 = sum(1 for _ in boost.stages[0].parameters())
    trainer = fit_specboost_stage(boost, 1, (x, y), {"t": (x, y)}, objective=objective, epochs=2, batch_size=4,
                                  device="cpu", verbose=False)
    after = list(boost.parameters())
    assert all(torch.equal(b, a) for b, a in zip(before[:n0], after[:n0]))  # stage 0 untouched
    assert any(not torch.equal(b, a) for b, a in zip(before[n0:], after[n0:]))  # stage 1 trained
    boost.eval()
    with torch.no_grad():
        zs, outs = _hand_predictions(list(boost.stages), x, mode)
        loss = LpLoss(2)
        want = loss(boost(x), y) if objective == "ensemble" else loss(outs[1], y - outs[0])
    assert trainer.history[-1]["t/loss"] == pytest.approx(want.item(), rel=1e-5)


def test_stage_0_objectives_coincide_and_share_checkpoints(tmp_path):
    """P_0 = 0: both objectives train stage 0 identically, and a stage-0 checkpoint resumes under either."""
    x, y = torch.randn(8, 2, 8, 8), torch.randn(8, 1, 8, 8)
    trained = {}
    for objective in ("residual", "ensemble"):
        torch.manual_seed(3)
        boost = SpecBoost(_stages(2, "input", dtype=torch.float32))
        fit_specboost_stage(boost, 0, (x, y), objective=objective, epochs=2, batch_size=4, device="cpu", seed=0, verbose=False,
                        checkpoint_dir=tmp_path / objective)
        trained[objective] = [p.detach().clone() for p in boost.stages[0].parameters()]
    assert all(torch.equal(a, b) for a, b in zip(trained["residual"], trained["ensemble"]))
    torch.manual_seed(4)  # another initialisation: resuming must restore the trained weights
    boost = SpecBoost(_stages(2, "input", dtype=torch.float32))
    fit_specboost_stage(boost, 0, (x, y), objective="ensemble", epochs=2, batch_size=4, device="cpu", seed=0, verbose=False,
                    checkpoint_dir=tmp_path / "residual", resume=True)
    assert all(torch.equal(a, b) for a, b in zip(trained["residual"], boost.stages[0].parameters()))


def test_fit_stage_is_a_deprecated_alias_of_fit_specboost_stage():
    x, y = torch.randn(8, 2, 8, 8), torch.randn(8, 1, 8, 8)
    trained = []
    for fit in (lambda b: fit_specboost_stage(b, 0, (x, y), epochs=1, batch_size=4, device="cpu", verbose=False),
                lambda b: b.fit_stage(0, (x, y), epochs=1, batch_size=4, device="cpu", verbose=False)):
        torch.manual_seed(3)
        boost = SpecBoost(_stages(2, "input", dtype=torch.float32))
        if not trained:
            fit(boost)
        else:
            with pytest.warns(DeprecationWarning, match=r"fit_specboost_stage"):
                fit(boost)
        trained.append([p.detach().clone() for p in boost.stages[0].parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*trained))


def test_the_model_module_does_not_import_the_trainer():
    tree = ast.parse(Path(operators.specboost.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [n.module for n in top if isinstance(n, ast.ImportFrom)] + [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    assert not [n for n in names if n and n.startswith("operators.training")], names


def test_add_stage_freezes_previous():
    boost = SpecBoost(_stages(1, "input+previous"), stage_input="input+previous")
    new = _stages(2, "input+previous")[1]
    assert boost.add_stage(new) == 1
    assert boost.n_frozen == 1 and not any(p.requires_grad for p in boost.stages[0].parameters())
    assert all(p.requires_grad for p in boost.stages[1].parameters())


@pytest.mark.parametrize("mode", MODES)
def test_save_load_round_trip(tmp_path, mode):
    torch.manual_seed(6)
    stages = _stages(2, mode)
    stages[1] = FNO(stages[1].in_channels, 1, (4, 3), hidden_channels=5, n_layers=2, dtype=torch.float64)
    boost = SpecBoost(stages, stage_input=mode)
    boost.freeze_before(1)
    path = tmp_path / "boost.pt"
    boost.save(path)
    assert not list(tmp_path.glob(".*.tmp"))
    fresh = SpecBoost.load(path, dtype=torch.float64)
    assert fresh.stage_input == mode and fresh.n_frozen == 1
    assert [s.config for s in fresh.stages] == [s.config for s in boost.stages]
    x = torch.randn(3, 2, 11, 11, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), boost(x), rtol=0, atol=0)
    torch.testing.assert_close(fresh(x, output_shape=(16, 16)), boost(x, output_shape=(16, 16)), rtol=0, atol=0)


# ------------------------------------------------------------------ bad input
def test_bad_stage_input():
    with pytest.raises(ValueError, match=r"stage_input must be one of \('input', 'input\+previous'\), got str 'prev'"):
        SpecBoost(_stages(1, "input"), stage_input="prev")
    with pytest.raises(ValueError, match="at least one"):
        SpecBoost([])
    with pytest.raises(TypeError, match="nn.Module, got int"):
        SpecBoost([3])


def test_bad_stage_channels():
    with pytest.raises(ValueError, match=r"stages\[1\].in_channels=2, but stage_input='input\+previous' needs 2 \+ 1"):
        SpecBoost(_stages(2, "input"), stage_input="input+previous")
    with pytest.raises(ValueError, match=r"stages\[1\].out_channels=3 differs from stages\[0\].out_channels=1"):
        SpecBoost([_stages(1, "input")[0], FNO(2, 3, (3, 3), hidden_channels=4, n_layers=1)])


def test_bad_forward_input():
    boost = SpecBoost(_stages(2, "input"))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 2, \*grid\), got \(4, 3, 8, 8\)"):
        boost(torch.randn(4, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"output_shape must be 2 positive ints, got \(16,\)"):
        boost(torch.randn(4, 2, 8, 8, dtype=torch.float64), output_shape=(16,))
    with pytest.raises(ValueError, match=r"n_stages must be an int in \[1, 2\], got 3"):
        boost(torch.randn(4, 2, 8, 8, dtype=torch.float64), n_stages=3)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        boost([1.0])


def test_bad_training_input(tmp_path):
    boost = SpecBoost(_stages(2, "input"))
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"targets: expected shape \(4, 1, 8, 8\) matching inputs \(4, 2, 8, 8\), got \(4, 1, 8, 9\)"):
        boost.residual_targets(1, x, torch.randn(4, 1, 8, 9, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"m must be an int in \[0, 1\] \(a stage index\), got m=2"):
        boost.residual_targets(2, x, torch.randn(4, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"objective must be one of \('residual', 'ensemble'\), got str 'boost'"):
        fit_specboost_stage(boost, 1, (x, x[:, :1]), objective="boost", epochs=1, device="cpu")
    plain = SpecBoost([_Pointwise()])
    with pytest.raises(ValueError, match=r"stages\[0\] \(_Pointwise\) has no dataclass or dict `config`"):
        plain.save(tmp_path / "p.pt")
    torch.save({"format": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a SpecBoost file"):
        SpecBoost.load(tmp_path / "other.pt")


def test_output_shape_is_refused_for_sfno_stages_unless_it_is_their_out_shape():
    """Fourier resampling would treat latitude as periodic: an SFNO stage evaluates on its own out_shape."""
    sfno = SFNO(2, 1, (8, 16), hidden_channels=4, n_layers=1, out_shape=(12, 24))
    boost = SpecBoost([sfno])
    x = torch.randn(1, 2, 8, 16)
    with pytest.raises(ValueError, match=r"stage 0 is an SFNO.*out_shape=\(12, 24\).*output_shape=\(16, 32\)"):
        boost(x, output_shape=(16, 32))
    torch.testing.assert_close(boost(x, output_shape=(12, 24)), sfno(x))  # its own grid: the stage's output


# --- issue 17: one validation path, second derivatives, empty batches, the meta device ---


def test_bad_counts_and_output_shapes_raise_named_errors():
    boost = SpecBoost(_stages(2, "input"))
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    cases = [
        (dict(n_stages=True), TypeError, r"n_stages must be an int, got bool True"),
        (dict(n_stages=0), ValueError, r"n_stages must be an int in \[1, 2\], got 0"),
        (dict(output_shape=(16.0, 16)), TypeError, r"output_shape\[0\] must be an int, got float 16.0"),
        (dict(output_shape=(16, None)), TypeError, r"output_shape\[1\] must be an int, got NoneType None"),
        (dict(output_shape=(0, 16)), ValueError, r"output_shape\[0\] must be an int >= 1, got 0"),
        (dict(output_shape="16"), TypeError, r"output_shape must be 2 positive ints, got str '16'"),
    ]
    for kwargs, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            boost(x, **kwargs)
    with pytest.raises(TypeError, match=r"m must be an int, got bool True"):
        boost.freeze_before(True)
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1, got 0"):
        boost.residual_targets(1, x, x[:, :1], batch_size=0)
    with pytest.raises(TypeError, match=r"SpecBoost: x must be a torch.Tensor, got numpy.ndarray of shape \(2, 2, 8, 8\)"):
        boost(x.numpy())


def test_numpy_integers_are_accepted(generator):
    boost = SpecBoost(_stages(2, "input"))
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(boost(x, n_stages=np.int64(1)), boost(x, n_stages=1), rtol=0, atol=0)
    big = boost(x, output_shape=(np.int64(12), np.int64(12)))
    torch.testing.assert_close(big, boost(x, output_shape=(12, 12)), rtol=0, atol=0)
    boost.freeze_before(np.int64(1))
    assert boost.n_frozen == 1 and type(boost.n_frozen) is int


def test_second_derivatives_are_exact(generator):
    """gradgradcheck in float64 over the input and every stage's parameters ("input+previous": stage 1 sees stage 0)."""
    stages = [FNO(1 + (1 if m else 0), 1, (2, 2), hidden_channels=2, n_layers=1, lifting_ratio=0, projection_ratio=0,
                  mlp_expansion=0, positional_embedding=False, dtype=torch.float64) for m in range(2)]
    boost = SpecBoost(stages, stage_input="input+previous")
    names, params = zip(*((n, p.detach().clone().requires_grad_()) for n, p in boost.named_parameters()))
    x = torch.randn(1, 1, 4, 3, dtype=torch.float64, generator=generator, requires_grad=True)

    def f(x, *ps):
        return torch.func.functional_call(boost, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradgradcheck(f, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_empty_batch_gives_an_empty_output(mode):
    boost = SpecBoost(_stages(2, mode), stage_input=mode)
    x = torch.randn(0, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    assert boost(x).shape == (0, 1, 8, 8)
    y = boost(x, output_shape=(12, 12))
    assert y.shape == (0, 1, 12, 12)
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("mode", MODES)
def test_built_on_meta_maps_meta_to_meta(mode):
    """A meta input gave a CPU tensor of uninitialised memory; now a meta output of the right shape."""
    extra = 1 if mode == "input+previous" else 0
    stages = [FNO(2 + (extra if m else 0), 1, (3, 3), hidden_channels=4, n_layers=1, device="meta") for m in range(2)]
    boost = SpecBoost(stages, stage_input=mode)
    x = torch.empty(3, 2, 8, 8, device="meta")
    for output_shape, grid in ((None, (8, 8)), ((12, 12), (12, 12))):
        y = boost(x, output_shape)
        assert y.is_meta and y.shape == (3, 1, *grid)
    sfno = SpecBoost([SFNO(2, 1, (8, 16), hidden_channels=4, n_layers=1, out_shape=(10, 20), device="meta")])
    y = sfno(torch.empty(3, 2, 8, 16, device="meta"))
    assert y.is_meta and y.shape == (3, 1, 10, 20)


def test_load_names_a_damaged_file(tmp_path):
    """SpecBoost.load verifies the checksum atomic_save wrote: a flipped byte is a ValueError naming the file."""
    boost = SpecBoost([FNO(1, 1, (3, 3), hidden_channels=4, n_layers=1) for _ in range(2)])
    path = tmp_path / "boost.pt"
    boost.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"boost\.pt"):
        SpecBoost.load(path)
