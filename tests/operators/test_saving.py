"""save_model / load_model / model_spec: round trips give identical outputs; bad files are named errors.

References: the original model's outputs and parameters, and the file as ``torch.load``
reads it with ``weights_only=True``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from operators import FNO, SFNO, SpecBoost
from operators.checkpoint import atomic_save, save_checkpoint
from operators.saving import (
    MODEL_FILE_KIND,
    MODEL_FILE_VERSION,
    build_model,
    load_model,
    model_spec,
    register_model,
    registered_models,
    save_model,
)

FNO_CASES = {
    "1d": (dict(in_channels=2, out_channels=1, n_modes=(6,)), (32,)),
    "2d": (dict(in_channels=1, out_channels=2, n_modes=(5, 4)), (16, 12)),
    "3d": (dict(in_channels=1, out_channels=1, n_modes=(3, 3, 3)), (8, 8, 8)),
    "separable": (dict(in_channels=1, out_channels=1, n_modes=(4, 4), separable=True), (12, 12)),
    "cp-rank": (dict(in_channels=1, out_channels=1, n_modes=(4, 4), rank=3), (12, 12)),
    "padding-norm": (dict(in_channels=1, out_channels=1, n_modes=(4, 4), domain_padding=(0.25, 0.125),
                          padding_mode="symmetric", norm="group", skip="soft-gating", mlp_skip=None), (16, 16)),
    "linear-lift-no-mlp": (dict(in_channels=1, out_channels=1, n_modes=(4, 4), lifting_ratio=0, mlp_expansion=0,
                                positional_embedding=False, activation="tanh"), (12, 12)),
}


def _perturbed(model: nn.Module) -> nn.Module:
    """Move every parameter off its initial value, so a rebuilt-but-not-loaded model would differ."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def _same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize("case", list(FNO_CASES))
def test_fno_round_trip(case, tmp_path):
    kw, grid = FNO_CASES[case]
    model = _perturbed(FNO(kw.pop("in_channels"), kw.pop("out_channels"), kw.pop("n_modes"), hidden_channels=6,
                           n_layers=2, **kw))
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is FNO and loaded.config == model.config
    assert _same_outputs(model, loaded, torch.randn(2, model.in_channels, *grid))


def test_file_is_plain_and_holds_the_weights(tmp_path):
    model = _perturbed(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1))
    save_model(model, tmp_path / "m.pt")
    blob = torch.load(tmp_path / "m.pt", weights_only=True)  # no pickled code
    assert blob["kind"] == MODEL_FILE_KIND and blob["version"] == MODEL_FILE_VERSION
    assert blob["spec"]["class"] == "FNO" and blob["spec"]["config"]["n_modes"] == (4, 4)
    state = model.state_dict()
    assert blob["state_dict"].keys() == state.keys()
    assert all(torch.equal(blob["state_dict"][k], v) for k, v in state.items())


def test_sfno_round_trip(tmp_path):
    model = _perturbed(SFNO(2, 1, (8, 16), hidden_channels=4, n_layers=2, out_shape=(12, 24), grid="legendre-gauss"))
    save_model(model, tmp_path / "s.pt")
    loaded = load_model(tmp_path / "s.pt")
    assert type(loaded) is SFNO and loaded.config == model.config
    assert _same_outputs(model, loaded, torch.randn(2, 2, 8, 16))


def test_specboost_round_trip_with_fno_and_sfno_stages(tmp_path):
    stages = [FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1),
              SFNO(2, 1, (8, 16), hidden_channels=4, n_layers=1),
              FNO(2, 1, (3, 3), hidden_channels=4, n_layers=2, separable=True)]
    model = _perturbed(SpecBoost(stages, stage_input="input+previous"))
    model.freeze_before(2)
    save_model(model, tmp_path / "b.pt")
    loaded = load_model(tmp_path / "b.pt")
    assert [type(s) for s in loaded.stages] == [FNO, SFNO, FNO]
    assert loaded.stage_input == "input+previous" and loaded.n_frozen == 2
    assert [p.requires_grad for p in loaded.parameters()] == [p.requires_grad for p in model.parameters()]
    assert _same_outputs(model, loaded, torch.randn(2, 1, 8, 16))


def test_specboost_with_a_scaled_stage_round_trip(tmp_path):
    """A stage added with scale= comes back as a ScaledStage of the same scale: the output is 0.25 * stage."""
    from operators.specboost_scaling import ScaledStage

    model = SpecBoost([FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1)])
    model.add_stage(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1), scale=0.25)
    model = _perturbed(model)
    save_model(model, tmp_path / "s.pt")
    loaded = load_model(tmp_path / "s.pt")
    assert isinstance(loaded.stages[1], ScaledStage) and float(loaded.stages[1].scale) == 0.25
    x = torch.randn(2, 1, 12, 12)
    assert _same_outputs(model, loaded, x)
    with torch.no_grad():  # the scale is applied: the stage's raw output times 0.25
        torch.testing.assert_close(loaded.stages[1](x), 0.25 * loaded.stages[1].stage(x))


def test_float64_state_and_map_location(tmp_path):
    model = _perturbed(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1, dtype=torch.float64))
    save_model(model, tmp_path / "d.pt")
    for loc in (None, "cpu", torch.device("cpu"), lambda storage, _: storage):
        loaded = load_model(tmp_path / "d.pt", map_location=loc)
        assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in loaded.parameters())
        assert _same_outputs(model, loaded, torch.randn(2, 1, 12, 12, dtype=torch.float64))
    meta = load_model(tmp_path / "d.pt", map_location="meta")
    assert all(p.device.type == "meta" and p.dtype == torch.float64 for p in meta.parameters())


