"""Tests for operators.training.Trainer: against a hand-written AdamW loop, a numpy
relative-L2, real SIGKILL-and-resume runs and a real 2-process torchrun job.

Legend: n samples, W grid points; data are (n, 1, W) float64.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

from operators import checkpoint
from operators._distributed import DistContext, ShardedBatchSampler, make_source
from operators.training import NonFiniteLossError, Trainer
from tests.operators import _ddp_worker as worker

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(worker.__file__)


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(1, 4, 3, padding=1, dtype=torch.float64),
        nn.Tanh(),
        nn.Dropout(dropout),
        nn.Conv1d(4, 1, 1, dtype=torch.float64),
    )


def _trainer(model: nn.Module | None = None, **kwargs) -> Trainer:
    opts = dict(epochs=3, batch_size=4, lr=1e-2, device="cpu", verbose=False)
    return Trainer(_model() if model is None else model, **{**opts, **kwargs})


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in history]


# ----------------------------------------------------------- the optimisation itself
def _reference_fit(model, x, y, *, epochs, batch_size, lr, weight_decay, lr_at, grad_clip):
    """Plain AdamW loop, in order, relative-L2 loss written out, lr set per epoch."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for e in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr_at(e)
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            pred = model(xb)
            loss = ((pred - yb).flatten(1).norm(dim=1) / yb.flatten(1).norm(dim=1)).mean()
            opt.zero_grad()
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
    return _weights(model)


