"""SFNO: the spherical Fourier neural operator (Bonev et al. 2023) on latitude-longitude grids.

Legend: ``B`` batch, ``C`` channels (``Cin`` in, ``Cout`` out, ``Ch`` hidden), ``H, W``
latitudes and longitudes of the input grid, ``Ho, Wo`` of the output grid.

lifting -> ``n_layers`` :class:`~operators.layers.FourierBlock` around a
:class:`~operators.spherical_conv.SphericalConv` (the FNO block structure with the
spherical harmonic transform in place of the FFT) -> projection. The blocks share one
pair of Legendre tables; the last block's convolution evaluates onto ``out_shape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from operators.layers import FourierBlock, LiftBlocksProject, Norm, Skip, check_operator_options, pointwise_mlp
from operators.spherical_conv import GRIDS, WEIGHTS, Grid, SphericalConv, spherical_resample
from spectral.activations import Activation
from spectral.checks import check_bool, check_choice

__all__ = ["SFNO", "SFNOConfig", "LatitudeEmbedding", "SphericalConv"]


@dataclass(frozen=True)
class SFNOConfig:
    """Every option of :class:`SFNO` (see its docstring); build with :meth:`SFNO.from_config`."""

    in_channels: int
    out_channels: int
    img_shape: tuple[int, int]
    hidden_channels: int = 64
    n_layers: int = 4
    grid: Grid = "equiangular"
    lmax: int | None = None
    mmax: int | None = None
    out_shape: tuple[int, int] | None = None
    weights: Literal["dhconv", "full"] = "dhconv"
    positional_embedding: bool = True
    lifting_ratio: float = 2.0
    projection_ratio: float = 2.0
    mlp_expansion: float = 0.5
    activation: Activation = "gelu"
    norm: Norm | None = None
    skip: Skip | None = "linear"
    mlp_skip: Skip | None = "soft-gating"
    bias: bool = True


class SFNO(LiftBlocksProject):
    """Spherical Fourier neural operator: ``Q o (L_n o ... o L_1) o P`` on the sphere.

    ``P`` lifts the input (plus latitude features) to ``hidden_channels`` pointwise,
    each ``L_i`` is a Fourier block ``act(K_i x + W_i x)`` with a channel MLP whose
    ``K_i`` is a :class:`SphericalConv` (SHT, channel mixing per degree, inverse SHT),
    and ``Q`` projects pointwise to ``out_channels``. Every part is pointwise or a
    spherical convolution, so a rotation about the polar axis (a roll in longitude)
    commutes with the whole operator.

    Parameters
    ----------
    in_channels, out_channels : int
    img_shape : (int, int)
        ``(nlat, nlon)`` of the input grid.
    hidden_channels, n_layers : int
        Width ``Ch`` and number of Fourier blocks.
    grid : {"equiangular", "legendre-gauss", "lobatto", "equiangular-trapezoidal"}
        Latitudes of the input (and output) grid.
    lmax, mmax : int, optional
        Degrees ``l < lmax`` and orders ``m < mmax`` kept by every block (defaults and
        limits as in :class:`SphericalConv`, over the input and output grids).
    out_shape : (int, int), optional
        Predict on this ``(nlat, nlon)`` grid (default ``img_shape``): the last block's
        convolution is built onto it and its skip paths are resampled spectrally.
    weights : {"dhconv", "full"}
        Spherical convolution weights (see :class:`SphericalConv`).
    positional_embedding : bool
        Append ``sin(latitude)`` and ``cos(latitude)`` as two input channels (no
        longitude: that would break the symmetry about the pole).
    lifting_ratio, projection_ratio : float
        Hidden width of the lifting / projection MLPs relative to ``Ch`` (0: linear).
    mlp_expansion : float
        Hidden width of each block's channel MLP relative to ``Ch`` (0: no MLP).
    activation : {"gelu", "relu", "silu", "tanh", "identity"}
    norm : {"instance", "group"} or None
    skip, mlp_skip : {"linear", "identity", "soft-gating"} or None
        The blocks' skip connections.
    bias : bool
        Per-channel bias of every spherical convolution.
    device, dtype : optional

    Shape
    -----
    x: (B, Cin, H, W) real -> (B, Cout, Ho, Wo) real ((Ho, Wo) = out_shape); ``x`` has the
    parameters' dtype (TypeError otherwise, except under autocast); ``B = 0`` gives an empty output

    Examples
    --------
    >>> model = SFNO(3, 3, (16, 32), hidden_channels=8, n_layers=2)
    >>> model(torch.randn(2, 3, 16, 32)).shape
    torch.Size([2, 3, 16, 32])
    >>> SFNO(3, 3, (16, 32), hidden_channels=8, out_shape=(32, 64))(torch.randn(2, 3, 16, 32)).shape
    torch.Size([2, 3, 32, 64])
    """

    _POSITIONAL = ("in_channels", "out_channels", "img_shape")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        img_shape: tuple[int, int],
        *,
        hidden_channels: int = 64,
        n_layers: int = 4,
        grid: Grid = "equiangular",
        lmax: int | None = None,
        mmax: int | None = None,
        out_shape: tuple[int, int] | None = None,
        weights: Literal["dhconv", "full"] = "dhconv",
        positional_embedding: bool = True,
        lifting_ratio: float = 2.0,
        projection_ratio: float = 2.0,
        mlp_expansion: float = 0.5,
        activation: Activation = "gelu",
        norm: Norm | None = None,
        skip: Skip | None = "linear",
        mlp_skip: Skip | None = "soft-gating",
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        o = check_operator_options(
            in_channels=in_channels, out_channels=out_channels, hidden_channels=hidden_channels, n_layers=n_layers,
            lifting_ratio=lifting_ratio, projection_ratio=projection_ratio, mlp_expansion=mlp_expansion,
            activation=activation, norm=norm, skip=skip, mlp_skip=mlp_skip, dtype=dtype)
        check_choice("weights", weights, WEIGHTS)
        check_choice("grid", grid, GRIDS)
        positional_embedding, bias = check_bool("positional_embedding", positional_embedding), check_bool("bias", bias)
        kw = dict(device=device, dtype=dtype)
        convs = _shared_convs(o["hidden_channels"], o["n_layers"], img_shape, out_shape,
                              dict(grid=grid, lmax=lmax, mmax=mmax, weights=weights, bias=bias, **kw))
        first, out = convs[0], convs[-1].out_shape
        self.config = SFNOConfig(
            o["in_channels"], o["out_channels"], first.img_shape, o["hidden_channels"], o["n_layers"], grid, first.lmax,
            first.mmax, out, weights, positional_embedding, o["lifting_ratio"], o["projection_ratio"],
            o["mlp_expansion"], activation, norm, skip, mlp_skip, bias,
        )
        self.in_channels, self.out_channels = o["in_channels"], o["out_channels"]
        self.img_shape, self.out_shape, self.lmax, self.mmax = first.img_shape, out, first.lmax, first.mmax
        self.embedding = LatitudeEmbedding(first.img_shape[0], grid, **kw) if positional_embedding else None
        ch, cin = o["hidden_channels"], self.in_channels + (2 if positional_embedding else 0)
        self.lifting = pointwise_mlp(cin, ch, round(o["lifting_ratio"] * ch), activation=activation, **kw)
        resample = _SphericalResample(convs[-1]) if out != first.img_shape else None
        n = len(convs)
        self.blocks = nn.ModuleList(
            FourierBlock(conv, mlp_expansion=o["mlp_expansion"], skip=skip, mlp_skip=mlp_skip, activation=activation,
                         norm=norm, last=i == n - 1, resample=resample if i == n - 1 else None, **kw)
            for i, conv in enumerate(convs)
        )
        self.projection = pointwise_mlp(ch, self.out_channels, round(o["projection_ratio"] * ch), activation=activation, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict on ``out_shape`` from a field on ``img_shape``."""
        self.check_input(x, self.img_shape)
        if self.embedding is not None:
            x = self.embedding(x)  # (B, Cin + 2, H, W)
        x = self.lifting(x)  # (B, Ch, H, W)
        if x.shape[0] == 0:  # an empty batch: the transforms reject B = 0
            return self._project_empty(x, self.out_shape)  # (0, Cout, Ho, Wo)
        for block in self.blocks:
            x = block(x)  # (B, Ch, H, W); the last: (B, Ch, Ho, Wo)
        return self.projection(x)

    def extra_repr(self) -> str:
        c = self.config
        return (f"{c.in_channels}, {c.out_channels}, img_shape={c.img_shape}, hidden_channels={c.hidden_channels}, "
                f"n_layers={c.n_layers}, grid={c.grid!r}, lmax={c.lmax}, mmax={c.mmax}, out_shape={c.out_shape}, "
                f"weights={c.weights!r}, positional_embedding={c.positional_embedding}")


