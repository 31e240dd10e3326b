"""The shape shared by the operator networks (FNO, SFNO): ``lifting -> blocks -> projection``.

Legend: ``B`` batch, ``Cin``/``Cout`` channels in/out, ``Ch`` hidden channels, ``*grid``
the spatial axes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from operators.layers.fourier_block import NORMS, FourierBlock
from operators.layers.inputs import check_field
from operators.layers.pointwise import pointwise_mlp
from operators.layers.skips import SKIPS
from spectral.activations import ACTIVATIONS
from spectral.checks import check_choice, check_dtype_matches, check_int, check_number, check_real_dtype
from spectral.fft import empty_batch

__all__ = ["LiftBlocksProject", "check_operator_options"]


def check_operator_options(
    *,
    in_channels: Any,
    out_channels: Any,
    hidden_channels: Any,
    n_layers: Any,
    lifting_ratio: Any,
    projection_ratio: Any,
    mlp_expansion: Any,
    activation: Any,
    norm: Any,
    skip: Any,
    mlp_skip: Any,
    dtype: Any = None,
) -> dict[str, Any]:
    """The options every :class:`LiftBlocksProject` network shares, checked and normalised.

    Channel counts and ``n_layers`` are positive ints, the three width ratios finite
    numbers ``>= 0``, the choices members of their module-level tuples
    (:data:`~spectral.activations.ACTIVATIONS`, :data:`~operators.layers.NORMS`,
    :data:`~operators.layers.SKIPS`), ``dtype`` a real floating dtype or None.

    Returns
    -------
    dict
        The same keys, with Python ints and floats (numpy scalars converted).

    Raises
    ------
    TypeError
        A value of the wrong kind (a bool or float size, a string ratio, a complex dtype).
    ValueError
        Out of range (a size below 1, a negative or NaN ratio) or not an allowed choice.

    Examples
    --------
    >>> opts = dict(in_channels=1, out_channels=1, hidden_channels=8, n_layers=2, lifting_ratio=2,
    ...             projection_ratio=2, mlp_expansion=0.5, activation="gelu", norm=None, skip="linear",
    ...             mlp_skip="soft-gating")
    >>> check_operator_options(**opts)["lifting_ratio"]
    2.0
    >>> check_operator_options(**{**opts, "lifting_ratio": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: lifting_ratio must be finite, got nan
    """
    out: dict[str, Any] = {name: check_int(name, value) for name, value in (
        ("in_channels", in_channels), ("out_channels", out_channels),
        ("hidden_channels", hidden_channels), ("n_layers", n_layers))}
    for name, value in (("lifting_ratio", lifting_ratio), ("projection_ratio", projection_ratio),
                        ("mlp_expansion", mlp_expansion)):
        out[name] = check_number(name, value, min=0)
    out["activation"] = check_choice("activation", activation, ACTIVATIONS)
    out["norm"] = check_choice("norm", norm, NORMS, allow_none=True)
    out["skip"] = check_choice("skip", skip, SKIPS, allow_none=True)
    out["mlp_skip"] = check_choice("mlp_skip", mlp_skip, SKIPS, allow_none=True)
    out["dtype"] = check_real_dtype("dtype", dtype)
    return out


class LiftBlocksProject(nn.Module):
    """Base of the operator networks (FNO, SFNO): ``lifting -> blocks -> projection``.

    Subclasses set the modules ``lifting``, ``blocks`` (an ``nn.ModuleList``) and
    ``projection`` (:meth:`build_stack` builds all three from the spectral convs and the
    options :func:`check_operator_options` returns), a ``config`` dataclass, and name in
    ``_POSITIONAL`` the config fields passed positionally to their constructor. The base
    gives :meth:`from_config`, :meth:`reset_parameters`, the input check and the
    empty-batch output.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *out) real (as the subclass defines)

    Examples
    --------
    >>> from operators import FNO
    >>> model = FNO(1, 1, (4, 4), hidden_channels=8, n_layers=1)
    >>> isinstance(model, LiftBlocksProject), FNO.from_config(model.config).config == model.config
    (True, True)
    """

    _POSITIONAL: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config, *, device=None, dtype=None):
        """Build the model from its config dataclass (``model.config`` round-trips)."""
        kwargs = asdict(config)
        args = [kwargs.pop(k) for k in cls._POSITIONAL]
        return cls(*args, **kwargs, device=device, dtype=dtype)

    def build_stack(
        self,
        lift_channels: int,
        convs: Sequence[nn.Module] | Callable[[int], nn.Module],
        options: dict[str, Any],
        *,
        resample: Any = None,
        device=None,
        dtype=None,
    ) -> None:
        """Set ``lifting``, ``blocks`` and ``projection``: ``lift_channels -> Ch``, one
        :class:`~operators.layers.FourierBlock` per conv (the last without its final
        activation, and with ``resample`` for its skips), ``Ch -> out_channels``.

        ``convs`` is the list of spectral convs, or a factory ``convs(i)`` called for block
        ``i`` after the lifting is built (parameters are then drawn from the RNG in the order
        lifting, conv 0, block 0, conv 1, ...). ``options`` is the dict
        :func:`check_operator_options` returned; the lifting and projection are
        :func:`~operators.layers.pointwise_mlp` of width ``ratio * Ch``.
        """
        ch, act = options["hidden_channels"], options["activation"]
        n = options["n_layers"] if callable(convs) else len(convs)
        kw = dict(device=device, dtype=dtype)
        self.lifting = pointwise_mlp(lift_channels, ch, round(options["lifting_ratio"] * ch), activation=act, **kw)
        blocks = []
        for i in range(n):  # a factory builds conv i just before block i's other parameters
            conv = convs(i) if callable(convs) else convs[i]
            blocks.append(FourierBlock(
                conv, mlp_expansion=options["mlp_expansion"], skip=options["skip"], mlp_skip=options["mlp_skip"],
                activation=act, norm=options["norm"], last=i == n - 1, resample=resample if i == n - 1 else None, **kw))
        self.blocks = nn.ModuleList(blocks)
        self.projection = pointwise_mlp(ch, options["out_channels"], round(options["projection_ratio"] * ch), activation=act, **kw)

    def reset_parameters(self) -> None:
        for m in (self.lifting, *self.blocks, self.projection):
            m.reset_parameters()

    def check_input(self, x: Any, grid: Sequence[int | str], owner: str | None = None) -> torch.Tensor:
        """``x`` if it is a real tensor ``(B, in_channels, *grid)`` in the parameters' dtype.

        ``grid`` holds an int where the size is fixed and a letter where any size goes.
        Autocast exempts the dtype match unless float64 is on either side (autocast never
        casts float64, the matmuls would fail).

        Raises
        ------
        TypeError
            Not a real floating tensor, or not in the parameters' dtype.
        ValueError
            The wrong shape (the message shows the expected pattern and the shape got).
        """
        owner = owner or type(self).__name__
        check_field(owner, x, self.in_channels, grid)
        check_dtype_matches(owner, x, next(self.lifting.parameters()))
        return x

    def _check_dtype(self, x: torch.Tensor) -> None:
        """TypeError naming the model unless ``x`` has the parameters' dtype (autocast exempt,
        except for float64 on either side: autocast never casts float64, the matmuls would fail)."""
        check_dtype_matches(type(self).__name__, x, next(self.lifting.parameters()))

    def _project_empty(self, h: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Output for an empty batch (FFT backends reject ``B = 0``): the lifted ``h`` (0, Ch, ...)
        skips the blocks as an empty hidden field on ``grid`` and is projected, so the dtype is
        the one a non-empty batch gets (also under autocast) and every parameter is in the graph."""
        h = empty_batch(h, (0, h.shape[1], *grid), self.blocks.parameters())  # (0, Ch, *grid)
        return self.projection(h)  # (0, Cout, *grid)