@pytest.mark.parametrize(
    ("scheduler", "grad_clip"),
    [("cosine", None), ("step", None), ("constant", None), ("cosine", 0.02)],
    ids=lambda v: f"{v}",
)
def test_fit_matches_reference_adamw_loop(scheduler, grad_clip):
    x, y = worker.make_data(10, 8, 0)
    epochs, lr, wd, gamma, step_size = 5, 1e-2, 1e-3, 0.3, 2
    lr_at = {
        "cosine": lambda e: lr * (1 + math.cos(math.pi * e / epochs)) / 2,
        "step": lambda e: lr * gamma ** (e // step_size),
        "constant": lambda e: lr,
    }[scheduler]
    trainer = _trainer(epochs=epochs, lr=lr, weight_decay=wd, scheduler=scheduler, gamma=gamma,
                       step_size=step_size, grad_clip=grad_clip, shuffle=False)
    history = trainer.fit((x, y))
    expected = _reference_fit(_model(), x, y, epochs=epochs, batch_size=4, lr=lr,
                              weight_decay=wd, lr_at=lr_at, grad_clip=grad_clip)
    for k, v in _weights(trainer.model).items():
        torch.testing.assert_close(v, expected[k], rtol=1e-9, atol=1e-12)
    assert [r["lr"] for r in history] == pytest.approx([lr_at(e) for e in range(epochs)], rel=1e-12)
    assert [r["step"] for r in history] == [3 * (e + 1) for e in range(epochs)]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    if grad_clip is not None:  # the clipping must matter for this test to mean anything
        unclipped = _reference_fit(_model(), x, y, epochs=epochs, batch_size=4, lr=lr,
                                   weight_decay=wd, lr_at=lr_at, grad_clip=None)
        assert not torch.allclose(unclipped["0.weight"], expected["0.weight"], rtol=1e-6)


def test_evaluate_matches_numpy_relative_l2_at_two_resolutions():
    sets = {"8": worker.make_data(7, 8, 1), "16": worker.make_data(5, 16, 2)}
    model = _model(dropout=0.5)
    mse = lambda p, t: ((p - t) ** 2).mean()  # noqa: E731
    trainer = _trainer(model, eval_batch_size=3, metrics={"mse": mse})
    got = trainer.evaluate(sets)
    loader_sets = {k: DataLoader(TensorDataset(*v), batch_size=2, shuffle=True) for k, v in sets.items()}
    got_loader = trainer.evaluate(loader_sets)
    model.eval()
    for name, (x, y) in sets.items():
        with torch.no_grad():
            p, t = model(x).numpy().reshape(len(x), -1), y.numpy().reshape(len(x), -1)
        rel = np.mean(np.linalg.norm(p - t, axis=1) / np.linalg.norm(t, axis=1))
        assert got[name]["loss"] == pytest.approx(rel, rel=1e-12)
        assert got[name]["mse"] == pytest.approx(np.mean((p - t) ** 2), rel=1e-12)
        assert got_loader[name] == pytest.approx(got[name], rel=1e-12)
    assert model.training is False  # evaluate leaves the mode it found


def test_predict_is_eval_mode_forward_and_restores_training_mode():
    x, _ = worker.make_data(7, 8, 0)
    model = _model(dropout=0.5)
    trainer = _trainer(model)
    model.train()
    pred = trainer.predict(x, batch_size=3)
    assert model.training
    with torch.no_grad():
        expected = model.eval()(x)
    torch.testing.assert_close(pred, expected, rtol=0, atol=0)


# ------------------------------------------------------- order, history, files
def test_sharded_sampler_order_is_a_function_of_seed_and_epoch():
    n, batch = 23, 8

    def epoch_batches(epoch, rank=0, world=1, seed=4):
        s = ShardedBatchSampler(n, batch, shuffle=True, drop_last=False, seed=seed, rank=rank, world_size=world)
        s.set_epoch(epoch)
        return [[b, s.sizes(i)] for i, b in enumerate(s)]

    single = [[idx for idx, _ in epoch_batches(e)] for e in range(3)]
    for order in single:
        assert sorted(i for b in order for i in b) == list(range(n))
        assert [len(b) for b in order] == [8, 8, 7]
    assert single[0] != single[1] != single[2]
    assert single[2] == [idx for idx, _ in epoch_batches(2)]  # no dependence on earlier epochs
    assert single[0] != [idx for idx, _ in epoch_batches(0, seed=5)]
    for world in (2, 3):  # the ranks' shares tile each global batch, in order
        shares = [epoch_batches(1, r, world) for r in range(world)]
        for b, global_batch in enumerate(single[1]):
            pieces = [shares[r][b][0][: shares[r][b][1][0]] for r in range(world)]
            assert sum(pieces, []) == global_batch
            assert all(shares[r][b][1][1] == len(global_batch) for r in range(world))


def test_shuffle_depends_on_seed_and_loader_equals_tensors():
    x, y = worker.make_data(10, 8, 0)
    runs = {
        "a": _trainer(seed=1).fit((x, y)),
        "b": _trainer(seed=1).fit(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)),
        "c": _trainer(seed=2).fit((x, y)),
    }
    losses = {k: [r["train_loss"] for r in h] for k, h in runs.items()}
    assert losses["a"] == losses["b"]
    assert losses["a"] != losses["c"]


def test_history_metrics_file_and_checkpoint(tmp_path):
    x, y = worker.make_data(10, 8, 0)
    trainer = _trainer(epochs=5, eval_every=2, checkpoint_dir=tmp_path)
    history = trainer.fit((x, y), test={"8": worker.make_data(4, 8, 1), "16": worker.make_data(4, 16, 2)})
    assert trainer.history is history and len(history) == 5
    assert [("8/loss" in r, "16/loss" in r) for r in history] == [(e in (2, 4, 5),) * 2 for e in range(1, 6)]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 5 and state["step"] == 15 and state["history"] == history
    assert set(state["rng"][0]) >= {"torch", "numpy", "python"}
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(state["model"][k], v)
    assert state["scheduler"]["last_epoch"] == 5


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    x, y = worker.make_data(10, 8, 0)
    real_save, calls = torch.save, []

    def flaky_save(obj, f):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"partial")
            raise OSError("disk full")
        real_save(obj, f)

    monkeypatch.setattr(checkpoint.torch, "save", flaky_save)
    with pytest.raises(OSError, match="disk full"):
        _trainer(checkpoint_dir=tmp_path).fit((x, y))
    monkeypatch.undo()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]


