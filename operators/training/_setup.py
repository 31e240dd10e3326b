"""The Trainer's optimiser, scheduler and callbacks from its arguments; the run folder's previous files.

Legend: none (parameters are lists of tensors; no shapes here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import CyclicLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from operators.saving import model_spec
from operators.training.callbacks import HOOKS
from operators.training.config import TrainerConfig
from spectral.checks import describe

__all__ = ["build_optimizer", "build_scheduler", "scheduler_interval", "check_callbacks",
           "previous_path", "check_run_folder", "set_aside", "remove_files", "model_spec_or_none"]

OptimizerArg = torch.optim.Optimizer | Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None
SchedulerArg = str | LRScheduler | ReduceLROnPlateau | Callable[[torch.optim.Optimizer], Any] | None
_BATCH_SCHEDULERS = (OneCycleLR, CyclicLR)


def build_optimizer(optimizer: OptimizerArg, params: list[nn.Parameter], config: TrainerConfig) -> torch.optim.Optimizer:
    """AdamW(lr, weight_decay) by default; else the given optimiser, or ``optimizer(params)``.

    Raises
    ------
    TypeError
        ``optimizer`` is neither an Optimizer nor a callable returning one.
    ValueError
        The optimiser holds tensors that are not the model's trainable parameters.
    """
    if optimizer is None:
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if isinstance(optimizer, type):
        raise TypeError(f"optimizer must be an Optimizer instance or a callable params -> Optimizer, got the "
                        f"class {optimizer.__name__}; pass e.g. optimizer=lambda p: {optimizer.__name__}(p, lr=...)")
    built = optimizer if isinstance(optimizer, torch.optim.Optimizer) else None
    if built is None and callable(optimizer):
        built = optimizer(params)
        if not isinstance(built, torch.optim.Optimizer):
            raise TypeError(f"optimizer(params) must return a torch.optim.Optimizer, got {describe(built)}")
    if built is None:
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or a callable params -> Optimizer, "
                        f"got {describe(optimizer)}")
    own = {id(p) for p in params}
    foreign = [tuple(p.shape) for g in built.param_groups for p in g["params"] if id(p) not in own]
    if foreign:
        raise ValueError(f"optimizer holds {len(foreign)} tensors that are not the model's trainable parameters "
                         f"(shapes {foreign[:3]}); build it over model.parameters() after moving the model")
    return built


def build_scheduler(scheduler: SchedulerArg, optimizer: torch.optim.Optimizer, config: TrainerConfig) -> Any:
    """The config's named schedule, or the given scheduler object, or ``scheduler(optimizer)``."""
    if scheduler is None:
        name = config.scheduler
        if name == "custom":
            raise ValueError("scheduler='custom' needs a scheduler object or callable: pass scheduler=...")
        if name == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        if name == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.resolved_step_size,
                                                   gamma=config.gamma)
        return None  # "constant"
    built = scheduler if isinstance(scheduler, (LRScheduler, ReduceLROnPlateau)) else None
    if built is None and callable(scheduler) and not isinstance(scheduler, type):
        built = scheduler(optimizer)
        if not isinstance(built, (LRScheduler, ReduceLROnPlateau)):
            raise TypeError(f"scheduler(optimizer) must return a torch LRScheduler, got {describe(built)}")
    if built is None:
        raise TypeError("scheduler must be a name ('cosine', 'step', 'constant'), an LRScheduler over the "
                        f"Trainer's optimizer, or a callable optimizer -> scheduler, got {describe(scheduler)}")
    if built.optimizer is not optimizer:
        raise ValueError("scheduler steps another optimizer than the Trainer's; build it over trainer.optimizer "
                         "(pass a callable optimizer -> scheduler when the Trainer builds the optimizer)")
    return built


def scheduler_interval(scheduler: Any, config: TrainerConfig) -> str:
    """``config.scheduler_interval``, or ``"batch"`` for OneCycleLR/CyclicLR and ``"epoch"`` otherwise."""
    if isinstance(scheduler, ReduceLROnPlateau) and config.scheduler_interval == "batch":
        raise ValueError("ReduceLROnPlateau steps on the epoch's train_loss: scheduler_interval must be 'epoch'")
    if config.scheduler_interval is not None:
        return config.scheduler_interval
    return "batch" if isinstance(scheduler, _BATCH_SCHEDULERS) else "epoch"


def check_callbacks(callbacks: Iterable[Any] | None) -> list[Any]:
    """The callbacks as a list; TypeError for a class or an object with none of the hooks."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callback objects, got {describe(callbacks)}")
    for i, cb in enumerate(callbacks):
        if isinstance(cb, type):
            raise TypeError(f"callbacks[{i}] is the class {cb.__name__}; pass an instance, e.g. {cb.__name__}()")
        if not any(callable(getattr(cb, hook, None)) for hook in HOOKS):
            raise TypeError(f"callbacks[{i}] ({type(cb).__name__}) has none of the methods {', '.join(HOOKS)}")
    return list(callbacks)


def previous_path(path: Path) -> Path:
    """Where a run that starts over keeps ``path`` until its first checkpoint: ``name.previous.ext``."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def check_run_folder(checkpoint_path: Path | None, config: TrainerConfig) -> None:
    """FileExistsError when a new run (neither resume nor overwrite) finds a previous run's checkpoint."""
    if checkpoint_path is None or config.resume or config.overwrite:
        return
    found = [p.name for p in (checkpoint_path, previous_path(checkpoint_path)) if p.exists()]
    if found:
        raise FileExistsError(
            f"checkpoint_dir={str(checkpoint_path.parent)!r} holds a previous run's checkpoint "
            f"({', '.join(found)}); pass resume=True to continue that run, overwrite=True to start over "
            "(its files are kept until the new run's first checkpoint), or another checkpoint_dir"
        )


def set_aside(paths: Sequence[Path | None]) -> list[Path]:
    """Rename each existing path to its :func:`previous_path` (atomic); return the new names."""
    moved = []
    for path in paths:
        if path is not None and path.exists():
            path.replace(previous_path(path))
            moved.append(previous_path(path))
    return moved


def remove_files(paths: Sequence[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def model_spec_or_none(model: nn.Module) -> dict[str, Any] | None:
    """``operators.saving.model_spec(model)``, or None for a class that module cannot rebuild."""
    try:
        return model_spec(model)
    except ValueError:  # not a registered class, or a config that is not plain values
        return None
