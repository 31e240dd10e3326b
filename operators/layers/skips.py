"""Skip connections of the operator blocks: linear, identity and soft gating.

Legend: ``B`` batch, ``C`` channels (``Cin`` in, ``Cout`` out), ``*grid`` any number of
spatial axes.

A skip maps the block input ``x`` to something added to the block's output. Every skip
built here (except the identity) takes an optional ``residual`` and fuses the add into
its own pass: ``skip(x, residual=h)`` is ``skip(x) + h`` in one kernel.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from operators.layers.inputs import check_channels
from operators.layers.pointwise import ChannelLinear
from spectral.checks import check_choice, check_int, check_real_dtype

__all__ = ["SKIPS", "Skip", "SoftGating", "make_skip"]

Skip = Literal["linear", "identity", "soft-gating"]
SKIPS: tuple[str, ...] = ("linear", "identity", "soft-gating")


class SoftGating(nn.Module):
    """Per-channel scaling ``y[b, c] = w[c] x[b, c]`` (initialised to the identity).

    Parameters
    ----------
    channels : int
        ``C``.
    device, dtype : optional
        Where and in which real dtype the weight is created.

    Shape
    -----
    x: (B, C, *grid) real -> (B, C, *grid) real

    Examples
    --------
    >>> gate = SoftGating(3)
    >>> x = torch.randn(2, 3, 8)
    >>> torch.equal(gate(x), x), gate(x, residual=x).shape
    (True, torch.Size([2, 3, 8]))
    """

    def __init__(self, channels: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.weight = nn.Parameter(torch.empty(self.channels, device=device, dtype=check_real_dtype("dtype", dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``w x``, plus ``residual`` when given (one fused pass)."""
        check_channels(type(self).__name__, x, self.channels)
        w = self.weight.reshape(-1, *([1] * (x.ndim - 2)))
        return x * w if residual is None else torch.addcmul(residual, x, w)

    def extra_repr(self) -> str:
        return f"{self.channels}"


def make_skip(
    kind: Skip | None, in_channels: int, out_channels: int, *, name: str = "skip", device=None, dtype=None
) -> nn.Module | None:
    """The skip connection called ``kind`` from ``Cin`` to ``Cout`` channels (None: no skip).

    ``"linear"`` is a bias-free :class:`~operators.layers.ChannelLinear`, ``"soft-gating"`` a
    :class:`SoftGating` and ``"identity"`` an :class:`torch.nn.Identity`; the last two need
    ``in_channels == out_channels``.

    Parameters
    ----------
    kind : {"linear", "identity", "soft-gating"} or None
        One of :data:`SKIPS`.
    in_channels, out_channels : int
        ``Cin`` and ``Cout``.
    name : str
        The option's name in error messages (e.g. ``"mlp_skip"``).
    device, dtype : optional
        For the skip's parameters.

    Raises
    ------
    ValueError
        An unknown ``kind``, or an identity / gating skip between different widths.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *grid) real

    Examples
    --------
    >>> make_skip("soft-gating", 4, 4)
    SoftGating(4)
    >>> make_skip(None, 4, 8) is None
    True
    """
    kind = check_choice(name, kind, SKIPS, allow_none=True)
    if kind in ("identity", "soft-gating") and in_channels != out_channels:
        raise ValueError(f"{name}={kind!r} needs in_channels == out_channels, got {in_channels} and {out_channels}")
    if kind == "linear":
        return ChannelLinear(in_channels, out_channels, bias=False, device=device, dtype=dtype)
    if kind == "soft-gating":
        return SoftGating(in_channels, device=device, dtype=dtype)
    return nn.Identity() if kind == "identity" else None
