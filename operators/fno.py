"""FNO: the Fourier neural operator (Li et al. 2021) in 1-D, 2-D and 3-D.

Legend: ``B`` batch, ``C`` channels (``Cin`` in, ``Cout`` out, ``Ch`` hidden),
``*grid`` the ``d`` spatial axes (``H, W`` in 2-D), ``P`` the padded grid.

lifting -> ``n_layers`` :class:`~operators.layers.FourierBlock` (spectral conv +
pointwise skip + channel MLP + activation, optional normalisation) -> projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from operators.layers import (
    DomainPadding,
    GridEmbedding,
    LiftBlocksProject,
    Norm,
    PADDING_MODES,
    PaddingMode,
    Skip,
    check_operator_options,
    check_output_shape,
    check_padding_fractions,
    grid_letters,
)
from operators.spectral_conv import SpectralConv
from spectral.activations import Activation
from spectral.checks import check_bool, check_choice, check_int
from spectral.fft import FFT_NORMS, FFTNorm
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
    padding_mode: PaddingMode = "one-sided"
    lifting_ratio: float = 2.0
    projection_ratio: float = 2.0
    mlp_expansion: float = 0.5
    activation: Activation = "gelu"
    norm: Norm | None = None
    skip: Skip | None = "linear"
    mlp_skip: Skip | None = "soft-gating"
    separable: bool = False
    rank: int | None = None
    fft_norm: FFTNorm = "forward"


class FNO(LiftBlocksProject):
    """Fourier neural operator: ``Q o (L_n o ... o L_1) o P`` on a regular grid.

    ``P`` lifts the input (plus grid coordinates) to ``hidden_channels`` with a
    pointwise MLP, each ``L_i`` is a Fourier block ``act(K_i x + W_i x)`` with a channel
    MLP (:class:`~operators.layers.FourierBlock` around a :class:`SpectralConv`), and
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
        padding_mode: PaddingMode = "one-sided",
        lifting_ratio: float = 2.0,
        projection_ratio: float = 2.0,
        mlp_expansion: float = 0.5,
        activation: Activation = "gelu",
        norm: Norm | None = None,
        skip: Skip | None = "linear",
        mlp_skip: Skip | None = "soft-gating",
        separable: bool = False,
        rank: int | None = None,
        fft_norm: FFTNorm = "forward",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        modes = as_n_modes(n_modes)
        o = check_operator_options(
            in_channels=in_channels, out_channels=out_channels, hidden_channels=hidden_channels, n_layers=n_layers,
            lifting_ratio=lifting_ratio, projection_ratio=projection_ratio, mlp_expansion=mlp_expansion,
            activation=activation, norm=norm, skip=skip, mlp_skip=mlp_skip, dtype=dtype,
        )
        positional_embedding = check_bool("positional_embedding", positional_embedding)
        padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
        pad = check_padding_fractions("domain_padding", domain_padding, len(modes))
        separable, rank = check_bool("separable", separable), check_int("rank", rank, allow_none=True)
        fft_norm = check_choice("fft_norm", fft_norm, FFT_NORMS)
        self.config = FNOConfig(
            o["in_channels"], o["out_channels"], modes, o["hidden_channels"], o["n_layers"], positional_embedding,
            pad[0] if len(pad) == 1 else pad, padding_mode, o["lifting_ratio"], o["projection_ratio"],
            o["mlp_expansion"], activation, norm, skip, mlp_skip, separable, rank, fft_norm,
        )
        self.in_channels, self.out_channels, self.n_modes = o["in_channels"], o["out_channels"], modes
        d, ch = len(modes), o["hidden_channels"]
        self.embedding = GridEmbedding(d) if positional_embedding else None
        self.padding = DomainPadding(pad, mode=padding_mode) if any(p > 0 for p in pad) else None
        conv = lambda i: SpectralConv(ch, ch, modes, separable=separable, rank=rank, fft_norm=fft_norm, device=device, dtype=dtype)  # noqa: E731
        self.build_stack(self.in_channels + (d if positional_embedding else 0), conv, o, device=device, dtype=dtype)

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

    @classmethod
    def from_neuralop(cls, model) -> FNO:
        """An FNO with the weights, and the outputs, of a neuraloperator 2.x ``neuralop.models.FNO``.

        Mode counts: neuraloperator's ``n_modes`` entry ``n`` keeps ``n`` fft bins
        ``-(n // 2) .. (n - 1) // 2`` on the two-sided axes and rfft bins ``0 .. n // 2``
        on the last axis. The converted model has ``n_modes[i] = n // 2 + 1``: for
        ``n = 2m - 1`` exactly neuraloperator's bins (``|k| < m``); for ``n = 2m`` one bin
        more on the two-sided axes (``+m``), whose weights are zero, so ``(16, 16)``
        becomes ``(9, 9)`` and ``(15, 15)`` becomes ``(8, 8)``
        (:func:`operators.interop.neuralop_n_modes`).

        Mapped exactly: lifting and projection MLPs, dense (or separable) spectral
        weights and their biases, linear / soft-gating / identity / no skips, channel
        MLPs, ``instance_norm`` / ``group_norm``, the ``"grid"`` positional embedding, the
        activation (GELU, ReLU, SiLU, tanh; non-GELU only without channel MLPs, whose
        inner activation neuraloperator fixes to GELU), ``fft_norm``. Domain padding
        ``f`` (``round(f N)`` points on both sides) becomes symmetric padding ``2 f``
        (``round(2 f N)`` in total, split in halves): the same wherever
        ``round(2 f N) = 2 round(f N)``, e.g. ``f N`` a whole number.

        Parameters
        ----------
        model : neuralop.models.FNO
            A real-valued, dense-weight FNO; its parameters' device and dtype are kept.

        Returns
        -------
        FNO
            In the same train / eval mode as ``model``.

        Raises
        ------
        TypeError
            ``model`` is not a neuraloperator FNO.
        ValueError
            An option with no exact counterpart, named: factorized weights, other
            positional embeddings, ``complex_data``, ``preactivation``, ``stabilizer``,
            ``resolution_scaling_factor``, ``fno_block_precision`` other than "full",
            ``max_n_modes`` below ``n_modes``' use, channel-MLP dropout, ``ada_in`` /
            ``batch_norm``, a norm without channel MLPs, other ``non_linearity`` functions.

        Notes
        -----
        Outputs agree to round-off on even grids (max abs difference below 1e-5 in
        float32 on 64x64 and 128x128 grids, tested). A grid must admit our
        ``n_modes`` (``N >= 2 n // 2 + 1``): neuraloperator also accepts ``N = n`` (even
        ``n``), keeping the Nyquist bin, which ours never does. On odd grids
        neuraloperator 2.0.0 undoes its ``fftshift`` with ``fftshift`` instead of
        ``ifftshift``, moving every two-sided bin by one wavenumber (8 % relative L2
        difference at 33x33 for the tested model; how much depends on the weights); the converted model computes the operator its weights
        define, the same function on every grid, so it differs from neuraloperator
        there and agrees with it (and with itself) on even grids.

        Examples
        --------
        >>> from neuralop.models import FNO as NeuralopFNO  # doctest: +SKIP
        >>> theirs = NeuralopFNO(n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=32)  # doctest: +SKIP
        >>> ours = FNO.from_neuralop(theirs)  # doctest: +SKIP
        >>> ours.n_modes  # doctest: +SKIP
        (9, 9)
        """
        from operators.interop import fno_from_neuralop  # neuraloperator is imported only here

        return fno_from_neuralop(model)

    def _check_input(self, x: torch.Tensor, output_shape: Sequence[int] | None) -> tuple[int, ...]:
        d = len(self.n_modes)
        owner = f"FNO({d}-d)"
        self.check_input(x, grid_letters(d), owner=owner)
        check_grid(x.shape[2:], self.n_modes, shape=x.shape)
        if output_shape is None:
            return tuple(x.shape[2:])
        out = check_output_shape(owner, output_shape, d)
        check_grid(out, self.n_modes, name="output_shape", shape=out)
        return out

    def extra_repr(self) -> str:
        c = self.config
        return (f"{c.in_channels}, {c.out_channels}, n_modes={c.n_modes}, hidden_channels={c.hidden_channels}, "
                f"n_layers={c.n_layers}, positional_embedding={c.positional_embedding}, domain_padding={c.domain_padding}")

