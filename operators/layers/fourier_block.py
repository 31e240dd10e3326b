"""The Fourier block: one operator layer around any spectral convolution.

Legend: ``B`` batch, ``Cin``/``Cout`` channels in/out, ``*grid`` the input's spatial axes,
``*out`` the output's (``output_shape``, default the input grid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from operators.layers.pointwise import ChannelMLP
from operators.layers.skips import Skip, make_skip
from spectral.activations import ACTIVATIONS, Activation, get_activation
from spectral.checks import check_bool, check_choice, check_int, check_number, check_real_dtype
from spectral.fft import resample as fourier_resample

__all__ = ["NORMS", "Norm", "FourierBlock"]

Norm = Literal["instance", "group"]
NORMS: tuple[str, ...] = ("instance", "group")


class FourierBlock(nn.Module):
    """One operator layer around any spectral conv ``K`` (FNO, SFNO, ...).

    ``h = norm(K(x)) + S(x)``, ``y = norm(MLP(act(h)) + G(x))``, then ``act(y)``; the
    last block of a stack (``last=True``) leaves out both activations. ``S`` is the
    pointwise skip and ``G`` the MLP skip (as in neuraloperator's FNO blocks).

    Parameters
    ----------
    conv : nn.Module
        Called as ``conv(x, output_shape=...)``; must have int ``in_channels`` and
        ``out_channels`` attributes.
    mlp_expansion : float
        Hidden width of the channel MLP relative to ``out_channels`` (>= 0); 0 disables the MLP.
    skip, mlp_skip : {"linear", "identity", "soft-gating"} or None
        Kind of the two skip connections (None drops it; see :func:`~operators.layers.make_skip`).
    activation : {"gelu", "relu", "silu", "tanh", "identity"}
    norm : {"instance", "group"} or None
        Normalisation after the conv and after the MLP (group: one group).
    last : bool
        Leave out the final activation (the last block of a stack).
    resample : callable, optional
        ``resample(x, grid)`` brings a skip path onto the output grid when
        ``output_shape`` differs from the input grid (default: Fourier resampling,
        :func:`spectral.fft.resample`).
    device, dtype : optional
        For the skips', MLP's and norms' parameters (``conv`` is built by the caller).

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *out) real

    Examples
    --------
    >>> from operators import SpectralConv
    >>> block = FourierBlock(SpectralConv(4, 4, (5, 5)))
    >>> block(torch.randn(2, 4, 16, 16)).shape
    torch.Size([2, 4, 16, 16])
    >>> block(torch.randn(2, 4, 16, 16), output_shape=(32, 32)).shape
    torch.Size([2, 4, 32, 32])
    """

    def __init__(
        self,
        conv: nn.Module,
        *,
        mlp_expansion: float = 0.5,
        skip: Skip | None = "linear",
        mlp_skip: Skip | None = "soft-gating",
        activation: Activation = "gelu",
        norm: Norm | None = None,
        last: bool = False,
        resample: Callable[[torch.Tensor, Sequence[int]], torch.Tensor] | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if not isinstance(conv, nn.Module):
            raise TypeError(f"conv must be an nn.Module, got {type(conv).__name__}")
        cin = check_int("conv.in_channels", getattr(conv, "in_channels", None))
        cout = check_int("conv.out_channels", getattr(conv, "out_channels", None))
        dtype = check_real_dtype("dtype", dtype)
        if resample is not None and not callable(resample):
            raise TypeError(f"resample must be callable or None, got {type(resample).__name__}")
        self.conv = conv
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.act = get_activation(activation)
        self.last, self.norm_kind = check_bool("last", last), check_choice("norm", norm, NORMS, allow_none=True)
        self.skip = make_skip(skip, cin, cout, name="skip", device=device, dtype=dtype)
        hidden = round(cout * check_number("mlp_expansion", mlp_expansion, min=0))
        self.mlp = ChannelMLP(cout, cout, hidden, activation=activation, device=device, dtype=dtype) if hidden > 0 else None
        self.mlp_skip = make_skip(mlp_skip, cin, cout, name="mlp_skip", device=device, dtype=dtype) if self.mlp is not None else None
        n_norm = (1 + (self.mlp is not None)) if norm else 0
        self.norms = nn.ModuleList(nn.GroupNorm(1 if norm == "group" else cout, cout, device=device, dtype=dtype) for _ in range(n_norm))
        self.resample = resample or fourier_resample

    def reset_parameters(self) -> None:
        for m in (self.conv, self.skip, self.mlp, self.mlp_skip, *self.norms):
            if m is not None and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """The block on ``x``, evaluated on ``output_shape`` (default: ``x``'s grid)."""
        h = self.conv(x, output_shape=output_shape)  # (B, Cout, *out)
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