def test_resume_settings(tmp_path):
    x, y = worker.make_data(10, 8, 0)
    fresh = _trainer(checkpoint_dir=tmp_path, resume=True)  # no checkpoint yet: starts at 0
    assert fresh.epoch == 0
    done = fresh.fit((x, y))
    again = _trainer(_model(dropout=0.9), checkpoint_dir=tmp_path, resume=True)
    assert again.epoch == 3
    assert again.fit((x, y)) == done  # nothing left to train: same history and weights
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[k], v)
    with pytest.raises(ValueError, match=r"lr: 0\.01 in the checkpoint, 0\.02 now"):
        _trainer(lr=2e-2, checkpoint_dir=tmp_path, resume=True)


def test_custom_sampler_loader_trains_and_checkpoints_its_generator(tmp_path):
    x, y = worker.make_data(10, 8, 0)
    sampler = SubsetRandomSampler(range(10), generator=torch.Generator().manual_seed(0))
    trainer = _trainer(checkpoint_dir=tmp_path)
    history = trainer.fit(DataLoader(TensorDataset(x, y), batch_size=4, sampler=sampler))
    assert [r["step"] for r in history] == [3, 6, 9]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert torch.equal(state["loader_rng"]["sampler"], sampler.generator.get_state())


class _CrashAt:
    """Relative-L2 loss that raises on training batch number ``at`` (0: never), a stand-in for a killed run."""

    def __init__(self, at: int = 0) -> None:
        self.at, self.calls = at, 0

    def __call__(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("crashed")
        return ((p - t).flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1)).mean()


def test_fresh_run_that_crashes_in_epoch_1_is_not_resumed_as_the_previous_run(tmp_path, isolated_rng):
    a, b = worker.make_data(12, 8, 0), worker.make_data(12, 8, 5)  # 3 batches an epoch
    with pytest.raises(RuntimeError, match="crashed"):  # run A dies in epoch 3
        _trainer(epochs=4, loss=_CrashAt(7), checkpoint_dir=tmp_path).fit(a)
    a_bytes = (tmp_path / "checkpoint.pt").read_bytes()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2
    a_metrics = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(RuntimeError, match="crashed"):  # run B (new data, started over) dies in epoch 1
        _trainer(epochs=4, loss=_CrashAt(2), checkpoint_dir=tmp_path, overwrite=True).fit(b)
    files_after_b = sorted(p.name for p in tmp_path.iterdir())
    # Nothing of run A was deleted: B had not written a checkpoint of its own yet.
    assert (tmp_path / "checkpoint.previous.pt").read_bytes() == a_bytes
    assert (tmp_path / "metrics.previous.jsonl").read_text() == a_metrics
    resumed = _trainer(epochs=4, loss=_CrashAt(), checkpoint_dir=tmp_path, resume=True)
    start = (resumed.epoch, resumed.step)
    history = resumed.fit(b)
    fresh = _trainer(epochs=4, loss=_CrashAt())
    expected = fresh.fit(b)  # B alone, from scratch
    assert _without_time(history) == _without_time(expected)
    assert [r["step"] for r in history] == [3, 6, 9, 12]
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert _without_time(lines) == _without_time(expected)
    assert start == (0, 0)
    assert files_after_b == ["checkpoint.previous.pt", "metrics.jsonl", "metrics.previous.jsonl"]
    # Once this run's first checkpoint exists, the previous run's files go.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]
    # Only the previous run's checkpoint goes: a second fit keeps this run's own.
    again = _trainer(epochs=4, loss=_CrashAt(), checkpoint_dir=tmp_path, overwrite=True)
    again.fit(b)
    again.fit(b)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 4


