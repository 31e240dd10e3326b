"""Trainer options of issue 19: optimiser and scheduler objects, gradient accumulation, bf16 on
CPU, dict batches and TrainerConfig; each against a hand-written loop or a run without the option."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from operators import checkpoint
from operators.training import Trainer, TrainerConfig
from tests.operators import _ddp_worker as worker

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(dtype=torch.float64) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 4, 3, padding=1, dtype=dtype), nn.Tanh(), nn.Conv1d(4, 1, 1, dtype=dtype))


def _rel_l2(pred, y):
    return ((pred - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean()


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _no_time(history):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in history]


def _opts(**kw):
    return {**dict(epochs=2, batch_size=4, device="cpu", verbose=False, shuffle=False), **kw}


@pytest.fixture
def isolated_rng():
    state = checkpoint.capture_rng_state()
    yield
    checkpoint.restore_rng_state(state)


def _manual(model, x, y, *, epochs, batch, make_opt, make_sched=None, per_batch=False):
    """Plain loop: in order, relative L2, optimiser/scheduler built the same way as the Trainer's."""
    opt = make_opt(list(model.parameters()))
    sched = make_sched(opt) if make_sched else None
    lrs = []
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            lrs.append(opt.param_groups[0]["lr"])
            loss = _rel_l2(model(x[i : i + batch]), y[i : i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None and per_batch:
                sched.step()
        if sched is not None and not per_batch:
            sched.step()
    return _weights(model), lrs


@pytest.mark.parametrize("as_callable", [False, True], ids=["instance", "callable"])
def test_optimizer_and_scheduler_objects_take_effect(as_callable):
    x, y = worker.make_data(12, 8, 0)
    make_opt = lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)  # noqa: E731
    make_sched = lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.5)  # noqa: E731
    model = _model()
    if as_callable:
        trainer = Trainer(model, optimizer=make_opt, scheduler=make_sched, **_opts(epochs=3))
    else:
        opt = make_opt(list(model.parameters()))
        trainer = Trainer(model, optimizer=opt, scheduler=make_sched(opt), **_opts(epochs=3))
    history = trainer.fit((x, y))
    expected, _ = _manual(_model(), x, y, epochs=3, batch=4, make_opt=make_opt, make_sched=make_sched)
    for k, v in _weights(trainer.model).items():
        torch.testing.assert_close(v, expected[k], rtol=1e-12, atol=1e-14)
    assert [r["lr"] for r in history] == pytest.approx([0.05, 0.025, 0.0125], rel=1e-12)
    assert trainer.config.scheduler == "custom" and type(trainer.optimizer).__name__ == "SGD"
    default, _ = _manual(_model(), x, y, epochs=3, batch=4, make_opt=lambda p: torch.optim.AdamW(p, lr=1e-3))
    assert not torch.allclose(default["0.weight"], expected["0.weight"])  # the objects mattered


def test_one_cycle_steps_per_batch_and_interval_can_be_forced():
    x, y = worker.make_data(12, 8, 0)  # 3 batches an epoch
    make_opt = lambda p: torch.optim.SGD(p, lr=0.01)  # noqa: E731
    make_sched = lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=6)  # noqa: E731
    trainer = Trainer(_model(), optimizer=make_opt, scheduler=make_sched, **_opts())
    assert trainer.scheduler_interval == "batch"
    history = trainer.fit((x, y))
    expected, lrs = _manual(_model(), x, y, epochs=2, batch=4, make_opt=make_opt, make_sched=make_sched,
                            per_batch=True)
    for k, v in _weights(trainer.model).items():
        torch.testing.assert_close(v, expected[k], rtol=1e-12, atol=1e-14)
    assert [r["lr"] for r in history] == pytest.approx([lrs[0], lrs[3]], rel=1e-12)
    forced = Trainer(_model(), optimizer=make_opt, scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, 0.5),
                     scheduler_interval="batch", **_opts())
    forced.fit((x, y))
    assert forced.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**6)


