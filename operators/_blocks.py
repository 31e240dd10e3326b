"""Building blocks shared by the neural operators (FNO, SFNO): pointwise channel layers,
grid embedding, domain padding and the Fourier block around any spectral conv.

Legend: ``B`` batch, ``C`` channels (``Cin`` in, ``Cout`` out), ``*grid`` the ``d``
spatial axes (``H, W`` in 2-D), ``P`` the padded grid.

All layers are channels-first, ``(B, C, *grid)``, and act the same on every grid size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from spectral.checks import check_dtype_matches
from spectral.fft import resample as fourier_resample

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "SKIPS",
    "PADDING_MODES",
    "Activation",
    "get_activation",
    "channel_linear",
    "ChannelLinear",
    "ChannelMLP",
    "SoftGating",
    "GridEmbedding",
    "DomainPadding",
    "FourierBlock",
    "LiftBlocksProject",
]

Activation = Literal["gelu", "relu", "silu", "tanh", "identity"]
ACTIVATIONS: tuple[str, ...] = ("gelu", "relu", "silu", "tanh", "identity")
NORMS: tuple[str, ...] = ("instance", "group")
SKIPS: tuple[str, ...] = ("linear", "identity", "soft-gating")
PADDING_MODES: tuple[str, ...] = ("one-sided", "symmetric")

_ACT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu, "relu": F.relu, "silu": F.silu, "tanh": torch.tanh, "identity": lambda x: x,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return _ACT_FNS[name]


def _check_choice(name: str, value, allowed: tuple[str, ...], allow_none: bool = True):
    if value is None and allow_none:
        return None
    if value not in allowed:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be one of {allowed}{extra}, got {value!r}")
    return value


def _check_channels(module: nn.Module, x: torch.Tensor, channels: int) -> None:
    if x.ndim < 3 or x.shape[1] != channels:
        raise ValueError(f"{type(module).__name__}: expected x of shape (B, {channels}, *grid), got {tuple(x.shape)}")


def _act_backward(name: str, grad: torch.Tensor, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``grad * act'(x)`` given ``a = act(x)``."""
    if name == "gelu":
        return torch.ops.aten.gelu_backward(grad, x)
    if name == "silu":
        return torch.ops.aten.silu_backward(grad, x)
    if name == "relu":
        return grad * (x > 0)
    if name == "tanh":
        return grad * (1 - a * a)
    return grad


