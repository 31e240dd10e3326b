"""Models that save and reload: class name + config + weights in one file, no pickled code.

Legend: none (no tensor shapes here; a *spec* is ``{"class": name, "config": plain}``).

A model's *spec* (:func:`model_spec`) is its class name and its constructor config as
plain Python values (dicts, lists, tuples, str, int, float, bool, None);
:func:`build_model` turns a spec back into a freshly initialised model. :func:`save_model`
writes the spec and the ``state_dict`` atomically to one file that loads with
``torch.load(..., weights_only=True)``; :func:`load_model` rebuilds the model from such a
file or from a Trainer checkpoint (which stores ``model_spec`` beside the weights).

FNO, SFNO, SpecBoost (its stages' specs recursively), Normalized and ScaledStage are known; other classes are
added with :func:`register_model`, giving two functions: ``to_config(model) -> plain``
and ``from_config(config, device=..., dtype=...) -> model``.

Examples
--------
>>> import tempfile, pathlib, torch
>>> from operators import FNO
>>> from operators.saving import load_model, save_model
>>> model = FNO(1, 1, (6, 6), hidden_channels=8, n_layers=2)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "fno.pt"
>>> save_model(model, path)
>>> x = torch.randn(2, 1, 16, 16)
>>> torch.equal(load_model(path)(x), model(x))
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from operators.checkpoint import atomic_save, checked_load
from spectral.checks import describe

__all__ = [
    "MODEL_FILE_KIND",
    "MODEL_FILE_VERSION",
    "register_model",
    "registered_models",
    "model_spec",
    "build_model",
    "save_model",
    "load_model",
]

MODEL_FILE_KIND = "spectral-operators model"
MODEL_FILE_VERSION = 1
_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class _Entry:
    cls: type[nn.Module]
    to_config: Callable[[nn.Module], Any]
    from_config: Callable[..., nn.Module]


_REGISTRY: dict[str, _Entry] = {}
_BUILTINS_LOADED = False


def register_model(
    cls: type[nn.Module],
    to_config: Callable[[nn.Module], Any],
    from_config: Callable[..., nn.Module],
    *,
    name: str | None = None,
) -> None:
    """Teach :func:`model_spec` / :func:`build_model` (and so save/load) a model class.

    Parameters
    ----------
    cls : type
        The ``nn.Module`` subclass; instances of exactly this class are handled
        (a subclass needs its own entry: its constructor may differ).
    to_config : callable
        ``to_config(model)`` returns the constructor config as plain values (dicts with
        str keys, lists, tuples, str, int, float, bool, None); nested models go in as
        their :func:`model_spec`.
    from_config : callable
        ``from_config(config, device=None, dtype=None)`` builds a new model (weights
        are loaded afterwards); nested specs are built with :func:`build_model`.
    name : str, optional
        The name stored in files (default ``cls.__qualname__``).

    Raises
    ------
    ValueError
        ``name`` is already registered to another class.
    """
    _load_builtins()
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"cls must be an nn.Module subclass, got {describe(cls)}")
    for arg, fn in (("to_config", to_config), ("from_config", from_config)):
        if not callable(fn):
            raise TypeError(f"{arg} must be callable, got {describe(fn)}")
    name = cls.__qualname__ if name is None else name
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {describe(name)}")
    old = _REGISTRY.get(name)
    if old is not None and old.cls is not cls:
        raise ValueError(f"name={name!r} is already registered for {old.cls.__module__}.{old.cls.__qualname__}")
    _REGISTRY[name] = _Entry(cls, to_config, from_config)


def registered_models() -> tuple[str, ...]:
    """The class names :func:`build_model` knows, sorted."""
    _load_builtins()
    return tuple(sorted(_REGISTRY))


def model_spec(model: nn.Module) -> dict[str, Any]:
    """``{"class": name, "config": plain}``: what :func:`build_model` needs to rebuild ``model``.

    Raises
    ------
    ValueError
        The class is not registered (the message lists the known ones; wrappers such as
        DistributedDataParallel or ``torch.compile`` : pass the module they wrap), or its
        config holds something other than plain values.
    """
    _load_builtins()
    for name, entry in _REGISTRY.items():
        if type(model) is entry.cls:
            config = entry.to_config(model)
            _check_plain(config, f"{name} config")
            return {"class": name, "config": config}
    raise ValueError(
        f"model_spec: {type(model).__module__}.{type(model).__qualname__} is not a registered model class "
        f"(known: {', '.join(registered_models())}); add it with operators.saving.register_model"
    )


def build_model(spec: Mapping[str, Any], *, device=None, dtype=None) -> nn.Module:
    """A freshly initialised model from a :func:`model_spec` (load its weights afterwards).

    Raises
    ------
    ValueError
        ``spec`` is not a spec, names an unknown class (the known ones are listed), or
        its config does not fit the class.
    """
    _load_builtins()
    if not isinstance(spec, Mapping) or not isinstance(spec.get("class"), str) or "config" not in spec:
        raise ValueError(f"a model spec is a dict {{'class': str, 'config': ...}}, got {describe(spec)}")
    name = spec["class"]
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown model class {name!r} (known: {', '.join(registered_models())}); "
            "register it with operators.saving.register_model"
        )
    try:
        return _REGISTRY[name].from_config(spec["config"], device=device, dtype=dtype)
    except TypeError as err:  # a field the class does not take (a file from another version)
        raise ValueError(f"the {name} config {spec['config']!r} does not fit {name}: {err}") from err


def save_model(model: nn.Module, path: str | os.PathLike) -> None:
    """Write ``model``'s class name, config and weights to ``path``, atomically.

    The file holds only plain values and tensors (it loads with
    ``torch.load(path, weights_only=True)``): ``{"kind", "version", "spec",
    "state_dict"}``, and ends with the checksum of :func:`~operators.checkpoint.atomic_save`.
    Read it back with :func:`load_model`.

    Raises
    ------
    ValueError
        The model's class is not registered (see :func:`model_spec`).
    """
    blob = {"kind": MODEL_FILE_KIND, "version": MODEL_FILE_VERSION, "spec": model_spec(model),
            "state_dict": model.state_dict()}
    atomic_save(blob, path)


def load_model(path: str | os.PathLike, map_location=None) -> nn.Module:
    """Rebuild the model saved in ``path`` by :func:`save_model`, or the model of a Trainer checkpoint.

    Parameters
    ----------
    path : str or PathLike
        A model file, or a Trainer checkpoint (``checkpoint_dir/checkpoint.pt``) written
        with its ``model_spec``.
    map_location : optional
        As in :func:`torch.load`: where the weights go (default: the device they were
        saved from). The model is built on that device, with the dtype of its saved
        floating-point weights.

    Returns
    -------
    nn.Module
        The model, in training mode (as a freshly built module), weights loaded exactly.

    Raises
    ------
    ValueError
        The file is neither (or of an unknown version), the checkpoint has no model
        spec, or the class is unknown: the message names the file.
        :class:`~operators.checkpoint.DamagedFileError` (a ValueError) for a damaged
        file (truncated, empty, bytes changed: its checksum differs).
    FileNotFoundError
        No file at ``path``.
    """
    blob = _read(path, map_location)
    spec, state = _spec_and_state(blob, path)
    device, dtype = _placement(state)
    try:
        model = build_model(spec, device=device, dtype=dtype)
    except ValueError as err:
        raise ValueError(f"{os.fspath(path)}: {err}") from err
    model.load_state_dict(state)
    return model


# ------------------------------------------------------------------------- private
def _read(path: str | os.PathLike, map_location) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_model: no file {os.fspath(path)!r}")
    return checked_load(path, map_location=map_location)  # checksum verified: a damaged file is named


def _spec_and_state(blob: Any, path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    where = os.fspath(path)
    if isinstance(blob, dict) and blob.get("kind") == MODEL_FILE_KIND:
        if blob.get("version") != MODEL_FILE_VERSION:
            raise ValueError(
                f"{where} is a model file of version {blob.get('version')!r}; this library reads version "
                f"{MODEL_FILE_VERSION} (a newer library wrote it?)"
            )
        return blob["spec"], blob["state_dict"]
    if isinstance(blob, dict) and "model" in blob and "format" in blob:  # a Trainer checkpoint
        spec = blob.get("model_spec")
        if spec is None:
            raise ValueError(
                f"{where} is a Trainer checkpoint without a model spec (written before model specs were stored, "
                "or its model class is not registered): build the model yourself and load "
                "torch.load(path, weights_only=True)['model'] into it"
            )
        return spec, blob["model"]
    got = f"a dict with keys {sorted(map(str, blob))}" if isinstance(blob, dict) else describe(blob)
    raise ValueError(f"{where} is neither a model file (operators.save_model) nor a Trainer checkpoint: got {got}")


def _placement(state: Mapping[str, torch.Tensor]) -> tuple[torch.device | None, torch.dtype | None]:
    """Device and floating dtype of the saved weights (the first floating tensor's)."""
    for t in state.values():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            return t.device, t.dtype
    return None, None


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be str, got {describe(k)}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise ValueError(
        f"{where} holds {describe(value)}; a config holds only dicts, lists, tuples, str, int, float, bool and None"
    )


def _dataclass_entry(cls: type[nn.Module], config_cls: type) -> tuple[Callable, Callable]:
    def to_config(model: nn.Module) -> dict[str, Any]:
        return asdict(model.config)

    def from_config(config: Mapping[str, Any], *, device=None, dtype=None) -> nn.Module:
        if not isinstance(config, Mapping):
            raise ValueError(f"a {cls.__name__} config is a dict, got {describe(config)}")
        return cls.from_config(config_cls(**config), device=device, dtype=dtype)

    return to_config, from_config


def _specboost_to_config(model: nn.Module) -> dict[str, Any]:
    return {"stage_input": model.stage_input, "n_frozen": model.n_frozen,
            "stages": [model_spec(stage) for stage in model.stages]}


def _specboost_from_config(config: Mapping[str, Any], *, device=None, dtype=None) -> nn.Module:
    from operators.specboost import SpecBoost

    if not isinstance(config, Mapping) or not isinstance(config.get("stages"), (list, tuple)):
        raise ValueError(f"a SpecBoost config is a dict with a list of stage specs, got {describe(config)}")
    stages = [build_model(s, device=device, dtype=dtype) for s in config["stages"]]
    boost = SpecBoost(stages, stage_input=config.get("stage_input", "input"))
    boost.freeze_before(config.get("n_frozen", 0))
    return boost


def _scaled_stage_to_config(model: nn.Module) -> dict[str, Any]:
    return {"stage": model_spec(model.stage), "scale": float(model.scale)}


def _scaled_stage_from_config(config: Mapping[str, Any], *, device=None, dtype=None) -> nn.Module:
    from operators.specboost_scaling import ScaledStage

    if not isinstance(config, Mapping) or "stage" not in config or "scale" not in config:
        raise ValueError(f"a ScaledStage config is a dict with 'stage' and 'scale', got {describe(config)}")
    return ScaledStage(build_model(config["stage"], device=device, dtype=dtype), config["scale"])


def _load_builtins() -> None:
    # Imported on first use: operators.training imports this module, and SpecBoost may import training.
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    from operators.fno import FNO, FNOConfig
    from operators.sfno import SFNO, SFNOConfig
    from operators.normalized import Normalized, _from_config as _normalized_from_config
    from operators.normalized import _to_config as _normalized_to_config
    from operators.specboost import SpecBoost
    from operators.specboost_scaling import ScaledStage

    _BUILTINS_LOADED = True

    for cls, config_cls in ((FNO, FNOConfig), (SFNO, SFNOConfig)):
        _REGISTRY.setdefault(cls.__qualname__, _Entry(cls, *_dataclass_entry(cls, config_cls)))
    _REGISTRY.setdefault("SpecBoost", _Entry(SpecBoost, _specboost_to_config, _specboost_from_config))
    _REGISTRY.setdefault("Normalized", _Entry(Normalized, _normalized_to_config, _normalized_from_config))
    _REGISTRY.setdefault("ScaledStage", _Entry(ScaledStage, _scaled_stage_to_config, _scaled_stage_from_config))
