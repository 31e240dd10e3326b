"""TrainerConfig: the plain settings of a :class:`~operators.training.Trainer`, in one frozen dataclass.

Legend: none (no tensors here).

Objects bound to a model or run (the optimiser, a scheduler object, the loss, metrics,
callbacks) are :class:`~operators.training.Trainer` arguments; everything that is a
number, a name, a flag or a path lives here, is validated on construction and is
recorded in checkpoints.

Examples
--------
>>> from operators.training import TrainerConfig
>>> config = TrainerConfig(epochs=3, lr=1e-2, accumulate=2)
>>> config.replace(epochs=5).epochs
5
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal

import torch

from spectral.checks import check_bool, check_choice, check_int, check_number, describe

__all__ = ["TrainerConfig", "SCHEDULERS", "AMP_MODES", "SCHEDULER_INTERVALS"]

SCHEDULERS = ("cosine", "step", "constant")  # and "custom", which only the Trainer sets
AMP_MODES = ("bf16", "fp16")
SCHEDULER_INTERVALS = ("epoch", "batch")
SchedulerName = Literal["cosine", "step", "constant", "custom"]
AmpMode = Literal["bf16", "fp16"]
Interval = Literal["epoch", "batch"]


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of a :class:`~operators.training.Trainer` (every field is also a Trainer keyword).

    Parameters
    ----------
    epochs, batch_size : int
        Number of epochs (>= 1); global batch size for tensor data (a DataLoader's own
        ``batch_size``, ``shuffle`` and ``drop_last`` are used instead; ``batch_size`` then
        only sets ``eval_batch_size``'s default).
    lr, weight_decay : float
        Learning rate (> 0) and decoupled weight decay (>= 0) of the default AdamW
        optimiser; unused when the Trainer gets an ``optimizer``.
    scheduler : {"cosine", "step", "constant", "custom"}
        Per epoch: cosine annealing to 0 over ``epochs``; ``lr * gamma ** (epoch //
        step_size)`` (``step_size`` default ``max(1, epochs // 4)``); constant.
        ``"custom"`` is what the Trainer records when it is given a scheduler object.
    step_size, gamma : int, float
        Of the ``"step"`` schedule.
    scheduler_interval : {"epoch", "batch"}, optional
        When the scheduler steps: after every epoch, or after every optimiser step.
        Default (None): ``"batch"`` for ``OneCycleLR`` and ``CyclicLR`` (schedules defined
        over optimiser steps), ``"epoch"`` for every other scheduler.
    grad_clip : float, optional
        Clip the global gradient norm to this value before each optimiser step.
    accumulate : int
        Gradient accumulation: one optimiser step per ``accumulate`` batches, on the
        sample mean of their gradients (the same step as one batch of all their samples,
        up to round-off). The last group of an epoch may be shorter.
    eval_every, eval_batch_size : int
        Evaluate every this many epochs (and after the last); evaluation batch size
        (default ``batch_size``).
    shuffle, drop_last, seed : bool, bool, int
        Tensor data order: epoch ``e`` uses a permutation that depends only on
        ``(seed, e)``, so resumed runs replay it (for default DataLoaders too).
    checkpoint_dir, metrics_file : path, optional
        ``checkpoint_dir/checkpoint.pt`` is rewritten every epoch; metrics go to the
        JSON-lines ``metrics_file`` (default ``checkpoint_dir/metrics.jsonl``).
    resume, overwrite : bool
        What to do with a previous run's checkpoint in ``checkpoint_dir``: continue it
        (``resume``), or start over (``overwrite``); with neither, the Trainer raises
        FileExistsError. Not both.
    device : torch.device, str or int, optional
        Default CUDA (``cuda:LOCAL_RANK`` under torchrun) when available, else CPU.
    amp : {"bf16", "fp16"}, optional
        Autocast: ``"bf16"`` on CPU or CUDA, ``"fp16"`` on CUDA only (with a GradScaler).
    batch_keys : (str, str), optional
        For DataLoaders whose batches are dicts (neuraloperator's, The Well's): the keys
        of the inputs and the targets, e.g. ``("x", "y")``.
    verbose : bool, optional
        tqdm progress bars; default on only when stdout and stderr are terminals.

    Raises
    ------
    ValueError, TypeError
        For a bad value, naming the field and the value.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: SchedulerName = "cosine"
    step_size: int | None = None
    gamma: float = 0.5
    scheduler_interval: Interval | None = None
    grad_clip: float | None = None
    accumulate: int = 1
    eval_every: int = 1
    eval_batch_size: int | None = None
    shuffle: bool = True
    drop_last: bool = False
    seed: int = 0
    checkpoint_dir: str | os.PathLike | None = None
    metrics_file: str | os.PathLike | None = None
    resume: bool = False
    overwrite: bool = False
    device: torch.device | str | int | None = None
    amp: AmpMode | None = None
    batch_keys: tuple[str, str] | None = None
    verbose: bool | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "accumulate"):
            check_int(name, getattr(self, name))
        check_int("eval_batch_size", self.eval_batch_size, allow_none=True)
        check_int("step_size", self.step_size, allow_none=True)
        check_int("seed", self.seed, min=0)
        check_number("lr", self.lr, min=0, min_open=True)
        check_number("weight_decay", self.weight_decay, min=0)
        check_number("gamma", self.gamma, min=0, min_open=True)
        check_number("grad_clip", self.grad_clip, min=0, min_open=True, allow_none=True)
        if self.scheduler != "custom":
            check_choice("scheduler", self.scheduler, SCHEDULERS)
        check_choice("scheduler_interval", self.scheduler_interval, SCHEDULER_INTERVALS, allow_none=True)
        check_choice("amp", self.amp, AMP_MODES, allow_none=True)
        for name in ("shuffle", "drop_last", "resume", "overwrite"):
            check_bool(name, getattr(self, name))
        if self.verbose is not None:
            check_bool("verbose", self.verbose)
        for name in ("checkpoint_dir", "metrics_file"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a path (str or os.PathLike) or None, got {describe(value)}")
        if self.resume and self.overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other: continue the run or start over")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir, got checkpoint_dir=None")
        keys = self.batch_keys
        if keys is not None and not (
            isinstance(keys, (tuple, list)) and len(keys) == 2 and all(isinstance(k, str) for k in keys)
        ):
            raise TypeError(f"batch_keys must be two strings (inputs key, targets key) or None, got {describe(keys)}")
        if keys is not None and not isinstance(keys, tuple):
            object.__setattr__(self, "batch_keys", tuple(keys))  # frozen: normalise the container only

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The names of the settings, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> TrainerConfig:
        """A copy with ``changes`` applied (validated like a new config)."""
        return dataclasses.replace(self, **changes)

    @property
    def resolved_step_size(self) -> int:
        """``step_size``, or its default ``max(1, epochs // 4)``."""
        return max(1, self.epochs // 4) if self.step_size is None else self.step_size

    @property
    def resolved_eval_batch_size(self) -> int:
        """``eval_batch_size``, or its default ``batch_size``."""
        return self.batch_size if self.eval_batch_size is None else self.eval_batch_size
