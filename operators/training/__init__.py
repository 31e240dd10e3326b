"""Training: the :class:`Trainer`, its settings, callbacks and SpecBoost's stage-by-stage fit.

Legend: none (see :mod:`operators.training.trainer` for the data shapes).

:class:`Trainer` (settings in :class:`TrainerConfig`), :class:`NonFiniteLossError`;
callbacks :class:`Callback`, :class:`EarlyStopping`, :class:`TensorBoardLogger`,
:class:`WandbLogger`; :func:`fit_specboost_stage`.
"""

from operators.training.boosting import fit_specboost_stage
from operators.training.callbacks import Callback, EarlyStopping, TensorBoardLogger, WandbLogger
from operators.training.config import AMP_MODES, SCHEDULER_INTERVALS, SCHEDULERS, TrainerConfig
from operators.training.trainer import NonFiniteLossError, Trainer

__all__ = [
    "AMP_MODES",
    "SCHEDULERS",
    "SCHEDULER_INTERVALS",
    "Callback",
    "EarlyStopping",
    "NonFiniteLossError",
    "TensorBoardLogger",
    "Trainer",
    "TrainerConfig",
    "WandbLogger",
    "fit_specboost_stage",
]
