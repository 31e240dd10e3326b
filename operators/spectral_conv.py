"""SpectralConv: the Fourier layer of an FNO, for 1-D, 2-D and 3-D fields.

Legend: ``B`` batch, ``Cin``/``Cout`` input/output channels, ``*grid`` the ``d``
transformed axes (``H, W`` in 2-D), ``K`` kept bins per axis, ``Kt`` their product,
``R`` the CP rank, ``F = W // 2 + 1`` rfft bins.

Which modes are kept follows the README's "The mode convention": ``n_modes[i] = m`` keeps ``|k| < m`` on axis
``i``, i.e. ``2m - 1`` bins on the two-sided axes and rfft bins ``0..m-1`` on the last
axis of real data (``kept_shape`` in :mod:`spectral.modes`). The weights are stored as
real tensors with a trailing axis of 2 (real, imaginary).

One path for the module and the functional form: transform -> contract -> rescale ->
bias -> inverse, where the contraction is the pluggable piece of :data:`FACTORIZATIONS`
("dense": :func:`spectral.complex.contract_modes_packed`, "separable":
:func:`spectral.complex.contract_modes_diagonal`, "cp": factor by factor).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, Union

import torch
from torch import nn

from operators._compiled_conv import spectral_conv_dense, use_compiled_op
from operators.layers.inputs import check_output_shape, empty_batch, grid_letters
from spectral.checks import check_bool, check_choice, check_dtype_matches, check_int, check_real_dtype, check_tensor
from spectral.complex import as_complex, contract_modes_diagonal, contract_modes_packed, init_complex_
from spectral.fft import FFT_NORMS, FFTNorm, dc_scale, truncated_fftn, truncated_ifftn
from spectral.modes import as_n_modes, check_grid, kept_shape

__all__ = ["FACTORIZATIONS", "Factorization", "SpectralConv", "spectral_conv"]

Factorization = Literal["dense", "separable", "cp"]
FACTORIZATIONS: tuple[str, ...] = ("dense", "separable", "cp")
Weight = Union[torch.Tensor, Sequence[torch.Tensor]]


def _contract_cp(x: torch.Tensor, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """CP-factorised weight ``w[i, o, k] = sum_r A[i, r] B[o, r] prod_j U_j[k_j, r]``, never built.

    x (B, Cin, *K) complex; factors A (Cin, R, 2), B (Cout, R, 2), U_j (K_j, R, 2) real -> (B, Cout, *K).
    """
    f_in, f_out, *f_modes = (as_complex(f) for f in factors)
    rank = f_in.shape[1]
    mode_factor = f_modes[0].transpose(0, 1)  # (R, K_0)
    for u in f_modes[1:]:  # outer product over the mode axes, one axis at a time
        mode_factor = mode_factor.unsqueeze(-1) * u.transpose(0, 1).reshape(rank, *([1] * (mode_factor.ndim - 1)), -1)
    # mode_factor: (R, *K) complex, R * Kt entries (never Cin * Cout * Kt)
    xf = x.reshape(x.shape[0], x.shape[1], -1)  # (B, Cin, Kt)
    t = torch.matmul(f_in.transpose(0, 1).to(x.dtype), xf)  # (B, R, Kt)
    t = t * mode_factor.reshape(rank, -1).to(x.dtype)  # (B, R, Kt)
    out = torch.matmul(f_out.to(x.dtype), t)  # (B, Cout, Kt)
    return out.reshape(x.shape[0], f_out.shape[0], *x.shape[2:])


#: The contraction of each factorization: (coeffs (B, Cin, *K) complex, weight) -> (B, Cout, *K) complex.
_CONTRACTIONS: dict[str, Callable[[torch.Tensor, Weight], torch.Tensor]] = {
    "dense": lambda x, w: contract_modes_packed(x, as_complex(w)),
    "separable": lambda x, w: contract_modes_diagonal(x, as_complex(w)),
    "cp": _contract_cp,
}


def _out_channels(weight: Weight, factorization: str) -> int:
    return {"dense": lambda: weight.shape[2], "separable": lambda: weight.shape[0], "cp": lambda: weight[1].shape[0]}[factorization]()


def _spectral_conv(
    x: torch.Tensor, weight: Weight, n_modes: tuple[int, ...], grid: tuple[int, ...], bias: torch.Tensor | None,
    complex_data: bool, fft_norm: str, factorization: str,
) -> torch.Tensor:
    """The one path (arguments already checked): transform, contract, rescale, add bias, invert."""
    if x.shape[0] == 0:  # FFT backends reject an empty batch
        params = [*(weight if factorization == "cp" else [weight]), *([] if bias is None else [bias])]
        return empty_batch(x, (0, _out_channels(weight, factorization), *grid), params)
    if use_compiled_op(x, weight, factorization, complex_data):  # torch.compile: one opaque op per layer
        return spectral_conv_dense(x, weight, bias, n_modes, grid, fft_norm)[0]
    coeffs = truncated_fftn(x, n_modes, complex_data=complex_data, norm=fft_norm)  # (B, Cin, *K) complex
    coeffs = _CONTRACTIONS[factorization](coeffs, weight)  # (B, Cout, *K) complex
    coeffs = _rescale_to_grid(coeffs, fft_norm, x.shape[2:], grid)  # to the output grid's scale
    if bias is not None:  # a constant field: its only coefficient is k = 0
        coeffs = _add_bias_at_dc(coeffs, bias, complex_data, fft_norm, grid)
    return truncated_ifftn(coeffs, grid, complex_data=complex_data, norm=fft_norm, out_dtype=x.dtype)


def spectral_conv(
    x: torch.Tensor,
    weight: Weight,
    n_modes: Sequence[int],
    *,
    bias: torch.Tensor | None = None,
    output_shape: Sequence[int] | None = None,
    complex_data: bool = False,
    fft_norm: FFTNorm = "forward",
    factorization: Factorization = "dense",
) -> torch.Tensor:
    """Functional spectral convolution: transform, keep modes, mix channels, invert.

    :class:`SpectralConv` calls the same path with its parameters.

    Parameters
    ----------
    x : Tensor
        ``(B, Cin, *grid)`` real (complex with ``complex_data=True``).
    weight : Tensor or sequence of Tensor
        Packed complex (real, trailing axis 2), by ``factorization``: "dense"
        ``(Kt, Cin, Cout, 2)`` with ``Kt = prod(kept_shape(n_modes))`` flattened in C order
        over the compact kept layout; "separable" ``(C, *K, 2)``; "cp" the factors
        ``(A (Cin, R, 2), B (Cout, R, 2), U_1 (K_1, R, 2), ..., U_d (K_d, R, 2))``.
    n_modes : sequence of int
        Kept wavenumbers ``|k| < m`` per axis.
    bias : Tensor, optional
        ``(Cout,)`` real, or ``(Cout, 2)`` for complex data.
    output_shape : sequence of int, optional
        Grid of the output (default: the input grid); it must admit ``n_modes``.
    complex_data : bool
        Complex fields (full FFT on every axis).
    fft_norm : {"forward", "backward", "ortho"}
        Normalisation of both transforms.
    factorization : {"dense", "separable", "cp"}
        Layout of ``weight``.

    Shape
    -----
    x: (B, Cin, *grid) real -> (B, Cout, *output_shape) real, dtype of x

    Raises
    ------
    ValueError
        ``x``, ``weight`` or ``bias`` of the wrong shape (the message shows the expected
        and the received shape), a grid or ``output_shape`` that does not admit ``n_modes``.
    TypeError
        A real ``x`` with ``complex_data=True`` (its output would lose the imaginary part),
        a complex ``x`` without it, or ``x`` not in the weights' dtype.

    Examples
    --------
    >>> w = torch.randn(7 * 4, 3, 5, 2)  # kept_shape((4, 4)) = (7, 4)
    >>> spectral_conv(torch.randn(2, 3, 16, 16), w, (4, 4), output_shape=(32, 32)).shape
    torch.Size([2, 5, 32, 32])
    """
    n_modes = as_n_modes(n_modes)
    factorization = check_choice("factorization", factorization, FACTORIZATIONS)
    complex_data = check_bool("complex_data", complex_data)
    fft_norm = check_choice("fft_norm", fft_norm, FFT_NORMS)
    grid = _check_input("spectral_conv", x, n_modes, complex_data, output_shape, "Cin")
    _check_weights(x, weight, bias, n_modes, complex_data, factorization)
    return _spectral_conv(x, weight, n_modes, grid, bias, complex_data, fft_norm, factorization)


def _check_input(
    owner: str, x: torch.Tensor, n_modes: tuple[int, ...], complex_data: bool, output_shape, channels: int | str
) -> tuple[int, ...]:
    """Type, shape and grid of ``x`` and ``output_shape``; returns the output grid."""
    d = len(n_modes)
    check_tensor(owner, "x", x, kind="floating")
    if x.ndim != d + 2 or (isinstance(channels, int) and x.shape[1] != channels):
        raise ValueError(f"{owner}: expected x of shape (B, {channels}, {', '.join(grid_letters(d))}), got {tuple(x.shape)}")
    if x.is_complex() and not complex_data:
        raise TypeError(f"{owner}: x has complex dtype {x.dtype}; use complex_data=True for complex fields")
    if complex_data and not x.is_complex():
        raise TypeError(f"{owner}: x has real dtype {x.dtype}, but complex_data=True needs a complex x (x.to(torch.complex64))")
    check_grid(x.shape[2:], n_modes, shape=x.shape)
    if output_shape is None:
        return tuple(x.shape[2:])
    out = check_output_shape(owner, output_shape, d)
    check_grid(out, n_modes, name="output_shape", shape=out)
    return out


def _check_weights(
    x: torch.Tensor, weight: Weight, bias: torch.Tensor | None, n_modes: tuple[int, ...], complex_data: bool, factorization: str
) -> None:
    """Shapes and dtypes of the functional form's weights, checked before any transform."""
    kept, cin = kept_shape(n_modes, complex_data=complex_data), x.shape[1]
    kt = math.prod(kept)
    if factorization == "cp":
        if isinstance(weight, torch.Tensor) or not isinstance(weight, Sequence) or len(weight) != len(n_modes) + 2:
            raise TypeError(f"spectral_conv: factorization='cp' needs weight = (A, B, U_1, ..., U_{len(n_modes)}), "
                            f"got {type(weight).__name__}")
        for f in weight:
            check_tensor("spectral_conv", "a CP factor", f)
        rank = weight[0].shape[1] if weight[0].ndim == 3 else -1
        want = [(cin, rank, 2), (weight[1].shape[0], rank, 2), *[(k, rank, 2) for k in kept]]
        got = [tuple(f.shape) for f in weight]
        if rank < 1 or got != want:
            raise ValueError(f"spectral_conv: expected CP factors of shapes {want} (Cin, Cout, *K by R) for "
                             f"n_modes={n_modes} and x of shape {tuple(x.shape)}, got {got}")
        cout, ref = weight[1].shape[0], weight[0]
    else:
        check_tensor("spectral_conv", "weight", weight)
        if factorization == "dense":
            ok = weight.ndim == 4 and tuple(weight.shape[:2]) == (kt, cin) and weight.shape[3] == 2
            want, cout = f"({kt}, {cin}, Cout, 2)", weight.shape[2] if weight.ndim > 2 else -1
        else:
            ok = tuple(weight.shape) == (cin, *kept, 2)
            want, cout = str((cin, *kept, 2)), cin
        if not ok:
            raise ValueError(f"spectral_conv: expected weight of shape {want} for n_modes={n_modes} and x of "
                             f"shape {tuple(x.shape)}, got {tuple(weight.shape)}")
        ref = weight
    _check_dtype("spectral_conv", x, ref)
    expected = (cout, 2) if complex_data else (cout,)
    if bias is not None and tuple(check_tensor("spectral_conv", "bias", bias).shape) != expected:
        raise ValueError(f"spectral_conv: expected bias of shape {expected}, got {tuple(bias.shape)}")