def test_a_new_run_refuses_a_folder_with_a_previous_checkpoint(tmp_path):
    x, y = worker.make_data(10, 8, 0)
    _trainer(epochs=1, checkpoint_dir=tmp_path).fit((x, y))
    before = (tmp_path / "checkpoint.pt").read_bytes()
    folder = str(tmp_path).replace("\\", "\\\\")
    with pytest.raises(FileExistsError, match=rf"checkpoint_dir='{folder}' holds a previous run's checkpoint "
                                              r"\(checkpoint\.pt\); pass resume=True .* overwrite=True"):
        _trainer(epochs=1, checkpoint_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    (tmp_path / "checkpoint.pt").rename(tmp_path / "checkpoint.previous.pt")  # a started-over run that died
    with pytest.raises(FileExistsError, match=r"\(checkpoint\.previous\.pt\)"):
        _trainer(epochs=1, checkpoint_dir=tmp_path)
    assert _trainer(epochs=1, checkpoint_dir=tmp_path, resume=True).epoch == 0  # not this run's progress


def test_fresh_run_that_cannot_set_the_old_checkpoint_aside_stops_before_training(tmp_path, monkeypatch):
    x, y = worker.make_data(10, 8, 0)
    _trainer(epochs=1, checkpoint_dir=tmp_path).fit((x, y))
    before_bytes = (tmp_path / "checkpoint.pt").read_bytes()
    trainer = _trainer(epochs=1, checkpoint_dir=tmp_path, overwrite=True)
    before = _weights(trainer.model)

    def refuse(self, target):
        raise PermissionError(f"cannot rename {self}")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(PermissionError, match=r"cannot rename .*checkpoint\.pt"):
        trainer.fit((x, y))
    monkeypatch.undo()
    assert trainer.step == 0 and all(torch.equal(v, before[k]) for k, v in _weights(trainer.model).items())
    assert (tmp_path / "checkpoint.pt").read_bytes() == before_bytes
    trainer.fit((x, y))  # retried by the next fit
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]


def _loader_run_killed_in_epoch_2(checkpoint_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = worker.make_data(10, 8, 0)
    with pytest.raises(RuntimeError, match="crashed"):  # 3 batches an epoch: checkpoint at epoch 1
        _trainer(loss=_CrashAt(4), checkpoint_dir=checkpoint_dir).fit(_loader(x, y))
    return x, y


def _loader(x, y, batch_size=4, shuffle=True, drop_last=False, n=None):
    return DataLoader(TensorDataset(x[:n], y[:n]), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        pytest.param(dict(batch_size=2), r"batch_size: 4 in the checkpoint, 2 now", id="batch_size"),
        pytest.param(dict(shuffle=False), r"shuffle: True in the checkpoint, False now", id="shuffle"),
        pytest.param(dict(drop_last=True), r"drop_last: False in the checkpoint, True now", id="drop_last"),
        pytest.param(dict(n=9), r"n_samples: 10 in the checkpoint, 9 now", id="n_samples"),
    ],
)
def test_resume_refuses_other_dataloader_batches(tmp_path, changed, message, isolated_rng):
    x, y = _loader_run_killed_in_epoch_2(tmp_path)
    trainer = _trainer(loss=_CrashAt(), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"resume=True: .*other training batches \(" + message):
        trainer.fit(_loader(x, y, **changed))
    with pytest.raises(ValueError, match=r"batch_size: 4 in the checkpoint, 2 now"):  # tensors: the Trainer's
        _trainer(batch_size=2, loss=_CrashAt(), checkpoint_dir=tmp_path, resume=True).fit((x, y))


def test_resume_ignores_the_trainers_unused_batch_settings_with_a_dataloader(tmp_path, isolated_rng):
    x, y = _loader_run_killed_in_epoch_2(tmp_path)
    resumed = _trainer(batch_size=8, shuffle=False, drop_last=True, loss=_CrashAt(), checkpoint_dir=tmp_path,
                       resume=True)
    assert resumed.epoch == 1
    history = resumed.fit(_loader(x, y))
    expected = _trainer(loss=_CrashAt()).fit(_loader(x, y))
    assert _without_time(history) == _without_time(expected)


