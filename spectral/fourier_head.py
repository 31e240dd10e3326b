"""The Fourier head: a classification head whose bin probabilities come from a smooth density.

Legend: ``...`` batch axes, ``D`` input features, ``L = num_frequencies + 1``
coefficients (wavenumbers ``k = 0..N``), ``N = num_frequencies``, ``M`` bins
(``num_bins``), ``P`` query points, ``S`` samples.

A Linear layer gives ``L`` complex numbers ``a_0..a_N``; their autocorrelation
``c_k = sum_j a_{j+k} conj(a_j)`` are the Fourier coefficients of the non-negative
function ``|sum_j a_j exp(i pi j x)|^2``, so

    p(x) = 1/2 + Re sum_{k=1..N} (c_k / c_0) exp(i pi k x),   x in [-1, 1],

is a probability density (it equals ``|sum_j a_j exp(i pi j x)|^2 / (2 c_0)``).
Evaluated at the bin centres and normalised it gives the head's categorical
distribution (Gillman et al., 2024).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from spectral.checks import check_dtype_matches, check_int, check_number, check_real_dtype, check_tensor
from spectral.fft import compute_dtype, fft_precision

__all__ = [
    "autocorrelate",
    "autocorrelate_real",
    "fourier_density",
    "fourier_cdf",
    "fourier_regularization",
    "FourierHead",
]


def autocorrelate(a: torch.Tensor) -> torch.Tensor:
    """``c_k = sum_j a_{j+k} conj(a_j)`` for ``k = 0..L-1``.

    Shape
    -----
    a: (..., L) complex -> (..., L) complex; ``c_0 = sum |a_j|^2`` is real.
    """
    re, im = autocorrelate_real(a.real, a.imag)
    return torch.complex(re, im)


def autocorrelate_real(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`autocorrelate` of ``a = u + i v`` in real arithmetic: ``(Re c, Im c)``.

    ``Re c_k = sum_j u_{j+k} u_j + v_{j+k} v_j`` and ``Im c_k = sum_j v_{j+k} u_j - u_{j+k} v_j``,
    one batched matmul against the shifted copies (O(L^2) per row; no complex dtype, so it
    compiles and runs under any precision).

    Shape
    -----
    u, v: (..., L) real -> two (..., L) real
    """
    n = u.shape[-1]
    uv = torch.cat([u, v], dim=-1)  # (..., 2L)
    shifted = torch.cat([F.pad(u, (0, n - 1)).unfold(-1, n, 1),  # row k: u_{j+k}, 0 past the end
                         F.pad(v, (0, n - 1)).unfold(-1, n, 1)], dim=-1)  # (..., L, 2L)
    rhs = torch.stack([uv, torch.cat([-v, u], dim=-1)], dim=-1)  # (..., 2L, 2)
    out = shifted @ rhs  # (..., L, 2)
    return out[..., 0], out[..., 1]


