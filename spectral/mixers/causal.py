"""Causal Fourier token mixing: a learnable long causal convolution computed by FFT.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``T = min(N, max_len)`` kernel taps
used, ``P >= N + T - 1`` the zero-padded FFT length (a 2-3-5-smooth size),
``F = P // 2 + 1`` rfft bins.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spectral.checks import check_int, check_real_dtype
from spectral._fft_autograd import kernel_conv
from spectral.fft import compute_dtype, empty_batch, fft_precision
from spectral.mixers._common import apply_mask, check_mask, check_sequence, next_fast_len

__all__ = ["causal_conv", "CausalFourierMixer"]


def causal_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``y[:, t, d] = sum_{l=0}^{min(t, L-1)} kernel[l, d] x[:, t - l, d]`` by FFT.

    Both signals are zero-padded to ``P >= N + T - 1`` (``2N - 1`` when the kernel is at
    least as long as the sequence), so the circular convolution of the FFT never wraps
    a later token onto an earlier output: output ``t`` depends on inputs ``<= t`` only,
    up to the rounding of the transforms (bound in :class:`CausalFourierMixer`'s Notes).

    Shape
    -----
    x: (B, N, D) real, kernel: (L, D) real -> (B, N, D) real
    """
    if x.shape[0] == 0:  # FFT backends reject an empty batch
        return empty_batch(x, x.shape, [kernel])
    n = x.shape[1]
    taps = min(n, kernel.shape[0])
    p = next_fast_len(n + taps - 1)
    with fft_precision(x):
        xc = x.to(compute_dtype(x.dtype))
        # no (F, D) kernel spectrum is kept: kernel_conv recomputes it a group of channels at a time
        # the whole kernel when it is used whole: a narrow's backward would copy its gradient into a new buffer
        used = kernel if taps == kernel.shape[0] else kernel.narrow(0, 0, taps)
        y = kernel_conv(xc, used.to(xc.dtype), p)  # (B, N, D) real
    return y.to(x.dtype)


class CausalFourierMixer(nn.Module):
    """Causal long convolution over tokens by FFT: ``y_t = sum_{l < max_len} h_l * x_{t-l}`` (depthwise).

    For autoregressive models (the purpose of FNetAR): ``O(N log N)`` mixing in which
    output ``t`` sees only tokens ``<= t``, and the outputs on a prefix do not depend on
    what follows it. Each channel ``d`` has its own learnable kernel ``h[:, d]`` of
    ``max_len`` taps.

    Parameters
    ----------
    dim : int
        Embedding size ``D``.
    max_len : int
        Kernel length (receptive field) in tokens. Sequences longer than ``max_len``
        are accepted: the kernel is zero beyond ``max_len`` taps, so each output sees
        the last ``max_len`` tokens (a sliding window), exactly as it would in the
        streaming/autoregressive use of the same model. It is not resampled: a lag
        keeps its meaning in tokens at every length.
    device, dtype
        Of the kernel ``(max_len, dim)``.

    Shape
    -----
    x: (B, N, D) real, mask: (B, N) bool or None -> (B, N, D) real, same dtype

    Notes
    -----
    The FFT length is the smallest 2-3-5-smooth ``P >= N + min(N, max_len) - 1``:
    for ``N <= max_len`` that is the smallest 2-3-5-smooth ``P >= 2N - 1`` (e.g.
    ``P = 15`` for ``N = 7`` and for ``N = 8``). Padded tokens are zero in the
    FFT and zero in the output; since the convolution is linear, zero-padding at the end
    (or at the start, shifting the outputs) leaves the real tokens' outputs exactly
    those of the unpadded sequence. Half precision runs in float32 and is cast back.

    Causality holds up to the rounding of the FFTs, which spreads a little of every
    token over all outputs: changing a token by ``v`` moves an earlier output of
    channel ``d`` by at most about ``3 eps max(|v|, max_t |x[t, d]|) ||h[:, d]||_2``
    (measured: at most ``2.6 eps`` times that scale for ``N <= 16384``, float32 and
    float64 alike; ``eps`` is ``1.2e-7`` in float32, ``2.2e-16`` in float64). With the
    unit-energy kernels of the initialisation and tokens of order one, a value ``v`` at
    the last token moves earlier float32 outputs by about ``1e-7 v``. A NaN or inf is
    not small: in one real token it makes the outputs of its channel NaN at every token
    of that sample, earlier ones included; other channels and samples are unaffected.

    Initialisation: ``h[l, d] = z * exp(-l / tau_d)``, ``z ~ N(0, 1)``, normalised to unit
    energy per channel, with time scales ``tau_d`` log-spaced from 1 to ``max_len``
    (a multi-scale start: some channels local, some global).

    Examples
    --------
    >>> mixer = CausalFourierMixer(8, 128)
    >>> x = torch.randn(2, 50, 8)
    >>> y = mixer(x)
    >>> bool(torch.allclose(mixer(x[:, :20]), y[:, :20], atol=1e-5))
    True
    """

    def __init__(self, dim: int, max_len: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.dim, self.max_len = check_int("dim", dim), check_int("max_len", max_len)
        dtype = check_real_dtype("dtype", dtype)
        self.kernel = nn.Parameter(torch.empty(self.max_len, self.dim, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            dev = self.kernel.device
            tau = torch.logspace(0.0, math.log10(self.max_len), self.dim, device=dev, dtype=torch.float64)
            decay = torch.exp(-torch.arange(self.max_len, device=dev, dtype=torch.float64)[:, None] / tau)  # (L, D)
            decay = decay / decay.square().sum(0, keepdim=True).sqrt()
            self.kernel.copy_(torch.randn(self.max_len, self.dim, device=dev, dtype=torch.float64) * decay)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_sequence(x, self.dim, "CausalFourierMixer")
        check_mask(mask, x.shape[:2], "CausalFourierMixer")
        return apply_mask(causal_conv(apply_mask(x, mask), self.kernel), mask)

    def extra_repr(self) -> str:
        return f"{self.dim}, {self.max_len}"