def test_resume_from_a_checkpoint_without_recorded_batches_checks_the_trainers_settings(tmp_path, isolated_rng):
    x, y = worker.make_data(10, 8, 0)
    with pytest.raises(RuntimeError, match="crashed"):
        _trainer(loss=_CrashAt(4), checkpoint_dir=tmp_path).fit((x, y))
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # as the previous version wrote it
    state["config"] = {**state["config"], "batch_size": 4, "shuffle": True, "drop_last": False}
    del state["config"]["train_data"]
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"other training batches \(batch_size: 4 in the checkpoint, 2 now\)"):
        _trainer(batch_size=2, checkpoint_dir=tmp_path, resume=True)
    history = _trainer(loss=_CrashAt(), checkpoint_dir=tmp_path, resume=True).fit((x, y))
    assert _without_time(history) == _without_time(_trainer(loss=_CrashAt()).fit((x, y)))


# ------------------------------------------------------------------- failures
def _poison_target(x, y):
    y = y.clone()
    y[9] = float("nan")  # sample 9 sits in batch 3 (samples 8..11) when not shuffled
    return x, y, dict(shuffle=False), r"epoch 1, batch 3 \(loss = nan\)"


def _poison_loss(x, y):
    calls = []

    def loss(p, t):
        calls.append(1)
        return torch.tensor(float("inf"), dtype=p.dtype) * (1 + p.abs().sum()) if len(calls) == 5 else (p - t).abs().mean()

    return x, y, dict(loss=loss), r"epoch 2, batch 2 \(loss = inf\)"  # 3 batches an epoch


@pytest.mark.parametrize("poison", [_poison_target, _poison_loss], ids=["nan-target", "inf-loss"])
def test_non_finite_loss_stops_with_epoch_and_batch(poison):
    x, y, opts, message = poison(*worker.make_data(12, 8, 0))
    trainer = _trainer(**opts)
    with pytest.raises(NonFiniteLossError, match=message) as info:
        trainer.fit((x, y))
    assert isinstance(info.value, FloatingPointError)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=0), r"epochs must be an int >= 1, got 0"),
        (dict(batch_size=0), r"batch_size must be an int >= 1, got 0"),
        (dict(eval_batch_size=0), r"eval_batch_size must be an int >= 1, got 0"),
        (dict(eval_every=0), r"eval_every must be an int >= 1, got 0"),
        (dict(scheduler="linear"), r"scheduler must be one of \('cosine', 'step', 'constant'\), got str 'linear'"),
        (dict(scheduler="step", step_size=0), r"step_size must be an int >= 1, got 0"),
        (dict(lr=-1.0), r"lr must be > 0, got -1.0"),
        (dict(lr=float("nan")), r"lr must be finite, got nan"),
        (dict(weight_decay=-0.1), r"weight_decay must be >= 0, got -0.1"),
        (dict(gamma=0.0), r"gamma must be > 0, got 0.0"),
        (dict(grad_clip=0.0), r"grad_clip must be > 0, got 0.0"),
        (dict(seed=-1), r"seed must be an int >= 0, got -1"),
        (dict(amp="fp8"), r"amp must be one of \('bf16', 'fp16'\) or None, got str 'fp8'"),
        (dict(amp="fp16"), r"amp='fp16' needs a CUDA device \(use amp='bf16' on CPU\), got device=cpu"),
        (dict(resume=True, overwrite=True, checkpoint_dir="x"), r"resume=True and overwrite=True contradict"),
        (dict(resume=True), r"resume=True needs checkpoint_dir, got checkpoint_dir=None"),
        (dict(metrics={"loss": torch.sub}), r"names other than 'loss'"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_bad_config_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _trainer(**kwargs)


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match=r"epochs must be an int, got float 2\.5"):
        _trainer(epochs=2.5)
    for name, value in (("batch_size", True), ("seed", "0"), ("eval_every", None)):
        with pytest.raises(TypeError, match=rf"{name} must be an int, got"):
            _trainer(**{name: value})
    with pytest.raises(TypeError, match=r"lr must be a real number, got str '1e-3'"):
        _trainer(lr="1e-3")
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module, got function"):
        Trainer(lambda x: x)


