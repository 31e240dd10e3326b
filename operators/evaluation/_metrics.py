"""Rollouts, per-sample errors, resolution studies and result tables (:mod:`operators.evaluation`).

Legend: ``n`` samples, ``B`` batch, ``C`` channels of one state, ``h`` history (states
fed to each step), ``T`` rollout steps, ``*grid`` the spatial axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import nn

from spectral.checks import check_int, check_number, check_tensor, describe

__all__ = ["rollout", "relative_errors", "resolution_study", "ResolutionStudy", "format_table", "predict"]

GridKey = Union[int, tuple[int, ...]]


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    param = next(model.parameters(), None)
    if param is None:
        param = next(model.buffers(), None)
    return fallback if param is None else param.device


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 64,
            device: torch.device | str | None = None) -> torch.Tensor:
    """``model(inputs)`` in eval mode, ``batch_size`` samples at a time, returned on ``inputs.device``.

    ``device`` defaults to the device of the model's parameters; the model's training
    mode is restored afterwards.

    Shape
    -----
    inputs: (n, *in_shape) -> (n, *out_shape)
    """
    check_tensor("predict", "inputs", inputs, kind="any")
    step = check_int("batch_size", batch_size)
    if inputs.ndim == 0:
        raise ValueError(f"predict: inputs needs a sample axis, got {describe(inputs)}")
    device = _model_device(model, inputs.device) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        outs = [model(inputs[i : i + step].to(device)).to(inputs.device) for i in range(0, len(inputs), step)]
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else model(inputs.to(device)).to(inputs.device)


@torch.no_grad()
def rollout(model: nn.Module, initial: torch.Tensor, steps: int, *, history: int = 1, batch_size: int = 64,
            device: torch.device | str | None = None) -> torch.Tensor:
    """Autoregressive prediction: feed ``model`` its own outputs ``steps`` times.

    Each step maps the window of the last ``history`` states, stacked on the channel
    axis oldest first, ``(B, h C, *grid)``, to the next state ``(B, C, *grid)``; the
    window then drops its oldest state and appends the prediction:
    ``u(t+1) = model([u(t-h+1), ..., u(t)])``.

    Parameters
    ----------
    model : nn.Module
        One-step model, ``(B, h C, *grid) -> (B, C, *grid)``; run in eval mode (its mode
        is restored afterwards) without gradients.
    initial : Tensor
        The first window, ``(n, h C, *grid)``: ``initial.reshape(n, h, C, *grid)[:, -1]``
        is the latest state.
    steps : int
        Number of predicted states (>= 1).
    history : int
        ``h``, states per window (>= 1).
    batch_size : int
        Trajectories advanced together.
    device : torch.device or str, optional
        Where the model runs (default: the device of its parameters).

    Returns
    -------
    Tensor
        The predicted trajectory ``(n, T, C, *grid)`` on ``initial.device``: entry ``t``
        is the state ``t + 1`` steps after the latest one in ``initial``.

    Raises
    ------
    ValueError
        ``initial`` channels not a multiple of ``history``, or a model output whose channels
        times ``history`` differ from the window's (the message shows both shapes).

    Examples
    --------
    >>> halve = nn.Conv1d(1, 1, 1, bias=False)
    >>> _ = nn.init.constant_(halve.weight, 0.5)
    >>> rollout(halve, torch.ones(1, 1, 4), 3)[0, :, 0, 0].tolist()
    [0.5, 0.25, 0.125]
    """
    check_tensor("rollout", "initial", initial, kind="floating")
    steps, history = check_int("steps", steps), check_int("history", history)
    step = check_int("batch_size", batch_size)
    if initial.ndim < 2 or initial.shape[1] % history:
        raise ValueError(f"rollout: initial must be (n, history * C, *grid) with history={history}, "
                         f"got shape {tuple(initial.shape)}")
    device = _model_device(model, initial.device) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    outs = []
    try:
        for i in range(0, len(initial), step):
            window = initial[i : i + step].to(device)
            states = []
            for _ in range(steps):
                nxt = model(window)  # (B, C, *grid)
                if nxt.ndim != window.ndim or nxt.shape[1] * history != window.shape[1]:
                    raise ValueError(
                        f"rollout: the model maps a window of shape {tuple(window.shape)} to {tuple(nxt.shape)}; "
                        f"with history={history} it must return (B, {window.shape[1] // history}, *grid)")
                states.append(nxt)
                window = torch.cat([window[:, nxt.shape[1]:], nxt], dim=1)
            outs.append(torch.stack(states, 1).to(initial.device))  # (B, T, C, *grid)
    finally:
        model.train(was_training)
    if not outs:  # no trajectories: the shape of the result still follows the window
        c = initial.shape[1] // history
        return initial.new_empty((0, steps, c, *initial.shape[2:]))
    return torch.cat(outs)


def relative_errors(pred: torch.Tensor, target: torch.Tensor, *, p: float = 2.0,
                    norm: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Per-sample relative error ``||pred - target|| / ||target||``, over every non-batch axis.

    With equal quadrature weights (a periodic grid) the weights cancel, so this is the
    relative error of :class:`operators.LpLoss` on any grid; ``norm`` replaces the
    plain p-norm by another per-sample norm ``(n, ...) -> (n,)``, e.g.
    :meth:`operators.losses.SphereLoss.norm` for area weights on the sphere. Computed in
    float64. An all-zero target gives ``inf`` (``nan`` where the prediction is exact too).

    Shape
    -----
    pred, target: (n, ...) real or complex -> (n,) float64

    Examples
    --------
    >>> relative_errors(torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 8.0]])).tolist()
    [0.625]
    """
    check_tensor("relative_errors", "pred", pred, kind="floating")
    check_tensor("relative_errors", "target", target, kind="floating")
    if pred.shape != target.shape or pred.ndim < 1:
        raise ValueError(f"relative_errors: pred and target must have one shape (n, ...), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    pred = pred.to(torch.complex128 if pred.is_complex() else torch.float64)
    target = target.to(pred.dtype)
    if norm is None:
        order = math.inf if p == math.inf else check_number("p", p, min=1)

        def norm(u: torch.Tensor) -> torch.Tensor:
            return torch.linalg.vector_norm(u.reshape(len(u), -1), ord=order, dim=1)

    return (norm(pred - target) / norm(target)).double()


def format_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with a header rule; cells are ``str()``-ed, numeric columns right-aligned.

    >>> print(format_table(("grid", "error"), [("coarse", "1.5%"), ("fine", "12.25%")]))
    grid     error
    ------  ------
    coarse    1.5%
    fine    12.25%
    """
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    if any(len(r) != len(headers) for r in cells):
        raise ValueError(f"format_table: every row needs {len(headers)} cells, got rows of {sorted({len(r) for r in cells})}")
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [len(cells) > 1 and all(_is_number(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def _is_number(s: str) -> bool:
    try:
        float(s.rstrip("%"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ResolutionStudy:
    """Per-sample errors of one model at several grids (:func:`resolution_study`).

    Attributes
    ----------
    train_resolution : int or tuple of int
        The key of the training grid (``None``: every grid is reported without a role).
    errors : dict
        Grid key -> per-sample relative errors ``(n,)`` float64.
    predictions : dict
        Grid key -> the model's outputs ``(n, C, *grid)``.
    """

    train_resolution: GridKey | None
    errors: dict[GridKey, torch.Tensor]
    predictions: dict[GridKey, torch.Tensor]

    def role(self, key: GridKey) -> str:
        """``"training grid"``, ``"zero-shot (2x)"`` (finer or coarser than the training grid), or ``""``."""
        if self.train_resolution is None:
            return ""
        if key == self.train_resolution:
            return "training grid"
        ratio = _first(key) / _first(self.train_resolution)
        return f"zero-shot ({ratio:g}x)"

    def label(self, key: GridKey) -> str:
        """``"64"`` in 1-D, ``"64x64"`` in 2-D (from the predictions' grid)."""
        return "x".join(str(n) for n in self.predictions[key].shape[2:]) or str(key)

    def mean(self) -> dict[str, float]:
        """Grid label -> mean relative error (JSON-ready)."""
        return {str(k): v.mean().item() for k, v in self.errors.items()}

    def rows(self) -> list[tuple[str, str, int, str, str, str]]:
        """``(grid, role, samples, mean, median, 95th percentile)`` per grid, errors as percentages."""
        return [(self.label(k), self.role(k), len(e), f"{e.mean():.3%}", f"{e.median():.3%}",
                 f"{e.quantile(0.95):.3%}") for k, e in self.errors.items()]

    def table(self) -> str:
        """The rows as a :func:`format_table`."""
        return format_table(("grid", "role", "samples", "mean rel. L2", "median", "95th pct"), self.rows())

    def __str__(self) -> str:
        return self.table()


def _first(key: GridKey) -> int:
    return key[0] if isinstance(key, tuple) else key


def _pair(name: str, item: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` from a pair or an object with ``.inputs`` / ``.targets`` (PDEData)."""
    if hasattr(item, "inputs") and hasattr(item, "targets"):
        return item.inputs, item.targets
    if isinstance(item, Sequence) and len(item) == 2:
        return item[0], item[1]
    raise TypeError(f"{name} must be an (inputs, targets) pair or a PDEData, got {describe(item)}")


def resolution_study(model: nn.Module, data_by_resolution: Mapping[GridKey, Any], *,
                     train_resolution: GridKey | None = None, batch_size: int = 64,
                     device: torch.device | str | None = None,
                     norm: Callable[[torch.Tensor], torch.Tensor] | None = None) -> ResolutionStudy:
    """Score ``model`` on the same test samples at every grid; flag the grids it was not trained on.

    Parameters
    ----------
    model : nn.Module
        A trained operator that takes inputs on any of the grids (an FNO does).
    data_by_resolution : mapping
        Grid key (an int per axis, or a tuple) -> test data on that grid: an
        ``(inputs, targets)`` pair or a :class:`~operators.datasets.PDEData`.
    train_resolution : int or tuple of int, optional
        The training grid's key; every other grid is flagged ``zero-shot (rx)``.
    batch_size, device
        As in :func:`predict`.
    norm : callable, optional
        Per-sample norm for :func:`relative_errors` (default: the plain 2-norm).

    Returns
    -------
    ResolutionStudy
        Errors and predictions per grid, in increasing grid order; ``str()`` is the table.

    Shape
    -----
    inputs: (n, C_in, *grid), targets: (n, C_out, *grid) -> errors (n,) float64 per grid
    """
    if not isinstance(data_by_resolution, Mapping) or not data_by_resolution:
        raise TypeError(f"data_by_resolution must be a non-empty mapping grid -> (inputs, targets), "
                        f"got {describe(data_by_resolution)}")
    if train_resolution is not None and train_resolution not in data_by_resolution:
        raise ValueError(f"train_resolution={train_resolution!r} is not one of the grids "
                         f"{sorted(data_by_resolution, key=_first)}")
    errors, preds = {}, {}
    for key in sorted(data_by_resolution, key=_first):
        x, y = _pair(f"data_by_resolution[{key!r}]", data_by_resolution[key])
        preds[key] = predict(model, x, batch_size=batch_size, device=device)
        if preds[key].shape != y.shape:
            raise ValueError(f"resolution_study: at grid {key!r} the model returns {tuple(preds[key].shape)} "
                             f"for targets of shape {tuple(y.shape)}")
        errors[key] = relative_errors(preds[key], y, norm=norm)
    return ResolutionStudy(train_resolution, errors, preds)
