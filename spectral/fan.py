"""Fourier Analysis Network layers: FANLayer and the FAN MLP replacement.

Legend: ``D_in`` input features, ``D_out`` output features, ``D_p`` periodic
width (``cos`` and ``sin`` each get ``D_p`` columns), ``D_g = D_out - 2 D_p``
the non-periodic width, ``...`` any leading batch axes.

A FAN layer (Dong et al., 2024) concatenates a periodic block ``[cos(W_p x + b_p),
sin(W_p x + b_p)]`` with an ordinary activation ``act(W_g x + b_g)``, so a network
can represent periodic functions of its input and extend them beyond the
training domain, where an MLP extrapolates linearly. FANformer's attention
(:class:`spectral.fan_attention.FANAttention`) reuses :func:`fan_features`.
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

from spectral.activations import ACTIVATIONS, Activation, get_activation
from spectral.checks import check_bool, check_dtype_matches, check_int, check_number, check_real_dtype, check_tensor

__all__ = ["ACTIVATIONS", "fan_features", "fan_widths", "FANLayer", "FAN"]

def fan_widths(out_features: int, p_ratio: float) -> tuple[int, int]:
    """``(D_p, D_g)`` with ``D_p = floor(p_ratio * out_features)`` and ``2 D_p + D_g = out_features``.

    Raises
    ------
    TypeError
        If ``out_features`` is not an int or ``p_ratio`` not a real number.
    ValueError
        If ``out_features < 1`` or ``p_ratio`` is not in the open interval (0, 0.5) (NaN included).
    """
    out_features = check_int("out_features", out_features)
    p_ratio = check_number("p_ratio", p_ratio, min=0.0, max=0.5, min_open=True, max_open=True)
    d_p = math.floor(p_ratio * out_features)
    return d_p, out_features - 2 * d_p


def _check_input(owner: str, x: object, in_features: int, weight: torch.Tensor) -> None:
    """A real tensor ``(..., in_features)`` in ``weight``'s dtype (autocast aside)."""
    check_tensor(owner, "x", x)
    if x.ndim < 1 or x.shape[-1] != in_features:
        raise ValueError(f"{owner}: expected x of shape (..., {in_features}), got {tuple(x.shape)}")
    check_dtype_matches(owner, x, weight)


def fan_features(
    h: torch.Tensor, d_p: int, activation: Activation = "gelu", gate: torch.Tensor | None = None
) -> torch.Tensor:
    """The FAN nonlinearity on pre-activations ``h = [h_p, h_g]`` (periodic columns first).

    ``out = [s cos(h_p), s sin(h_p), (1 - s) act(h_g)]`` with ``s = sigmoid(gate)``,
    or ``s = 1`` and no factor on ``act(h_g)`` when ``gate`` is None.

    Shape
    -----
    h: (..., D_p + D_g) real -> (..., 2 D_p + D_g) real
    """
    act = get_activation(activation)
    check_tensor("fan_features", "h", h)
    width = h.shape[-1] if h.ndim else 0
    if check_int("fan_features: d_p", d_p, min=None) < 0 or d_p > width:
        raise ValueError(f"fan_features: d_p must be an int in [0, h.shape[-1]], got {d_p!r} for h of shape "
                         f"{tuple(h.shape)}")
    d_p = int(d_p)
    h_p, h_g = h[..., :d_p], h[..., d_p:]
    periodic = torch.cat([torch.cos(h_p), torch.sin(h_p)], dim=-1)
    rest = act(h_g)
    if gate is not None:
        s = torch.sigmoid(gate)
        periodic, rest = s * periodic, (1.0 - s) * rest
    return torch.cat([periodic, rest], dim=-1)