def test_bad_data_is_reported_with_shapes():
    x, y = worker.make_data(10, 8, 0)
    trainer = _trainer()
    with pytest.raises(ValueError, match=r"inputs of shape \(10, 1, 8\) and targets of shape \(9, 1, 8\)"):
        trainer.fit((x, y[:9]))
    with pytest.raises(ValueError, match=r"test set '16'.*inputs of shape \(3, 1, 16\) and targets of shape \(2, 1, 16\)"):
        trainer.fit((x, y), test={"16": (torch.zeros(3, 1, 16), torch.zeros(2, 1, 16))})
    with pytest.raises(TypeError, match=r"train must be a DataLoader or a pair \(inputs, targets\) of tensors, got tuple of length 3"):
        trainer.fit((x, y, y))
    with pytest.raises(ValueError, match=r"train is empty: inputs of shape \(0, 1, 8\)"):
        trainer.fit((x[:0], y[:0]))
    with pytest.raises(TypeError, match=r"each DataLoader batch must be a pair \(inputs, targets\) of tensors, got list"):
        trainer.fit(DataLoader(TensorDataset(x), batch_size=4))
    with pytest.raises(ValueError, match=r"scalar tensor \(the batch mean\), got \(4,\)"):
        _trainer(loss=lambda p, t: (p - t).flatten(1).mean(1)).fit((x, y))


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter([(torch.zeros(1, 8), torch.zeros(1, 8))])


