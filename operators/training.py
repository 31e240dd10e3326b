"""Trainer: fit any model on tensors or DataLoaders, in one process or under torchrun.

Legend: ``n`` samples, ``B`` batch, ``C`` channels, ``*grid`` the spatial axes of one
sample; data sets are pairs ``inputs (n, C_in, *grid)``, ``targets (n, C_out, *grid)``
(any shapes the model and loss accept; only the leading sample axis is shared).

Batching, sharding and the per-epoch order live in :mod:`operators._distributed`;
atomic files and RNG states in :mod:`operators.checkpoint`.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
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
from spectral.checks import check_choice, check_int, check_number

__all__ = ["Trainer", "NonFiniteLossError", "SCHEDULERS", "AMP_MODES"]

SCHEDULERS = ("cosine", "step", "constant")
AMP_MODES = ("bf16", "fp16")
Scheduler = Literal["cosine", "step", "constant"]
AmpMode = Literal["bf16", "fp16"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Record = dict[str, Any]


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
    """Train a model with AdamW and a per-epoch learning-rate schedule.

    Minimises ``loss(model(x), y)`` (a batch mean) over ``train``; after the epochs
    chosen by ``eval_every`` (and the last) evaluates every test set, appends a record
    to :attr:`history` and the JSON-lines ``metrics_file``, and writes a checkpoint
    atomically. Launched by ``torchrun`` it wraps the model in DistributedDataParallel
    (gloo on CPU, NCCL on CUDA) with the same global batch and the same results as one
    process; only rank 0 writes files and shows progress; metrics are all-reduced.

    Parameters
    ----------
    model : nn.Module
        Moved to ``device``; :attr:`model` is the unwrapped module.
    epochs, batch_size : int
        Number of epochs (>= 1); global batch size for tensor data (a DataLoader's own
        ``batch_size``, ``shuffle`` and ``drop_last`` are used instead; this ``batch_size``
        then only sets ``eval_batch_size``'s default).
    lr, weight_decay : float
        AdamW learning rate (> 0) and decoupled weight decay (>= 0).
    scheduler : {"cosine", "step", "constant"}
        Per epoch: cosine annealing to 0 over ``epochs``, or ``lr * gamma ** (epoch //
        step_size)`` (``step_size`` default ``max(1, epochs // 4)``), or constant.
    loss : callable, optional
        ``loss(pred, target) -> scalar`` batch mean; default relative L2,
        ``LpLoss(1)`` (:class:`operators.losses.LpLoss`).
    metrics : mapping of str to callable, optional
        Extra batch-mean metrics reported per test set next to ``"loss"``.
    grad_clip : float, optional
        Clip the global gradient norm to this value.
    eval_every, eval_batch_size : int
        Evaluate every this many epochs; evaluation batch size (default ``batch_size``).
    shuffle, drop_last, seed : bool, bool, int
        Tensor data order: epoch ``e`` uses a permutation that depends only on
        ``(seed, e)``, so resumed runs replay it (for default DataLoaders too).
    checkpoint_dir, metrics_file : path, optional
        ``checkpoint_dir/checkpoint.pt`` is rewritten every epoch; metrics go to
        ``metrics_file`` (default ``checkpoint_dir/metrics.jsonl``).
    resume : bool
        Continue from ``checkpoint_dir/checkpoint.pt`` when it exists: model, optimiser,
        scheduler, epoch, step, RNG states, history. The same settings are required, and
        :meth:`fit` requires the same training batches: the global batch size,
        ``shuffle``, ``drop_last`` and sample count of the data actually used (a
        DataLoader's own, not the Trainer's, when ``train`` is one).
    device : torch.device, str or int, optional
        Default CUDA (``cuda:LOCAL_RANK`` under torchrun) when available, else CPU; an
        int ``i`` means CUDA device ``i``.
    amp : {"bf16", "fp16"}, optional
        CUDA autocast (fp16 with a GradScaler); the loss is computed in the target dtype.
    verbose : bool, optional
        tqdm progress bars; default on only when stdout and stderr are terminals.

    Raises
    ------
    ValueError, TypeError
        For a bad argument, naming it and its value (``device`` too: an unknown device
        type, or CUDA when it is not available).
    NonFiniteLossError
        From :meth:`fit`, naming the epoch and batch, when the loss is NaN or infinite.

    Notes
    -----
    * Resuming restores every RNG stream (torch CPU and CUDA, numpy, ``random``; per
      rank under torchrun) as it was after the last completed epoch and replays the
      data order of ``(seed, epoch)``, so a killed run finishes bit-identical to an
      uninterrupted one (given the same hardware and thread count). Without
      ``resume``, :meth:`fit` first deletes ``checkpoint.pt`` (rank 0) and rewrites the
      metrics file, so a run that dies before its first checkpoint leaves nothing that
      ``resume=True`` could mistake for its own progress.
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
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        scheduler: Scheduler = "cosine",
        step_size: int | None = None,
        gamma: float = 0.5,
        loss: LossFn | None = None,
        metrics: Mapping[str, LossFn] | None = None,
        grad_clip: float | None = None,
        eval_every: int = 1,
        eval_batch_size: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        checkpoint_dir: str | os.PathLike | None = None,
        metrics_file: str | os.PathLike | None = None,
        resume: bool = False,
        device: torch.device | str | int | None = None,
        amp: AmpMode | None = None,
        verbose: bool | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.epochs = check_int("epochs", epochs)
        self.batch_size = check_int("batch_size", batch_size)
        self.eval_batch_size = check_int(
            "eval_batch_size", self.batch_size if eval_batch_size is None else eval_batch_size
        )
        self.eval_every = check_int("eval_every", eval_every)
        self.seed = check_int("seed", seed, min=0)
        check_choice("scheduler", scheduler, SCHEDULERS)
        check_choice("amp", amp, AMP_MODES, allow_none=True)
        lr = check_number("lr", lr, min=0, min_open=True)
        weight_decay = check_number("weight_decay", weight_decay, min=0)
        step_size = max(1, self.epochs // 4) if step_size is None else check_int("step_size", step_size)
        gamma = check_number("gamma", gamma, min=0, min_open=True)
        grad_clip = check_number("grad_clip", grad_clip, min=0, min_open=True, allow_none=True)
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
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir, got checkpoint_dir=None")
        self.device = resolve_device(device)
        if amp is not None and self.device.type != "cuda":
            raise ValueError(f"amp={amp!r} needs a CUDA device, got device={self.device}")

        self.amp, self.grad_clip, self.shuffle, self.drop_last = amp, grad_clip, bool(shuffle), bool(drop_last)
        self.dist = setup_distributed(self.device)
        self.model = model.to(self.device)
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise ValueError(f"model has no trainable parameters: {type(model).__name__}")
        device_ids = [self.device] if self.device.type == "cuda" else None
        self._train_model = DistributedDataParallel(model, device_ids=device_ids) if self.dist.enabled else model
        self.optimizer = torch.optim.AdamW(self._params, lr=lr, weight_decay=weight_decay)
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = {
            "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs),
            "step": lambda: torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=step_size, gamma=gamma),
            "constant": lambda: None,
        }[scheduler]()
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.loss_fn: LossFn = loss if loss is not None else _default_loss()
        self.metrics: dict[str, LossFn] = {"loss": self.loss_fn, **metrics}
        # Checked on resume; the batching is checked in fit, from the data actually used.
        self._config = {
            "epochs": epochs, "lr": lr, "weight_decay": weight_decay, "scheduler": scheduler,
            "step_size": step_size, "gamma": gamma, "grad_clip": grad_clip, "seed": seed, "amp": amp,
        }
        self.history: list[Record] = []
        self.epoch = 0
        self.step = 0
        self.checkpoint_path = None if checkpoint_dir is None else Path(checkpoint_dir) / "checkpoint.pt"
        if metrics_file is None and checkpoint_dir is not None:
            metrics_file = Path(checkpoint_dir) / "metrics.jsonl"
        self.metrics_path = None if metrics_file is None else Path(metrics_file)
        auto = sys.stdout.isatty() and sys.stderr.isatty()
        self._progress = self.dist.is_main and (auto if verbose is None else bool(verbose))
        self._pending: dict[str, Any] | None = None
        self._drop_checkpoint = not resume and self.checkpoint_path is not None  # done by the first fit
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self._load(self.checkpoint_path)

    def __repr__(self) -> str:
        batching = {"batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}
        opts = ", ".join(f"{k}={v!r}" for k, v in {**self._config, **batching}.items())
        return (
            f"Trainer({type(self.model).__name__}, {opts}, device={self.device}, "
            f"world_size={self.dist.world_size}, epoch={self.epoch})"
        )

    # ---------------------------------------------------------------- public API
    def fit(self, train: object, test: object = None) -> list[Record]:
        """Train from :attr:`epoch` to ``epochs``; return :attr:`history`.

        ``train``: ``(inputs, targets)`` tensors or a DataLoader yielding such pairs.
        ``test``: None, one such data set (named ``"test"``), or a mapping name -> data
        set (e.g. one per resolution); metric ``m`` of set ``s`` is recorded as ``"s/m"``.
        A resumed run raises ValueError, naming each difference, when ``train`` batches
        otherwise than the run that wrote the checkpoint (see ``resume``).
        """
        source = self._source(train, "train", train=True)
        if _length(source) == 0:
            raise ValueError("train yields no batches (drop_last=True with fewer samples than batch_size?)")
        tests = self._test_sources(test)
        self._start(source)
        with tqdm(total=self.epochs, initial=self.epoch, desc="training", unit="epoch",
                  disable=not self._progress, dynamic_ncols=True) as bar:
            for epoch in range(self.epoch, self.epochs):
                record = self._run_epoch(source, tests, epoch)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.endswith("loss")}, refresh=False)
                bar.update(1)
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
    def _source(self, data: object, what: str, *, train: bool) -> BatchSource:
        return make_source(
            data, what, batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=self.shuffle, drop_last=self.drop_last, seed=self.seed, ctx=self.dist, train=train,
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
        if self.scheduler is not None:
            self.scheduler.step()
        record["time_s"] = time.perf_counter() - start
        self.history.append(record)
        self.epoch = epoch + 1
        self._save(source)
        if self.dist.is_main and self.metrics_path is not None:
            append_jsonl(record, self.metrics_path)
        return record

    def _train_epoch(self, source: BatchSource, epoch: int) -> float:
        self._train_model.train()
        total, count = 0.0, 0
        bar = tqdm(source.batches(epoch), total=_length(source), desc=f"epoch {epoch + 1}/{self.epochs}",
                   leave=False, disable=not self._progress, dynamic_ncols=True)
        for b, (x, y, n_local, n_global) in enumerate(bar):
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            batch_loss = self._train_step(x, y, n_local, n_global, epoch, b)
            total, count = total + batch_loss * n_global, count + n_global
            bar.set_postfix(loss=f"{batch_loss:.4g}", refresh=False)
        if count == 0:
            raise ValueError(f"train yielded no batches in epoch {epoch + 1}")
        return total / count

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, n_local: int, n_global: int, epoch: int, b: int) -> float:
        loss = self._loss(self.loss_fn, self._forward(self._train_model, x), y)
        value = loss.detach().to(torch.float64)
        stats = torch.zeros(2, dtype=torch.float64, device=value.device)
        if n_local:  # n_local == 0: a placeholder sample (see _distributed), weight 0
            stats = torch.stack([value * n_local, (~torch.isfinite(value)).to(torch.float64)])
        weighted_sum, bad = all_reduce_sum(stats, self.dist).tolist()
        if bad:
            local = value.item() if n_local and not math.isfinite(value.item()) else None
            raise NonFiniteLossError(epoch + 1, b + 1, local)
        # DDP averages gradients over ranks; this weight makes that the global-batch mean.
        scaled = loss * (n_local * self.dist.world_size / n_global)
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
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
        return weighted_sum / n_global

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
        """Check and apply a loaded checkpoint, or delete the previous run's; reset the metrics file.

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
                if self._drop_checkpoint and self.checkpoint_path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        self.checkpoint_path.unlink()  # atomic; then made durable
                        _fsync_dir(self.checkpoint_path.parent)
                if self.metrics_path is not None:
                    write_jsonl(self.history, self.metrics_path)
            except OSError as err:
                error = err
        failed = torch.tensor(float(error is not None), dtype=torch.float64, device=self.device)
        if all_reduce_sum(failed, self.dist).item():
            if error is not None:
                raise error
            raise RuntimeError("rank 0 could not reset checkpoint_dir/metrics_file; see its error")
        self._drop_checkpoint = False

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
            config={**self._config, "train_data": source.settings},
            world_size=self.dist.world_size,
        )

    def _load(self, path: Path) -> None:
        state = load_checkpoint(path, config=self._config)
        batching = state["config"].get("train_data")
        if batching is None:  # written before the batching was recorded: checked as it was then
            self._check_batching(state["config"], {"batch_size": self.batch_size, "shuffle": self.shuffle,
                                                   "drop_last": self.drop_last})
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], list(state["history"])
        self._pending = {"rng": state["rng"], "loader_rng": state["loader_rng"], "train_data": batching}
