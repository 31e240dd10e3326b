"""Held-out-against-training PSNR curves of SIREN and FKAN variants on camera 256 (even -> odd pixels).

The sweep behind docs/inr_image.md: the same data, targets, full-batch Adam loop and scoring as
``examples/inr_image.py`` (imported from it), at SIREN 3x256's parameter budget (132609), with
knobs that example does not expose. Prints one JSON line: the options, the FKAN width matched to
the budget, and ``curve``: ``(step, train PSNR, held-out PSNR)`` every ``--every`` steps.

    python docs/inr_image_sweep.py --model SIREN --seed 1
    python docs/inr_image_sweep.py --model FKAN --directions 16 --frequencies 16 --lr 1.6e-4 --center
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from spectral.inr import FKAN, FKAN_ACTIVATIONS, SIREN


def _load_example(name: str):
    """``examples/<name>.py`` as a module, loaded by its path (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example("inr_image")

BUDGET = 132609  # SIREN(2, 1, hidden_features=256, n_layers=3)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Runs on one CPU thread. FKAN's defaults are the directional form (D = 16, "
                                       "K = 16, sine MLP),\nnot the paper's; for the paper's form use "
                                       "--directions 0 --frequencies 32 --activation gated_tanh.")
    p.add_argument("--model", choices=("FKAN", "SIREN"), default="FKAN",
                   help="the network (default FKAN, in the directional form of the defaults below, its width matched "
                        "to the budget; SIREN is 256 wide with omega_0 30 and ignores the FKAN options)")
    p.add_argument("--directions", type=int, default=16,
                   help="FKAN directions D (0: the two axes, as in the paper; default 16)")
    p.add_argument("--frequencies", type=int, default=16, help="FKAN's K (the paper's form at 256: 32; default 16)")
    p.add_argument("--activation", choices=FKAN_ACTIVATIONS, default="sine",
                   help="FKAN's MLP activation (the paper's: gated_tanh; default sine)")
    p.add_argument("--omega", type=float, default=30.0, help="FKAN's omega_0 (SIREN keeps 30; default 30)")
    p.add_argument("--layers", type=int, default=3, help="hidden layers (default 3)")
    p.add_argument("--first-width", type=int, default=None, metavar="W",
                   help="FKAN's Fourier-KAN layer W wide and only the MLP width matched to the budget "
                        "(default: one width for all layers)")
    p.add_argument("--smooth-init", action="store_true", help="FKAN coefficients ~ 1/k^2 (default: off)")
    p.add_argument("--no-layernorm", action="store_true",
                   help="FKAN without the LayerNorm after the first layer (default: with it)")
    p.add_argument("--layernorm-gain", type=float, default=1.0, help="FKAN's initial LayerNorm weight (default 1)")
    p.add_argument("--kan-lr-mult", type=float, default=1.0,
                   help="learning-rate factor of FKAN's first layer (default 1)")
    p.add_argument("--out-scale", type=float, default=1.0,
                   help="factor on the output layer's initial weights (default 1)")
    p.add_argument("--center", action="store_true",
                   help="fit f(x) - f_init(x): subtract the network's initial output (train and test; default: off)")
    p.add_argument("--lr", type=float, default=1e-4,
                   help="Adam learning rate (default 1e-4, SIREN's; FKAN's directional runs used 1.6e-4)")
    p.add_argument("--steps", type=int, default=500, help="full-batch Adam steps on the even pixels (default 500)")
    p.add_argument("--every", type=int, default=50, metavar="N",
                   help="score train and held-out PSNR every N steps and at the last, for the curve (default 50)")
    p.add_argument("--seed", type=int, default=0,
                   help="torch seed set before building the model: its initial weights (default 0)")
    p.add_argument("--save", default="",
                   help="save the final prediction (256x256, [0, 1]) to this .pt file (default: not saved)")
    return p.parse_args(argv)


def build(args, width: int) -> nn.Module:
    if args.model == "SIREN":
        return SIREN(2, 1, hidden_features=width, n_layers=args.layers, omega_0=30.0)
    widths = width if args.first_width is None else (args.first_width,) + (width,) * (args.layers - 1)
    return FKAN(2, 1, num_frequencies=args.frequencies, hidden_features=widths, n_layers=args.layers,
                activation=args.activation, omega_0=args.omega, directions=args.directions or None,
                smooth_init=args.smooth_init)


def matched_width(args) -> int:
    if args.model == "SIREN":
        return 256
    lo, hi = 1, 4096  # parameters grow with the width: bisect for the first width at or above the budget
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if example.count_params(build(args, mid)) < BUDGET else (lo, mid)
    return min((lo - 1, lo), key=lambda h: abs(example.count_params(build(args, h)) - BUDGET))


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    width = matched_width(args)
    image, coords = example.load_camera(256), example.grid_coords(256)
    torch.manual_seed(args.seed)
    model = build(args, width)
    if args.model == "FKAN" and args.no_layernorm:
        model.norm = nn.Identity()
    with torch.no_grad():
        if args.model == "FKAN" and args.layernorm_gain != 1.0:
            model.norm.weight.fill_(args.layernorm_gain)
        model.out.weight.mul_(args.out_scale)
    x = coords[::2, ::2].reshape(-1, 2)  # (16384, 2) training coordinates
    y = example.to_signed(image[::2, ::2]).reshape(-1, 1)
    groups = [{"params": list(model.parameters())}]
    if args.model == "FKAN" and args.kan_lr_mult != 1.0:
        first = {id(q) for q in model.kan.parameters()}
        groups = [{"params": list(model.kan.parameters()), "lr": args.lr * args.kan_lr_mult},
                  {"params": [q for q in model.parameters() if id(q) not in first]}]
    opt = torch.optim.Adam(groups, lr=args.lr)
    offset_train, offset_all = torch.zeros_like(y), torch.zeros(())
    if args.center:
        with torch.no_grad():
            offset_train, offset_all = model(x), example.evaluate(model, coords)
    train, held_out = (slice(0, None, 2),) * 2, (slice(1, None, 2),) * 2
    start, curve, pred = time.time(), [], None
    for step in range(1, args.steps + 1):
        loss = F.mse_loss(model(x) - offset_train, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.every == 0 or step == args.steps:
            pred = example.from_signed(example.evaluate(model, coords) - offset_all)
            curve.append((step, round(example.psnr(pred[train], image[train]), 3),
                          round(example.psnr(pred[held_out], image[held_out]), 3)))
    if args.save:
        torch.save(pred, args.save)
    result = dict(vars(args), width=width, params=example.count_params(model), curve=curve,
                  seconds=round(time.time() - start))
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