class LatitudeEmbedding(nn.Module):
    """Append ``sin(latitude)`` and ``cos(latitude)`` of the grid's rows as two channels.

    The latitudes are the nodes of ``grid`` (torch-harmonics' quadrature points), so the
    features are exact on every grid kind; nothing depends on longitude.

    Shape
    -----
    x: (B, C, H, W) -> (B, C + 2, H, W)
    """

    def __init__(self, nlat: int, grid: Grid, *, device=None, dtype=None) -> None:
        super().__init__()
        from torch_harmonics.quadrature import precompute_latitudes  # heavy: imported when first needed

        colat = precompute_latitudes(nlat, grid)[0]  # (H,) float64, 0 at the north pole
        feats = torch.stack([torch.cos(colat), torch.sin(colat)])  # (2, H): sin(lat), cos(lat)
        self.nlat, self.grid = nlat, grid
        self.register_buffer("features", feats.to(device=device, dtype=dtype or torch.get_default_dtype()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[2] != self.nlat:
            raise ValueError(f"LatitudeEmbedding: expected x of shape (B, C, {self.nlat}, W), got {tuple(x.shape)}")
        f = self.features.to(x.dtype)[None, :, :, None].expand(x.shape[0], 2, self.nlat, x.shape[3])
        return torch.cat([x, f], dim=1)

    def extra_repr(self) -> str:
        return f"nlat={self.nlat}, grid={self.grid!r}"


class _SphericalResample(nn.Module):
    """Band-limited resampling between the grids of a :class:`SphericalConv`: ISHT(SHT(x)).

    Brings a Fourier block's skip paths onto the grid its convolution evaluates on;
    holds (shares) the convolution's Legendre tables.
    """

    def __init__(self, conv: SphericalConv) -> None:
        super().__init__()
        self.sht, self.isht, self.out_shape = conv.sht, conv.isht, conv.out_shape

    def forward(self, x: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        if tuple(grid) != self.out_shape:
            raise ValueError(f"_SphericalResample: built for grid {self.out_shape}, got {tuple(grid)}")
        return spherical_resample(x, self.sht.table, self.isht.table, self.out_shape[1])  # (B, C, Ho, Wo)


def _shared_convs(channels: int, n_layers: int, img_shape, out_shape, conv_kw: dict) -> list[SphericalConv]:
    """The ``n_layers`` convolutions of an SFNO, sharing one pair of Legendre tables.

    All map ``img_shape`` to itself except the last, which evaluates onto ``out_shape``
    when that differs (and then holds its own inverse table). ``lmax``/``mmax`` default
    over both grids, so every block keeps the same modes.
    """
    first = SphericalConv(channels, channels, img_shape, **conv_kw)
    last = None if out_shape is None else SphericalConv(channels, channels, img_shape, out_shape=out_shape, **conv_kw)
    if last is not None and last.out_shape == first.img_shape:
        last = None
    if last is not None and (last.lmax, last.mmax) != (first.lmax, first.mmax):  # the defaults depend on out_shape
        conv_kw = {**conv_kw, "lmax": last.lmax, "mmax": last.mmax}
        first = SphericalConv(channels, channels, img_shape, **conv_kw)
    n_same = n_layers - (last is not None)
    convs = ([first] + [SphericalConv(channels, channels, img_shape, **conv_kw) for _ in range(n_same - 1)])[:n_same]
    convs += [last] if last is not None else []
    for conv in convs[1:]:  # one pair of Legendre tables for all blocks (the last block's inverse may differ)
        conv.sht = convs[0].sht
        if conv.out_shape == convs[0].out_shape:
            conv.isht = convs[0].isht
    return convs
