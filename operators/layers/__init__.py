"""Public building blocks of the neural operators, for people who write their own.

Legend: ``B`` batch, ``C`` channels (``Cin`` in, ``Cout`` out), ``*grid`` the ``d``
spatial axes (``H, W`` in 2-D), ``P`` a padded grid. Every layer is channels-first,
``(B, C, *grid)``, acts the same on every grid size, accepts an empty batch (``B = 0``)
and builds on ``device="meta"``.

- :mod:`~operators.layers.pointwise`: :func:`channel_linear`, :class:`ChannelLinear`,
  :class:`ChannelMLP`, :func:`pointwise_mlp` (pointwise channel maps, activation and
  residual fused into the matmul);
- :mod:`~operators.layers.skips`: :class:`SoftGating`, :func:`make_skip`, :data:`SKIPS`;
- :mod:`~operators.layers.grid`: :class:`GridEmbedding`;
- :mod:`~operators.layers.padding`: :class:`DomainPadding`, :data:`PADDING_MODES`;
- :mod:`~operators.layers.fourier_block`: :class:`FourierBlock` (around any spectral
  conv), :data:`NORMS`;
- :mod:`~operators.layers.lift_project`: :class:`LiftBlocksProject` (base of FNO and
  SFNO), :func:`check_operator_options`;
- :mod:`~operators.layers.inputs`: the shared input checks and :func:`empty_batch`.

The activation names come from :mod:`spectral.activations`.

Examples
--------
>>> import torch
>>> from operators import SpectralConv
>>> from operators.layers import FourierBlock, GridEmbedding, pointwise_mlp
>>> lift, block = pointwise_mlp(3, 16, 32), FourierBlock(SpectralConv(16, 16, (6, 6)), last=True)
>>> x = GridEmbedding(2)(torch.randn(4, 1, 24, 24))  # (4, 3, 24, 24)
>>> block(lift(x)).shape
torch.Size([4, 16, 24, 24])
"""

from operators.layers.fourier_block import NORMS, FourierBlock, Norm
from operators.layers.grid import GridEmbedding
from operators.layers.inputs import (
    check_channels,
    check_field,
    check_output_shape,
    empty_batch,
    grid_letters,
)
from operators.layers.lift_project import LiftBlocksProject, check_operator_options
from operators.layers.padding import PADDING_MODES, DomainPadding, PaddingMode, check_padding_fractions
from operators.layers.pointwise import ChannelLinear, ChannelMLP, channel_linear, pointwise_mlp
from operators.layers.skips import SKIPS, Skip, SoftGating, make_skip

__all__ = [
    "NORMS",
    "PADDING_MODES",
    "SKIPS",
    "Norm",
    "PaddingMode",
    "Skip",
    "ChannelLinear",
    "ChannelMLP",
    "DomainPadding",
    "FourierBlock",
    "GridEmbedding",
    "LiftBlocksProject",
    "SoftGating",
    "channel_linear",
    "check_channels",
    "check_field",
    "check_operator_options",
    "check_output_shape",
    "check_padding_fractions",
    "empty_batch",
    "grid_letters",
    "make_skip",
    "pointwise_mlp",
]