class _ActLinear(torch.autograd.Function):
    """``W act(x) + b (+ residual)`` keeping only ``x`` for backward: ``act(x)`` is recomputed there.

    Saves one activation-sized tensor per call against plain autograd, which keeps both
    ``x`` (for the activation) and ``act(x)`` (for the matmul).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, residual, activation: str):  # x (B, Cin, N), residual (B, Cout, N)
        a = get_activation(activation)(x)
        w = weight.expand(x.shape[0], *weight.shape)
        y = torch.baddbmm(residual, w, a) if residual is not None else torch.bmm(w, a)
        if bias is not None:
            y = y.add_(bias.unsqueeze(-1))
        ctx.save_for_backward(x, weight)
        ctx.activation, ctx.has_bias, ctx.has_residual = activation, bias is not None, residual is not None
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.residual_dtype = None if residual is None else residual.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        # Under autocast the forward matmul ran in a lower precision: the gradient arrives in
        # that dtype; the matmuls follow it and each result is cast back to its input's dtype.
        x, weight = ctx.saved_tensors
        a = get_activation(ctx.activation)(x)
        grad_w = grad_x = grad_b = grad_r = None
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(grad, a.to(grad.dtype).transpose(1, 2)).sum(0).to(weight.dtype)
        if ctx.needs_input_grad[0]:
            wt = weight.to(grad.dtype).t()
            grad_a = torch.bmm(wt.expand(grad.shape[0], *wt.shape), grad)  # (B, Cin, N)
            grad_x = _act_backward(ctx.activation, grad_a.to(x.dtype), x, a)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2)).to(ctx.bias_dtype)
        if ctx.has_residual and ctx.needs_input_grad[3]:
            grad_r = grad.to(ctx.residual_dtype)
        return grad_x, grad_w, grad_b, grad_r, None


def channel_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    residual: torch.Tensor | None = None,
    activation: str | None = None,
) -> torch.Tensor:
    """``W act(x) + b + residual`` at every grid point (each of act, b, residual optional).

    The residual add is fused into the matmul (``baddbmm``). With ``activation``, the
    activation is recomputed in backward instead of stored (one tensor less kept).

    Shape
    -----
    x: (B, Cin, *grid), weight: (Cout, Cin), bias: (Cout,), residual: (B, Cout, *grid) -> (B, Cout, *grid)
    """
    b, grid, cout = x.shape[0], x.shape[2:], weight.shape[0]
    n = math.prod(grid)  # not -1: a reshape cannot infer it when B = 0
    flat = x.reshape(b, x.shape[1], n)  # (B, Cin, prod(grid))
    res = None if residual is None else residual.reshape(b, cout, n)  # (B, Cout, prod(grid))
    if activation is not None and activation != "identity":
        return _ActLinear.apply(flat, weight, bias, res, activation).reshape(b, cout, *grid)
    w = weight.expand(b, *weight.shape)  # (B, Cout, Cin), a view
    if res is not None:
        y = torch.baddbmm(res, w, flat)
        y = y if bias is None else y + bias.unsqueeze(-1)
    elif bias is not None:
        y = torch.baddbmm(bias.unsqueeze(-1), w, flat)
    else:
        y = torch.bmm(w, flat)
    return y.reshape(b, cout, *grid)  # (B, Cout, *grid)


def empty_batch(x: torch.Tensor, params, shape: Sequence[int]) -> torch.Tensor:
    """The output of a layer for an empty batch (``shape[0] == 0``): zeros in ``x``'s dtype.

    FFT backends reject a batch of 0 (MKL: "Inconsistent configuration parameters"), so
    the spectral layers return this instead of transforming. Like torch's layers on
    ``B = 0`` it stays in the autograd graph of ``x`` and ``params`` (zero gradients).
    """
    anchor = x.sum() * 0  # 0-dim: adding it keeps the output's dtype
    for p in params:
        anchor = anchor + p.sum() * 0
    return x.new_zeros(tuple(shape)) + anchor


class ChannelLinear(nn.Module):
    """Pointwise linear map of the channels (a 1x1 convolution in any dimension).

    ``y[b, o, p] = sum_i W[o, i] act(x)[b, i, p] + b[o] (+ residual[b, o, p])`` at every grid
    point ``p``; ``act`` (optional, see :func:`channel_linear`) is recomputed in backward.

    Parameters
    ----------
    in_channels, out_channels : int
    bias : bool
        Learn a bias ``b``. Initialised like :class:`torch.nn.Linear`.

    Shape
    -----
    x: (B, Cin, *grid) -> (B, Cout, *grid)
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, *, activation: str | None = None
    ) -> torch.Tensor:
        """``W act(x) + b``, plus ``residual`` (B, Cout, *grid) when given, fused into the matmul."""
        _check_channels(self, x, self.in_channels)
        return channel_linear(x, self.weight, self.bias, residual=residual, activation=activation)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"


