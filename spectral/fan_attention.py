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

from spectral.checks import check_bool, check_int, check_number, check_real_dtype, check_tensor
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
    Second derivatives (``create_graph=True``) are exact: the recorded backward recomputes
    the attention with differentiable ops (torch's fused kernels have none), while a plain
    backward still runs the fused kernel; with attention dropout active in training a
    double backward raises a RuntimeError (the dropout mask cannot be redrawn).

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
        embed_dim, num_heads = check_int("embed_dim", embed_dim), check_int("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        dropout = check_number("dropout", dropout, min=0.0, max=1.0, max_open=True)
        factory = {"device": device, "dtype": check_real_dtype("dtype", dtype)}
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, True
        bias = check_bool("bias", bias)
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
        for name, flag in (("is_causal", is_causal), ("need_weights", need_weights),
                           ("average_attn_weights", average_attn_weights)):
            check_bool(name, flag)
        q, k, v = self._project(query, key, value)  # (B, H, N|S, E)
        n, s = q.shape[-2], k.shape[-2]
        keep = _combine_masks(mask, attn_mask, is_causal, n, s, query, self.num_heads)
        p_drop = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = _explicit_attention(q, k, v, keep, p_drop)
            weights = weights.mean(dim=1) if average_attn_weights else weights
        else:
            out, weights = _attention(q, k, v, keep, p_drop, is_causal and mask is None and attn_mask is None), None
        return self.out_proj(rearrange(out, "b h n e -> b n (h e)")), weights

    def _check_inputs(self, query, key, value) -> None:
        for name, t in (("query", query), ("key", key), ("value", value)):
            check_tensor("FANAttention", name, t)
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
        check_tensor("FANAttention", "mask", mask, kind="any")
        if mask.dtype != torch.bool or mask.shape != (like.shape[0], s):
            raise ValueError(f"FANAttention: mask must be a bool tensor of shape (B, S) = "
                             f"({like.shape[0]}, {s}), True = keep; got {mask.dtype} {tuple(mask.shape)}")
        keep = mask[:, None, None, :]  # (B, 1, 1, S)
    if is_causal:
        causal = torch.ones(n, s, dtype=torch.bool, device=like.device).tril()
        keep = causal if keep is None else keep & causal
    if attn_mask is None:
        return keep
    check_tensor("FANAttention", "attn_mask", attn_mask, kind="any")
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


def _attention(q, k, v, keep, p_drop: float, only_causal: bool):
    """``F.scaled_dot_product_attention`` with exact second derivatives: (B, H, N, E).

    Torch's fused attention kernels have no double backward. While autograd records,
    :class:`_TwiceDifferentiableSDPA` runs the same kernel forward and backward and, only
    for a backward that is itself recorded (``create_graph=True``), recomputes the
    attention with differentiable ops. Plain SDPA when nothing needs a gradient, under
    ``torch.compile`` or ``torch.func`` transforms, or when a float ``attn_mask`` needs one.
    """
    sdpa_mask = None if only_causal else keep
    plain = (not torch.is_grad_enabled() or not (q.requires_grad or k.requires_grad or v.requires_grad)
             or torch.compiler.is_compiling() or _functorch_active() or (keep is not None and keep.requires_grad))
    if plain:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask, dropout_p=p_drop, is_causal=only_causal)
    return _TwiceDifferentiableSDPA.apply(q, k, v, sdpa_mask, keep, p_drop, only_causal)


class _TwiceDifferentiableSDPA(torch.autograd.Function):
    """SDPA whose first backward is torch's own kernel and whose double backward is exact.

    ``forward`` keeps the kernel's autograd graph (the memory SDPA keeps anyway) and the
    first-order ``backward`` runs it, then frees it unless the running backward retains its
    graph. A recorded backward (double backward) recomputes softmax attention from the
    saved ``q, k, v`` with differentiable ops (:func:`_explicit_attention`); with attention
    dropout active the mask cannot be redrawn and that raises a RuntimeError.
    """

    @staticmethod
    def forward(ctx, q, k, v, sdpa_mask, keep, p_drop: float, only_causal: bool):
        with torch.enable_grad():
            inner = tuple(t.detach().requires_grad_() for t in (q, k, v))
            out = F.scaled_dot_product_attention(*inner, attn_mask=sdpa_mask, dropout_p=p_drop, is_causal=only_causal)
        ctx.save_for_backward(q, k, v)
        ctx.inner, ctx.inner_out, ctx.keep, ctx.p_drop = inner, out, keep, p_drop
        return out.detach()

    @staticmethod
    def backward(ctx, grad):
        needed = [i for i in range(3) if ctx.needs_input_grad[i]]
        grads = [None] * 7
        if not needed:
            return tuple(grads)
        if not torch.is_grad_enabled() and ctx.inner_out is not None:
            inner_out, inner = ctx.inner_out, ctx.inner
            retain = _keeps_graph()
            if not retain:
                ctx.inner_out = ctx.inner = None  # free the kernel's buffers, as a plain backward would
            found = torch.autograd.grad(inner_out, [inner[i] for i in needed], grad, retain_graph=retain)
        else:
            if ctx.p_drop > 0:
                raise RuntimeError("FANAttention: double backward (or a second backward) with attention dropout "
                                   "active is not supported: the dropout mask cannot be redrawn; call .eval() or "
                                   "use dropout=0")
            recording = torch.is_grad_enabled()
            if not _keeps_graph():
                ctx.inner_out = ctx.inner = None
            with torch.enable_grad():
                qkv = [t if recording else t.detach().requires_grad_() for t in ctx.saved_tensors]
                out, _ = _explicit_attention(*qkv, ctx.keep, 0.0)
                found = torch.autograd.grad(out, [qkv[i] for i in needed], grad, create_graph=recording)
        for i, g in zip(needed, found):
            grads[i] = g
        return tuple(grads)


def _keeps_graph() -> bool:
    """Whether the running backward was called with ``retain_graph=True`` (True if torch cannot say)."""
    probe = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return True if probe is None else bool(probe())


def _functorch_active() -> bool:
    """Whether a ``torch.func`` transform (grad, vmap, jacrev, ...) is running (False if torch cannot say)."""
    probe = getattr(torch._C, "_are_functorch_transforms_active", None)
    return False if probe is None else bool(probe())