def fourier_density(coeffs: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``p(x) = 1/2 + Re sum_{k=1..N} coeffs_k exp(i pi k x)`` at ``points``.

    Shape
    -----
    coeffs: (..., N) complex (``c_k / c_0``), points: (P,) or broadcastable (..., P) -> (..., P) real
    """
    theta = _angles(points, coeffs.shape[-1])  # (..., P, N)
    re, im = coeffs.real.unsqueeze(-2), coeffs.imag.unsqueeze(-2)
    return 0.5 + (re * torch.cos(theta) - im * torch.sin(theta)).sum(-1)


def fourier_cdf(coeffs: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The CDF ``F(x) = int_{-1}^x p`` of :func:`fourier_density`, in closed form.

    ``F(x) = (x + 1)/2 + sum_k [a_k sin(pi k x) + b_k (cos(pi k x) - (-1)^k)] / (pi k)``
    with ``a_k + i b_k = coeffs_k``. Shape as :func:`fourier_density`.
    """
    n = coeffs.shape[-1]
    theta = _angles(points, n)  # (..., P, N)
    k = torch.arange(1, n + 1, device=points.device, dtype=theta.dtype)
    sign = 1.0 - 2.0 * (k % 2)  # (-1)^k
    re, im = coeffs.real.unsqueeze(-2), coeffs.imag.unsqueeze(-2)
    terms = (re * torch.sin(theta) + im * (torch.cos(theta) - sign)) / (math.pi * k)
    return (points + 1.0) / 2.0 + terms.sum(-1)


def fourier_regularization(coeffs: torch.Tensor) -> torch.Tensor:
    """``mean over batch of sum_{k=1..N} 2 pi^2 k^2 |coeffs_k|^2`` (= ``2 int |p'|^2 dx``).

    Shape
    -----
    coeffs: (..., N) complex -> () real
    """
    return _regularization(coeffs.real, coeffs.imag)


def _regularization(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    k = torch.arange(1, re.shape[-1] + 1, device=re.device, dtype=re.dtype)
    return (2.0 * math.pi**2 * k.square() * (re.square() + im.square())).sum(-1).mean()


def _angles(points: torch.Tensor, n: int) -> torch.Tensor:
    k = torch.arange(1, n + 1, device=points.device, dtype=points.dtype)
    return math.pi * points.unsqueeze(-1) * k  # (..., P, N)


class FourierHead(nn.Module):
    """A drop-in for ``Linear(in_features, num_bins)`` whose outputs follow a smooth density.

    ``a = Linear(x)`` (``N + 1`` complex numbers), ``c = autocorrelate(a)``, and
    ``p(x) = 1/2 + Re sum_{k=1..N} (c_k / c_0) exp(i pi k x)`` on [-1, 1] is evaluated at
    the ``num_bins`` bin centres ``-1 + (2b + 1) / num_bins`` and normalised.
    ``forward`` returns log-probabilities for ``F.nll_loss`` or ``F.cross_entropy``.
    :meth:`density`, :meth:`cdf` and :meth:`sample` use the continuous density;
    :meth:`regularization` is the smoothness loss term ``gamma * mean sum_k 2 pi^2 k^2 |c_k / c_0|^2``.

    Parameters
    ----------
    in_features : int
        Input width ``D``.
    num_bins : int
        Number of equal bins ``M`` on [-1, 1] (>= 2).
    num_frequencies : int
        Highest wavenumber ``N`` of the density (>= 1).
    regularization_gamma : float, default 0.0
        Weight ``gamma`` of :meth:`regularization` (>= 0).
    init_scale : float, default 0.01
        The Linear layer's default initialisation is multiplied by this (the paper
        divides by 100); the density is invariant to it, the optimiser's step size is not.
    eps : float, default 1e-6
        Weight of a uniform distribution mixed into the bin probabilities, so every
        log-probability is at least ``log(eps / num_bins)``; 0 disables it.
    device, dtype
        Factory arguments of the parameters and the bin-centre/basis buffers.

    Shape
    -----
    x: (..., D) real -> log-probabilities (..., M) real, ``exp`` sums to 1.

    Notes
    -----
    The basis at the bin centres is derived from a non-persistent integer buffer
    (``angle_index``) in the compute dtype at every call, so casting the head to half precision
    does not round it: the head works on CPU by default, ``.to()`` moves it and ``state_dict``
    holds only the Linear layer. The autocorrelation is computed in real arithmetic, O(L^2) per row.
    The regulariser uses the normalised coefficients ``c_k / c_0``, the density's own
    Fourier coefficients (up to the factor 1/2), so it cannot be lowered by shrinking
    the Linear layer without changing the output; the reference code applies the same
    weights to the unnormalised ``c_k``. Half-precision inputs are computed in float32.

    References
    ----------
    N. Gillman et al., "Fourier Head: Helping Large Language Models Learn Complex
    Probability Distributions", arXiv:2410.22269.

    Examples
    --------
    >>> head = FourierHead(16, 50, 12)
    >>> logp = head(torch.randn(4, 16))
    >>> logp.shape, bool(torch.allclose(logp.exp().sum(-1), torch.ones(4)))
    (torch.Size([4, 50]), True)
    """

    def __init__(
        self,
        in_features: int,
        num_bins: int,
        num_frequencies: int,
        *,
        regularization_gamma: float = 0.0,
        init_scale: float = 0.01,
        eps: float = 1e-6,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        in_features = check_int("in_features", in_features)
        num_bins = check_int("num_bins", num_bins, min=2)
        num_frequencies = check_int("num_frequencies", num_frequencies)
        self.in_features, self.num_bins, self.num_frequencies = in_features, num_bins, num_frequencies
        self.regularization_gamma = check_number("regularization_gamma", regularization_gamma, min=0.0)
        self.init_scale = check_number("init_scale", init_scale, min=0.0, min_open=True)
        self.eps = check_number("eps", eps, min=0.0, max=1.0, max_open=True)
        dtype = check_real_dtype("dtype", dtype)
        self.proj = nn.Linear(in_features, 2 * (num_frequencies + 1), device=device, dtype=dtype)
        # pi k c_b at the bin centres c_b = (2b + 1 - M) / M is pi n / M with the integer n = k (2b + 1 - M),
        # kept modulo 2M: an integer buffer, which ``.to(dtype)``/``.half()`` leave exact (a float basis
        # cast to bfloat16 would be off by up to 2e-3 and move log-probabilities by whole units).
        k = torch.arange(1, num_frequencies + 1, device=device)[:, None]
        n = k * (2 * torch.arange(num_bins, device=device) + 1 - num_bins)  # (N, M)
        self.register_buffer("angle_index", torch.remainder(n, 2 * num_bins), persistent=False)
        self.reset_parameters()

    @property
    def bin_centers(self) -> torch.Tensor:
        """The bin centres ``-1 + (2b + 1) / M``: (M,), in the head's compute dtype."""
        m = self.num_bins
        b = torch.arange(m, device=self.angle_index.device, dtype=compute_dtype(self.proj.weight.dtype))
        return (2 * b + 1 - m) / m

    def basis(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos(pi k c_b)`` and ``sin(pi k c_b)`` at the bin centres: two (N, M), computed in ``dtype``.

        ``dtype`` defaults to the head's compute dtype (float32 for a half-precision head).
        """
        theta = self.angle_index.to(dtype or compute_dtype(self.proj.weight.dtype)) * (math.pi / self.num_bins)
        return torch.cos(theta), torch.sin(theta)

    def reset_parameters(self) -> None:
        """``nn.Linear``'s default initialisation scaled by ``init_scale``."""
        self.proj.reset_parameters()
        with torch.no_grad():
            self.proj.weight.mul_(self.init_scale)
            self.proj.bias.mul_(self.init_scale)

    def _amplitudes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts of ``a_0..a_N`` (the Linear output, interleaved): two (..., L) real."""
        check_tensor("FourierHead", "x", x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"FourierHead: expected x of shape (..., {self.in_features}), got {tuple(x.shape)}")
        check_dtype_matches("FourierHead", x, self.proj.weight)
        raw = self.proj(x)
        raw = raw.to(compute_dtype(raw.dtype))  # half precision -> float32
        return raw[..., 0::2], raw[..., 1::2]

    def _parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts of ``c_k / c_0``, ``k = 1..N``: two (..., N) real."""
        u, v = self._amplitudes(x)
        with fft_precision(u):
            re, im = autocorrelate_real(u, v)  # (..., L) each
            c0 = re[..., :1].clamp_min(torch.finfo(re.dtype).tiny)
            return re[..., 1:] / c0, im[..., 1:] / c0

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """The autocorrelation ``c_0..c_N`` of the Linear layer's output: (..., D) -> (..., N + 1) complex."""
        u, v = self._amplitudes(x)
        with fft_precision(u):
            return torch.complex(*autocorrelate_real(u, v))

    def normalized_coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """``c_k / c_0`` for ``k = 1..N``: (..., D) -> (..., N) complex."""
        return torch.complex(*self._parts(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = self._parts(x)  # (..., N) real each
        with fft_precision(re):
            cos_basis, sin_basis = self.basis(re.dtype)
            dens = 0.5 + re @ cos_basis - im @ sin_basis  # (..., M)
            probs = dens.clamp_min(0.0)
            probs = probs / probs.sum(-1, keepdim=True)
            if self.eps > 0:
                probs = (1.0 - self.eps) * probs + self.eps / self.num_bins
            return probs.log().to(x.dtype)

    def density(self, x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The continuous density at ``points`` in [-1, 1]: points (P,) or (..., P) -> (..., P)."""
        coeffs = self.normalized_coefficients(x)
        check_tensor("FourierHead.density", "points", points)
        return fourier_density(coeffs, points.to(coeffs.real.dtype)).to(x.dtype)

    def cdf(self, x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``P(X <= point)`` under the continuous density: points (P,) or (..., P) -> (..., P)."""
        coeffs = self.normalized_coefficients(x)
        check_tensor("FourierHead.cdf", "points", points)
        return fourier_cdf(coeffs, points.to(coeffs.real.dtype)).to(x.dtype)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, num_samples: int = 1, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draws from the continuous density by inverting its CDF (bisection): (..., D) -> (..., S) in [-1, 1]."""
        num_samples = check_int("num_samples", num_samples)
        coeffs = self.normalized_coefficients(x)  # (..., N)
        real = coeffs.real.dtype
        u = torch.rand(*coeffs.shape[:-1], num_samples, generator=generator, dtype=real, device=x.device)
        lo, hi = torch.full_like(u, -1.0), torch.ones_like(u)
        for _ in range(round(-math.log2(torch.finfo(real).eps)) + 2):
            mid = (lo + hi) / 2
            below = fourier_cdf(coeffs, mid) < u
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return ((lo + hi) / 2).to(x.dtype)

    def regularization(self, x: torch.Tensor) -> torch.Tensor:
        """The loss term ``gamma * mean_batch sum_{k=1..N} 2 pi^2 k^2 |c_k / c_0|^2`` (a scalar)."""
        return self.regularization_gamma * _regularization(*self._parts(x))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_bins={self.num_bins}, "
                f"num_frequencies={self.num_frequencies}, regularization_gamma={self.regularization_gamma}")
