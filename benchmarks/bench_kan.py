"""Suite ``kan``: FourierKANLayer against the materialised Fourier-KAN sum.

Ours: :class:`spectral.kan.FourierKANLayer` (features ``(M, I, 2, K)``, one matmul,
features recomputed in backward). Baselines, timed in the same process:

- ``materialised``: the direct formula, ``cos(k x)`` broadcast against the coefficients
  into an ``(M, O, I, K)`` product and summed (the usual reference implementation);
- ``features-autograd`` (extra rows): the same features and matmul under plain autograd,
  which keeps the ``(M, I, 2, K)`` features (and their inputs) alive until backward.

Rows: time of fwd and fwd+bwd (ms) and peak memory of one fwd+bwd (MB, CUDA allocator
growth or CPU resident-set growth). Both implementations are checked to agree first.
"""

from __future__ import annotations

import torch

from benchmarks._harness import BenchContext, Row, compare, peak_memory_bytes
from spectral.kan import FourierKANLayer

# (in_features, out_features, num_frequencies, points)
CASES = [
    (2, 128, 270, 4096),  # the FKAN first layer on an image batch (the target case)
    (64, 64, 8, 4096),  # a hidden KAN layer: many inputs, few frequencies
]
QUICK_CASES = [(2, 128, 270, 1024)]


def materialised(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``sum_{i,k} A cos(kx) + B sin(kx)`` with the ``(M, O, I, K)`` products formed explicitly."""
    k = torch.arange(1, weight.shape[-1] + 1, dtype=x.dtype, device=x.device)
    kx = x[:, None, :, None] * k  # (M, 1, I, K)
    y = (torch.cos(kx) * weight[None, :, :, 0]).sum((-2, -1))  # (M, O, I, K) -> (M, O)
    y = y + (torch.sin(kx) * weight[None, :, :, 1]).sum((-2, -1))
    return y + bias


def features_autograd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Features and one matmul under plain autograd (no recomputation)."""
    k = torch.arange(1, weight.shape[-1] + 1, dtype=x.dtype, device=x.device)
    kx = x.unsqueeze(-1) * k  # (M, I, K)
    feats = torch.stack((torch.cos(kx), torch.sin(kx)), dim=-2)  # (M, I, 2, K)
    return torch.nn.functional.linear(feats.flatten(1), weight.flatten(1), bias)


def _fwd_bwd(fn, x, layer):
    def step():
        layer.zero_grad(set_to_none=False)
        x.grad = None
        fn(x, layer.weight, layer.bias).square().mean().backward()

    return step


def run(ctx: BenchContext) -> list[Row]:
    rows = []
    for n_in, n_out, n_freq, m in QUICK_CASES if ctx.quick else CASES:
        layer = FourierKANLayer(n_in, n_out, n_freq, device=ctx.device)
        x = (torch.rand(m, n_in, device=ctx.device) * 2 - 1).requires_grad_(True)
        with torch.no_grad():
            ours_y, base_y = layer(x), materialised(x, layer.weight, layer.bias)
            err = (ours_y - base_y).abs().max().item()
        if err > 1e-3 * base_y.abs().max().item():
            raise RuntimeError(f"FourierKANLayer and the materialised sum disagree by {err:.3e}")
        name = f"I{n_in}-O{n_out}-K{n_freq}-M{m}"
        params = {"in": n_in, "out": n_out, "K": n_freq, "points": m, "dtype": str(x.dtype)}
        ours = lambda x_, w, b: layer(x_)  # noqa: E731 - same signature as the baselines
        with torch.no_grad():
            rows.append(
                compare("kan", name, "fwd", ("ours", lambda: ours(x, None, None)),
                        ("materialised", lambda: materialised(x, layer.weight, layer.bias)), ctx, params)
            )
        rows.append(
            compare("kan", name, "fwd+bwd", ("ours", _fwd_bwd(ours, x, layer)),
                    ("materialised", _fwd_bwd(materialised, x, layer)), ctx, params)
        )
        rows.append(
            compare("kan", name, "fwd+bwd", ("ours", _fwd_bwd(ours, x, layer)),
                    ("features-autograd", _fwd_bwd(features_autograd, x, layer)), ctx, params)
        )
        mem = {}
        for label, fn in (("ours", ours), ("materialised", materialised), ("features-autograd", features_autograd)):
            step = _fwd_bwd(fn, x, layer)
            step()  # allocate .grad buffers before measuring
            mem[label] = min(peak_memory_bytes(step, ctx.device) for _ in range(2)) / 1e6
        for base in ("materialised", "features-autograd"):
            rows.append(Row("kan", name, "fwd+bwd peak", "ours", base, mem["ours"], mem[base], "MB", params))
        ctx.extra[name] = {"max_abs_diff_vs_materialised": err, "peak_MB": mem}
    return rows