class ChannelMLP(nn.Module):
    """Pointwise MLP over the channels: ``Linear -> act -> ... -> Linear`` at every grid point.

    Parameters
    ----------
    in_channels, out_channels : int
    hidden_channels : int
        Width of the hidden layers.
    n_layers : int
        Number of linear layers (1 gives a single :class:`ChannelLinear`).
    activation : {"gelu", "relu", "silu", "tanh", "identity"}
        Between layers (not after the last).

    Shape
    -----
    x: (B, Cin, *grid) -> (B, Cout, *grid)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        *,
        n_layers: int = 2,
        activation: Activation = "gelu",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.activation = activation
        self.act = get_activation(activation)
        widths = [in_channels] + [hidden_channels] * (n_layers - 1) + [out_channels]
        self.layers = nn.ModuleList(
            ChannelLinear(a, b, device=device, dtype=dtype) for a, b in zip(widths[:-1], widths[1:])
        )

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, *, pre_activation: bool = False
    ) -> torch.Tensor:
        """The MLP (of ``act(x)`` if ``pre_activation``), plus ``residual`` fused into the last layer.

        Activations are applied inside the next layer's matmul call and recomputed in
        backward, so no activation output is stored.
        """
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            act = self.activation if (i > 0 or pre_activation) else None
            x = layer(x, residual if i == n - 1 else None, activation=act)
        return x

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


class SoftGating(nn.Module):
    """Per-channel scaling ``y[b, c] = w[c] x[b, c]`` (initialised to the identity).

    Shape
    -----
    x: (B, C, *grid) -> (B, C, *grid)
    """

    def __init__(self, channels: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.empty(channels, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``w x``, plus ``residual`` when given (one fused pass)."""
        _check_channels(self, x, self.channels)
        w = self.weight.reshape(-1, *([1] * (x.ndim - 2)))
        return x * w if residual is None else torch.addcmul(residual, x, w)

    def extra_repr(self) -> str:
        return f"{self.channels}"


