"""Complex parameters stored as real tensors, ModReLU, and mode-wise channel contraction.

Legend: ``B`` batch, ``C`` channels (``Cin`` in, ``Cout`` out), ``K`` kept modes
(``*K`` one entry per transformed axis, ``Kt`` their product).

Complex weights are stored as real tensors with a trailing axis of 2 (real,
imaginary) and viewed as complex in ``forward``: ``module.double()`` and
``module.to(dtype)`` then keep the imaginary part (they silently drop it from
complex ``Parameter`` objects).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from spectral.checks import check_int, check_number, check_real_dtype, check_tensor

__all__ = [
    "as_complex",
    "init_complex_",
    "contract_modes",
    "contract_modes_packed",
    "pack_weight",
    "contract_modes_diagonal",
    "complex_bmm",
    "modrelu",
    "ModReLU",
]


def as_complex(weight: torch.Tensor) -> torch.Tensor:
    """View a real ``(..., 2)`` tensor as complex ``(...)`` (no copy when contiguous).

    Raises
    ------
    ValueError
        If the last axis is not of size 2.
    TypeError
        If ``weight`` is not a real floating tensor.
    """
    check_tensor("as_complex", "weight", weight, kind="real")
    if weight.ndim == 0 or weight.shape[-1] != 2:
        raise ValueError(f"weight: expected a trailing axis of 2 (real, imag), got shape {tuple(weight.shape)}")
    if weight.dtype in (torch.float16, torch.bfloat16):
        weight = weight.float()
    return torch.view_as_complex(weight if weight.stride(-1) == 1 and weight.stride(-2) == 2 else weight.contiguous())


def init_complex_(weight: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill a real ``(..., 2)`` tensor so the complex values have ``E|w|^2 = std^2``."""
    with torch.no_grad():
        return weight.normal_(0.0, std / math.sqrt(2.0), generator=generator)


