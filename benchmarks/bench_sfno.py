"""Suite ``sfno``: a training step of our SFNO against torch-harmonics' example SFNO.

Baseline: ``torch_harmonics.examples.models.SphericalFourierNeuralOperator`` with
``scale_factor=1`` (no internal down-sampling), Legendre-Gauss grids inside and out,
``lmax = mmax = min(nlat, nlon // 2)`` (its own choice), Driscoll-Healy convolutions,
``mlp_ratio=2``, no normalisation, no positional embedding, ``bias=True``.

Ours: :class:`operators.sfno.SFNO` configured to the same architecture and the same
number of real parameters (complex parameters counted twice): linear lifting and
projection, a channel MLP of ratio 2 with an identity skip in each block, no inner
skip, no bias in the spherical convolutions (theirs has one, our MLP's second layer has
one instead), same ``lmax`` and ``mmax``. Both counts are printed and must agree.

A training step is ``zero_grad``, forward, MSE loss, backward and an AdamW step;
"fwd" is the forward pass alone under ``torch.no_grad``.
"""

from __future__ import annotations

import warnings

import torch

from benchmarks._harness import BenchContext, Row, compare
from operators.sfno import SFNO

# (batch, channels in/out, hidden width, (nlat, nlon), layers)
CASES = [
    (4, 3, 32, (32, 64), 4),
    (4, 3, 32, (64, 128), 4),
    (4, 3, 64, (64, 128), 4),
]
QUICK = [(2, 3, 16, (16, 32), 2)]
GPU_EXTRA = [(4, 3, 128, (128, 256), 4)]


def real_parameter_count(model: torch.nn.Module) -> int:
    """Real numbers a model trains (a complex parameter counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def build_pair(cin: int, hidden: int, shape: tuple[int, int], n_layers: int, device: torch.device):
    """torch-harmonics' example SFNO and ours, same architecture and parameter count."""
    from torch_harmonics.examples.models import SphericalFourierNeuralOperator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SphericalFourierNeuralOperator(
            img_size=shape, grid="legendre-gauss", grid_internal="legendre-gauss", scale_factor=1,
            in_chans=cin, out_chans=cin, embed_dim=hidden, num_layers=n_layers, use_mlp=True, mlp_ratio=2.0,
            normalization_layer="none", pos_embed="none", bias=True,
        )
    lmax, mmax = theirs.trans_down.lmax, theirs.trans_down.mmax
    ours = SFNO(
        cin, cin, shape, hidden_channels=hidden, n_layers=n_layers, grid="legendre-gauss", lmax=lmax, mmax=mmax,
        positional_embedding=False, lifting_ratio=0, projection_ratio=0, mlp_expansion=2.0, skip=None,
        mlp_skip="identity", bias=False,
    )
    n_ours, n_theirs = real_parameter_count(ours), real_parameter_count(theirs)
    if n_ours != n_theirs:
        raise RuntimeError(f"parameter counts differ: ours {n_ours}, torch-harmonics {n_theirs}")
    return ours.to(device), theirs.to(device), lmax, mmax, n_ours


def _train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        torch.nn.functional.mse_loss(out, y).backward()
        opt.step()

    return step


def _forward(model: torch.nn.Module, x: torch.Tensor):
    def fwd() -> None:
        with torch.no_grad():
            model(x)

    return fwd


def run(ctx: BenchContext) -> list[Row]:
    rows = []
    cases = QUICK if ctx.quick else CASES + (GPU_EXTRA if ctx.device.type == "cuda" else [])
    ctx.extra["parameters"] = {}
    for b, cin, hidden, shape, n_layers in cases:
        ours, theirs, lmax, mmax, n_params = build_pair(cin, hidden, shape, n_layers, ctx.device)
        x = torch.randn(b, cin, *shape, device=ctx.device)
        y = torch.randn(b, cin, *shape, device=ctx.device)
        name = f"B{b}-C{hidden}-{shape[0]}x{shape[1]}-L{n_layers}-lmax{lmax}"
        print(f"{name}: parameters ours {n_params}, torch-harmonics {real_parameter_count(theirs)}")
        ctx.extra["parameters"][name] = {"ours": n_params, "torch-harmonics": real_parameter_count(theirs)}
        params = {"B": b, "channels": cin, "hidden": hidden, "grid": shape, "n_layers": n_layers, "lmax": lmax,
                  "mmax": mmax, "parameters": n_params, "dtype": str(x.dtype)}
        rows.append(compare("sfno", name, "fwd", ("SFNO", _forward(ours, x)),
                            ("torch-harmonics SFNO", _forward(theirs, x)), ctx, params))
        rows.append(compare("sfno", name, "train step", ("SFNO", _train_step(ours, x, y)),
                            ("torch-harmonics SFNO", _train_step(theirs, x, y)), ctx, params))
    return rows
