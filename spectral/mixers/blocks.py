"""Reference models built from any token mixer: a pre-norm block and a small sequence classifier.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding (``dim``), ``V`` vocabulary size,
``Q`` classes.

The mixers hold no residual and no normalisation; :class:`MixerBlock` adds them:
``x = x + mixer(LN(x), mask)``, then ``x = x + MLP(LN(x))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from spectral.checks import (
    check_choice,
    check_dtype_matches,
    check_int,
    check_number,
    check_real_dtype,
    describe,
)
from spectral.mixers._common import check_mask, check_sequence, masked_mean

__all__ = ["Pooling", "POOLINGS", "MixerBlock", "SequenceClassifier"]

Pooling = Literal["mean", "last", "none"]
POOLINGS: tuple[str, ...] = ("mean", "last", "none")


class MixerBlock(nn.Module):
    """Pre-norm residual block: ``x + mixer(LN(x), mask)``, then ``x + MLP(LN(x))``.

    Parameters
    ----------
    dim : int
        Embedding size ``D``.
    mixer : nn.Module
        Any sequence mixer with ``forward(x, mask=None)``, ``(B, N, D) -> (B, N, D)``.
    mlp_ratio : float
        Hidden width of the two-layer GELU MLP is ``int(dim * mlp_ratio)``.
    dropout : float
        Dropout on both residual branches.
    device, dtype
        Of the norms and the MLP (the mixer keeps its own).

    Shape
    -----
    x: (B, N, D) real, mask: (B, N) bool or None -> (B, N, D) real

    Raises
    ------
    TypeError
        ``x`` not a real floating tensor, or of another dtype than the block's parameters.
    ValueError
        ``x`` not ``(B, N, dim)`` or ``mask`` not ``(B, N)``; the message shows the shape.

    Notes
    -----
    LayerNorm and the MLP act token by token, so padded tokens reach the real ones
    only through the mixer, which ignores them.

    Examples
    --------
    >>> from spectral.mixers.global_filter import GlobalFilterMixer
    >>> block = MixerBlock(16, GlobalFilterMixer(16, 32))
    >>> block(torch.randn(2, 32, 16)).shape
    torch.Size([2, 32, 16])
    """

    def __init__(
        self, dim: int, mixer: nn.Module, *, mlp_ratio: float = 4.0, dropout: float = 0.0, device=None, dtype=None
    ) -> None:
        super().__init__()
        dim = check_int("dim", dim)
        if not isinstance(mixer, nn.Module):
            raise TypeError(f"MixerBlock: mixer must be an nn.Module, got {describe(mixer)}")
        hidden = int(dim * check_number("mlp_ratio", mlp_ratio, min=0, min_open=True))
        if hidden < 1:
            raise ValueError(f"MixerBlock: need dim * mlp_ratio >= 1, got dim={dim}, mlp_ratio={mlp_ratio}")
        dropout = check_number("dropout", dropout, min=0, max=1)
        kw = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
        self.dim, self.mlp_ratio = dim, mlp_ratio
        self.norm1 = nn.LayerNorm(dim, **kw)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(dim, **kw)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden, **kw), nn.GELU(), nn.Linear(hidden, dim, **kw))
        self.drop = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        for m in (self.norm1, self.norm2, self.mlp[0], self.mlp[2], self.mixer):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_sequence(x, self.dim, "MixerBlock")
        check_dtype_matches("MixerBlock", x, self.norm1.weight)
        check_mask(mask, x.shape[:2], "MixerBlock")
        x = x + self.drop(self.mixer(self.norm1(x), mask))
        return x + self.drop(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return f"{self.dim}, mlp_ratio={self.mlp_ratio}"


class SequenceClassifier(nn.Module):
    """Token embedding + learned positions -> ``depth`` :class:`MixerBlock` s -> LayerNorm -> pooling -> linear head.

    Parameters
    ----------
    vocab_size : int
        Token ids are in ``[0, vocab_size)``.
    num_classes : int
        Output classes ``Q``.
    mixer : callable
        ``mixer()`` returns a new mixer for one block (called ``depth`` times).
    dim : int
        Embedding size ``D``.
    depth : int
        Number of blocks.
    max_len : int
        Size of the learned position table; longer inputs raise a ValueError.
    pool : {"mean", "last", "none"}
        "mean" over real tokens, the "last" real token (for causal mixers), or "none"
        for one prediction per token.
    mlp_ratio, dropout
        Passed to every block.
    device, dtype
        Of the embeddings, norms and head (the factory places its mixers).

    Shape
    -----
    tokens: (B, N) int, mask: (B, N) bool or None -> (B, Q) real, or (B, N, Q) with ``pool="none"``

    Raises
    ------
    TypeError
        ``tokens`` not an integer tensor; ``mixer`` not a factory (e.g. a module instance).
    ValueError
        ``tokens`` not ``(B, N)`` with ``N <= max_len``, or a token id (padded positions
        too) outside ``[0, vocab_size)``: the message shows the smallest and largest id.

    Examples
    --------
    >>> from spectral.mixers.fnet import FNetMixer
    >>> model = SequenceClassifier(20, 3, FNetMixer, dim=16, depth=2, max_len=64)
    >>> model(torch.randint(0, 20, (4, 30))).shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        mixer: Callable[[], nn.Module],
        *,
        dim: int,
        depth: int,
        max_len: int,
        pool: Pooling = "mean",
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.vocab_size, self.num_classes = check_int("vocab_size", vocab_size), check_int("num_classes", num_classes)
        dim, depth, self.max_len = check_int("dim", dim), check_int("depth", depth), check_int("max_len", max_len)
        self.pool = check_choice("pool", pool, POOLINGS)
        if isinstance(mixer, nn.Module) or not callable(mixer):
            raise TypeError(
                "SequenceClassifier: mixer must be a factory called once per block (a class or a "
                f"functools.partial), got {describe(mixer)}"
            )
        kw = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
        self.embed = nn.Embedding(self.vocab_size, dim, **kw)
        self.pos = nn.Embedding(self.max_len, dim, **kw)
        self.blocks = nn.ModuleList(
            MixerBlock(dim, mixer(), mlp_ratio=mlp_ratio, dropout=dropout, **kw) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, **kw)
        self.head = nn.Linear(dim, self.num_classes, **kw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        for block in self.blocks:
            block.reset_parameters()
        self.norm.reset_parameters()
        self.head.reset_parameters()

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self._check_tokens(tokens)
        check_mask(mask, tokens.shape, "SequenceClassifier")
        x = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))  # (B, N, D)
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        if self.pool == "mean":
            x = masked_mean(x, mask)  # (B, D)
        elif self.pool == "last":
            x = x[torch.arange(x.shape[0], device=x.device), _last_real(tokens, mask)]  # (B, D)
        return self.head(x)

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        """TypeError / ValueError unless ``tokens`` is an integer ``(B, N)`` tensor of ids in ``[0, V)``."""
        if not isinstance(tokens, torch.Tensor) or tokens.is_floating_point() or tokens.is_complex() or (
            tokens.dtype == torch.bool
        ):
            got = tokens.dtype if isinstance(tokens, torch.Tensor) else describe(tokens)
            raise TypeError(f"SequenceClassifier: tokens must be an integer tensor, got {got}")
        if tokens.ndim != 2 or not 1 <= tokens.shape[1] <= self.max_len:
            raise ValueError(
                f"SequenceClassifier: expected tokens of shape (B, N) with N <= {self.max_len}, "
                f"got {tuple(tokens.shape)}"
            )
        # a value check (eager only: under torch.compile the embedding's own bounds check remains)
        if tokens.numel() and not tokens.is_meta and not torch.compiler.is_compiling():
            lo, hi = (int(v) for v in torch.aminmax(tokens))
            if lo < 0 or hi >= self.vocab_size:
                raise ValueError(
                    f"SequenceClassifier: token ids must be in [0, {self.vocab_size}) (padded positions too), "
                    f"got ids from {lo} to {hi} in tokens of shape {tuple(tokens.shape)}"
                )

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, num_classes={self.num_classes}, max_len={self.max_len}, pool={self.pool!r}"
        )


def _last_real(tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Index of the last real token of each row: ``(B, N) -> (B,)`` long."""
    n = tokens.shape[1]
    if mask is None:
        return torch.full((tokens.shape[0],), n - 1, dtype=torch.long, device=tokens.device)
    pos = torch.arange(n, device=tokens.device).expand_as(mask)
    return torch.where(mask, pos, torch.zeros_like(pos)).amax(dim=1)