def contract_modes(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mix channels mode by mode: ``out[b, o, k] = sum_i x[b, i, k] w[i, o, k]``.

    One batched complex matmul over the flattened modes, ``(Kt, B, Cin) @ (Kt, Cin, Cout)``.

    Shape
    -----
    x: (B, Cin, *K) complex, weight: (Cin, Cout, *K) complex -> (B, Cout, *K) complex

    Raises
    ------
    TypeError
        If ``x`` is not complex (casting the complex weight to a real ``x`` would drop
        its imaginary part).
    ValueError
        If the channel counts or mode shapes disagree.
    """
    _check_contract(x, weight, 2, "(Cin, Cout, *K)", "contract_modes")
    w = rearrange(weight, "i o ... -> (...) i o")
    return contract_modes_packed(x, w)


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """``(Cin, Cout, *K)`` -> the contiguous ``(Kt, Cin, Cout)`` layout of :func:`contract_modes_packed`."""
    return rearrange(weight, "i o ... -> (...) i o").contiguous()


def contract_modes_packed(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """:func:`contract_modes` with the weight already packed as ``(Kt, Cin, Cout)``.

    Modules that store their weight in this layout skip a per-call copy of the weight.

    Shape
    -----
    x: (B, Cin, *K) complex, weight: (Kt, Cin, Cout) complex -> (B, Cout, *K) complex

    Raises
    ------
    TypeError
        If ``x`` is not complex.
    ValueError
        If the channel counts or mode shapes disagree.
    """
    _check_complex_x(x, "contract_modes_packed")
    check_tensor("contract_modes_packed", "weight", weight, kind="floating")
    kept = x.shape[2:]
    if x.ndim < 3 or weight.ndim != 3 or weight.shape[0] != math.prod(kept) or weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"contract_modes_packed: expected x (B, Cin, *K) and weight (prod(K), Cin, Cout), "
            f"got x {tuple(x.shape)} and weight {tuple(weight.shape)}"
        )
    xk = rearrange(x, "b i ... -> (...) b i").contiguous()  # (Kt, B, Cin) complex
    out = complex_bmm(xk, weight.to(xk.dtype))  # (Kt, B, Cout) complex
    return rearrange(out, "k b o -> b o k").reshape(x.shape[0], weight.shape[2], *kept)


def complex_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched complex matmul ``(G, P, Q) @ (G, Q, R)`` whose backward feeds ``bmm`` contiguous operands.

    Use it instead of ``torch.bmm`` wherever the result goes through a layout change
    (the usual case in spectral layers), so the permuted incoming gradient is made
    contiguous once instead of sending CPU ``bmm`` down its slow per-batch path.
    """
    return _ModeMatmul.apply(a, b)


class _ModeMatmul(torch.autograd.Function):
    """``(Kt, B, Cin) @ (Kt, Cin, Cout)`` with contiguous operands in both passes.

    The gradient arriving from the ``(B, Cout, *K)`` layout is a permuted view; handed to
    ``bmm`` as is, CPU ``bmm`` falls back to one small matmul per mode (and copies for the
    conjugated operand), orders of magnitude slower. The backward makes it contiguous.
    Its ops are torch's own, on the saved inputs (which stay in the autograd graph), so
    the backward is differentiable again and second derivatives are exact.
    """

    @staticmethod
    def forward(ctx, xk: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(xk, w)
        return torch.bmm(xk, w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        xk, w = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = torch.bmm(grad, w.mH) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(xk.mH, grad) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w


def contract_modes_diagonal(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Diagonal (per-channel) form: ``out[b, c, k] = x[b, c, k] w[c, k]``.

    Shape
    -----
    x: (B, C, *K) complex, weight: (C, *K) complex -> (B, C, *K) complex

    Raises
    ------
    TypeError
        If ``x`` is not complex.
    ValueError
        If the channel counts or mode shapes disagree.
    """
    _check_contract(x, weight, 1, "(C, *K)", "contract_modes_diagonal")
    return x * weight.to(x.dtype)


def _check_complex_x(x: torch.Tensor, owner: str) -> None:
    check_tensor(owner, "x", x, kind="any")
    if not x.is_complex():
        raise TypeError(
            f"{owner}: x must be complex (the spectrum of a field), got x of dtype {x.dtype}; "
            f"a real x would drop the weight's imaginary part"
        )


def _check_contract(x: torch.Tensor, weight: torch.Tensor, lead: int, layout: str, owner: str) -> None:
    """``x`` (B, Cin, *K) complex against ``weight`` whose first ``lead`` axes are channels, then *K."""
    _check_complex_x(x, owner)
    check_tensor(owner, "weight", weight, kind="floating")
    if weight.ndim < lead + 1 or x.ndim < 3 or tuple(x.shape[2:]) != tuple(weight.shape[lead:]) \
            or x.shape[1] != weight.shape[0]:
        raise ValueError(
            f"{owner}: expected x (B, Cin, *K) matching weight {layout} = {tuple(weight.shape)}, "
            f"got x of shape {tuple(x.shape)}"
        )


def modrelu(z: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``ReLU(|z| + b) * z / |z|`` (zero where ``|z| + b <= 0`` or ``z = 0``).

    ``bias`` broadcasts against ``z``'s trailing dims and is cast to ``z``'s real dtype,
    so the result keeps ``z``'s dtype (a float64 bias does not promote complex64 to complex128).
    """
    check_tensor("modrelu", "z", z, kind="any")
    if not z.is_complex():
        raise TypeError(f"modrelu expects a complex tensor, got {z.dtype}")
    check_tensor("modrelu", "bias", bias, kind="real")
    mag = z.abs()  # (...) z's real dtype
    bias = bias.to(mag.dtype)
    nonzero = mag > 0  # z / |z| is taken as 0 at z = 0 (dividing by a clamped |z| overflows for b > ~4)
    scale = torch.where(nonzero, torch.relu(mag + bias) / torch.where(nonzero, mag, 1.0), 0.0)
    return z * scale


class ModReLU(nn.Module):
    """modReLU for complex activations: ``ReLU(|z| + b) * z / |z|``, one bias per feature.

    Parameters
    ----------
    num_features : int
        Size of the last axis of the input (the bias is shared over the others).
    init_bias : float
        Initial value of every bias (finite; negative values give a dead zone around 0).
    device, dtype
        Of the bias; ``dtype`` is a real floating dtype (the bias is real).

    Shape
    -----
    z: (..., num_features) complex -> (..., num_features) complex

    Raises
    ------
    TypeError
        ``num_features`` not an int (bools too), ``init_bias`` not a real number, a
        complex or non-floating ``dtype``.
    ValueError
        ``num_features < 1``, a non-finite ``init_bias``.

    Examples
    --------
    >>> act = ModReLU(4, init_bias=-0.5)
    >>> z = torch.full((2, 4), 0.25 + 0j)
    >>> bool((act(z) == 0).all())
    True
    """

    def __init__(self, num_features: int, *, init_bias: float = 0.0, device=None, dtype=None) -> None:
        super().__init__()
        self.num_features = check_int("num_features", num_features)
        self.init_bias = check_number("init_bias", init_bias)
        check_real_dtype("dtype", dtype)
        self.bias = nn.Parameter(torch.empty(num_features, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.bias, self.init_bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1:] != (self.num_features,):
            raise ValueError(f"ModReLU: expected z of shape (..., {self.num_features}), got {tuple(z.shape)}")
        return modrelu(z, self.bias)

    def extra_repr(self) -> str:
        return f"{self.num_features}, init_bias={self.init_bias}"
