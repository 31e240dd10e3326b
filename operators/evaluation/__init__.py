"""Evaluating trained operators: rollouts, per-sample errors, resolution studies, tables and plots.

Legend: ``n`` samples, ``B`` batch, ``C`` channels of one state, ``h`` history (states
fed to each step), ``T`` rollout steps, ``*grid`` the spatial axes.

* :func:`rollout` feeds a one-step model its own predictions, with a window of the last
  ``h`` states stacked on the channel axis (oldest first: the layout of
  :class:`operators.datasets.PDEBench` items and of time-stepping pairs).
* :func:`relative_errors` is ``||pred - target|| / ||target||`` per sample (any
  per-sample norm, e.g. :meth:`operators.losses.SphereLoss.norm` on the sphere).
* :func:`resolution_study` scores one model on the same samples at several grids and
  flags the grids it was not trained on (zero-shot super-resolution);
  :class:`ResolutionStudy` holds the errors and predictions, ``str()`` is its table.
* :func:`format_table` prints results as an aligned plain-text table;
  :func:`plot_prediction` draws one sample with its error and radial spectra
  (:func:`mean_spectrum`); matplotlib is imported only by the plot.
* :func:`predict` runs a model in eval mode, batch by batch.
* :func:`ranking_summary` says in plain words whether a small run ranks methods as a
  reference run did, quoting the reference figures and command when it does not.

Examples
--------
>>> import torch
>>> from operators import FNO
>>> from operators.evaluation import resolution_study
>>> model = FNO(1, 1, 4, hidden_channels=8)
>>> data = {r: (torch.randn(3, 1, r), torch.randn(3, 1, r)) for r in (32, 64)}
>>> study = resolution_study(model, data, train_resolution=32)
>>> [row[:2] for row in study.rows()]
[('32', 'training grid'), ('64', 'zero-shot (2x)')]
"""

from operators.evaluation._metrics import (
    ResolutionStudy,
    format_table,
    predict,
    relative_errors,
    resolution_study,
    rollout,
)
from operators.evaluation._plots import mean_spectrum, plot_prediction
from operators.evaluation._ranking import ranking_summary

__all__ = [
    "ResolutionStudy",
    "format_table",
    "mean_spectrum",
    "plot_prediction",
    "predict",
    "ranking_summary",
    "relative_errors",
    "resolution_study",
    "rollout",
]