class FANLayer(nn.Module):
    """One Fourier Analysis Network layer, a drop-in for ``Linear`` + activation.

    ``y = [cos(W_p x + b_p), sin(W_p x + b_p), act(W_g x + b_g)]`` with
    ``D_p = floor(p_ratio * out_features)`` periodic units and
    ``D_g = out_features - 2 D_p`` others, so the output width is exactly
    ``out_features`` for every value. ``W_p`` and ``W_g`` are one fused weight.
    With ``gated=True`` a learnable scalar ``g`` (initialised to 0) scales the
    periodic block by ``sigmoid(g)`` and the rest by ``1 - sigmoid(g)``.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    p_ratio : float, default 0.25
        Periodic share; must lie in (0, 0.5). ``D_p`` is 0 when ``p_ratio * out_features < 1``.
    activation : {"gelu", "relu", "silu", "tanh", "identity"}, default "gelu"
        Activation of the non-periodic block ("identity" gives FANformer's FANLayer').
    p_bias : bool, default True
        Whether the periodic block has a bias (a learnable phase). The other block always has one.
    gated : bool, default False
        Add the learnable scalar gate.
    device, dtype
        Factory arguments of the parameters.

    Shape
    -----
    x: (..., D_in) real -> (..., D_out) real

    Raises
    ------
    TypeError
        A width that is not an int, a ``p_ratio`` that is not a number, a flag that is not
        a bool, a non-real ``dtype``; in ``forward`` an input that is not a real tensor
        (numpy arrays included) or not in the parameters' dtype.
    ValueError
        On a width below 1, ``p_ratio`` outside (0, 0.5) or NaN, an unknown activation, or (in
        ``forward``) an input whose last axis is not ``in_features``.

    References
    ----------
    Y. Dong et al., "FAN: Fourier Analysis Networks", arXiv:2410.02675.

    Examples
    --------
    >>> layer = FANLayer(8, 6)
    >>> layer(torch.randn(4, 8)).shape
    torch.Size([4, 6])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        p_ratio: float = 0.25,
        activation: Activation = "gelu",
        p_bias: bool = True,
        gated: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.d_p, self.d_g = fan_widths(out_features, p_ratio)
        self.out_features, self.p_ratio = int(out_features), float(p_ratio)
        get_activation(activation)
        self.activation = activation
        self.p_bias, self.gated = check_bool("p_bias", p_bias), check_bool("gated", gated)
        factory = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
        self.weight = nn.Parameter(torch.empty(self.d_p + self.d_g, self.in_features, **factory))
        n_bias = self.d_p + self.d_g if self.p_bias else self.d_g
        self.bias = nn.Parameter(torch.empty(n_bias, **factory))
        self.gate = nn.Parameter(torch.empty((), **factory)) if self.gated else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s initialisation for the fused weight and bias; gate 0 (an even split)."""
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        if self.gate is not None:
            nn.init.zeros_(self.gate)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """``[W_p x + b_p, W_g x + b_g]``: (..., D_in) -> (..., D_p + D_g)."""
        _check_input("FANLayer", x, self.in_features, self.weight)
        bias = self.bias if self.p_bias else F.pad(self.bias, (self.d_p, 0))
        return F.linear(x, self.weight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fan_features(self.pre_activation(x), self.d_p, self.activation, self.gate)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"p_ratio={self.p_ratio}, periodic={self.d_p}x2, rest={self.d_g}, "
            f"activation={self.activation!r}, p_bias={self.p_bias}, gated={self.gated}"
        )


class FAN(nn.Module):
    """A Fourier Analysis Network: an MLP replacement built from :class:`FANLayer`.

    ``y = W_out FANLayer_L(... FANLayer_1(W_emb x + b_emb)) + b_out``: a Linear
    embedding, ``n_layers`` FAN layers of width ``hidden_features``, and a Linear
    read-out (the FAN paper's 3-layer network is ``n_layers=2``).

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    hidden_features : int, default 256
        Width of the embedding and of every FAN layer.
    n_layers : int, default 2
        Number of FAN layers between the embedding and the read-out (>= 1).
    p_ratio, activation, gated
        Passed to every :class:`FANLayer`.
    device, dtype
        Factory arguments of the parameters.

    Shape
    -----
    x: (..., D_in) real -> (..., D_out) real

    Examples
    --------
    >>> net = FAN(1, 1, hidden_features=32, n_layers=2)
    >>> net(torch.linspace(-3, 3, 5)[:, None]).shape
    torch.Size([5, 1])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden_features: int = 256,
        n_layers: int = 2,
        p_ratio: float = 0.25,
        activation: Activation = "gelu",
        gated: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        in_features, out_features = check_int("in_features", in_features), check_int("out_features", out_features)
        hidden_features, n_layers = check_int("hidden_features", hidden_features), check_int("n_layers", n_layers)
        factory = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
        self.in_features, self.out_features = in_features, out_features
        self.embedding = nn.Linear(in_features, hidden_features, **factory)
        self.layers = nn.ModuleList(
            FANLayer(hidden_features, hidden_features, p_ratio=p_ratio, activation=activation,
                     gated=gated, **factory)
            for _ in range(n_layers)
        )
        self.readout = nn.Linear(hidden_features, out_features, **factory)

    def reset_parameters(self) -> None:
        """Re-initialise the embedding, every FAN layer and the read-out."""
        self.embedding.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        self.readout.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("FAN", x, self.in_features, self.embedding.weight)
        h = self.embedding(x)
        for layer in self.layers:
            h = layer(h)
        return self.readout(h)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, n_layers={len(self.layers)}"
