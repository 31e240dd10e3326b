"""Callbacks of the Trainer: early stopping and logging to TensorBoard or Weights & Biases.

Legend: none (records are dicts of floats; no tensors here).

A callback is any object with one or more of these methods (a missing one is skipped):

``on_train_start(trainer)``
    At the start of :meth:`~operators.training.Trainer.fit`, after a checkpoint was resumed.
``on_batch_end(trainer, batch)``
    After each training batch's backward pass (and the optimiser step when it ends a
    group of ``accumulate`` batches); ``batch`` is a dict with ``epoch`` and ``batch``
    (1-based), ``step`` (optimiser steps so far) and ``loss`` (the global batch mean).
``on_epoch_end(trainer, record)``
    After each epoch with its record (the dict appended to ``trainer.history``),
    before the checkpoint is written.
``on_train_end(trainer)``
    When :meth:`~operators.training.Trainer.fit` returns (not when it raises).

They run in the order given, on every rank (records are already all-reduced). To stop
training a callback sets ``trainer.should_stop = True``: the run ends after the current
epoch (its checkpoint records that it stopped, so a resumed run does not continue).
A callback with ``state_dict()`` / ``load_state_dict(state)`` has its state (plain
values) saved in the checkpoint and restored on resume. Loggers write on rank 0 only
(``trainer.is_main``); the Trainer's JSON-lines metrics file is written regardless.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from spectral.checks import check_choice, check_int, check_number, describe

__all__ = ["Callback", "EarlyStopping", "TensorBoardLogger", "WandbLogger", "HOOKS", "MODES"]

HOOKS = ("on_train_start", "on_batch_end", "on_epoch_end", "on_train_end")
MODES = ("min", "max")
Record = dict[str, Any]


class Callback:
    """Base class with every hook as a no-op (subclassing it is optional)."""

    def on_train_start(self, trainer: Any) -> None:
        """Called when ``fit`` starts."""

    def on_batch_end(self, trainer: Any, batch: Record) -> None:
        """Called after each training batch."""

    def on_epoch_end(self, trainer: Any, record: Record) -> None:
        """Called after each epoch with its record."""

    def on_train_end(self, trainer: Any) -> None:
        """Called when ``fit`` returns."""


def _numbers(record: Record) -> dict[str, float]:
    """The loggable entries of a record: finite or not, every int/float except the counters."""
    return {k: float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "step")}


class EarlyStopping(Callback):
    """Stop when ``record[monitor]`` has not improved for ``patience`` evaluated epochs.

    Improvement means ``value < best - min_delta`` (``mode="min"``) or ``value > best +
    min_delta`` (``"max"``); NaN never improves. Epochs whose record lacks ``monitor``
    because no evaluation ran (``eval_every > 1``) are skipped.

    Parameters
    ----------
    monitor : str
        A record key, e.g. ``"train_loss"`` or ``"test/loss"`` (test set ``"test"``).
    patience : int
        Evaluated epochs without improvement before stopping (>= 1).
    min_delta : float
        Smallest change that counts as an improvement (>= 0).
    mode : {"min", "max"}

    Raises
    ------
    ValueError
        From ``on_epoch_end`` when an evaluated epoch's record has no ``monitor`` key
        (the message lists the keys it has).

    Examples
    --------
    >>> stop = EarlyStopping("test/loss", patience=3)   # Trainer(..., callbacks=[stop])
    """

    def __init__(self, monitor: str = "train_loss", *, patience: int = 5, min_delta: float = 0.0,
                 mode: Literal["min", "max"] = "min") -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be a record key (a non-empty str), got {describe(monitor)}")
        self.monitor = monitor
        self.patience = check_int("patience", patience)
        self.min_delta = float(check_number("min_delta", min_delta, min=0))
        self.mode = check_choice("mode", mode, MODES)
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r})")

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_epoch_end(self, trainer: Any, record: Record) -> None:
        if self.monitor not in record:
            evaluated = any("/" in k for k in record) or record["epoch"] % trainer.config.eval_every == 0
            if evaluated:
                raise ValueError(
                    f"EarlyStopping: monitor={self.monitor!r} is not in the epoch record, which has "
                    f"{sorted(record)}"
                )
            return
        value = float(record[self.monitor])
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(record["epoch"])
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait, self.stopped_epoch = state["best"], state["wait"], state["stopped_epoch"]


class TensorBoardLogger(Callback):
    """Write every number of each epoch record (and optionally each batch loss) as TensorBoard scalars.

    Uses :class:`torch.utils.tensorboard.SummaryWriter` (the ``tensorboard`` package, in the
    ``dev`` extra); the scalar of key ``k`` is tagged ``k`` at ``global_step`` = epoch
    (batch losses: ``"batch/loss"`` at the optimiser step). Rank 0 only.

    Parameters
    ----------
    log_dir : path, optional
        Event-file folder; default ``checkpoint_dir/tensorboard`` of the Trainer.
    log_batches : bool
        Also log every training batch's loss.

    Raises
    ------
    ImportError
        When tensorboard is not installed (the message says how to install it).
    """

    def __init__(self, log_dir: str | os.PathLike | None = None, *, log_batches: bool = False) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "TensorBoardLogger needs the tensorboard package: pip install tensorboard "
                "(or the library's dev extra: pip install 'spectral-operators[dev]')"
            ) from err
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a path or None, got {describe(log_dir)}")
        self._writer_cls = SummaryWriter
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.log_batches = bool(log_batches)
        self.writer: Any = None

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        if self.log_dir is None:
            if trainer.config.checkpoint_dir is None:
                raise ValueError("TensorBoardLogger: pass log_dir, or give the Trainer a checkpoint_dir")
            self.log_dir = Path(trainer.config.checkpoint_dir) / "tensorboard"
        self.writer = self._writer_cls(log_dir=str(self.log_dir))

    def on_batch_end(self, trainer: Any, batch: Record) -> None:
        if self.writer is not None and self.log_batches:
            self.writer.add_scalar("batch/loss", batch["loss"], batch["step"])

    def on_epoch_end(self, trainer: Any, record: Record) -> None:
        if self.writer is None:
            return
        for key, value in _numbers(record).items():
            self.writer.add_scalar(key, value, record["epoch"])
        self.writer.flush()

    def on_train_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbLogger(Callback):
    """Log each epoch record (and optionally each batch loss) to Weights & Biases, rank 0 only.

    Starts a run with ``wandb.init(config=<the Trainer's settings>, **init_kwargs)`` unless
    one is active, logs the numbers of every record at ``step`` = epoch, and finishes the
    run it started when training ends.

    Parameters
    ----------
    log_batches : bool
        Also log every training batch's loss (as ``"batch/loss"``).
    **init_kwargs
        Passed to ``wandb.init`` (``project``, ``name``, ``mode="offline"``, ...).

    Raises
    ------
    ImportError
        When wandb is not installed (``pip install wandb``).
    """

    def __init__(self, *, log_batches: bool = False, **init_kwargs: Any) -> None:
        try:
            import wandb
        except ImportError as err:
            raise ImportError("WandbLogger needs the wandb package: pip install wandb") from err
        self._wandb = wandb
        self.log_batches = bool(log_batches)
        self.init_kwargs = init_kwargs
        self.run: Any = None
        self._owns_run = False

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        self.run = self._wandb.run
        if self.run is None:
            plain = (int, float, str, bool, tuple, type(None))
            settings = {k: v if isinstance(v, plain) else str(v) for k, v in vars(trainer.config).items()}
            self.run = self._wandb.init(**{"config": settings, **self.init_kwargs})
            self._owns_run = True

    def on_batch_end(self, trainer: Any, batch: Record) -> None:
        if self.run is not None and self.log_batches:
            self.run.log({"batch/loss": batch["loss"]}, commit=False)

    def on_epoch_end(self, trainer: Any, record: Record) -> None:
        if self.run is not None:
            self.run.log(_numbers(record), step=int(record["epoch"]))

    def on_train_end(self, trainer: Any) -> None:
        if self.run is not None and self._owns_run:
            self.run.finish()
        self.run, self._owns_run = None, False