@pytest.mark.parametrize(
    "loader",
    [
        DataLoader(TensorDataset(torch.zeros(6, 1, 8), torch.zeros(6, 1, 8)), batch_size=2,
                   sampler=SubsetRandomSampler(range(6))),
        DataLoader(_Stream(), batch_size=None),
    ],
    ids=["custom-sampler", "iterable"],
)
def test_loaders_the_trainer_cannot_shard_are_refused_under_ddp(loader):
    ctx = DistContext(rank=1, world_size=2)
    with pytest.raises(ValueError, match=r"train: under torchrun the Trainer shards the data itself.*got dataset="):
        make_source(loader, "train", batch_size=2, shuffle=True, drop_last=False, seed=0, ctx=ctx, train=True)
    assert make_source(loader, "train", batch_size=2, shuffle=True, drop_last=False, seed=0,
                       ctx=DistContext(), train=True).loader is loader  # one process: used as given


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [
        pytest.param("gpu", ValueError,
                     r"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0', got device='gpu'", id="gpu"),
        pytest.param(-1, ValueError, r"got device=-1", id="negative"),
        pytest.param(1.5, TypeError, r"device must be a torch.device, str, int or None, got float", id="float"),
        pytest.param("cuda", ValueError, r"device='cuda' needs CUDA, but CUDA is not available", id="cuda",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")),
        pytest.param(3, ValueError, r"device=3 needs CUDA, but CUDA is not available", id="int",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")),
        pytest.param(f"cuda:{torch.cuda.device_count()}", ValueError,
                     rf"device='cuda:{torch.cuda.device_count()}': CUDA device \d+ does not exist", id="cuda-index",
                     marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
    ],
)
def test_bad_device_names_the_argument(device, error, message):
    with pytest.raises(error, match=message):
        _trainer(device=device)


def test_predict_without_samples_names_inputs():
    with pytest.raises(ValueError, match=r"inputs must hold at least one sample, got inputs of shape \(0, 1, 8\)"):
        _trainer().predict(torch.zeros(0, 1, 8, dtype=torch.float64))


def test_predict_batch_size_0_is_refused_not_replaced():
    x, _ = worker.make_data(4, 8, 0)
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1, got 0"):
        _trainer().predict(x, batch_size=0)


def test_metrics_that_are_not_a_mapping_are_named():
    mse = lambda p, t: ((p - t) ** 2).mean()  # noqa: E731
    with pytest.raises(TypeError, match=r"metrics must be a mapping of names to callables.*got list"):
        _trainer(metrics=[mse])


class _Empty(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter([])


@pytest.mark.parametrize(
    "empty",
    [
        DataLoader(TensorDataset(torch.zeros(4, 1, 8), torch.zeros(4, 1, 8)), batch_size=2,
                   sampler=SubsetRandomSampler([])),
        DataLoader(_Empty(), batch_size=None),
    ],
    ids=["empty-sampler", "empty-iterable"],
)
def test_empty_test_loader_names_the_test_set(empty):
    x, y = worker.make_data(4, 8, 0)
    trainer = _trainer(epochs=1)
    with pytest.raises(ValueError, match=r"test set 'test' yielded no samples: got an empty DataLoader"):
        trainer.evaluate(empty)
    with pytest.raises(ValueError, match=r"test set 'coarse' yielded no samples"):
        trainer.fit((x, y), test={"coarse": empty})


def test_evaluation_shards_cover_every_sample_once():
    x = torch.arange(7.0)[:, None]
    seen = []
    for rank in range(3):
        source = make_source((x, x), "test", batch_size=2, shuffle=True, drop_last=False, seed=0,
                             ctx=DistContext(rank=rank, world_size=3), train=False)
        seen += [v for xb, _, n, _ in source.batches(0) for v in xb[:n, 0].tolist()]
    assert seen == x[:, 0].tolist()


def test_progress_bars_follow_verbose(capsys):
    x, y = worker.make_data(8, 8, 0)
    _trainer(verbose=None).fit((x, y))  # pytest captures the streams: not a terminal
    assert capsys.readouterr().err == ""
    _trainer(verbose=True).fit((x, y))
    assert "training" in capsys.readouterr().err


# --------------------------------------------------------------- real processes
def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def isolated_rng():
    """Global RNG states put back after the test (resuming restores a checkpoint's)."""
    state = checkpoint.capture_rng_state()
    yield
    checkpoint.restore_rng_state(state)


@pytest.mark.parametrize(
    "data",
    # The loader case exercises every RNG stream (dropout, numpy/random augmentation) and
    # the rebuilt DataLoader; the tensor case shares its sampler, so it runs with -m slow.
    # "custom": a custom optimiser, a per-batch scheduler object, accumulation and a callback.
    [pytest.param("tensors", marks=pytest.mark.slow), "loader", "custom"],
)
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path, data, isolated_rng):
    ckpt, out = tmp_path / "ckpt", tmp_path / "killed.pt"
    killed = _run([sys.executable, str(WORKER), "resume", str(out), "--data", data, "--ckpt", str(ckpt),
                   "--kill-at", "10"])  # 4 batches an epoch: dies in batch 2 of epoch 3
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists()
    assert torch.load(ckpt / "checkpoint.pt", weights_only=True)["epoch"] == 2
    # Resume in a fresh Trainer (here, in this process) from the killed run's files.
    weights, history = worker.train_resume_case(data, str(ckpt))
    ref_weights, ref_history = worker.train_resume_case(data, str(tmp_path / "ref"))
    assert _without_time(history) == _without_time(ref_history)  # bitwise, every epoch
    for k, v in ref_weights.items():
        assert torch.equal(weights[k], v), k
    lines = [json.loads(s) for s in (ckpt / "metrics.jsonl").read_text().splitlines()]
    assert _without_time(lines) == _without_time(ref_history)


def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    proc = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                 str(WORKER), "ddp", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    lines = (tmp_path / "ckpt" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # written once (rank 0), one line per epoch
    for kind in ("tensors", "loader", "accumulate"):
        (w0, h0), (w1, h1) = ranks[0][kind], ranks[1][kind]
        ref_weights, ref_history = worker.train_ddp_case(kind)
        for k, v in ref_weights.items():
            assert torch.equal(w0[k], w1[k]), (kind, k)
            torch.testing.assert_close(w0[k], v, rtol=1e-10, atol=1e-12)
        for got in (h0, h1):
            for r, ref in zip(_without_time(got), _without_time(ref_history), strict=True):
                assert r == pytest.approx(ref, rel=1e-10)