def test_reduce_on_plateau_steps_on_the_train_loss():
    x, y = worker.make_data(12, 8, 0)
    trainer = Trainer(_model(), optimizer=lambda p: torch.optim.SGD(p, lr=1e-6),
                      scheduler=lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.1, patience=0,
                                                                                    threshold=0.5),
                      **_opts(epochs=3))
    trainer.fit((x, y))  # lr 1e-6 barely moves: no epoch improves by 50%, so lr drops each epoch after the first
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-8, rel=1e-9)


def test_bad_optimizer_and_scheduler_arguments_are_named():
    model = _model()
    other = torch.optim.SGD([nn.Parameter(torch.zeros(3))], lr=0.1)
    with pytest.raises(ValueError, match=r"optimizer holds 1 tensors that are not the model's trainable parameters"):
        Trainer(model, optimizer=other, **_opts())
    with pytest.raises(TypeError, match=r"got the class SGD; pass e\.g\. optimizer=lambda p: SGD\(p, lr=\.\.\.\)"):
        Trainer(model, optimizer=torch.optim.SGD, **_opts())
    with pytest.raises(TypeError, match=r"optimizer\(params\) must return a torch\.optim\.Optimizer, got int 3"):
        Trainer(model, optimizer=lambda p: 3, **_opts())
    with pytest.raises(ValueError, match=r"scheduler steps another optimizer than the Trainer's"):
        Trainer(model, scheduler=torch.optim.lr_scheduler.StepLR(other, 1), **_opts())
    with pytest.raises(ValueError, match=r"scheduler must be one of \('cosine', 'step', 'constant'\), got str 'linear'"):
        Trainer(model, scheduler="linear", **_opts())
    with pytest.raises(ValueError, match=r"scheduler='custom' needs a scheduler object"):
        Trainer(model, scheduler="custom", **_opts())
    with pytest.raises(ValueError, match=r"scheduler_interval must be one of \('epoch', 'batch'\) or None, got str 'step'"):
        Trainer(model, scheduler_interval="step", **_opts())


# -------------------------------------------------------------- accumulation
@pytest.mark.parametrize("n", [12, 10], ids=["even", "short-last-group"])
def test_accumulate_equals_one_step_on_the_larger_batch(n):
    x, y = worker.make_data(n, 8, 0)
    trainer = Trainer(_model(), **_opts(epochs=3, batch_size=2, accumulate=2, lr=1e-2))
    history = trainer.fit((x, y))
    expected, _ = _manual(_model(), x, y, epochs=3, batch=4, make_opt=lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-4),
                          make_sched=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3))
    for k, v in _weights(trainer.model).items():
        torch.testing.assert_close(v, expected[k], rtol=1e-9, atol=1e-12)
    assert [r["step"] for r in history] == [math.ceil(n / 4) * (e + 1) for e in range(3)]
    plain = Trainer(_model(), **_opts(epochs=3, batch_size=2, lr=1e-2))
    plain.fit((x, y))
    assert not torch.allclose(_weights(plain.model)["0.weight"], expected["0.weight"])  # accumulation mattered


# ------------------------------------------------------------------ bf16 on CPU
def test_bf16_on_cpu_trains_and_resumes_bit_identically(tmp_path, isolated_rng):
    x, y = (t.float() for t in worker.make_data(16, 16, 0))
    opts = _opts(epochs=6, lr=2e-2, amp="bf16", shuffle=True)
    ran = Trainer(_model(torch.float32), **opts)
    seen = []
    ran.model.register_forward_hook(lambda m, i, o: seen.append(o.dtype) if m.training else None)
    history = ran.fit((x, y))
    assert torch.bfloat16 in seen  # autocast was on
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]

    class Stop(Exception):
        pass

    def crash_in_epoch_4(trainer, batch):
        if batch["epoch"] == 4 and batch["batch"] == 2:
            raise Stop

    class Crash:
        on_batch_end = staticmethod(crash_in_epoch_4)

    with pytest.raises(Stop):
        Trainer(_model(torch.float32), callbacks=[Crash()], checkpoint_dir=tmp_path, **opts).fit((x, y))
    resumed = Trainer(_model(torch.float32), checkpoint_dir=tmp_path, resume=True, **opts)
    assert resumed.epoch == 3
    assert _no_time(resumed.fit((x, y))) == _no_time(history)
    for k, v in _weights(ran.model).items():
        assert torch.equal(_weights(resumed.model)[k], v), k


