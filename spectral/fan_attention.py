"""FANformer's attention (ATF): a FAN projection in front of multi-head attention.

Legend: ``B`` batch, ``N`` query tokens, ``S`` key/value tokens, ``D`` embedding
(``embed_dim``), ``H`` heads, ``E = D // H`` head width.

``ATF(X) = Attention(FANLayer'(X))``: the input goes through a FAN layer whose
non-periodic block is linear (FANLayer' of Dong et al., 2025), ``[cos(W_p X),
sin(W_p X), W_g X + b]`` with ``W_p`` and ``W_g`` one fused weight, then through the
usual fused QKV projection, scaled dot-product attention and output projection.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from spectral.fan import FANLayer

__all__ = ["FANAttention"]


class FANAttention(nn.Module):
    """Multi-head attention with FANformer's Fourier projection (ATtention-Fourier).

    ``Q, K, V = FAN'(q) W_Q, FAN'(k) W_K, FAN'(v) W_V`` with
    ``FAN'(x) = [cos(W_p x + b_p), sin(W_p x + b_p), W_g x + b_g]`` (one shared FAN
    projection, ``D_p = floor(p_ratio * D)``), then
    ``out = concat_h softmax(Q_h K_h^T / sqrt(E)) V_h W_O``. Self-attention (``key``
    and ``value`` omitted or the same tensor as ``query``) projects once and runs
    one fused QKV matmul. Attention runs through ``F.scaled_dot_product_attention``.

    A replacement for ``nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)``:
    ``out, weights = attn(x, x, x)`` works unchanged. The differences:

    - ``mask`` (B, S) bool marks the keys to **keep** (True = real token), the
      library's padding convention; torch's ``key_padding_mask`` marks the keys to
      **drop**. Migrate with ``mask=~key_padding_mask``. ``key_padding_mask`` itself
      is not accepted (a TypeError names it).
    - A boolean ``attn_mask`` is True where attention is **allowed** (the convention of
      ``F.scaled_dot_product_attention``; ``nn.MultiheadAttention`` uses the opposite).
      A float ``attn_mask`` is added to the scores in both.
    - ``need_weights`` defaults to False (torch: True); with False the weights are None.
    - Inputs are batch-first only, ``kdim``/``vdim`` must equal ``embed_dim``, and the
      mask arguments are keyword-only.

    Parameters
    ----------
    embed_dim : int
        Token width ``D``; divisible by ``num_heads``.
    num_heads : int
        Number of heads ``H``.
    p_ratio : float, default 0.25
        Periodic share of the FAN projection, in (0, 0.5).
    dropout : float, default 0.0
        Dropout on the attention weights (training only).
    bias : bool, default True
        Biases of the QKV and output projections and of the FAN projection's periodic block
        (its non-periodic block always keeps one, as in :class:`~spectral.fan.FANLayer`).
    device, dtype
        Factory arguments of the parameters.

    Shape
    -----
    query: (B, N, D), key and value: (B, S, D) real -> out (B, N, D) real and
    weights (B, N, S) (averaged over heads) or (B, H, N, S), or None.

    Notes
    -----
    A query row whose keys are all masked out gets NaN, as in ``nn.MultiheadAttention``.
    ``is_causal=True`` keeps key ``j`` for query ``i`` when ``j <= i`` (top-left
    aligned, like ``F.scaled_dot_product_attention``) and combines with the masks.

    References
    ----------
    Y. Dong et al., "FANformer: Improving Large Language Models Through Effective
    Periodicity Modeling", arXiv:2502.21309.

    Examples
    --------
    >>> attn = FANAttention(16, 4)
    >>> x = torch.randn(2, 5, 16)
    >>> out, _ = attn(x, x, x, mask=torch.ones(2, 5, dtype=torch.bool), is_causal=True)
    >>> out.shape
    torch.Size([2, 5, 16])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        p_ratio: float = 0.25,
        dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        factory = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), True
        self.fan_proj = FANLayer(embed_dim, embed_dim, p_ratio=p_ratio, activation="identity",
                                 p_bias=bias, **factory)
        self.in_proj = nn.Linear(embed_dim, 3 * embed_dim, bias=bias, **factory)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """FAN projection as ``nn.Linear``; QKV Xavier-uniform, biases 0 (as ``nn.MultiheadAttention``)."""
        self.fan_proj.reset_parameters()
        nn.init.xavier_uniform_(self.in_proj.weight)
        self.out_proj.reset_parameters()
        for lin in (self.in_proj, self.out_proj):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def _project(self, query, key, value):
        """``(Q, K, V)`` each (B, H, ., E) from the FAN features and the fused in-projection."""
        fq = self.fan_proj(query)
        if key is query and value is query:
            q, k, v = self.in_proj(fq).chunk(3, dim=-1)
        else:
            fk = fq if key is query else self.fan_proj(key)
            fv = fk if value is key else self.fan_proj(value)
            w = self.in_proj.weight.chunk(3)
            b = self.in_proj.bias.chunk(3) if self.in_proj.bias is not None else (None,) * 3
            q, k, v = (F.linear(f, w[i], b[i]) for i, f in enumerate((fq, fk, fv)))
        return tuple(rearrange(t, "b n (h e) -> b h n e", h=self.num_heads) for t in (q, k, v))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        average_attn_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend; ``key`` defaults to ``query`` and ``value`` to ``key``. Returns ``(out, weights)``."""
        key = query if key is None else key
        value = key if value is None else value
        self._check_inputs(query, key, value)
        q, k, v = self._project(query, key, value)  # (B, H, N|S, E)
        n, s = q.shape[-2], k.shape[-2]
        keep = _combine_masks(mask, attn_mask, is_causal, n, s, query, self.num_heads)
        p_drop = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = _explicit_attention(q, k, v, keep, p_drop)
            weights = weights.mean(dim=1) if average_attn_weights else weights
        else:
            only_causal = is_causal and mask is None and attn_mask is None
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=None if only_causal else keep, dropout_p=p_drop, is_causal=only_causal
            )
            weights = None
        return self.out_proj(rearrange(out, "b h n e -> b n (h e)")), weights

    def _check_inputs(self, query, key, value) -> None:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError(f"FANAttention: {name} must be a real floating tensor, got "
                                f"{getattr(t, 'dtype', type(t).__name__)}")
            if t.ndim != 3 or t.shape[-1] != self.embed_dim:
                raise ValueError(f"FANAttention: expected {name} of shape (B, N, {self.embed_dim}), "
                                 f"got {tuple(t.shape)}")
        if not (query.shape[0] == key.shape[0] == value.shape[0]) or key.shape[1] != value.shape[1]:
            raise ValueError(f"FANAttention: query (B, N, D), key and value (B, S, D) must agree, got "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"p_ratio={self.fan_proj.p_ratio}, dropout={self.dropout}")


def _combine_masks(mask, attn_mask, is_causal: bool, n: int, s: int, like: torch.Tensor, heads: int):
    """One SDPA mask: bool True = attend, or float additive; None when nothing is masked."""
    keep = None
    if mask is not None:
        if mask.dtype != torch.bool or mask.shape != (like.shape[0], s):
            raise ValueError(f"FANAttention: mask must be a bool tensor of shape (B, S) = "
                             f"({like.shape[0]}, {s}), True = keep; got {mask.dtype} {tuple(mask.shape)}")
        keep = mask[:, None, None, :]  # (B, 1, 1, S)
    if is_causal:
        causal = torch.ones(n, s, dtype=torch.bool, device=like.device).tril()
        keep = causal if keep is None else keep & causal
    if attn_mask is None:
        return keep
    b = like.shape[0]
    lead = tuple(attn_mask.shape[:-2])  # (), (B,) or (B, H); each may also be 1 (broadcast)
    if (attn_mask.ndim not in (2, 3, 4) or tuple(attn_mask.shape[-2:]) != (n, s)
            or any(size not in (1, full) for size, full in zip(lead, (b, heads)))):
        raise ValueError(f"FANAttention: attn_mask must have shape (N, S), (B, N, S) or (B, H, N, S) "
                         f"with B={b}, H={heads}, N={n}, S={s} (B and H may be 1); got {tuple(attn_mask.shape)} "
                         f"(nn.MultiheadAttention's (B*H, N, S) layout is not accepted: reshape it to (B, H, N, S))")
    if attn_mask.ndim == 3:
        attn_mask = attn_mask[:, None]
    if attn_mask.dtype == torch.bool:
        return attn_mask if keep is None else attn_mask & keep
    if not attn_mask.is_floating_point():
        raise TypeError(f"FANAttention: attn_mask must be bool or floating, got {attn_mask.dtype}")
    attn_mask = attn_mask.to(like.dtype)
    return attn_mask if keep is None else attn_mask.masked_fill(~keep, float("-inf"))


def _explicit_attention(q, k, v, keep, p_drop: float):
    """Softmax attention with the weights materialised: (B, H, N, E), (B, H, N, S)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf")) if keep.dtype == torch.bool else scores + keep
    weights = torch.softmax(scores, dim=-1)
    return F.dropout(weights, p_drop) @ v, weights
