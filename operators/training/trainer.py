"""Trainer: fit any model on tensors or DataLoaders, in one process or under torchrun.

Legend: ``n`` samples, ``B`` batch, ``C`` channels, ``*grid`` the spatial axes of one
sample; data sets are pairs ``inputs (n, C_in, *grid)``, ``targets (n, C_out, *grid)``
(any shapes the model and loss accept; only the leading sample axis is shared).

Settings live in :class:`~operators.training.config.TrainerConfig`; callbacks in
:mod:`operators.training.callbacks`; batching, sharding and the per-epoch order in
:mod:`operators._distributed`; atomic files and RNG states in :mod:`operators.checkpoint`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm import tqdm

from operators.checkpoint import (
    _fsync_dir,
    append_jsonl,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    write_jsonl,
)
from operators._distributed import (
    BatchSource,
    all_gather_objects,
    all_reduce_sum,
    make_source,
    resolve_device,
    setup_distributed,
)
from operators.losses import LpLoss
from operators.training._setup import (
    OptimizerArg,
    SchedulerArg,
    build_optimizer,
    build_scheduler,
    check_callbacks,
    check_run_folder,
    model_spec_or_none,
    previous_path,
    remove_files,
    scheduler_interval,
    set_aside,
)
from operators.training.config import AMP_MODES, SCHEDULERS, TrainerConfig
from spectral.checks import check_int

__all__ = ["Trainer", "NonFiniteLossError", "SCHEDULERS", "AMP_MODES"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Record = dict[str, Any]
Batch = tuple[torch.Tensor, torch.Tensor, int, int]
# Settings added after checkpoints first recorded their config: checked against these defaults when absent.
_LATER_SETTINGS = {"accumulate": 1, "scheduler_interval": "epoch", "optimizer": "AdamW"}
class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; raised before that optimiser step.

    Attributes ``epoch`` and ``batch`` are 1-based; ``value`` is the local loss, or None
    when only another rank saw the non-finite value.
    """

    def __init__(self, epoch: int, batch: int, value: float | None = None) -> None:
        self.epoch, self.batch, self.value = epoch, batch, value
        seen = f"loss = {value}" if value is not None else "seen on another rank"
        super().__init__(
            f"non-finite training loss at epoch {epoch}, batch {batch} ({seen}); "
            "training stopped before the optimiser step"
        )

    def __reduce__(self) -> tuple[type, tuple[int, int, float | None]]:
        return type(self), (self.epoch, self.batch, self.value)


def _default_loss() -> LossFn:
    """Relative L2 over all channels and grid points, batch mean.

    :class:`operators.losses.LpLoss` on a periodic grid weights every point equally,
    so its relative norm does not depend on how many trailing axes it calls grid: one
    axis serves data of any dimension.
    """
    return LpLoss(1, 2.0, relative=True, reduction="mean", periodic=True)


def _length(source: BatchSource) -> int | None:
    try:
        return len(source)
    except TypeError:  # a DataLoader over an IterableDataset without __len__
        return None