# ---------------------------------------------------------------- dict batches
class _DictData(Dataset):
    """Items like neuraloperator's data sets: {"x": ..., "y": ...}."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i], "meta": i}


def test_dict_batches_train_like_pairs(isolated_rng):
    x, y = worker.make_data(10, 8, 0)
    tests = {"t": worker.make_data(5, 8, 1)}
    pairs = Trainer(_model(), **_opts(shuffle=True)).fit(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True),
                                                         tests)
    keyed = Trainer(_model(), batch_keys=("x", "y"), **_opts(shuffle=True))
    history = keyed.fit(DataLoader(_DictData(x, y), batch_size=4, shuffle=True),
                        {"t": DataLoader(_DictData(*tests["t"]), batch_size=4)})
    assert _no_time(history) == _no_time(pairs)
    with pytest.raises(TypeError, match=r"train: the DataLoader yields dicts \(keys \['meta', 'x', 'y'\]\); pass batch_keys"):
        Trainer(_model(), **_opts()).fit(DataLoader(_DictData(x, y), batch_size=4))
    with pytest.raises(ValueError, match=r"batch_keys=\('x', 'target'\), but a batch has no key 'target'"):
        Trainer(_model(), batch_keys=("x", "target"), **_opts()).fit(DataLoader(_DictData(x, y), batch_size=4))
    with pytest.raises(TypeError, match=r"batch_keys must be two strings"):
        Trainer(_model(), batch_keys="x", **_opts())


# --------------------------------------------------------------- TrainerConfig
def test_config_and_keywords_are_the_same_trainer():
    x, y = worker.make_data(10, 8, 0)
    config = TrainerConfig(epochs=3, batch_size=4, lr=1e-2, scheduler="step", step_size=1, device="cpu",
                           verbose=False)
    a = Trainer(_model(), config=config)
    b = Trainer(_model(), epochs=3, batch_size=4, lr=1e-2, scheduler="step", step_size=1, device="cpu", verbose=False)
    assert a.config == b.config == config
    assert _no_time(a.fit((x, y))) == _no_time(b.fit((x, y)))
    c = Trainer(_model(), config=config, epochs=1)  # keywords apply over the config
    assert c.config.epochs == 1 and c.epochs == 1 and c.config.lr == 1e-2
    with pytest.raises(AttributeError):
        config.epochs = 5  # frozen
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['epoch'\]; settings are the TrainerConfig"):
        Trainer(_model(), epoch=3)
    with pytest.raises(TypeError, match=r"config must be a TrainerConfig, got dict"):
        Trainer(_model(), config={"epochs": 3})
    with pytest.raises(TypeError, match=r"overwrite must be a bool, got str 'yes'"):
        TrainerConfig(overwrite="yes")


def test_checkpoint_stores_the_model_spec_and_load_model_rebuilds_it(tmp_path):
    from operators import FNO
    from operators import saving

    x, y = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    fno = FNO(1, 1, (3, 3), hidden_channels=4, n_layers=1)
    Trainer(fno, **_opts(epochs=1, checkpoint_dir=tmp_path / "fno")).fit((x, y))
    state = torch.load(tmp_path / "fno" / "checkpoint.pt", weights_only=True)
    assert state["model_spec"] == saving.model_spec(fno)
    rebuilt = saving.load_model(tmp_path / "fno" / "checkpoint.pt")
    fno.eval()
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(x), fno(x))
    Trainer(_model(), **_opts(epochs=1, checkpoint_dir=tmp_path / "seq")).fit(worker.make_data(4, 8, 0))
    assert torch.load(tmp_path / "seq" / "checkpoint.pt", weights_only=True)["model_spec"] is None
