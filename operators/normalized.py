"""A model that takes and returns physical units around a model trained on normalised data.

Legend: ``B`` batch, ``C_in``/``C_out`` channels, ``*grid`` the spatial axes.

:class:`Normalized` encodes its input with one :class:`~operators.datasets.Normalizer`,
runs the wrapped model and decodes the output with another; it saves and reloads with
:func:`operators.save_model` / :func:`operators.load_model` (a built-in entry of
:mod:`operators.saving`'s registry, added on first use: importing has no side effect).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from operators.datasets.normalizer import Normalizer, _fit_moments, _from_moments
from operators.saving import build_model, model_spec
from spectral.checks import check_int, describe

__all__ = ["Normalized"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Normalized(nn.Module):
    """``target_normalizer.decode(model(input_normalizer.encode(x)))``: predictions in physical units.

    The wrapped ``model`` sees standardised inputs and produces standardised outputs;
    the two normalisers are fixed buffers (no gradients), saved with the model. Either
    may be None (that side is left as is).

    Training, two ways (both with :class:`~operators.Trainer` on physical ``(x, y)`` pairs):

    * ``Trainer(normalized, ...)``: the loss compares physical predictions with
      physical targets (the FNO paper's recipe; a relative loss such as the default
      ``LpLoss`` is then what you report).
    * ``Trainer(normalized, loss=normalized.normalized_loss(loss))``: the loss compares
      ``encode(prediction)`` with ``encode(target)``, i.e. the wrapped model's output
      with the encoded target: the same as training ``normalized.model`` on encoded
      targets, and what an absolute loss (MSE) on channels of different scales needs.

    Either way ``normalized(x)`` predicts in physical units.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, C_in, *grid)`` to ``(B, C_out, *grid)``; extra arguments of
        :meth:`forward` (e.g. FNO's ``output_shape``) are passed on to it.
    input_normalizer, target_normalizer : Normalizer or None
        Fitted on the training inputs and targets (see :meth:`from_data`).

    Shape
    -----
    x: (B, C_in, *grid) real -> (B, C_out, *grid_out) real, the model's dtype.

    Examples
    --------
    >>> from operators import FNO
    >>> from operators.datasets import Normalizer
    >>> x, y = torch.randn(8, 1, 16, 16) + 5, 100 * torch.randn(8, 1, 16, 16)
    >>> model = Normalized(FNO(1, 1, (4, 4), hidden_channels=8), Normalizer.fit(x), Normalizer.fit(y))
    >>> model(x).shape
    torch.Size([8, 1, 16, 16])
    """

    def __init__(self, model: nn.Module, input_normalizer: Normalizer | None = None,
                 target_normalizer: Normalizer | None = None) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"Normalized: model must be an nn.Module, got {describe(model)}")
        for name, value in (("input_normalizer", input_normalizer), ("target_normalizer", target_normalizer)):
            if value is not None and not isinstance(value, Normalizer):
                raise TypeError(f"Normalized: {name} must be a Normalizer or None, got {describe(value)}")
        self.model = model  # registered first: load_model takes the dtype from the first floating weights
        self.input_normalizer = input_normalizer
        self.target_normalizer = target_normalizer

    @classmethod
    def from_data(cls, model: nn.Module, data: Any, *, eps: float = 1e-6, batch_size: int = 256) -> Normalized:
        """Wrap ``model`` with normalisers fitted on the training pairs ``data`` in one pass.

        ``data``: an ``(inputs, targets)`` pair of tensors, a
        :class:`~operators.datasets.PDEData`, a Dataset of ``(input, target)`` items or a
        DataLoader of such batches (read once, see :meth:`Normalizer.fit`). The
        normalisers get the dtype of ``model``'s first floating parameter.
        """
        check_int("batch_size", batch_size)
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
            parts = [_fit_moments(t, (None,), batch_size)[0] for t in data]  # in memory: one pass each
        else:
            parts = _fit_moments(data, (0, 1), batch_size)
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        norms = [_from_moments(Normalizer, mean, std, eps=eps, device=None, dtype=dtype) for mean, std in parts]
        return cls(model, *norms)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Encode ``x``, run the model (with any extra arguments), decode its output."""
        if self.input_normalizer is not None:
            x = self.input_normalizer.encode(x)  # (B, C_in, *grid), normalised
        out = self.model(x, *args, **kwargs)  # (B, C_out, *grid_out), normalised
        if self.target_normalizer is not None:
            out = self.target_normalizer.decode(out)
        return out

    def normalized_loss(self, loss: LossFn | None = None) -> LossFn:
        """``loss(encode(pred), encode(target))`` with the target normaliser: a loss in normalised units.

        ``loss`` defaults to the Trainer's (relative L2, :class:`~operators.losses.LpLoss`).
        Pass the result as ``Trainer(..., loss=...)`` (or in ``metrics``) while training
        this Normalized on physical pairs.
        """
        if loss is None:
            from operators.losses import LpLoss

            loss = LpLoss(1, 2.0, relative=True, reduction="mean", periodic=True)
        if not callable(loss):
            raise TypeError(f"Normalized.normalized_loss: loss must be callable, got {describe(loss)}")
        return _EncodedLoss(loss, self.target_normalizer)


class _EncodedLoss(nn.Module):
    """``loss(norm.encode(pred), norm.encode(target))`` (the identity encoding when ``norm`` is None)."""

    def __init__(self, loss: LossFn, norm: Normalizer | None) -> None:
        super().__init__()
        self.loss, self.norm = loss, norm

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.norm is None:
            return self.loss(pred, target)
        return self.loss(self.norm.encode(pred), self.norm.encode(target))


# ------------------------------------------------------------------ private
def _to_config(model: Normalized) -> dict[str, Any]:
    def norm(n: Normalizer | None) -> dict[str, Any] | None:
        return None if n is None else {"channels": n.channels, "eps": n.eps}

    return {"model": model_spec(model.model), "input_normalizer": norm(model.input_normalizer),
            "target_normalizer": norm(model.target_normalizer)}


def _from_config(config: Mapping[str, Any], *, device=None, dtype=None) -> Normalized:
    if not isinstance(config, Mapping) or "model" not in config:
        raise ValueError(f"a Normalized config is a dict with a 'model' spec, got {describe(config)}")

    def norm(c: Mapping[str, Any] | None) -> Normalizer | None:
        return None if c is None else Normalizer(c["channels"], eps=c["eps"], device=device, dtype=dtype)

    return Normalized(build_model(config["model"], device=device, dtype=dtype),
                      norm(config.get("input_normalizer")), norm(config.get("target_normalizer")))