def test_trainer_checkpoint_with_model_spec(tmp_path):
    model = _perturbed(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1))
    save_checkpoint(tmp_path / "checkpoint.pt", epoch=1, step=3, model=model.state_dict(), config={},
                    model_spec=model_spec(model))
    loaded = load_model(tmp_path / "checkpoint.pt")
    assert _same_outputs(model, loaded, torch.randn(2, 1, 12, 12))


def test_trainer_checkpoint_without_model_spec(tmp_path):
    model = FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1)
    save_checkpoint(tmp_path / "checkpoint.pt", epoch=1, step=3, model=model.state_dict(), config={})
    with pytest.raises(ValueError, match=r"checkpoint\.pt is a Trainer checkpoint without a model spec"):
        load_model(tmp_path / "checkpoint.pt")


def test_real_trainer_checkpoint(tmp_path):
    from operators import Trainer

    model = FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1)
    x, y = torch.randn(8, 1, 12, 12), torch.randn(8, 1, 12, 12)
    Trainer(model, epochs=1, batch_size=4, checkpoint_dir=tmp_path / "run", device="cpu").fit((x, y))
    loaded = load_model(tmp_path / "run" / "checkpoint.pt")
    assert type(loaded) is FNO and loaded.config == model.config
    assert _same_outputs(model, loaded, x)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_file_is_named(damage, tmp_path):
    path = tmp_path / "m.pt"
    save_model(_perturbed(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1)), path)
    data = bytearray(path.read_bytes())
    if damage == "flip":  # a byte inside the tensor data: torch.load alone would load it silently
        weights = torch.load(path, weights_only=True)["state_dict"]["blocks.0.conv.weight"]
        at = bytes(data).find(weights.numpy().tobytes()[:16])
        assert at > 0
        data[at + 3] ^= 0xFF
    path.write_bytes(bytes(data[: len(data) // 2] if damage == "truncate" else b"" if damage == "empty" else data))
    with pytest.raises(ValueError, match=r"m\.pt is damaged"):
        load_model(path)


def _write(tmp_path, blob) -> str:
    path = tmp_path / "x.pt"
    atomic_save(blob, path)
    return str(path)


def test_unknown_class_names_file_class_and_known_ones(tmp_path):
    path = _write(tmp_path, {"kind": MODEL_FILE_KIND, "version": MODEL_FILE_VERSION,
                             "spec": {"class": "UNet", "config": {}}, "state_dict": {}})
    with pytest.raises(ValueError, match=r"x\.pt: unknown model class 'UNet' \(known: FNO, Normalized, SFNO, ScaledStage, SpecBoost"):
        load_model(path)


def test_unknown_version_names_file_and_version(tmp_path):
    path = _write(tmp_path, {"kind": MODEL_FILE_KIND, "version": 99, "spec": {}, "state_dict": {}})
    with pytest.raises(ValueError, match=r"x\.pt is a model file of version 99; this library reads version 1"):
        load_model(path)


def test_other_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"x\.pt is neither a model file .* got Tensor"):
        load_model(_write(tmp_path, torch.zeros(3)))
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_model(tmp_path / "nothing.pt")


def test_config_that_does_not_fit(tmp_path):
    spec = model_spec(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1))
    spec["config"]["wavelets"] = True
    with pytest.raises(ValueError, match="does not fit FNO.*wavelets"):
        build_model(spec)
    with pytest.raises(ValueError, match=r"a model spec is a dict \{'class': str, 'config': ...\}, got list"):
        build_model([1])


def test_unregistered_model_and_wrappers():
    with pytest.raises(ValueError, match=r"torch.nn.modules.linear.Linear is not a registered model class \(known: FNO"):
        model_spec(nn.Linear(2, 2))


class _Scaled(nn.Module):
    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return self.scale * self.inner(x)


def test_register_model_round_trip_and_conflicts(tmp_path):
    register_model(
        _Scaled,
        lambda m: {"inner": model_spec(m.inner), "scale": m.scale},
        lambda c, device=None, dtype=None: _Scaled(build_model(c["inner"], device=device, dtype=dtype), c["scale"]),
    )
    assert "_Scaled" in registered_models()
    model = _perturbed(_Scaled(FNO(1, 1, (4, 4), hidden_channels=4, n_layers=1), 2.5))
    save_model(model, tmp_path / "w.pt")
    assert _same_outputs(model, load_model(tmp_path / "w.pt"), torch.randn(2, 1, 12, 12))
    with pytest.raises(ValueError, match="name='FNO' is already registered for operators.fno.FNO"):
        register_model(_Scaled, lambda m: {}, lambda c, **kw: None, name="FNO")
    with pytest.raises(TypeError, match="to_config must be callable"):
        register_model(_Scaled, None, lambda c, **kw: None)


def test_config_must_be_plain():
    class _Bad(nn.Module):
        pass

    register_model(_Bad, lambda m: {"fn": torch.tanh}, lambda c, **kw: _Bad())
    with pytest.raises(ValueError, match=r"_Bad config\['fn'\] holds builtin_function_or_method"):
        model_spec(_Bad())
