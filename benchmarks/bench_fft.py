"""Suite ``fft``: the pruned forward+inverse pair against the plain route.

Plain route: full ``rfftn``, slice the kept corners, zero-pad to the full spectrum,
``irfftn``. Ours: :func:`spectral.fft.truncated_fftn` then
:func:`spectral.fft.truncated_ifftn`. Both return the same field (checked here).
"""

from __future__ import annotations

import torch

from benchmarks._harness import BenchContext, Row, compare
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
        rows.append(compare("fft", name, "fwd", ("pruned", lambda: pruned_pair(x, m)), ("plain", lambda: plain_pair(x, m)), ctx, params))
        rows.append(
            compare(
                "fft", name, "fwd+bwd",
                ("pruned", lambda: pruned_pair(xg, m).backward(gout)),
                ("plain", lambda: plain_pair(xg, m).backward(gout)),
                ctx, params,
            )
        )
    return rows
