"""SpecBoost: a sum of operator stages, each trained on the residual of the stages before it.

Legend: ``n`` samples, ``B`` batch, ``Cin`` input channels, ``Cout`` output channels,
``*grid`` the ``d`` spatial axes of the input (``H, W`` in 2-D), ``*out`` the output grid.

Qin et al., "Toward a Better Understanding of Fourier Neural Operators: Analysis and
Improvement from a Spectral Perspective" (arXiv:2404.07200): an FNO learns the dominant
(low) frequencies of its target well and leaves a residual whose energy is spread to
higher wavenumbers; a second FNO trained on that residual learns much of it.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, Literal

import torch
from torch import nn

from operators.checkpoint import atomic_save, checked_load
from operators.fno import FNO
from operators.sfno import SFNO
from operators.specboost_scaling import ScaledStage, residual_scale
from spectral.checks import check_choice, check_int, check_ints, check_tensor, describe
from spectral.fft import resample

__all__ = ["SpecBoost", "ScaledStage", "residual_scale", "STAGE_INPUTS", "STAGE_OBJECTIVES", "SAVE_FORMAT"]

STAGE_INPUTS: tuple[str, ...] = ("input", "input+previous")
STAGE_OBJECTIVES: tuple[str, ...] = ("residual", "ensemble")
SAVE_FORMAT = 1
StageInput = Literal["input", "input+previous"]
StageObjective = Literal["residual", "ensemble"]
_DEFAULT_CLASSES: dict[str, type[nn.Module]] = {"FNO": FNO, "SFNO": SFNO}


class SpecBoost(nn.Module):
    """Boosted operator ensemble: ``G(x) = sum_m G_m(z_m)``, stage ``m`` fit to the residual of stages ``< m``.

    With ``P_m = sum_{j<m} G_j(z_j)`` the prediction of the first ``m`` stages on the
    input grid, stage ``m`` sees ``z_m = x`` (``stage_input="input"``) or
    ``z_m = concat(x, P_m)`` along channels (``"input+previous"``; ``z_0 = x``) and is
    trained on the residual target ``y - P_m`` with the earlier stages frozen
    (:meth:`residual_targets`, :meth:`freeze_before`; the training loop is
    :func:`operators.training.fit_specboost_stage`).

    Parameters
    ----------
    stages : sequence of nn.Module
        The operators ``G_m``, each ``(B, C_m, *grid) -> (B, Cout, *grid)``. Where they
        expose ``in_channels``/``out_channels`` these are checked: ``C_0 = Cin`` and,
        for ``"input+previous"``, ``C_m = Cin + Cout`` for ``m >= 1``.
    stage_input : {"input", "input+previous"}
        What each stage sees (above).

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *out) real; ``*out`` = ``output_shape`` or ``*grid``.

    Notes
    -----
    ``forward(x, output_shape)`` passes ``output_shape`` to the stages whose ``forward``
    accepts it (FNO: the last block is evaluated on that grid); the output of any other
    stage is Fourier-resampled (:func:`spectral.fft.resample`, periodic grids only; SFNO stages,
    whose latitudes are not periodic, are a ValueError: build them with ``out_shape``) to ``output_shape``. The
    running prediction ``P_m`` fed to later stages is always taken on the input grid.
    Frozen stages (:meth:`freeze_before`) have ``requires_grad=False`` and stay in eval
    mode under ``train()``.

    Examples
    --------
    >>> boost = SpecBoost([FNO(1, 1, (8, 8), hidden_channels=8, n_layers=2) for _ in range(2)])
    >>> x = torch.randn(3, 1, 32, 32)
    >>> bool(torch.allclose(boost(x), boost.stages[0](x) + boost.stages[1](x)))
    True
    >>> boost(x, output_shape=(48, 48)).shape
    torch.Size([3, 1, 48, 48])
    """

    def __init__(self, stages: Sequence[nn.Module], *, stage_input: StageInput = "input") -> None:
        super().__init__()
        check_choice("stage_input", stage_input, STAGE_INPUTS)
        if isinstance(stages, nn.Module) and not isinstance(stages, nn.ModuleList):
            stages = [stages]
        stages = list(stages)
        if not stages:
            raise ValueError("stages must hold at least one nn.Module, got an empty sequence")
        self.stage_input = stage_input
        self.stages = nn.ModuleList()
        self._shape_aware: list[bool] = []
        self.n_frozen = 0
        for stage in stages:
            self.add_stage(stage, freeze_previous=False)

    # ----------------------------------------------------------------- structure
    @property
    def in_channels(self) -> int | None:
        return getattr(self.stages[0], "in_channels", None)

    @property
    def out_channels(self) -> int | None:
        return getattr(self.stages[0], "out_channels", None)

    def add_stage(self, stage: nn.Module, *, freeze_previous: bool = True, scale: float | None = None) -> int:
        """Append ``stage``; freeze every earlier stage unless ``freeze_previous=False``. Returns its index.

        With ``scale``, the stage is appended as ``ScaledStage(stage, scale)``: it predicts
        ``scale * stage(z)``, so that ``stage`` fits the residual divided by ``scale``
        (unit variance with ``scale=boost.residual_scale(inputs, targets)``).
        """
        if not isinstance(stage, nn.Module):
            raise TypeError(f"a stage must be an nn.Module, got {type(stage).__name__}")
        if scale is not None:
            stage = ScaledStage(stage, scale)
        m = len(self.stages)
        cin = getattr(stage, "in_channels", None)
        cout = getattr(stage, "out_channels", None)
        if m > 0:
            want_out = self.out_channels
            if cout is not None and want_out is not None and cout != want_out:
                raise ValueError(f"stages[{m}].out_channels={cout} differs from stages[0].out_channels={want_out}")
            if cin is not None and self.in_channels is not None:
                extra = want_out if self.stage_input == "input+previous" else 0
                if extra is None or cin != self.in_channels + extra:
                    raise ValueError(
                        f"stages[{m}].in_channels={cin}, but stage_input={self.stage_input!r} needs "
                        f"{self.in_channels}{f' + {extra}' if extra else ''} (Cin{' + Cout' if extra else ''})"
                    )
        self.stages.append(stage)
        self._shape_aware.append(_accepts_output_shape(stage))
        if freeze_previous:
            self.freeze_before(m)
        return m

    def freeze_before(self, m: int) -> None:
        """Freeze stages ``0..m-1`` (no gradients, eval mode) and unfreeze stages ``m..``."""
        m = check_int("m", m, min=0, max=len(self.stages))
        for j, stage in enumerate(self.stages):
            stage.requires_grad_(j >= m)
        self.n_frozen = m
        self.train(self.training)

    def train(self, mode: bool = True) -> SpecBoost:
        super().train(mode)
        for stage in self.stages[: self.n_frozen]:
            stage.train(False)
        return self

    def reset_parameters(self) -> None:
        for stage in self.stages:
            stage.reset_parameters()

    def extra_repr(self) -> str:
        return f"n_stages={len(self.stages)}, stage_input={self.stage_input!r}, n_frozen={self.n_frozen}"

    # ------------------------------------------------------------------- forward
    def forward(
        self, x: torch.Tensor, output_shape: Sequence[int] | None = None, *, n_stages: int | None = None
    ) -> torch.Tensor:
        """Sum of the first ``n_stages`` (default all) stage outputs, on ``output_shape`` or the input grid."""
        k = len(self.stages) if n_stages is None else check_int("n_stages", n_stages, max=len(self.stages))
        out = self._check_input(x, output_shape)
        previous, total = None, None
        for m in range(k):
            z = self._stage_in(x, previous, m)  # (B, Cin [+ Cout], *grid)
            if out is None:
                y = self.stages[m](z)  # (B, Cout, *grid)
                previous = y if previous is None else previous + y
                total = previous
                continue
            y_out = self._call(m, z, out)  # (B, Cout, *out)
            total = y_out if total is None else total + y_out
            if self.stage_input == "input+previous" and m + 1 < k:
                y = self.stages[m](z)
                previous = y if previous is None else previous + y
        return total

    def _stage_in(self, x: torch.Tensor, previous: torch.Tensor | None, m: int) -> torch.Tensor:
        if self.stage_input == "input" or m == 0:
            return x
        return torch.cat([x, previous], dim=1)

    def _call(self, m: int, z: torch.Tensor, out: tuple[int, ...]) -> torch.Tensor:
        if self._shape_aware[m]:
            return self.stages[m](z, output_shape=out)
        return resample(self.stages[m](z), out)

    def _check_input(self, x: torch.Tensor, output_shape: Sequence[int] | None) -> tuple[int, ...] | None:
        check_tensor("SpecBoost", "x", x, kind="any")  # the stages check the dtype
        cin = self.in_channels
        if x.ndim < 3 or (cin is not None and x.shape[1] != cin):
            raise ValueError(f"SpecBoost: expected x of shape (B, {cin or 'Cin'}, *grid), got {tuple(x.shape)}")
        if output_shape is None:
            return None
        d = x.ndim - 2
        if not isinstance(output_shape, Sequence) or isinstance(output_shape, str):
            raise TypeError(f"SpecBoost: output_shape must be {d} positive ints, got {describe(output_shape)}")
        if len(output_shape) != d:
            raise ValueError(f"SpecBoost: output_shape must be {d} positive ints, got {tuple(output_shape)!r}")
        out = check_ints("output_shape", output_shape, length=d, min=1)
        for m, stage in enumerate(self.stages):
            stage = stage.stage if isinstance(stage, ScaledStage) else stage
            if isinstance(stage, SFNO) and out != tuple(stage.config.out_shape or stage.config.img_shape):
                raise ValueError(
                    f"SpecBoost: stage {m} is an SFNO, whose output grid is fixed when it is built "
                    f"(out_shape={stage.config.out_shape}); Fourier resampling to output_shape={out} would treat "
                    "latitude as periodic. Build the stages with out_shape instead of passing output_shape"
                )
        return None if out == tuple(x.shape[2:]) else out

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def residual_targets(
        self, m: int, inputs: torch.Tensor, targets: torch.Tensor, *, batch_size: int = 32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training data of stage ``m``: its inputs ``z_m`` and residual targets ``y - P_m``.

        Shape
        -----
        inputs (n, Cin, *grid), targets (n, Cout, *grid) -> z (n, Cin [+ Cout], *grid), residual (n, Cout, *grid),
        on the device of ``inputs`` (the stages run batch by batch in eval mode on their own device).
        """
        z, previous = self.stage_data(m, inputs, targets, batch_size=batch_size)
        return z, targets - previous

    @torch.no_grad()
    def stage_data(
        self, m: int, inputs: torch.Tensor, targets: torch.Tensor, *, batch_size: int = 32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z_m`` and ``P_m`` for a whole data set, computed in eval mode without gradients.

        Shape
        -----
        inputs (n, Cin, *grid), targets (n, Cout, *grid) -> z (n, Cin [+ Cout], *grid), P (n, Cout, *grid).
        """
        m = check_int("m", m, min=0, max=len(self.stages))
        batch_size = check_int("batch_size", batch_size)
        if m == len(self.stages):
            raise ValueError(f"m must be an int in [0, {len(self.stages) - 1}] (a stage index), got m={m}")
        for name, t in (("inputs", inputs), ("targets", targets)):
            if not isinstance(t, torch.Tensor) or t.ndim < 3:
                raise ValueError(f"{name}: expected a tensor of shape (n, C, *grid), got {describe(t)}")
        cout = self.out_channels
        if targets.shape[0] != inputs.shape[0] or targets.shape[2:] != inputs.shape[2:] or (cout is not None and targets.shape[1] != cout):
            raise ValueError(
                f"targets: expected shape ({inputs.shape[0]}, {cout or 'Cout'}, {', '.join(map(str, inputs.shape[2:]))}) "
                f"matching inputs {tuple(inputs.shape)}, got {tuple(targets.shape)}"
            )
        if m == 0:
            return inputs, torch.zeros_like(targets)
        previous = self._batched_prediction(inputs, m, batch_size, like=targets)  # (n, Cout, *grid)
        z = inputs if self.stage_input == "input" else torch.cat([inputs, previous.to(inputs.dtype)], dim=1)
        return z, previous

    @torch.no_grad()
    def residual_scale(self, inputs: torch.Tensor, targets: torch.Tensor, *, batch_size: int = 32) -> float:
        """Standard deviation of the residual ``y - P_M`` left by all ``M`` current stages: the next stage's ``scale``.

        ``boost.add_stage(G, scale=boost.residual_scale(x, y))`` makes ``G`` fit
        unit-variance targets (:class:`~operators.specboost_scaling.ScaledStage`,
        :func:`~operators.specboost_scaling.residual_scale`).

        Shape
        -----
        inputs (n, Cin, *grid), targets (n, Cout, *grid) -> float
        """
        self.stage_data(0, inputs, targets, batch_size=batch_size)  # checks the shapes and batch_size
        full = self._batched_prediction(inputs, len(self.stages), batch_size, like=targets)  # (n, Cout, *grid): P_M
        return residual_scale(targets - full)

    def _batched_prediction(self, inputs: torch.Tensor, n_stages: int, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        """``P_{n_stages}`` of a whole data set, batch by batch in eval mode on the stages' device, as ``like``'s dtype and device."""
        device = next(self.stages[0].parameters()).device
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self(inputs[i : i + batch_size].to(device), n_stages=n_stages).to(like)
                              for i in range(0, len(inputs), batch_size)])
        finally:
            self.train(was_training)

    def fit_stage(self, m: int, train: Any, test: Any = None, **kwargs: Any) -> Any:
        """Deprecated (removed in 0.2): use :func:`operators.training.fit_specboost_stage` (same arguments)."""
        warnings.warn(
            "SpecBoost.fit_stage is deprecated and will be removed in 0.2; use "
            "operators.training.fit_specboost_stage(boost, m, train, test, ...) instead",
            DeprecationWarning, stacklevel=2,
        )
        from operators.training import fit_specboost_stage  # the model does not import training otherwise

        return fit_specboost_stage(self, m, train, test, **kwargs)

    # -------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> None:
        """Write the ensemble (stage classes, stage configs, weights, ``stage_input``) atomically to ``path``.

        A :class:`ScaledStage` is saved as its wrapped stage plus its ``scale``.

        Every stage needs a ``config`` attribute, a dataclass (or dict) of its
        constructor's arguments, as :class:`~operators.fno.FNO` and
        :class:`~operators.sfno.SFNO` have. Read back with :meth:`load`.
        """
        entries = []
        for m, stage in enumerate(self.stages):
            scaled = isinstance(stage, ScaledStage)
            stage = stage.stage if scaled else stage
            config = getattr(stage, "config", None)
            if is_dataclass(config):
                config = asdict(config)
            if not isinstance(config, dict):
                raise ValueError(f"stages[{m}] ({type(stage).__name__}) has no dataclass or dict `config` attribute; cannot save it")
            entries.append({"class": type(stage).__name__, "config": config, "scaled": scaled})
        blob = {"format": SAVE_FORMAT, "kind": "SpecBoost", "stage_input": self.stage_input,
                "n_frozen": self.n_frozen, "stages": entries, "state_dict": self.state_dict()}
        atomic_save(blob, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, stage_classes: Mapping[str, type[nn.Module]] | None = None,
        device=None, dtype=None,
    ) -> SpecBoost:
        """Rebuild an ensemble written by :meth:`save` (``torch.load(weights_only=True)``).

        ``stage_classes`` maps class names to classes beyond the built-in FNO and SFNO;
        each is built as ``cls(**config, device=device, dtype=dtype)``.
        """
        blob = checked_load(path, map_location="cpu")  # a damaged file: a ValueError naming it
        if not isinstance(blob, dict) or blob.get("kind") != "SpecBoost" or blob.get("format") != SAVE_FORMAT:
            raise ValueError(f"{path} is not a SpecBoost file of format {SAVE_FORMAT}")
        classes = {**_DEFAULT_CLASSES, **(stage_classes or {})}
        stages = []
        for m, entry in enumerate(blob["stages"]):
            if entry["class"] not in classes:
                raise ValueError(f"stages[{m}] has class {entry['class']!r}, not among {sorted(classes)}; pass stage_classes")
            stage = classes[entry["class"]](**entry["config"], device=device, dtype=dtype)
            stages.append(ScaledStage(stage) if entry.get("scaled") else stage)  # the scale: from the state_dict
        boost = cls(stages, stage_input=blob["stage_input"])
        boost.load_state_dict(blob["state_dict"])
        boost.freeze_before(blob["n_frozen"])
        return boost.to(device=device, dtype=dtype)


def _accepts_output_shape(stage: nn.Module) -> bool:
    params = inspect.signature(stage.forward).parameters
    return "output_shape" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())

