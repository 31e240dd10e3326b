"""Trainer callbacks: order and arguments of the hooks, early stopping (and its resume), the
TensorBoard event file read back with tensorboard's own reader, the wandb logger."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from operators import checkpoint
from operators.training import Callback, EarlyStopping, TensorBoardLogger, Trainer, WandbLogger
from tests.operators import _ddp_worker as worker

pytestmark = pytest.mark.usefixtures("one_thread")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 4, 3, padding=1, dtype=torch.float64), nn.Tanh(),
                         nn.Conv1d(4, 1, 1, dtype=torch.float64))


def _opts(**kw):
    return {**dict(epochs=3, batch_size=4, lr=1e-2, device="cpu", verbose=False), **kw}


@pytest.fixture
def isolated_rng():
    state = checkpoint.capture_rng_state()
    yield
    checkpoint.restore_rng_state(state)


class _Recorder:
    def __init__(self, name, events):
        self.name, self.events = name, events

    def on_train_start(self, trainer):
        self.events.append((self.name, "start", trainer.epoch))

    def on_batch_end(self, trainer, batch):
        self.events.append((self.name, "batch", dict(batch)))

    def on_epoch_end(self, trainer, record):
        self.events.append((self.name, "epoch", record))

    def on_train_end(self, trainer):
        self.events.append((self.name, "end", trainer.epoch))


class _OnlyEpochs:
    def __init__(self, events):
        self.events = events

    def on_epoch_end(self, trainer, record):
        self.events.append(("only", "epoch", record["epoch"]))


def test_callbacks_fire_in_order_with_the_records():
    x, y = worker.make_data(10, 8, 0)  # 3 batches an epoch
    events: list = []
    trainer = Trainer(_model(), callbacks=[_Recorder("a", events), _OnlyEpochs(events), _Recorder("b", events)],
                      **_opts(epochs=2, accumulate=2))
    history = trainer.fit((x, y), test=worker.make_data(4, 8, 1))
    expected = [("a", "start", 0), ("b", "start", 0)]
    for e, record in enumerate(history, start=1):
        for b, step in ((1, 2 * e - 2), (2, 2 * e - 1), (3, 2 * e)):  # accumulate=2: steps after batches 2 and 3
            expected += [(n, "batch", {"epoch": e, "batch": b, "step": step, "loss": pytest.approx(0.0, abs=10)})
                         for n in ("a", "b")]
        expected += [("a", "epoch", record), ("only", "epoch", e), ("b", "epoch", record)]
    expected += [("a", "end", 2), ("b", "end", 2)]
    assert events == expected
    assert all(ev[2] is rec for ev, rec in zip([ev for ev in events if ev[:2] == ("a", "epoch")], history))
    losses = [ev[2]["loss"] for ev in events if ev[:2] == ("a", "batch")]
    sizes = [4, 4, 2]  # the epoch's train_loss is the sample-weighted mean of its batch losses
    assert history[0]["train_loss"] == pytest.approx(sum(s * v for s, v in zip(sizes, losses[:3])) / 10, rel=1e-12)


def test_bad_callbacks_are_named():
    with pytest.raises(TypeError, match=r"callbacks\[0\] is the class EarlyStopping; pass an instance"):
        Trainer(_model(), callbacks=[EarlyStopping], **_opts())
    with pytest.raises(TypeError, match=r"callbacks\[1\] \(object\) has none of the methods on_train_start"):
        Trainer(_model(), callbacks=[Callback(), object()], **_opts())
    with pytest.raises(TypeError, match=r"callbacks must be a list of callback objects, got"):
        Trainer(_model(), callbacks=EarlyStopping(), **_opts())
    with pytest.raises(ValueError, match=r"mode must be one of \('min', 'max'\), got str 'up'"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match=r"patience must be an int >= 1, got 0"):
        EarlyStopping(patience=0)


def test_early_stopping_stops_and_a_resumed_run_stays_stopped(tmp_path, isolated_rng):
    x, y = worker.make_data(10, 8, 0)
    # The train loss falls every epoch, so in "max" mode it never improves after epoch 1.
    stop = EarlyStopping("train_loss", patience=2, mode="max")
    trainer = Trainer(_model(), callbacks=[stop], **_opts(epochs=10, checkpoint_dir=tmp_path))
    history = trainer.fit((x, y))
    assert len(history) == 3 and trainer.should_stop and stop.stopped_epoch == 3
    assert stop.best == history[0]["train_loss"] and stop.wait == 2
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["stopped"] is True and state["callbacks"] == [{"best": stop.best, "wait": 2, "stopped_epoch": 3}]
    again_stop = EarlyStopping("train_loss", patience=2, mode="max")
    again = Trainer(_model(), callbacks=[again_stop], **_opts(epochs=10, checkpoint_dir=tmp_path, resume=True))
    assert again.fit((x, y)) == history and again_stop.wait == 2
    kept = Trainer(_model(), callbacks=[EarlyStopping("train_loss", patience=2)], **_opts(epochs=5))
    assert len(kept.fit((x, y))) == 5  # "min": improves every epoch


def test_early_stopping_skips_epochs_without_evaluation_and_names_a_missing_key():
    x, y = worker.make_data(10, 8, 0)
    test = worker.make_data(4, 8, 1)
    stop = EarlyStopping("test/loss", patience=1, mode="max")
    history = Trainer(_model(), callbacks=[stop], **_opts(epochs=9, eval_every=3)).fit((x, y), test)
    assert [r["epoch"] for r in history if "test/loss" in r] == [3, 6] and len(history) == 6
    with pytest.raises(ValueError, match=r"monitor='val/loss' is not in the epoch record, which has \['epoch', "):
        Trainer(_model(), callbacks=[EarlyStopping("val/loss")], **_opts()).fit((x, y), test)


def test_tensorboard_logger_writes_every_record_number(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = worker.make_data(10, 8, 0)
    logger = TensorBoardLogger(log_batches=True)
    history = Trainer(_model(), callbacks=[logger], **_opts(checkpoint_dir=tmp_path)).fit(
        (x, y), {"8": worker.make_data(4, 8, 1)})
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"lr", "train_loss", "8/loss", "time_s", "batch/loss"}
    for key in ("lr", "train_loss", "8/loss"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        want = [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in history]  # float32 in the file
        assert logged == want, key
    assert [e.step for e in events.Scalars("batch/loss")] == list(range(1, 10))
    with pytest.raises(ValueError, match=r"TensorBoardLogger: pass log_dir, or give the Trainer a checkpoint_dir"):
        Trainer(_model(), callbacks=[TensorBoardLogger()], **_opts()).fit((x, y))


def test_tensorboard_logger_without_tensorboard_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"TensorBoardLogger needs the tensorboard package: pip install tensorboard"):
        TensorBoardLogger("runs")


def test_wandb_logger_logs_on_rank_0_and_needs_wandb(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"WandbLogger needs the wandb package: pip install wandb"):
        WandbLogger()
    calls: list = []

    class _Run:
        def log(self, data, step=None, commit=None):
            calls.append(("log", data, step))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(run=None, init=lambda **kw: calls.append(("init", kw)) or _Run())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    x, y = worker.make_data(10, 8, 0)
    history = Trainer(_model(), callbacks=[WandbLogger(project="p", mode="offline")], **_opts(epochs=2)).fit((x, y))
    assert calls[0][0] == "init" and calls[0][1]["project"] == "p" and calls[0][1]["config"]["epochs"] == 2
    logs = [c for c in calls if c[0] == "log"]
    assert [(c[2], c[1]["train_loss"]) for c in logs] == [(r["epoch"], r["train_loss"]) for r in history]
    assert calls[-1] == ("finish",)


def test_loggers_stay_silent_off_rank_0(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    x, y = worker.make_data(10, 8, 0)
    trainer = Trainer(_model(), callbacks=[TensorBoardLogger(tmp_path / "tb")], **_opts(epochs=1))
    monkeypatch.setattr(type(trainer), "is_main", property(lambda self: False))
    trainer.fit((x, y))
    assert not (tmp_path / "tb").exists()
