"""Models from other libraries: :func:`fno_from_neuralop` turns a neuraloperator 2.x FNO into ours.

Legend: ``Cin``/``Cout`` channels in/out, ``Ch`` hidden channels, ``K_i`` the bins a
neuraloperator spectral weight holds on axis ``i``, ``M_i`` our ``n_modes[i]``.

neuraloperator is not a dependency: it is imported only to recognise its classes, when
:func:`fno_from_neuralop` is called.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from spectral.checks import describe

__all__ = ["fno_from_neuralop", "neuralop_n_modes"]

_NORMS = {None: None, "instance_norm": "instance", "group_norm": "group"}


def neuralop_n_modes(n_modes: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Our ``n_modes`` holding every bin neuraloperator's ``n_modes`` keeps: ``n // 2 + 1`` per axis.

    neuraloperator keeps ``n`` fft bins ``-(n // 2) .. (n - 1) // 2`` on the two-sided
    axes and rfft bins ``0 .. n // 2`` on the last axis. For ``n = 2m - 1`` that is
    exactly our ``|k| < m``; for ``n = 2m`` it is one bin more (``-m`` on the
    two-sided axes, ``+m`` on the last), which our ``m + 1`` holds with the ``+m``
    weights of the two-sided axes set to zero.

    >>> neuralop_n_modes((16, 16)), neuralop_n_modes((15, 15))
    ((9, 9), (8, 8))
    """
    return tuple(int(n) // 2 + 1 for n in n_modes)


def fno_from_neuralop(model: nn.Module):
    """Our :class:`~operators.FNO` with the weights (and outputs) of a neuraloperator 2.x FNO.

    See :meth:`operators.FNO.from_neuralop` for the mapping and what is refused.
    """
    from neuralop.layers.channel_mlp import ChannelMLP as NeuralopMLP
    from neuralop.layers.embeddings import GridEmbedding2D, GridEmbeddingND
    from neuralop.layers.skip_connections import Flattened1dConv, SoftGating as NeuralopGating
    from neuralop.layers.spectral_convolution import SpectralConv as NeuralopConv
    from neuralop.models import FNO as NeuralopFNO

    from operators.fno import FNO

    if not isinstance(model, NeuralopFNO):
        raise TypeError(f"model must be a neuraloperator FNO (neuralop.models.FNO), got {describe(model)}")
    blocks = model.fno_blocks
    _refuse_unmapped(model, blocks, NeuralopConv, GridEmbeddingND, GridEmbedding2D)
    d, ch = model.n_dim, model.hidden_channels
    conv0 = blocks.convs[0]
    modes = neuralop_n_modes(list(conv0.weight.shape[-d:-1]) + [2 * (conv0.weight.shape[-1] - 1)])
    act = _activation(model.non_linearity, blocks)
    lifting_hidden = model.lifting.fcs[0].out_channels if len(model.lifting.fcs) == 2 else 0
    mlp_hidden = blocks.channel_mlp[0].fcs[0].out_channels if blocks.use_channel_mlp else 0
    pad = _padding(model.domain_padding, d)
    params = next(model.lifting.parameters())
    ours = FNO(
        model.in_channels, model.out_channels, modes, hidden_channels=ch, n_layers=model.n_layers,
        positional_embedding=model.positional_embedding is not None, domain_padding=pad, padding_mode="symmetric",
        lifting_ratio=lifting_hidden / ch, projection_ratio=model.projection.fcs[0].out_channels / ch,
        mlp_expansion=mlp_hidden / ch, activation=act, norm=_NORMS[_norm_name(blocks)],
        skip=blocks.fno_skip, mlp_skip=blocks.channel_mlp_skip if blocks.use_channel_mlp else None,
        separable=bool(conv0.separable), fft_norm=conv0.fft_norm, device=params.device, dtype=params.dtype,
    )
    with torch.no_grad():
        _copy_mlp(model.lifting, ours.lifting, NeuralopMLP)
        _copy_mlp(model.projection, ours.projection, NeuralopMLP)
        skip_kinds = (Flattened1dConv, NeuralopGating)
        for i, block in enumerate(ours.blocks):
            _copy_conv(blocks.convs[i], block.conv, modes)
            _copy_skip(blocks.fno_skips[i] if blocks.fno_skips is not None else None, block.skip, *skip_kinds)
            if block.mlp is not None:
                _copy_mlp(blocks.channel_mlp[i], block.mlp, NeuralopMLP)
                mlp_skips = blocks.channel_mlp_skips
                _copy_skip(mlp_skips[i] if mlp_skips is not None else None, block.mlp_skip, *skip_kinds)
            for j, norm in enumerate(block.norms):
                src = blocks.norm[blocks.n_norms * i + j]
                if isinstance(src, nn.GroupNorm):  # group_norm: affine, one group
                    norm.weight.copy_(src.weight)
                    norm.bias.copy_(src.bias)
    ours.train(model.training)
    return ours


# ------------------------------------------------------------------------- private
def _refuse(option: str, value: Any, why: str) -> None:
    raise ValueError(f"FNO.from_neuralop: {option}={value!r} has no exact counterpart in operators.FNO ({why})")


def _refuse_unmapped(model, blocks, conv_cls, embed_nd, embed_2d) -> None:
    """ValueError for every neuraloperator option our FNO cannot reproduce exactly."""
    if model.complex_data:
        _refuse("complex_data", True, "our FNO maps real fields")
    if blocks.preactivation:
        _refuse("preactivation", True, "our Fourier blocks apply the activation after the skips")
    if blocks.stabilizer is not None:
        _refuse("stabilizer", blocks.stabilizer, "no tanh stabiliser")
    if blocks.resolution_scaling_factor is not None:
        _refuse("resolution_scaling_factor", model.resolution_scaling_factor, "use output_shape= instead")
    if blocks.fno_block_precision != "full":
        _refuse("fno_block_precision", blocks.fno_block_precision, "use autocast; the FFTs then run in float32")
    if blocks.channel_mlp_dropout:
        _refuse("channel_mlp_dropout", blocks.channel_mlp_dropout, "no dropout in the channel MLPs")
    if blocks.norm is not None and not blocks.use_channel_mlp:
        _refuse("norm", _norm_name(blocks), "with use_channel_mlp=False neuraloperator still applies the second norm")
    _norm_name(blocks)
    for i, conv in enumerate(blocks.convs):
        if type(conv) is not conv_cls:
            _refuse("conv_module", type(conv).__name__, "only neuralop.layers.spectral_convolution.SpectralConv")
        if type(conv.weight).__name__ != "DenseTensor":
            _refuse("factorization", model.factorization,
                    "factorized spectral weights; convert a dense (factorization=None) FNO")
        if list(conv.n_modes) != list(conv.max_n_modes):
            _refuse("max_n_modes", conv.max_n_modes,
                    f"block {i} uses n_modes={conv.n_modes} of them; set max_n_modes=None")
        if conv.bias is None:
            _refuse("SpectralConv bias", None, "our spectral convs have a bias")
    emb = model.positional_embedding
    if emb is not None:
        bounds = [list(map(float, b)) for b in emb.grid_boundaries]
        if type(emb) not in (embed_nd, embed_2d) or bounds != [[0.0, 1.0]] * model.n_dim:
            _refuse("positional_embedding", emb, "only the 'grid' embedding on [0, 1] per axis (coordinates i / N)")


def _norm_name(blocks) -> str | None:
    if blocks.norm is None:
        return None
    first = blocks.norm[0]
    if isinstance(first, nn.GroupNorm) and first.num_groups == 1 and first.affine and first.eps == 1e-5:
        return "group_norm"
    if type(first).__name__ == "InstanceNorm" and not getattr(first, "kwargs", {}):
        return "instance_norm"
    _refuse("norm", type(first).__name__, "only instance_norm and group_norm")
    return None


def _activation(fn, blocks) -> str:
    names = {torch.nn.functional.gelu: "gelu", torch.nn.functional.relu: "relu", torch.nn.functional.silu: "silu",
             torch.tanh: "tanh"}
    name = names.get(fn)
    if name is None:
        _refuse("non_linearity", fn, "only F.gelu, F.relu, F.silu and torch.tanh")
    if name != "gelu" and blocks.use_channel_mlp:
        _refuse("non_linearity", fn, "neuraloperator's block channel MLPs use GELU inside whatever non_linearity is; "
                "ours use the model's activation")
    return name


def _padding(padding, d: int) -> float | tuple[float, ...]:
    """neuraloperator pads ``round(f N)`` on both sides; ours pads ``round(f' N)`` in total, half each side."""
    if padding is None:
        return 0.0
    fr = padding.domain_padding
    fr = [float(fr)] * d if isinstance(fr, (int, float)) else [float(f) for f in fr]
    return tuple(2 * f for f in fr)


def _copy_mlp(src: nn.Module, dst: nn.Module, mlp_cls) -> None:
    """neuraloperator ChannelMLP (Conv1d layers) -> our ChannelMLP / ChannelLinear."""
    if not isinstance(src, mlp_cls):
        _refuse("lifting/projection", type(src).__name__, "only neuraloperator ChannelMLPs")
    layers = list(getattr(dst, "layers", [dst]))
    if len(layers) != len(src.fcs):
        _refuse("channel MLP depth", len(src.fcs), f"ours has {len(layers)} layers here")
    for fc, layer in zip(src.fcs, layers):
        layer.weight.copy_(fc.weight[:, :, 0])
        layer.bias.copy_(fc.bias)


def _copy_skip(src: nn.Module | None, dst: nn.Module | None, linear_cls, gating_cls) -> None:
    if isinstance(src, linear_cls):
        if src.conv.bias is not None:
            _refuse("skip bias", True, "our linear skips have no bias")
        dst.weight.copy_(src.conv.weight[:, :, 0])
    elif isinstance(src, gating_cls):
        if src.bias is not None:
            _refuse("soft-gating bias", True, "our soft gating has no bias")
        dst.weight.copy_(src.weight.reshape(-1))


def _copy_conv(src: nn.Module, dst: nn.Module, modes: tuple[int, ...]) -> None:
    """Scatter neuraloperator's fftshift-ordered bins into our compact (FFT-order) layout.

    Along a two-sided axis neuraloperator's weight index ``j`` is wavenumber
    ``j - K // 2``; ours stores wavenumber ``k`` at ``k mod (2M - 1)``. On the last
    (rfft) axis both store bins ``0 .. M - 1`` in order. Unfilled bins stay zero.
    """
    w = src.weight.to_tensor()  # (Cin, Cout, *K) or (C, *K) complex
    d = len(modes)
    lead = w.ndim - d  # 2 dense, 1 separable
    kept = [2 * m - 1 for m in modes[:-1]] + [modes[-1]]
    index = [(torch.arange(k) - k // 2) % n for k, n in zip(w.shape[lead:-1], kept[:-1])] + [torch.arange(w.shape[-1])]
    w = w.permute(*range(lead, w.ndim), *range(lead))  # (*K, Cin, Cout) or (*K, C)
    full = torch.zeros(*kept, *w.shape[d:], dtype=w.dtype, device=w.device)
    full[torch.meshgrid(*index, indexing="ij")] = w
    if lead == 2:  # dense: (Kt, Cin, Cout, 2)
        dst.weight.copy_(torch.view_as_real(full.reshape(-1, *w.shape[d:])))
    else:  # separable: (C, *K, 2)
        dst.weight.copy_(torch.view_as_real(full.permute(d, *range(d)).contiguous()))
    dst.bias.copy_(src.bias.reshape(-1))