def _check_dtype(owner: str, x: torch.Tensor, weight: torch.Tensor) -> None:
    """TypeError unless ``x`` (its real part if complex) has the weights' real dtype.

    Exempt: autocast (the FFT regions run with autocast off and the contraction promotes, so
    even float64 works there), and a float16 / bfloat16 ``x`` on float32 weights (the documented
    mixed-precision path: transformed in float32, cast back to ``x``'s dtype).
    """
    real = x.real if x.is_complex() else x
    if real.dtype == weight.dtype or (real.dtype in (torch.float16, torch.bfloat16) and weight.dtype == torch.float32):
        return
    if x.device.type != "meta" and torch.is_autocast_enabled(x.device.type):  # (meta has no autocast: it raises)
        return
    if x.device.type == "meta":
        raise TypeError(f"{owner}: got x of dtype {real.dtype} but the parameters have {weight.dtype}")
    check_dtype_matches(owner, real, weight, "x.real" if x.is_complex() else "x")


def _rescale_to_grid(coeffs: torch.Tensor, norm: str, in_grid: Sequence[int], out_grid: Sequence[int]) -> torch.Tensor:
    """Carry coefficients computed on ``in_grid`` over to the scale of ``out_grid``'s inverse.

    With "backward" the coefficients carry a factor ``N_in`` and the inverse divides by
    ``N_out`` ("ortho": square roots of both), so evaluating on another grid would scale
    the kernel by ``N_in / N_out``; multiplying by ``N_out / N_in`` (or its square root)
    first makes the output on any grid the same function. A no-op for "forward".
    """
    if norm == "forward" or tuple(in_grid) == tuple(out_grid):
        return coeffs
    return coeffs * (dc_scale(norm, out_grid) / dc_scale(norm, in_grid))  # (B, Cout, *K) complex


