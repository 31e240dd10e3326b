"""Neural operators, their PDE data and the training harness.

Operators: :class:`SpectralConv`, :class:`FNO`, :class:`SphericalConv`, :class:`SFNO`,
:class:`SpecBoost` (boosted FNO stages);
losses :class:`LpLoss`, :class:`H1Loss`, :class:`SphereLoss` (latitude-weighted); :class:`Trainer` (settings :class:`TrainerConfig`;
callbacks, early stopping, loggers and SpecBoost's stage-by-stage fit in :mod:`operators.training`). PDE data generators live in
:mod:`operators.datasets`; the building blocks of FNO and SFNO (channel MLPs, skips, grid
embedding, domain padding, the Fourier block) in :mod:`operators.layers`, for writing your
own operators; atomic checkpoint files in :mod:`operators.checkpoint`; :func:`save_model` /
:func:`load_model` (:mod:`operators.saving`) write a model with its class and config;
rollouts, per-sample errors, resolution studies and result plots in :mod:`operators.evaluation`;
helpers for command-line experiment scripts (options, run folders, reports) in :mod:`operators.experiments`.
"""

from operators.fno import FNO, FNOConfig
from operators.losses import H1Loss, LpLoss, SphereLoss
from operators.sfno import SFNO, SFNOConfig, SphericalConv
from operators.spectral_conv import SpectralConv
from operators.saving import load_model, save_model
from operators.specboost import SpecBoost
from operators.training import NonFiniteLossError, Trainer, TrainerConfig
from operators.normalized import Normalized  # registers Normalized with save_model / load_model

__all__ = [
    "Normalized",
    "FNO",
    "FNOConfig",
    "H1Loss",
    "LpLoss",
    "NonFiniteLossError",
    "SFNO",
    "SFNOConfig",
    "SpecBoost",
    "SpectralConv",
    "SphereLoss",
    "SphericalConv",
    "Trainer",
    "TrainerConfig",
    "load_model",
    "save_model",
]