class GridEmbedding(nn.Module):
    """Append the normalised grid coordinates as ``d`` extra channels.

    Coordinate ``j`` of point ``i`` on an axis of ``N`` points is ``i / N`` (the periodic
    unit interval), so a grid of ``2N`` points contains the ``N``-point grid exactly.
    Computed for whatever grid the input has; no parameters.

    Shape
    -----
    x: (B, C, *grid) -> (B, C + d, *grid)
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        self.ndim = ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.ndim + 2:
            raise ValueError(f"GridEmbedding: expected x of shape (B, C, *grid) with {self.ndim} grid axes, got {tuple(x.shape)}")
        grid = x.shape[2:]
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) / n for n in grid]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (d, *grid)
        return torch.cat([x, coords.unsqueeze(0).expand(x.shape[0], *coords.shape)], dim=1)

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}"


class DomainPadding(nn.Module):
    """Zero-pad each grid axis by ``round(fraction * N)`` points, and crop it back.

    Makes a non-periodic field look periodic to the spectral convs: the padded
    region absorbs the jump at the boundary. An output on another grid (``input_grid``
    given) is padded by the input's padding scaled by ``N_out / N_in`` (before and
    total), so the padded output grid covers the same padded domain at the output's
    spacing and the crop lands on the same points.

    Parameters
    ----------
    fraction : float or sequence of float
        Padding per axis as a fraction of its size (one value for all axes).
    mode : {"one-sided", "symmetric"}
        Pad at the end of each axis, or half at each end.

    Shape
    -----
    pad: (B, C, *grid) -> (B, C, *P); crop: (B, C, *P) -> (B, C, *grid)
    """

    def __init__(self, fraction: float | Sequence[float], *, mode: Literal["one-sided", "symmetric"] = "one-sided") -> None:
        super().__init__()
        fr = (fraction,) if isinstance(fraction, (int, float)) else tuple(fraction)
        if not fr or any(not isinstance(f, (int, float)) or not 0 <= f < 10 for f in fr):
            raise ValueError(f"fraction must be a number (or one per axis) in [0, 10), got {fraction!r}")
        self.fraction = tuple(float(f) for f in fr)
        self.mode = _check_choice("mode", mode, PADDING_MODES, allow_none=False)

    def amounts(self, grid: Sequence[int], input_grid: Sequence[int] | None = None) -> list[tuple[int, int]]:
        """``(before, after)`` padding of each axis of ``grid``.

        With ``input_grid`` (the grid that was padded, when ``grid`` is an output on
        another grid): the input's padding times ``N_out / N_in``; a ValueError names
        both grids when that is not an integer.
        """
        if input_grid is not None and tuple(input_grid) != tuple(grid):
            return self._scaled_amounts(tuple(grid), tuple(input_grid))
        fr = self.fraction * len(grid) if len(self.fraction) == 1 else self.fraction
        if len(fr) != len(grid):
            raise ValueError(f"DomainPadding: {len(self.fraction)} fractions for a grid of {len(grid)} axes {tuple(grid)}")
        total = [round(f * n) for f, n in zip(fr, grid)]
        return [(t // 2, t - t // 2) if self.mode == "symmetric" else (0, t) for t in total]

    def _scaled_amounts(self, grid: tuple[int, ...], input_grid: tuple[int, ...]) -> list[tuple[int, int]]:
        if len(input_grid) != len(grid):
            raise ValueError(f"DomainPadding: output grid {grid} and input grid {input_grid} have different numbers of axes")
        out = []
        for (before, after), n_in, n_out in zip(self.amounts(input_grid), input_grid, grid):
            if (before * n_out) % n_in or ((before + after) * n_out) % n_in:
                raise ValueError(
                    f"DomainPadding: the padding (before, after) = {self.amounts(input_grid)} of the input grid "
                    f"{input_grid} does not scale to a whole number of points on the output grid {grid}; "
                    f"use an output grid whose size ratio to the input makes it an integer (e.g. a multiple)"
                )
            out.append((before * n_out // n_in, after * n_out // n_in))
        return out

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        amounts = self.amounts(x.shape[2:])
        return F.pad(x, [p for pair in reversed(amounts) for p in pair])

    def crop(self, x: torch.Tensor, grid: Sequence[int], input_grid: Sequence[int] | None = None) -> torch.Tensor:
        """Inverse of :meth:`pad` for an output on ``grid`` (the padded input's grid was ``input_grid``)."""
        for axis, (before, _) in enumerate(self.amounts(grid, input_grid)):
            x = x.narrow(axis + 2, before, grid[axis])
        return x

    def padded_shape(self, grid: Sequence[int], input_grid: Sequence[int] | None = None) -> tuple[int, ...]:
        """Padded size of ``grid`` (an output on another grid than ``input_grid`` when given)."""
        return tuple(n + a + b for n, (a, b) in zip(grid, self.amounts(grid, input_grid)))

    def extra_repr(self) -> str:
        return f"fraction={self.fraction}, mode={self.mode!r}"


def _make_skip(kind: str | None, cin: int, cout: int, name: str, device, dtype) -> nn.Module | None:
    kind = _check_choice(name, kind, SKIPS)
    if kind in ("identity", "soft-gating") and cin != cout:
        raise ValueError(f"{name}={kind!r} needs in_channels == out_channels, got {cin} and {cout}")
    if kind == "linear":
        return ChannelLinear(cin, cout, bias=False, device=device, dtype=dtype)
    if kind == "soft-gating":
        return SoftGating(cin, device=device, dtype=dtype)
    return nn.Identity() if kind == "identity" else None


class FourierBlock(nn.Module):
    """One operator layer around any spectral conv ``K`` (FNO, SFNO, ...):

    ``h = norm(K(x)) + S(x)``, ``y = norm(MLP(act(h)) + G(x))``, then ``act(y)``; the
    last block of a stack (``last=True``) leaves out both activations. ``S`` is the
    pointwise skip and ``G`` the MLP skip (as in neuraloperator's FNO blocks).

    Parameters
    ----------
    conv : nn.Module
        Called as ``conv(x, output_shape=...)``; must have ``in_channels`` and
        ``out_channels`` attributes.
    mlp_expansion : float
        Hidden width of the channel MLP relative to ``out_channels``; 0 disables the MLP.
    skip, mlp_skip : {"linear", "identity", "soft-gating"} or None
        Kind of the two skip connections (None drops it).
    activation : {"gelu", "relu", "silu", "tanh", "identity"}
    norm : {"instance", "group"} or None
        Normalisation after the conv and after the MLP (group: one group).
    last : bool
        Leave out the final activation (the last block of a stack).
    resample : callable, optional
        ``resample(x, grid)`` brings a skip path onto the output grid when
        ``output_shape`` differs from the input grid (default: Fourier resampling).

    Shape
    -----
    x: (B, Cin, *grid) -> (B, Cout, *output_shape)
    """

    def __init__(
        self,
        conv: nn.Module,
        *,
        mlp_expansion: float = 0.5,
        skip: str | None = "linear",
        mlp_skip: str | None = "soft-gating",
        activation: Activation = "gelu",
        norm: Literal["instance", "group"] | None = None,
        last: bool = False,
        resample: Callable[[torch.Tensor, Sequence[int]], torch.Tensor] | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        cin, cout = conv.in_channels, conv.out_channels
        self.conv = conv
        self.act = get_activation(activation)
        self.activation, self.last, self.norm_kind = activation, last, _check_choice("norm", norm, NORMS)
        self.skip = _make_skip(skip, cin, cout, "skip", device, dtype)
        hidden = round(cout * mlp_expansion)
        self.mlp = ChannelMLP(cout, cout, hidden, activation=activation, device=device, dtype=dtype) if hidden > 0 else None
        self.mlp_skip = _make_skip(mlp_skip, cin, cout, "mlp_skip", device, dtype) if self.mlp is not None else None
        n_norm = (1 + (self.mlp is not None)) if norm else 0
        self.norms = nn.ModuleList(nn.GroupNorm(1 if norm == "group" else cout, cout, device=device, dtype=dtype) for _ in range(n_norm))
        self.resample = resample or fourier_resample

    def reset_parameters(self) -> None:
        for m in (self.conv, self.skip, self.mlp, self.mlp_skip, *self.norms):
            if m is not None and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        h = self.conv(x, output_shape=output_shape)  # (B, Cout, *out_grid)
        if self.norms:
            h = self.norms[0](h)
        h = self._add_skip(self.skip, x, h)
        if self.mlp is not None:
            pre = not self.last  # act(h) is applied inside the MLP's first matmul
            if self.mlp_skip is None:
                h = self.mlp(h, pre_activation=pre)
            elif isinstance(self.mlp_skip, nn.Identity) or not self._same_grid(x, h):
                h = self.mlp(h, residual=self._on_grid(self.mlp_skip(x), h.shape[2:]), pre_activation=pre)
            else:  # the skip's matmul or gating absorbs the MLP output (one pass fewer)
                h = self.mlp_skip(x, residual=self.mlp(h, pre_activation=pre))
            if self.norms:
                h = self.norms[1](h)
        return h if self.last else self.act(h)

    def _add_skip(self, skip: nn.Module | None, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if skip is None:
            return h
        if isinstance(skip, nn.Identity) or not self._same_grid(x, h):
            return h + self._on_grid(skip(x), h.shape[2:])
        return skip(x, residual=h)  # fused into the skip's matmul / gating

    @staticmethod
    def _same_grid(x: torch.Tensor, h: torch.Tensor) -> bool:
        return tuple(x.shape[2:]) == tuple(h.shape[2:])

    def _on_grid(self, s: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        return s if tuple(s.shape[2:]) == tuple(grid) else self.resample(s, tuple(grid))

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}, norm={self.norm_kind!r}, last={self.last}"


class LiftBlocksProject(nn.Module):
    """Base of the operator networks (FNO, SFNO): ``lifting -> blocks -> projection``.

    Subclasses set ``lifting``, ``blocks`` and ``projection`` and name in
    ``_POSITIONAL`` the config fields passed positionally to their constructor.
    """

    _POSITIONAL: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config, *, device=None, dtype=None):
        """Build the model from its config dataclass (``model.config`` round-trips)."""
        kwargs = asdict(config)
        args = [kwargs.pop(k) for k in cls._POSITIONAL]
        return cls(*args, **kwargs, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        for m in (self.lifting, *self.blocks, self.projection):
            m.reset_parameters()

    def _check_dtype(self, x: torch.Tensor) -> None:
        """TypeError naming the model unless ``x`` has the parameters' dtype (autocast exempt,
        except for float64 on either side: autocast never casts float64, the matmuls would fail)."""
        check_dtype_matches(type(self).__name__, x, next(self.lifting.parameters()))

    def _project_empty(self, h: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Output for an empty batch (FFT backends reject ``B = 0``): the lifted ``h`` (0, Ch, ...)
        skips the blocks as an empty hidden field on ``grid`` and is projected, so the dtype is
        the one a non-empty batch gets (also under autocast) and every parameter is in the graph."""
        h = empty_batch(h, self.blocks.parameters(), (0, h.shape[1], *grid))  # (0, Ch, *grid)
        return self.projection(h)  # (0, Cout, *grid)