def _add_bias_at_dc(coeffs: torch.Tensor, bias: torch.Tensor, complex_data: bool, norm: str, grid: Sequence[int]) -> torch.Tensor:
    """Add a constant field ``bias`` as its k = 0 coefficient (a (Cout, *K) add, not a full-grid one)."""
    b = as_complex(bias) if complex_data else bias
    d = coeffs.ndim - 2
    if norm != "forward":  # the DC coefficient of a constant c is c * N ("backward") or c * sqrt(N) ("ortho")
        b = b * dc_scale(norm, grid)
    b = b.to(coeffs.dtype).reshape(-1, *([1] * d))  # (Cout, 1, ..., 1)
    pad = [p for k in reversed(coeffs.shape[2:]) for p in (0, k - 1)]
    return coeffs + torch.nn.functional.pad(b, pad)  # (Cout, *K): b at k = 0, zeros elsewhere


class SpectralConv(nn.Module):
    """Fourier integral operator layer: ``y = F^-1(W_k . F(x)_k) + b`` over the kept modes.

    ``out[b, o, k] = sum_i W[i, o, k] xhat[b, i, k]`` for every kept wavenumber ``k``
    (``|k_j| < n_modes[j]``), zero elsewhere, then the inverse transform onto the output
    grid. Transforms use ``norm=fft_norm`` ("forward" by default: coefficients are grid
    means, so the weights mean the same thing on every grid). Weights are stored as
    real ``(..., 2)`` tensors; ``module.double()`` keeps their imaginary part.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts ``Cin``, ``Cout``.
    n_modes : int or sequence of int
        One entry per transformed axis (1 to 3): ``m`` keeps ``|k| < m``; that is
        ``2m - 1`` fft bins on every axis except the last axis of real data, which
        keeps rfft bins ``0..m-1``. A grid of ``N`` points admits ``m <= (N + 1) // 2``.
    complex_data : bool
        Complex fields: full FFT on every axis, complex output and bias. ``x`` must then
        be complex (a real ``x`` raises TypeError rather than losing the output's
        imaginary part).
    bias : bool
        Add a learned per-channel bias (a constant field).
    separable : bool
        One complex weight per channel and mode (``Cin == Cout``) instead of a
        ``Cin x Cout`` matrix per mode.
    rank : int, optional
        CP rank ``R``: ``W[i, o, k] = sum_r A[i, r] B[o, r] prod_j U_j[k_j, r]``,
        contracted factor by factor (the dense ``W`` is never built).
    fft_norm : {"forward", "backward", "ortho"}
        Normalisation of both transforms. With ``output_shape`` the coefficients are
        rescaled to the output grid's convention, so every norm gives the same operator
        on every grid.
    device, dtype : optional
        Where and in which real dtype the parameters are created.

    Shape
    -----
    x: (B, Cin, *grid) real (complex with complex_data) -> (B, Cout, *output_shape), x's dtype

    Notes
    -----
    Half-precision inputs are transformed in float32 with autocast off inside the FFT
    regions (see :mod:`spectral.fft`), and the output is cast back to the input dtype.
    Any other ``x`` whose (real) dtype differs from the parameters' raises TypeError
    outside autocast (e.g. float64 ``x`` on float32 weights, as the other layers do).
    An empty batch (``B = 0``) gives an empty output. ``forward`` is
    :func:`spectral_conv` with the layer's parameters (``factorization`` "separable",
    "cp" or "dense").
    At initialisation ``E|W|^2 = 1 / Cin`` (dense and CP) or ``1`` (separable), so the
    output variance is of the order of the input's for inputs whose energy lies in the
    kept modes.
    Under ``torch.compile`` (``fullgraph=True`` works, ``dynamic=True`` traces one graph for
    every grid) the dense real-data layer is one opaque custom operator,
    ``spectral_operators::spectral_conv_dense``, with the eager transforms and a hand-written
    backward: compiled, it is differentiable once (use eager mode for second derivatives).

    Examples
    --------
    >>> conv = SpectralConv(3, 5, (8, 8))
    >>> conv(torch.randn(2, 3, 32, 33)).shape
    torch.Size([2, 5, 32, 33])
    >>> conv(torch.randn(2, 3, 32, 32), output_shape=(64, 64)).shape
    torch.Size([2, 5, 64, 64])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        *,
        complex_data: bool = False,
        bias: bool = True,
        separable: bool = False,
        rank: int | None = None,
        fft_norm: FFTNorm = "forward",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        in_channels, out_channels = check_int("in_channels", in_channels), check_int("out_channels", out_channels)
        separable, rank = check_bool("separable", separable), check_int("rank", rank, allow_none=True)
        if separable and in_channels != out_channels:
            raise ValueError(f"separable=True needs in_channels == out_channels, got {in_channels} and {out_channels}")
        if separable and rank is not None:
            raise ValueError(f"separable=True and rank={rank} cannot be combined; choose one")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.n_modes = as_n_modes(n_modes)
        self.complex_data, self.separable, self.rank = check_bool("complex_data", complex_data), separable, rank
        self.factorization = "separable" if separable else "dense" if rank is None else "cp"
        self.fft_norm = check_choice("fft_norm", fft_norm, FFT_NORMS)
        self.kept = kept_shape(self.n_modes, complex_data=self.complex_data)
        kw = dict(device=device, dtype=check_real_dtype("dtype", dtype))
        if separable:
            self.weight = nn.Parameter(torch.empty(in_channels, *self.kept, 2, **kw))  # (C, *K, 2)
        elif rank is None:
            self.weight = nn.Parameter(torch.empty(math.prod(self.kept), in_channels, out_channels, 2, **kw))
        else:
            self.factor_in = nn.Parameter(torch.empty(in_channels, rank, 2, **kw))  # (Cin, R, 2)
            self.factor_out = nn.Parameter(torch.empty(out_channels, rank, 2, **kw))  # (Cout, R, 2)
            self.factor_modes = nn.ParameterList(nn.Parameter(torch.empty(k, rank, 2, **kw)) for k in self.kept)
        bias_shape = (out_channels, 2) if self.complex_data else (out_channels,)
        self.bias = nn.Parameter(torch.empty(bias_shape, **kw)) if check_bool("bias", bias) else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Complex normal weights with ``E|W|^2 = 1/Cin`` (1 if separable); zero bias."""
        if self.rank is not None:
            # Every factor gets the same std s with R * s^(2 (d + 2)) = 1 / Cin.
            n_factors = len(self.kept) + 2
            std = (1.0 / (self.in_channels * self.rank)) ** (1.0 / (2 * n_factors))
            for p in (self.factor_in, self.factor_out, *self.factor_modes):
                init_complex_(p, std)
        else:
            init_complex_(self.weight, 1.0 if self.separable else 1.0 / math.sqrt(self.in_channels))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Apply the layer; ``output_shape`` evaluates it on another grid (same operator)."""
        owner = f"{type(self).__name__}({len(self.n_modes)}-d)"
        grid = _check_input(owner, x, self.n_modes, self.complex_data, output_shape, self.in_channels)
        weight = self.weight if self.rank is None else (self.factor_in, self.factor_out, *self.factor_modes)
        _check_dtype(owner, x, self.weight if self.rank is None else self.factor_in)
        return _spectral_conv(x, weight, self.n_modes, grid, self.bias, self.complex_data, self.fft_norm, self.factorization)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}"
        if self.complex_data:
            s += ", complex_data=True"
        if self.separable:
            s += ", separable=True"
        if self.rank is not None:
            s += f", rank={self.rank}"
        if self.fft_norm != "forward":
            s += f", fft_norm={self.fft_norm!r}"
        return s + f", bias={self.bias is not None}"
