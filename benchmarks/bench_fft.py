"""Suite ``fft``: the pruned forward+inverse pair against the plain route.

Plain route: full ``rfftn``, slice the kept corners, zero-pad to the full spectrum,
``irfftn``. Ours: :func:`spectral.fft.truncated_fftn` then
:func:`spectral.fft.truncated_ifftn`. Both return the same field (checked here).

Each case also times the limit (baseline "irreducible", same process and shapes): the
transforms of a pruned spectral conv from :mod:`benchmarks._limit` (rfft of every row,
a full-length FFT of only the kept columns, the zero-filled inverses) without the
channel matmul, since the pair has none; its ratio is irreducible / ours (1 = at the
limit). Every row carries the correctness column: the max absolute error of our pair
against the plain route computed in float64.
"""

from __future__ import annotations

import torch

__all__ = ["CASES", "plain_pair", "pruned_pair", "run"]

from benchmarks._harness import BenchContext, Row, compare
from benchmarks._limit import irreducible_conv, max_error_vs_float64
from spectral.fft import truncated_fftn, truncated_ifftn

# (B, C, grid, n_modes per axis)
CASES = [
    (8, 32, (64, 64), 16),
    (8, 32, (128, 128), 16),
    (8, 32, (256, 256), 32),
    (8, 64, (4096,), 64),
    (2, 16, (32, 32, 32), 8),
]


def plain_pair(x: torch.Tensor, m: int) -> torch.Tensor:
    """rfftn -> slice the 2^(d-1) kept corners -> zero-pad -> irfftn (the usual FNO code)."""
    d = len(x.shape) - 2
    dims = tuple(range(-d, 0))
    spec = torch.fft.rfftn(x, dim=dims, norm="forward")
    out = torch.zeros_like(spec)
    corners = [[slice(0, m), slice(-(m - 1), None)] if m > 1 else [slice(0, 1)] for _ in range(d - 1)]
    import itertools

    for combo in itertools.product(*corners) if d > 1 else [()]:
        idx = (..., *combo, slice(0, m))
        out[idx] = spec[idx]
    return torch.fft.irfftn(out, s=x.shape[-d:], dim=dims, norm="forward")


def pruned_pair(x: torch.Tensor, m: int) -> torch.Tensor:
    d = len(x.shape) - 2
    return truncated_ifftn(truncated_fftn(x, (m,) * d), x.shape[-d:])


def run(ctx: BenchContext) -> list[Row]:
    rows = []
    cases = CASES[:1] + CASES[3:4] if ctx.quick else CASES
    for b, c, grid, m in cases:
        x = torch.randn(b, c, *grid, device=ctx.device)
        err = (pruned_pair(x, m) - plain_pair(x, m)).abs().max().item()
        if err > 1e-4 * x.abs().max().item():
            raise RuntimeError(f"pruned and plain pairs disagree by {err:.3e} on {tuple(x.shape)}")
        xg = x.clone().requires_grad_(True)
        gout = torch.randn_like(x)
        name = f"B{b}-C{c}-{'x'.join(map(str, grid))}-m{m}"
        params = {"B": b, "C": c, "grid": grid, "n_modes": m, "dtype": str(x.dtype)}
        d = len(grid)
        error = max_error_vs_float64(pruned_pair(x, m), lambda x64: plain_pair(x64, m), x)
        fwd = lambda: pruned_pair(x, m)  # noqa: E731
        fwd_bwd = lambda: pruned_pair(xg, m).backward(gout)  # noqa: E731
        limit = {"fwd": lambda: irreducible_conv(x, None, (m,) * d),
                 "fwd+bwd": lambda: irreducible_conv(xg, None, (m,) * d).backward(gout)}
        plain = {"fwd": lambda: plain_pair(x, m), "fwd+bwd": lambda: plain_pair(xg, m).backward(gout)}
        for phase, ours in (("fwd", fwd), ("fwd+bwd", fwd_bwd)):
            for base, fn in (("plain", plain[phase]), ("irreducible", limit[phase])):
                row = compare("fft", name, phase, ("pruned", ours), (base, fn), ctx, params)
                row.max_error = error
                rows.append(row)
    return rows