class Trainer:
    """Train a model (AdamW and a per-epoch schedule unless told otherwise), resumably.

    Minimises ``loss(model(x), y)`` (a batch mean) over ``train``; after the epochs
    chosen by ``eval_every`` (and the last) evaluates every test set, appends a record
    to :attr:`history` and the JSON-lines ``metrics_file``, runs the callbacks and writes
    a checkpoint atomically. Launched by ``torchrun`` it wraps the model in
    DistributedDataParallel (gloo on CPU, NCCL on CUDA) with the same global batch and the
    same results as one process; only rank 0 writes files and shows progress; metrics
    are all-reduced.

    Parameters
    ----------
    model : nn.Module
        Moved to ``device``; :attr:`model` is the unwrapped module.
    config : TrainerConfig, optional
        The settings (epochs, batch size, lr, schedule, accumulation, AMP, checkpoint
        folder, ...; see :class:`~operators.training.config.TrainerConfig`).
    optimizer : torch.optim.Optimizer or callable, optional
        An optimiser over the model's parameters, or ``optimizer(params) -> Optimizer``
        called with the trainable parameters after the model moved to ``device``.
        Default ``AdamW(params, lr, weight_decay)``.
    scheduler : str, LRScheduler or callable, optional
        A name (``"cosine"``, ``"step"``, ``"constant"``; the same as ``config.scheduler``),
        a scheduler over :attr:`optimizer`, or ``scheduler(optimizer) -> scheduler``. Stepped
        per epoch or per optimiser step (``scheduler_interval``; OneCycleLR and CyclicLR
        default to per step); ``ReduceLROnPlateau`` steps on the epoch's ``train_loss``.
    loss : callable, optional
        ``loss(pred, target) -> scalar`` batch mean; default relative L2,
        ``LpLoss(1)`` (:class:`operators.losses.LpLoss`).
    metrics : mapping of str to callable, optional
        Extra batch-mean metrics reported per test set next to ``"loss"``.
    callbacks : list, optional
        Objects with any of ``on_train_start``, ``on_batch_end``, ``on_epoch_end``,
        ``on_train_end`` (see :mod:`operators.training.callbacks`), run in order.
        A callback stops training by setting :attr:`should_stop`.
    **settings
        Any :class:`TrainerConfig` field (``epochs=..., lr=...``), applied over ``config``.

    Raises
    ------
    ValueError, TypeError
        For a bad argument, naming it and its value (``device`` too: an unknown device
        type, or CUDA when it is not available).
    FileExistsError
        When ``checkpoint_dir`` holds a previous run's checkpoint and neither ``resume``
        nor ``overwrite`` is set (the message names the folder).
    NonFiniteLossError
        From :meth:`fit`, naming the epoch and batch, when the loss is NaN or infinite.

    Notes
    -----
    * Resuming restores the model, optimiser, scheduler, GradScaler, callback states,
      every RNG stream (torch CPU and CUDA, numpy, ``random``; per rank under torchrun)
      as they were after the last completed epoch and replays the data order of
      ``(seed, epoch)``, so a killed run finishes bit-identical to an uninterrupted one
      (given the same hardware and thread count). The same settings are required, and
      :meth:`fit` requires the same training batches: the global batch size, ``shuffle``,
      ``drop_last`` and sample count of the data actually used (a DataLoader's own, not
      the Trainer's, when ``train`` is one). A custom optimiser or scheduler must be
      built the same way again; their states come from the checkpoint.
    * ``overwrite=True`` deletes nothing up front: the first :meth:`fit` renames the old
      ``checkpoint.pt`` and metrics file to ``checkpoint.previous.pt`` /
      ``metrics.previous.jsonl`` and removes them once it has written its own first
      checkpoint, so a run that dies before that leaves the previous run's files, and
      ``resume=True`` does not mistake them for its own progress (it starts over).
    * The checkpoint also stores ``model_spec`` (:func:`operators.saving.model_spec`,
      None for classes it cannot rebuild), so ``operators.load_model`` can rebuild the
      model from it.
    * ``amp="bf16"`` autocasts on CPU and CUDA, ``"fp16"`` on CUDA with a GradScaler; the
      loss is computed in the target dtype.
    * Under torchrun every rank reads the checkpoint: the folder must be shared.
      Default DataLoaders are rebuilt around a sharding sampler; loaders with a
      custom sampler or an iterable dataset are used as given, in one process only.
    * The non-finite check reads the loss every step (one host sync per step).

    Shape
    -----
    ``fit(train=(inputs (n, *in_shape), targets (n, *out_shape)))``; the model maps
    ``(B, *in_shape) -> (B, *out_shape)``.

    Examples
    --------
    >>> x = torch.randn(16, 1, 8); y = 2 * x
    >>> trainer = Trainer(nn.Conv1d(1, 1, 1), epochs=2, batch_size=4, device="cpu", verbose=False)
    >>> history = trainer.fit((x, y), test={"8": (x, y)})
    >>> sorted(history[-1])
    ['8/loss', 'epoch', 'lr', 'step', 'time_s', 'train_loss']
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        config: TrainerConfig | None = None,
        optimizer: OptimizerArg = None,
        scheduler: SchedulerArg = None,
        loss: LossFn | None = None,
        metrics: Mapping[str, LossFn] | None = None,
        callbacks: Sequence[Any] | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        config = self._merge_config(config, scheduler, settings)
        scheduler = None if isinstance(scheduler, str) else scheduler
        if scheduler is not None:
            config = config.replace(scheduler="custom")
        if loss is not None and not callable(loss):
            raise TypeError(f"loss must be callable, got {type(loss).__name__}")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise TypeError(
                "metrics must be a mapping of names to callables, e.g. metrics={'mse': fn}, "
                f"got {type(metrics).__name__}: metrics={metrics!r}"
            )
        metrics = dict(metrics or {})
        for name, fn in metrics.items():
            if not isinstance(name, str) or name == "loss" or not callable(fn):
                raise ValueError(f"metrics must map names other than 'loss' to callables, got {name!r}: {fn!r}")
        self.callbacks = check_callbacks(callbacks)
        self.device = resolve_device(config.device)
        if config.amp == "fp16" and self.device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device (use amp='bf16' on CPU), got device={self.device}")
        self.checkpoint_path = None if config.checkpoint_dir is None else Path(config.checkpoint_dir) / "checkpoint.pt"
        check_run_folder(self.checkpoint_path, config)
        self.config = config

        self.dist = setup_distributed(self.device)
        self.model = model.to(self.device)
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise ValueError(f"model has no trainable parameters: {type(model).__name__}")
        device_ids = [self.device] if self.device.type == "cuda" else None
        self._train_model = DistributedDataParallel(model, device_ids=device_ids) if self.dist.enabled else model
        self.optimizer = build_optimizer(optimizer, self._params, config)
        self.scheduler = build_scheduler(scheduler, self.optimizer, config)
        self.scheduler_interval = scheduler_interval(self.scheduler, config)
        self.scaler = torch.amp.GradScaler("cuda") if config.amp == "fp16" else None
        self.loss_fn: LossFn = loss if loss is not None else _default_loss()
        self.metrics: dict[str, LossFn] = {"loss": self.loss_fn, **metrics}
        # Checked on resume; the batching is checked in fit, from the data actually used.
        self._config = {
            "epochs": config.epochs, "lr": config.lr, "weight_decay": config.weight_decay,
            "scheduler": config.scheduler, "step_size": config.resolved_step_size, "gamma": config.gamma,
            "grad_clip": config.grad_clip, "seed": config.seed, "amp": config.amp,
        }
        self._later = {"accumulate": config.accumulate, "scheduler_interval": self.scheduler_interval,
                       "optimizer": type(self.optimizer).__name__}
        self.history: list[Record] = []
        self.epoch = 0
        self.step = 0
        self.should_stop = False
        metrics_file = config.metrics_file
        if metrics_file is None and config.checkpoint_dir is not None:
            metrics_file = Path(config.checkpoint_dir) / "metrics.jsonl"
        self.metrics_path = None if metrics_file is None else Path(metrics_file)
        auto = sys.stdout.isatty() and sys.stderr.isatty()
        self._progress = self.dist.is_main and (auto if config.verbose is None else config.verbose)
        self._pending: dict[str, Any] | None = None
        self._fresh_start = not config.resume and self.checkpoint_path is not None  # done by the first fit
        self._previous_files: list[Path] = []
        if config.resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self._load(self.checkpoint_path)
        elif config.resume:  # continues a run that had no checkpoint yet: it may have set files aside
            self._previous_files = [previous_path(p) for p in (self.checkpoint_path, self.metrics_path)
                                    if p is not None and previous_path(p).exists()]

    @staticmethod
    def _merge_config(config: TrainerConfig | None, scheduler: Any, settings: dict[str, Any]) -> TrainerConfig:
        if config is not None and not isinstance(config, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
        unknown = sorted(set(settings) - set(TrainerConfig.fields()))
        if unknown:
            raise TypeError(
                f"Trainer got unexpected keyword arguments {unknown}; settings are the TrainerConfig fields: "
                f"{', '.join(TrainerConfig.fields())}"
            )
        if isinstance(scheduler, str):
            settings = {**settings, "scheduler": scheduler}
        return (config or TrainerConfig()).replace(**settings)

    # Read-only views of the settings, as attributes of earlier versions.
    epochs = property(lambda self: self.config.epochs)
    batch_size = property(lambda self: self.config.batch_size)
    eval_batch_size = property(lambda self: self.config.resolved_eval_batch_size)
    eval_every = property(lambda self: self.config.eval_every)
    seed = property(lambda self: self.config.seed)
    amp = property(lambda self: self.config.amp)
    grad_clip = property(lambda self: self.config.grad_clip)
    shuffle = property(lambda self: self.config.shuffle)
    drop_last = property(lambda self: self.config.drop_last)

    @property
    def is_main(self) -> bool:
        """True on rank 0 (and in a single process): the rank that writes files and logs."""
        return self.dist.is_main

    def __repr__(self) -> str:
        batching = {"batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}
        opts = ", ".join(f"{k}={v!r}" for k, v in {**self._config, **self._later, **batching}.items())
        return (
            f"Trainer({type(self.model).__name__}, {opts}, device={self.device}, "
            f"world_size={self.dist.world_size}, epoch={self.epoch})"
        )

    # ---------------------------------------------------------------- public API
    def fit(self, train: object, test: object = None) -> list[Record]:
        """Train from :attr:`epoch` to ``epochs`` (or until a callback stops it); return :attr:`history`.

        ``train``: ``(inputs, targets)`` tensors or a DataLoader yielding such pairs (or
        dicts, with ``batch_keys``). ``test``: None, one such data set (named ``"test"``),
        or a mapping name -> data set (e.g. one per resolution); metric ``m`` of set ``s``
        is recorded as ``"s/m"``. A resumed run raises ValueError, naming each difference,
        when ``train`` batches otherwise than the run that wrote the checkpoint.
        """
        source = self._source(train, "train", train=True)
        if _length(source) == 0:
            raise ValueError("train yields no batches (drop_last=True with fewer samples than batch_size?)")
        tests = self._test_sources(test)
        self._start(source)
        self._call("on_train_start")
        with tqdm(total=self.epochs, initial=self.epoch, desc="training", unit="epoch",
                  disable=not self._progress, dynamic_ncols=True) as bar:
            for epoch in range(self.epoch, self.epochs):
                if self.should_stop:
                    break
                record = self._run_epoch(source, tests, epoch)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.endswith("loss")}, refresh=False)
                bar.update(1)
        self._call("on_train_end")
        return self.history

    def evaluate(self, test: object) -> dict[str, dict[str, float]]:
        """Metrics (``"loss"`` and ``metrics``) per test set, as sample means over all ranks."""
        return self._evaluate(self._test_sources(test))

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, *, batch_size: int | None = None) -> torch.Tensor:
        """``model(inputs)`` in eval mode, batch by batch, returned on ``inputs.device``.

        Shape: ``(n, *in_shape) -> (n, *out_shape)``.
        """
        if not isinstance(inputs, torch.Tensor) or inputs.ndim == 0:
            raise TypeError(f"inputs must be a tensor with a sample axis, got {type(inputs).__name__}")
        if len(inputs) == 0:
            raise ValueError(f"inputs must hold at least one sample, got inputs of shape {tuple(inputs.shape)}")
        step = check_int("batch_size", self.eval_batch_size if batch_size is None else batch_size)
        was_training = self.model.training
        self.model.eval()
        try:
            outs = [self._forward(self.model, inputs[i : i + step].to(self.device)).to(inputs.device)
                    for i in range(0, len(inputs), step)]
        finally:
            self.model.train(was_training)
        return torch.cat(outs)

    # ------------------------------------------------------------------ epochs
    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _source(self, data: object, what: str, *, train: bool) -> BatchSource:
        return make_source(
            data, what, batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=self.shuffle, drop_last=self.drop_last, seed=self.seed, ctx=self.dist, train=train,
            batch_keys=self.config.batch_keys,
        )

    def _test_sources(self, test: object) -> dict[str, BatchSource]:
        if test is None:
            return {}
        sets = test if isinstance(test, Mapping) else {"test": test}
        for name in sets:
            if not isinstance(name, str) or not name:
                raise ValueError(f"test set names must be non-empty strings, got {name!r}")
        return {name: self._source(data, f"test set {name!r}", train=False) for name, data in sets.items()}

    def _forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp or "")
        with torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext():
            return model(x)

    def _loss(self, fn: LossFn, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.amp is not None and pred.is_floating_point():
            pred = pred.to(y.dtype if y.is_floating_point() else torch.float32)
        value = fn(pred, y)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"a loss/metric must return a scalar tensor (the batch mean), got {shape}")
        return value.reshape(())

    def _run_epoch(self, source: BatchSource, tests: dict[str, BatchSource], epoch: int) -> Record:
        start, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]
        train_loss = self._train_epoch(source, epoch)
        record: Record = {"epoch": epoch + 1, "step": self.step, "lr": lr, "train_loss": train_loss}
        if tests and ((epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs):
            for name, values in self._evaluate(tests).items():
                record.update({f"{name}/{k}": v for k, v in values.items()})
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(train_loss)
        elif self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        record["time_s"] = time.perf_counter() - start
        self.history.append(record)
        self.epoch = epoch + 1
        self._call("on_epoch_end", record)
        stop = torch.tensor(float(bool(self.should_stop)), dtype=torch.float64, device=self.device)
        self.should_stop = bool(all_reduce_sum(stop, self.dist).item())  # every rank stops together
        self._save(source)
        if self.dist.is_main and self.metrics_path is not None:
            append_jsonl(record, self.metrics_path)
        return record

    def _train_epoch(self, source: BatchSource, epoch: int) -> float:
        """One pass over ``source``: one optimiser step per group of ``accumulate`` batches."""
        self._train_model.train()
        total, count, group = 0.0, 0, []
        bar = tqdm(source.batches(epoch), total=_length(source), desc=f"epoch {epoch + 1}/{self.epochs}",
                   leave=False, disable=not self._progress, dynamic_ncols=True)
        for b, batch in enumerate(bar):
            group.append(batch)
            if len(group) == self.config.accumulate:
                losses = self._train_group(group, epoch, b + 1 - len(group))
                total += sum(v * n_global for v, (*_, n_global) in zip(losses, group))
                count += sum(n_global for *_, n_global in group)
                bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
                group = []
        if group:  # the epoch's last, shorter group
            losses = self._train_group(group, epoch, b + 1 - len(group))
            total += sum(v * n_global for v, (*_, n_global) in zip(losses, group))
            count += sum(n_global for *_, n_global in group)
        if count == 0:
            raise ValueError(f"train yielded no batches in epoch {epoch + 1}")
        return total / count

    def _train_group(self, group: list[Batch], epoch: int, first: int) -> list[float]:
        """Backward every batch of ``group`` (0-based index of its first: ``first``), then one optimiser step.

        Each rank weights its batch-mean loss by ``W * n_local / N``, ``N`` the group's global
        sample count: DDP's average over ranks, summed over the group, is then the gradient of
        the mean loss over the group's samples (for one batch, the global-batch mean).
        """
        n_group = sum(n_global for *_, n_global in group)
        losses = []
        for i, (x, y, n_local, n_global) in enumerate(group):
            b = first + i
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            last = i == len(group) - 1
            sync = nullcontext() if last or not self.dist.enabled else self._train_model.no_sync()
            with sync:
                loss = self._loss(self.loss_fn, self._forward(self._train_model, x), y)
                value = loss.detach().to(torch.float64)
                stats = torch.zeros(2, dtype=torch.float64, device=value.device)
                if n_local:  # n_local == 0: a placeholder sample (see _distributed), weight 0
                    stats = torch.stack([value * n_local, (~torch.isfinite(value)).to(torch.float64)])
                weighted_sum, bad = all_reduce_sum(stats, self.dist).tolist()
                if bad:
                    local = value.item() if n_local and not math.isfinite(value.item()) else None
                    raise NonFiniteLossError(epoch + 1, b + 1, local)
                scaled = loss * (n_local * self.dist.world_size / n_group)
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            if last:
                self._optimizer_step()
            losses.append(weighted_sum / n_global)
            self._call("on_batch_end", {"epoch": epoch + 1, "batch": b + 1, "step": self.step, "loss": losses[-1]})
        return losses

    def _optimizer_step(self) -> None:
        if self.grad_clip is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self._params, self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()

    @torch.no_grad()
    def _evaluate(self, sources: dict[str, BatchSource]) -> dict[str, dict[str, float]]:
        was_training = self.model.training
        self.model.eval()  # the unwrapped module: DDP's forward would sync buffers
        results: dict[str, dict[str, float]] = {}
        try:
            for name, source in sources.items():
                sums = torch.zeros(len(self.metrics) + 1, dtype=torch.float64, device=self.device)
                for x, y, n, _ in source.batches(0):
                    pred = self._forward(self.model, x.to(self.device))
                    y = y.to(self.device)
                    for i, fn in enumerate(self.metrics.values()):
                        sums[i] += self._loss(fn, pred, y).to(torch.float64) * n
                    sums[-1] += n
                values = all_reduce_sum(sums, self.dist).tolist()
                if values[-1] == 0:  # after the all-reduce: every rank raises
                    raise ValueError(f"{source.what} yielded no samples: got an empty DataLoader")
                results[name] = {k: values[i] / values[-1] for i, k in enumerate(self.metrics)}
        finally:
            self.model.train(was_training)
        return results

    # ------------------------------------------------------------- checkpoints
    def _start(self, source: BatchSource) -> None:
        """Check and apply a loaded checkpoint, or set the previous run's files aside; reset the metrics file.

        Rank 0 writes the files; every rank learns whether that failed, so all raise together.
        """
        if self._pending is not None:
            if self._pending["train_data"] is not None:
                self._check_batching(self._pending["train_data"], source.settings)
            states = self._pending["rng"]
            restore_rng_state(states[min(self.dist.rank, len(states) - 1)])
            source.set_rng_state(self._pending["loader_rng"])
            self._pending = None
        error: OSError | None = None
        if self.dist.is_main:
            try:
                if self._fresh_start:  # kept (renamed) until this run's first checkpoint
                    self._previous_files += set_aside([self.checkpoint_path, self.metrics_path])
                    _fsync_dir(self.checkpoint_path.parent)
                if self.metrics_path is not None:
                    write_jsonl(self.history, self.metrics_path)
            except OSError as err:
                error = err
        failed = torch.tensor(float(error is not None), dtype=torch.float64, device=self.device)
        if all_reduce_sum(failed, self.dist).item():
            if error is not None:
                raise error
            raise RuntimeError("rank 0 could not set aside checkpoint_dir's previous files; see its error")
        self._fresh_start = False

    def _check_batching(self, saved: dict[str, Any], now: dict[str, Any]) -> None:
        diffs = [f"{k}: {saved.get(k)!r} in the checkpoint, {v!r} now" for k, v in now.items() if saved.get(k) != v]
        if diffs:
            raise ValueError(
                f"resume=True: {self.checkpoint_path} was written with other training batches "
                f"({'; '.join(diffs)}); use the same data and batching or another checkpoint_dir"
            )

    def _save(self, source: BatchSource) -> None:
        if self.checkpoint_path is None:
            return
        rng = all_gather_objects(capture_rng_state(), self.dist)  # collective: every rank
        if not self.dist.is_main:
            return
        save_checkpoint(
            self.checkpoint_path, epoch=self.epoch, step=self.step, model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=None if self.scheduler is None else self.scheduler.state_dict(),
            scaler=None if self.scaler is None else self.scaler.state_dict(),
            rng=rng, loader_rng=source.rng_state(), history=self.history,
            config={**self._config, **self._later, "train_data": source.settings},
            world_size=self.dist.world_size,
            callbacks=[cb.state_dict() if callable(getattr(cb, "state_dict", None)) else None
                       for cb in self.callbacks],
            stopped=self.should_stop, model_spec=model_spec_or_none(self.model),
        )
        if self._previous_files:  # this run now has a checkpoint of its own
            remove_files(self._previous_files)
            _fsync_dir(self.checkpoint_path.parent)
            self._previous_files = []

    def _load(self, path: Path) -> None:
        state = load_checkpoint(path, config=self._config)
        saved = state["config"]
        diffs = [f"{k}: {saved.get(k, d)!r} in the checkpoint, {self._later[k]!r} now"
                 for k, d in _LATER_SETTINGS.items() if saved.get(k, d) != self._later[k]]
        if diffs:
            raise ValueError(f"resume=True: {path} was written with other settings ({'; '.join(diffs)}); "
                             "use the same settings or another checkpoint_dir")
        batching = saved.get("train_data")
        if batching is None:  # written before the batching was recorded: checked as it was then
            self._check_batching(saved, {"batch_size": self.batch_size, "shuffle": self.shuffle,
                                         "drop_last": self.drop_last})
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        for cb, cb_state in zip(self.callbacks, state.get("callbacks") or [], strict=False):
            if cb_state is not None and callable(getattr(cb, "load_state_dict", None)):
                cb.load_state_dict(cb_state)
        self.epoch, self.step, self.history = state["epoch"], state["step"], list(state["history"])
        self.should_stop = bool(state.get("stopped", False))
        self._pending = {"rng": state["rng"], "loader_rng": state["loader_rng"], "train_data": batching}
