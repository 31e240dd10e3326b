"""SpecBoost's stage-by-stage training: freeze the earlier stages, fit one stage with the Trainer.

Legend: ``n`` samples, ``Cin`` input channels, ``Cout`` output channels, ``Cz`` a stage's
input channels (``Cin``, or ``Cin + Cout`` for ``stage_input="input+previous"``),
``*grid`` the spatial axes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from operators._distributed import resolve_device
from operators.specboost import STAGE_OBJECTIVES, SpecBoost
from operators.training.trainer import Trainer
from spectral.checks import check_choice, describe

__all__ = ["fit_specboost_stage"]

StageObjective = Literal["residual", "ensemble"]


def fit_specboost_stage(
    boost: SpecBoost, m: int, train: tuple[torch.Tensor, torch.Tensor], test: Any = None, *,
    objective: StageObjective = "residual", **trainer_kwargs: Any,
) -> Trainer:
    """Freeze stages ``< m`` of ``boost`` and train stage ``m`` with :class:`~operators.training.Trainer`.

    ``objective="residual"`` minimises ``loss(G_m(z_m), y - P_m)`` (the Trainer's loss,
    default relative L2, of the residual); ``"ensemble"`` minimises ``loss(P_m +
    G_m(z_m), y)``, the loss of the first ``m + 1`` stages. ``P_m`` is computed once,
    before training (:meth:`SpecBoost.stage_data`). At ``m = 0`` (``P_0 = 0``) the two
    objectives coincide and the stage trains bare, so its checkpoints resume under either.

    Parameters
    ----------
    boost : SpecBoost
        The ensemble; moved to the Trainer's device. Stages after ``m`` are left untouched.
    m : int
        The stage to train.
    train, test
        ``(inputs, targets)`` tensors; ``test`` also None or a mapping name -> pair. They
        are turned into stage data.
    objective : {"residual", "ensemble"}
    **trainer_kwargs
        Passed to the Trainer (``epochs``, ``lr``, ``checkpoint_dir``, ``callbacks``, ...).

    Returns
    -------
    Trainer
        The Trainer that trained stage ``m`` (its ``history``).

    Shape
    -----
    train: inputs (n, Cin, *grid), targets (n, Cout, *grid).
    """
    if not isinstance(boost, SpecBoost):
        raise TypeError(f"boost must be a SpecBoost, got {describe(boost)}")
    check_choice("objective", objective, STAGE_OBJECTIVES)
    if m == 0:
        objective = "residual"
    if not (isinstance(train, (tuple, list)) and len(train) == 2):
        raise TypeError(f"train must be an (inputs, targets) pair of tensors, got {type(train).__name__}")
    boost.freeze_before(m)
    config = trainer_kwargs.get("config")
    device = trainer_kwargs.get("device", None if config is None else config.device)
    boost.to(resolve_device(device))
    batch = (trainer_kwargs.get("eval_batch_size") or trainer_kwargs.get("batch_size")
             or (config.resolved_eval_batch_size if config is not None else 32))
    stage = boost.stages[m]
    cz = getattr(stage, "in_channels", None)

    def data(pair: Any) -> tuple[torch.Tensor, torch.Tensor]:
        z, previous = boost.stage_data(m, *pair, batch_size=batch)
        if objective == "residual":
            return z, pair[1] - previous
        return torch.cat([z, previous.to(z.dtype)], dim=1), pair[1]

    sets = None if test is None else {k: data(v) for k, v in (test.items() if isinstance(test, Mapping) else [("test", test)])}
    train_data = data(train)
    model = stage if objective == "residual" else _OnTop(stage, cz or train_data[0].shape[1] - train[1].shape[1])
    trainer = Trainer(model, **trainer_kwargs)
    trainer.fit(train_data, sets)
    return trainer


class _OnTop(nn.Module):
    """``(B, Cz + Cout, *grid) -> previous + stage(z)``: a stage trained on the ensemble loss."""

    def __init__(self, stage: nn.Module, z_channels: int) -> None:
        super().__init__()
        self.stage, self.z_channels = stage, z_channels

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        return packed[:, self.z_channels :] + self.stage(packed[:, : self.z_channels])
