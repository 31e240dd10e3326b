"""FNO: the Fourier neural operator (Li et al. 2021) in 1-D, 2-D and 3-D.

Legend: ``B`` batch, ``C`` channels (``Cin`` in, ``Cout`` out, ``Ch`` hidden),
``*grid`` the ``d`` spatial axes (``H, W`` in 2-D), ``P`` the padded grid.

lifting -> ``n_layers`` :class:`~operators._blocks.FourierBlock` (spectral conv +
pointwise skip + channel MLP + activation, optional normalisation) -> projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from operators._blocks import (
    ACTIVATIONS,
    PADDING_MODES,
    Activation,
    ChannelLinear,
    ChannelMLP,
    DomainPadding,
    FourierBlock,
    GridEmbedding,
    LiftBlocksProject,
)
from operators.spectral_conv import SpectralConv
from spectral.fft import FFTNorm
from spectral.modes import as_n_modes, check_grid

__all__ = ["FNO", "FNOConfig"]


@dataclass(frozen=True)
class FNOConfig:
    """Every option of :class:`FNO` (see its docstring); build with :meth:`FNO.from_config`."""

    in_channels: int
    out_channels: int
    n_modes: tuple[int, ...]
    hidden_channels: int = 64
    n_layers: int = 4
    positional_embedding: bool = True
    domain_padding: float | tuple[float, ...] = 0.0
    padding_mode: Literal["one-sided", "symmetric"] = "one-sided"
    lifting_ratio: float = 2.0
    projection_ratio: float = 2.0
    mlp_expansion: float = 0.5
    activation: Activation = "gelu"
    norm: Literal["instance", "group"] | None = None
    skip: Literal["linear", "identity", "soft-gating"] | None = "linear"
    mlp_skip: Literal["linear", "identity", "soft-gating"] | None = "soft-gating"
    separable: bool = False
    rank: int | None = None
    fft_norm: FFTNorm = "forward"


class FNO(LiftBlocksProject):
    """Fourier neural operator: ``Q o (L_n o ... o L_1) o P`` on a regular grid.

    ``P`` lifts the input (plus grid coordinates) to ``hidden_channels`` with a
    pointwise MLP, each ``L_i`` is a Fourier block ``act(K_i x + W_i x)`` with a channel
    MLP (:class:`~operators._blocks.FourierBlock` around a :class:`SpectralConv`), and
    ``Q`` projects pointwise to ``out_channels``. Works on any grid that admits
    ``n_modes`` (even or odd), and ``output_shape`` evaluates the last block on another
    grid (zero-shot super-resolution).

    Parameters
    ----------
    in_channels, out_channels : int
    n_modes : int or sequence of int
        Kept wavenumbers ``|k| < m`` per axis of every spectral conv (README, "The mode convention"; 2m - 1
        fft bins per axis, rfft bins 0..m-1 on the last). ``len(n_modes)`` = ``d``.
    hidden_channels : int
        Width ``Ch`` of the Fourier blocks.
    n_layers : int
        Number of Fourier blocks.
    positional_embedding : bool
        Append the coordinates ``i / N`` of each axis as ``d`` input channels.
    domain_padding : float or sequence of float
        Zero-pad each axis by this fraction of its size before the blocks and crop
        after (for non-periodic problems); 0 disables it. With ``output_shape`` the
        output grid is padded by the input's padding times ``N_out / N_in``, which must
        be a whole number of points (ValueError otherwise), e.g. a multiple of the grid.
    padding_mode : {"one-sided", "symmetric"}
    lifting_ratio, projection_ratio : float
        Hidden width of the lifting / projection MLPs relative to ``Ch`` (0: linear).
    mlp_expansion : float
        Hidden width of each block's channel MLP relative to ``Ch`` (0: no MLP; >= 0).
    activation : {"gelu", "relu", "silu", "tanh", "identity"}
    norm : {"instance", "group"} or None
    skip, mlp_skip : {"linear", "identity", "soft-gating"} or None
        The blocks' skip connections.
    separable, rank : bool, int or None
        Passed to every :class:`SpectralConv`.
    fft_norm : {"forward", "backward", "ortho"}
    device, dtype : optional

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *output_shape) real (output_shape defaults to grid);
    ``x`` has the parameters' dtype (TypeError otherwise, except under autocast); ``B = 0``
    gives an empty output

    Examples
    --------
    >>> model = FNO(1, 1, (8, 8), hidden_channels=16, n_layers=2)
    >>> model(torch.randn(4, 1, 32, 32)).shape
    torch.Size([4, 1, 32, 32])
    >>> model(torch.randn(4, 1, 32, 32), output_shape=(64, 64)).shape
    torch.Size([4, 1, 64, 64])
    """

    _POSITIONAL = ("in_channels", "out_channels", "n_modes")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        *,
        hidden_channels: int = 64,
        n_layers: int = 4,
        positional_embedding: bool = True,
        domain_padding: float | Sequence[float] = 0.0,
        padding_mode: Literal["one-sided", "symmetric"] = "one-sided",
        lifting_ratio: float = 2.0,
        projection_ratio: float = 2.0,
        mlp_expansion: float = 0.5,
        activation: Activation = "gelu",
        norm: Literal["instance", "group"] | None = None,
        skip: Literal["linear", "identity", "soft-gating"] | None = "linear",
        mlp_skip: Literal["linear", "identity", "soft-gating"] | None = "soft-gating",
        separable: bool = False,
        rank: int | None = None,
        fft_norm: FFTNorm = "forward",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        modes = as_n_modes(n_modes)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("hidden_channels", hidden_channels), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name, value in (("lifting_ratio", lifting_ratio), ("projection_ratio", projection_ratio),
                            ("mlp_expansion", mlp_expansion)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        pad = (domain_padding,) if isinstance(domain_padding, (int, float)) else tuple(domain_padding)
        bad = [p for p in pad if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 10]
        if len(pad) not in (1, len(modes)) or bad:
            raise ValueError(
                f"domain_padding must be a number in [0, 10) or one per axis ({len(modes)}), got {domain_padding!r}"
            )
        self.config = FNOConfig(
            in_channels, out_channels, modes, hidden_channels, n_layers, bool(positional_embedding),
            pad[0] if len(pad) == 1 else pad, padding_mode, float(lifting_ratio), float(projection_ratio),
            float(mlp_expansion), activation, norm, skip, mlp_skip, separable, rank, fft_norm,
        )
        self.in_channels, self.out_channels, self.n_modes = in_channels, out_channels, modes
        kw = dict(device=device, dtype=dtype)
        d = len(modes)
        self.embedding = GridEmbedding(d) if positional_embedding else None
        self.padding = DomainPadding(pad, mode=padding_mode) if any(p > 0 for p in pad) else None
        cin = in_channels + (d if positional_embedding else 0)
        self.lifting = _pointwise(cin, hidden_channels, round(lifting_ratio * hidden_channels), activation, kw)
        self.blocks = nn.ModuleList(
            FourierBlock(
                SpectralConv(hidden_channels, hidden_channels, modes, separable=separable, rank=rank, fft_norm=fft_norm, **kw),
                mlp_expansion=mlp_expansion, skip=skip, mlp_skip=mlp_skip, activation=activation, norm=norm,
                last=i == n_layers - 1, **kw,
            )
            for i in range(n_layers)
        )
        self.projection = _pointwise(hidden_channels, out_channels, round(projection_ratio * hidden_channels), activation, kw)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Predict on the input grid, or on ``output_shape`` (same number of axes)."""
        grid = self._check_input(x, output_shape)
        if self.embedding is not None:
            x = self.embedding(x)  # (B, Cin + d, *grid)
        x = self.lifting(x)  # (B, Ch, *grid)
        if x.shape[0] == 0:  # an empty batch: FFTs reject B = 0
            return self._project_empty(x, grid)  # (0, Cout, *grid)
        in_grid = tuple(x.shape[2:])
        block_out = None if grid == in_grid else grid
        if self.padding is not None:
            x = self.padding.pad(x)  # (B, Ch, *P)
            # the output's padding is the input's scaled by N_out / N_in: the same padded domain
            block_out = None if block_out is None else self.padding.padded_shape(grid, in_grid)
        for i, block in enumerate(self.blocks):
            x = block(x, output_shape=block_out if i == len(self.blocks) - 1 else None)
        if self.padding is not None:
            x = self.padding.crop(x, grid, in_grid)  # (B, Ch, *grid)
        return self.projection(x)

    def _check_input(self, x: torch.Tensor, output_shape: Sequence[int] | None) -> tuple[int, ...]:
        d = len(self.n_modes)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"FNO: x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            axes = ", ".join("HW" if d == 2 else ("W",) if d == 1 else "DHW")
            raise ValueError(f"FNO({d}-d): expected x of shape (B, {self.in_channels}, {axes}), got {tuple(x.shape)}")
        if x.is_complex() or not x.is_floating_point():
            raise TypeError(f"FNO: x must be real floating point, got dtype {x.dtype}")
        self._check_dtype(x)
        check_grid(x.shape[2:], self.n_modes, shape=x.shape)
        if output_shape is None:
            return tuple(x.shape[2:])
        out = tuple(output_shape)
        if len(out) != d or any(isinstance(n, bool) or not isinstance(n, int) for n in out):
            raise ValueError(f"FNO: output_shape must be {d} ints, got {output_shape!r}")
        check_grid(out, self.n_modes, name="output_shape", shape=out)
        return out

    def extra_repr(self) -> str:
        c = self.config
        return (f"{c.in_channels}, {c.out_channels}, n_modes={c.n_modes}, hidden_channels={c.hidden_channels}, "
                f"n_layers={c.n_layers}, positional_embedding={c.positional_embedding}, domain_padding={c.domain_padding}")


def _pointwise(cin: int, cout: int, hidden: int, activation: str, kw: dict) -> nn.Module:
    """Two-layer channel MLP of width ``hidden``, or one linear layer when ``hidden`` is 0."""
    if hidden > 0:
        return ChannelMLP(cin, cout, hidden, activation=activation, **kw)
    return ChannelLinear(cin, cout, **kw)
