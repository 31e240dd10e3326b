"""Fit the ``camera`` image with FKAN, SIREN and Fourier features at matched parameter counts.

The 512x512 grayscale ``camera`` image of PyWavelets is scaled to [0, 1] and box-downsampled
to ``--size``; pixel centres get coordinates on ``[-1, 1]^2``. Every model regresses the grey
levels mapped to [-1, 1] on the even-indexed pixels (row and column both even) with
full-batch Adam for the same number of steps, and is scored on those training pixels and on
the held-out odd-indexed pixels (row and column both odd): PSNR, and SSIM (Wang et al. 2004,
11x11 Gaussian window, sigma 1.5). SIREN (``--hidden`` wide, ``--layers`` sine layers,
omega_0 = 30) sets the parameter budget; FKAN's and the Fourier-feature network's widths match
it within 5%. A "bilinear interp" row scores plain interpolation of the training pixels, for
scale. Below the table: whether this run ranks the models as the measured full run does.

Measured results, the settings behind the defaults and the plots: the documentation pages
``docs/guides/examples/inr_image.rst`` and ``docs/inr_image.md``.

    python examples/inr_image.py --quick           # 64x64, 200 steps: a smoke run, too small to rank
    python examples/inr_image.py                   # 256x256, 500 steps (long on CPU)
    python examples/inr_image.py --crop 128        # the cheap proxy the defaults were picked on

Checkpoints (model + optimizer + step) are written atomically every ``--checkpoint-every``
steps under ``--out``; rerunning the same command resumes. Outputs: ``<out>/results.json``,
``<out>/reconstructions.png`` and, with ``--eval-every N``, ``<out>/frontier.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from operators.checkpoint import atomic_save, atomic_write_text
from operators.evaluation import ranking_summary
from operators.experiments import progress_bar
from spectral.inr import FKAN, FKAN_ACTIVATIONS, SIREN, FourierFeatureINR, widening_widths

MODELS = ("FKAN", "SIREN", "FourierFeatures")
DISPLAY_NAMES = {"FKAN": "FKAN", "SIREN": "SIREN", "FourierFeatures": "Fourier features"}
FKAN_WIDTHS = ("uniform", "widening")  # every MLP layer H wide, or the authors' H -> 2H -> 2H -> 2H -> 4H
SCHEDULES = ("constant", "exp")  # "exp": lr decays geometrically to lr / 10 at the last step (the FKAN authors')
# Adam learning rates: SIREN's from Sitzmann et al., Fourier features' from Tancik et al.;
# FKAN's chosen on this task (docs/inr_image.md, section 3). ``--lr`` overrides all three.
DEFAULT_LR = {"FKAN": 1e-3, "SIREN": 1e-4, "FourierFeatures": 1e-3}
# The full run's measured PSNR (dB; default settings, seed 0, one CPU thread), training and held-out pixels:
# the rankings a run is checked against. "bilinear interp" takes part in the held-out ranking only.
FULL_COMMAND = "python examples/inr_image.py"
FULL_TRAIN_PSNR = {"FKAN": 38.42, "SIREN": 36.32, "Fourier features": 34.74}
FULL_HELDOUT_PSNR = {"FKAN": 25.66, "SIREN": 26.88, "Fourier features": 26.36, "bilinear interp": 25.91}


def load_camera(size: int) -> torch.Tensor:
    """The camera image in [0, 1], box-downsampled to ``size x size`` (float64 averaging)."""
    import pywt

    img = pywt.data.camera().astype(np.float64) / 255.0  # (512, 512)
    n = img.shape[0]
    if size < 32 or n % size:
        raise ValueError(f"--size must divide {n} and be >= 32 (SSIM's 11x11 window on the half-size "
                         f"sub-images), got {size}")
    f = n // size
    return torch.from_numpy(img.reshape(size, f, size, f).mean(axis=(1, 3))).float()  # (size, size)


def to_signed(image: torch.Tensor) -> torch.Tensor:
    """Grey levels [0, 1] -> regression targets [-1, 1] (the SIREN reference's ``Normalize(0.5, 0.5)``)."""
    return 2 * image - 1


def from_signed(values: torch.Tensor) -> torch.Tensor:
    """Network outputs on the [-1, 1] target scale -> grey levels (inverse of :func:`to_signed`)."""
    return (values + 1) / 2


def grid_coords(size: int) -> torch.Tensor:
    axis = torch.linspace(-1.0, 1.0, size)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)  # (size, size, 2)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    mse = F.mse_loss(pred.clamp(0, 1), target).item()
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


def ssim(pred: torch.Tensor, target: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM of two (H, W) images in [0, 1] with a Gaussian window (valid region only)."""
    g = torch.exp(-0.5 * ((torch.arange(window, dtype=torch.float64) - window // 2) / sigma) ** 2)
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :])[None, None]  # (1, 1, win, win) float64

    def blur(z):
        return F.conv2d(z[None, None], kernel)[0, 0]

    x, y = pred.clamp(0, 1).double(), target.double()
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean().item()


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build(name: str, hidden: int, args) -> torch.nn.Module:
    if name == "SIREN":
        return SIREN(2, 1, hidden_features=hidden, n_layers=args.layers, omega_0=30.0)
    if name == "FKAN":
        widening = args.fkan_widths == "widening"
        if widening:
            widths = widening_widths(hidden)
        elif args.fkan_first_width is not None:  # a narrower (or wider) Fourier-KAN layer, MLP `hidden` wide
            widths = (args.fkan_first_width,) + (hidden,) * (args.layers - 1)
        else:
            widths = hidden
        return FKAN(2, 1, num_frequencies=args.fkan_frequencies, hidden_features=widths,
                    n_layers=None if widening else args.layers, activation=args.fkan_activation,
                    omega_0=args.fkan_omega, smooth_init=args.fkan_smooth_init, directions=args.fkan_directions)
    return FourierFeatureINR(2, 1, num_features=args.ff_features, sigma=args.ff_sigma, hidden_features=hidden,
                             n_layers=args.layers)


def matched_width(name: str, budget: int, args) -> int:
    """Hidden width whose parameter count is closest to ``budget`` (must be within 5%)."""
    lo, hi = 1, 4096  # the count grows with the width: bisect, then take the closer neighbour
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count_params(build(name, mid, args)) < budget else (lo, mid)
    best = min((max(lo - 1, 1), lo), key=lambda h: abs(count_params(build(name, h, args)) - budget))
    got = count_params(build(name, best, args))
    if abs(got - budget) > 0.05 * budget:
        raise ValueError(f"{name}: no width gives {budget} parameters within 5% (closest {got} at width {best}); "
                         "change --hidden, --ff-features or --fkan-frequencies")
    return best


def evaluate(model: torch.nn.Module, coords: torch.Tensor, chunk: int = 1 << 15) -> torch.Tensor:
    with torch.no_grad():
        flat = coords.reshape(-1, 2)
        out = torch.cat([model(flat[i : i + chunk]) for i in range(0, flat.shape[0], chunk)])
    return out.reshape(coords.shape[:-1])


# Options that change what a model's checkpoint holds: shared ones, then each model's own.
_SHARED_OPTIONS = ("size", "crop", "hidden", "layers", "seed", "lr", "schedule")
_MODEL_OPTIONS = {"FKAN": ("fkan_frequencies", "fkan_activation", "fkan_smooth_init", "fkan_widths", "fkan_omega",
                            "fkan_directions", "fkan_first_width"),
                  "SIREN": (), "FourierFeatures": ("ff_features", "ff_sigma")}


def _model_config(name: str, config: dict) -> dict:
    return {k: config.get(k) for k in _SHARED_OPTIONS + _MODEL_OPTIONS[name]}


def _resumable(name: str, state: dict, args, lr: float) -> bool:
    """Same model setup and learning rate, not past the requested steps (``--steps`` may grow, except
    under ``--schedule exp``, whose decay rate depends on it).

    Only the options that concern model ``name`` are compared, so changing e.g. an FKAN option
    retrains FKAN alone and the other models resume from their checkpoints.
    """
    same = _model_config(name, state["config"]) == _model_config(name, vars(args)) and state.get("lr", lr) == lr
    if getattr(args, "schedule", "constant") == "exp" and state["config"].get("steps") != args.steps:
        return False  # the decay rate 0.1^(1 / steps) depends on --steps: more steps is another schedule
    return same and state["step"] <= args.steps


def fit(name: str, model: torch.nn.Module, lr: float, coords, image, args, out: Path) -> dict:
    """Full-batch Adam on the even pixels, resuming from ``<out>/ckpt_<name>.pt`` when present."""
    x_train, y_train = coords[::2, ::2].reshape(-1, 2), to_signed(image[::2, ::2]).reshape(-1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gamma = 0.1 ** (1 / max(args.steps, 1)) if getattr(args, "schedule", "constant") == "exp" else 1.0
    every = getattr(args, "eval_every", 0)
    ckpt, step, seconds, history = out / f"ckpt_{name}.pt", 0, 0.0, []
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        if _resumable(name, state, args, lr):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            step, seconds, history = state["step"], state["seconds"], state.get("history", [])
    bar = progress_bar(total=args.steps, initial=step, desc=f"{name:>15}", dynamic_ncols=True,
                       progress=getattr(args, "progress", None))
    while step < args.steps:
        t0 = time.perf_counter()
        loss = F.mse_loss(model(x_train), y_train)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:  # lr * gamma^step: constant for gamma = 1
            group["lr"] = lr * gamma**step
        opt.step()
        seconds += time.perf_counter() - t0
        step += 1
        bar.update(1)
        if step % 10 == 0 or step == args.steps:
            # The loss is on the [-1, 1] scale: 4x the [0, 1] mean squared error that PSNR uses.
            bar.set_postfix(train_psnr=f"{10 * math.log10(4 / max(loss.item(), 1e-12)):.2f}")
        if every and (step % every == 0 or step == args.steps):  # not timed: scoring is not training
            history.append([step, *split_psnr(from_signed(evaluate(model, coords)), image)])
        if step % args.checkpoint_every == 0 or step == args.steps:
            atomic_save({"config": vars(args), "lr": lr, "model": model.state_dict(), "optimizer": opt.state_dict(),
                         "step": step, "seconds": seconds, "history": history}, ckpt)
    bar.close()
    pred = from_signed(evaluate(model, coords))
    tr, te = (slice(0, None, 2),) * 2, (slice(1, None, 2),) * 2
    train_psnr, heldout_psnr = split_psnr(pred, image)
    return {
        "params": count_params(model), "lr": lr, "steps": step, "train_seconds": seconds,
        "train_psnr": train_psnr, "train_ssim": ssim(pred[tr], image[tr]),
        "heldout_psnr": heldout_psnr, "heldout_ssim": ssim(pred[te], image[te]),
        "history": history, "prediction": pred,
    }


def split_psnr(pred: torch.Tensor, image: torch.Tensor) -> tuple[float, float]:
    """PSNR on the training pixels (row and column even) and on the held-out ones (both odd)."""
    return psnr(pred[::2, ::2], image[::2, ::2]), psnr(pred[1::2, 1::2], image[1::2, 1::2])


def bilinear_heldout(image: torch.Tensor) -> torch.Tensor:
    """Bilinear estimate of the held-out (odd-odd) pixels from the even-even ones: ``(S/2, S/2)``.

    An odd-odd pixel sits at the centre of four even-even ones; its estimate is their mean
    (the grid edge repeats the last even row / column).
    """
    even = image[::2, ::2]
    padded = F.pad(even[None, None], (0, 1, 0, 1), mode="replicate")[0, 0]
    return (padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]) / 4


def bilinear_reference(image: torch.Tensor) -> dict:
    """Scores of plain interpolation from the training pixels (no learning), for scale.

    An odd-odd pixel sits at the centre of four even-even ones; its bilinear estimate is their
    mean (the grid edge repeats the last even row / column).
    """
    centres, held = bilinear_heldout(image), image[1::2, 1::2]
    return {"params": 0, "width": 0, "lr": 0.0, "steps": 0, "train_seconds": 0.0,
            "train_psnr": float("inf"), "train_ssim": 1.0,
            "heldout_psnr": psnr(centres, held), "heldout_ssim": ssim(centres, held)}


def ranking_notes(results: dict, bilinear_heldout_psnr: float, *, run: str = "this run") -> list[str]:
    """Does ``run`` rank the models by training and by held-out PSNR as the full run does?

    ``results``: model name -> scores (:func:`fit`'s); the notes need all three models.
    """
    if set(results) != set(MODELS):
        return []
    train = {DISPLAY_NAMES[n]: r["train_psnr"] for n, r in results.items()}
    held = {DISPLAY_NAMES[n]: r["heldout_psnr"] for n, r in results.items()} | {"bilinear interp": bilinear_heldout_psnr}
    return [ranking_summary(scores, reference, metric=f"{pixels} PSNR (dB)", command=FULL_COMMAND,
                            higher_is_better=True, run=run)
            for scores, reference, pixels in ((train, FULL_TRAIN_PSNR, "training-pixel"),
                                              (held, FULL_HELDOUT_PSNR, "held-out-pixel"))]


def plot(image: torch.Tensor, results: dict, path: Path) -> None:
    """Predictions (top row) and |error| on the held-out pixels (bottom row, bilinear first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    held = image[1::2, 1::2]
    bilinear = bilinear_heldout(image)
    errors = [("bilinear interp", bilinear, psnr(bilinear, held))]
    errors += [(DISPLAY_NAMES[n], results[n]["prediction"][1::2, 1::2], results[n]["heldout_psnr"]) for n in names]
    fig, axes = plt.subplots(2, len(names) + 1, figsize=(3.2 * (len(names) + 1) + 0.6, 7.0),
                             gridspec_kw={"hspace": 0.25})
    axes[0, 0].imshow(image.numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title(f"camera {image.shape[0]}x{image.shape[1]}")
    for j, name in enumerate(names, start=1):
        r, pred = results[name], results[name]["prediction"]
        axes[0, j].imshow(pred.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"{DISPLAY_NAMES[name]} ({r['params'] / 1e3:.0f}k)\ntrain {r['train_psnr']:.1f} dB / "
                             f"held-out {r['heldout_psnr']:.1f} dB", fontsize=9)
    for j, (label, pred, value) in enumerate(errors):
        shown = axes[1, j].imshow((pred.clamp(0, 1) - held).abs().numpy(), cmap="magma", vmin=0, vmax=0.2)
        axes[1, j].set_title(f"{label}: |error| on the held-out\npixels (row, column odd), {value:.1f} dB",
                             fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[1, :].tolist(), extend="max", shrink=0.9, label="|error|, grey levels in [0, 1]")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_frontier(results: dict, bilinear_heldout: float, path: Path) -> None:
    """Held-out PSNR against training PSNR along training, one curve per model (``--eval-every``).

    Training moves every curve to the right; a curve above another at the same training PSNR
    interpolates better for the same fit, whatever the learning rate or step count got it there.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, r in results.items():
        steps, train, held = zip(*r["history"])
        line, = ax.plot(train, held, "o-", ms=3, label=f"{name} (lr {r['lr']:.2g})")
        for i in (0, len(steps) - 1):
            ax.annotate(f"{steps[i]}", (train[i], held[i]), textcoords="offset points", xytext=(3, 3),
                        fontsize=7, color=line.get_color())
    ax.axhline(bilinear_heldout, color="gray", ls="--", lw=1, label="bilinear interp")
    ax.set_xlabel("training-pixel PSNR (dB)")
    ax.set_ylabel("held-out-pixel PSNR (dB)")
    ax.set_title("fit against interpolation along training (labels: Adam steps)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="CPU smoke run: 64x64 image, 200 steps, SIREN width 128, output runs/inr_image-quick "
                        "(explicit --size, --steps, --hidden, --out win)")
    p.add_argument("--size", type=int, default=None,
                   help="image side after box downsampling (divides 512, >= 32; default 256, --quick 64)")
    p.add_argument("--crop", type=int, default=None,
                   help="fit only the central CROP x CROP pixels, keeping their --size grid coordinates "
                        "(the cheap stand-in the hyperparameters were picked on: --crop 128; default: the whole "
                        "image)")
    p.add_argument("--steps", type=int, default=None, help="full-batch Adam steps per model (default 500, --quick 200)")
    p.add_argument("--hidden", type=int, default=None,
                   help="SIREN width; sets the parameter budget (default 256, --quick 128)")
    p.add_argument("--layers", type=int, default=3,
                   help="hidden layers of every model (SIREN: sine layers; the SIREN reference notebook's "
                        "hidden_layers=3 is 4 sine layers here; default 3)")
    per_model = ", ".join(f"{name} {lr:.0e}".replace("e-0", "e-") for name, lr in DEFAULT_LR.items())
    p.add_argument("--lr", type=float, default=None,
                   help=f"Adam learning rate of every model (default: per model, {per_model}; "
                        "--lr overrides all of them)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS,
                   help=f"models to fit (default: all, {' '.join(MODELS)})")
    p.add_argument("--fkan-frequencies", type=int, default=None,
                   help="FKAN's K, wavenumbers per unit coordinate (default size // 8, about 1/6 of the "
                        "training grid's Nyquist wavenumber pi size / 4)")
    p.add_argument("--fkan-activation", default="gated_tanh", choices=FKAN_ACTIVATIONS,
                   help="activation of FKAN's MLP after the Fourier layer (default gated_tanh, the paper's)")
    p.add_argument("--fkan-omega", type=float, default=30.0,
                   help="FKAN's gain omega_0 inside the gated tanh (z + tanh(omega_0 z)) sigmoid(z), or the sine "
                        "sin(omega_0 z); ignored by the other activations (default 30, as in the paper)")
    p.add_argument("--fkan-widths", default="uniform", choices=FKAN_WIDTHS,
                   help="FKAN's layer widths: every layer H (uniform) or the authors' H, 2H, 2H, 2H, 4H "
                        "(widening; ignores --layers); H is matched to the parameter budget either way "
                        "(default uniform)")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES,
                   help="learning-rate schedule of every model: constant, or exp (geometric decay to lr / 10 "
                        "at the last step, the FKAN authors' 1e-4 -> 1e-5; default constant)")
    p.add_argument("--fkan-smooth-init", action=argparse.BooleanOptionalAction, default=False,
                   help="FKAN's Fourier coefficients start as randn / (sqrt(d) k^2) (default: off)")
    p.add_argument("--fkan-directions", type=int, default=None, metavar="D",
                   help="FKAN's series act on the projections onto D fixed directions, angles m pi / D "
                        "(spectral.FKAN(directions=D)); default: on the two axes, as in the paper")
    p.add_argument("--fkan-first-width", type=int, default=None, metavar="W",
                   help="FKAN's Fourier-KAN layer W wide and only its MLP width matched to the parameter budget "
                        "(with --fkan-widths uniform; default: the same width for every layer)")
    p.add_argument("--ff-features", type=int, default=256,
                   help="random Fourier features R of the Fourier-feature network (default 256)")
    p.add_argument("--ff-sigma", type=float, default=None,
                   help="std of the Fourier-feature frequencies per unit coordinate (default size / 102.4: "
                        "Tancik et al.'s 10 cycles per image width at 512)")
    p.add_argument("--seed", type=int, default=0,
                   help="torch seed set before building each model: its initial weights and the Fourier-feature "
                        "matrix B (default 0)")
    p.add_argument("--checkpoint-every", type=int, default=50, metavar="N",
                   help="write each model's checkpoint <out>/ckpt_<model>.pt every N steps and at the last "
                        "(default 50)")
    p.add_argument("--eval-every", type=int, default=50, metavar="N",
                   help="score both pixel sets every N steps (0: at the end only); the curves go to "
                        "results.json ('history': step, train PSNR, held-out PSNR) and <out>/frontier.png "
                        "(default 50)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: only on a terminal)")
    p.add_argument("--out", default=None,
                   help="output folder (default runs/inr_image; --quick: runs/inr_image-quick); rerunning the "
                        "same command resumes from its checkpoints")
    args = p.parse_args(argv)
    for name, full, quick in (("size", 256, 64), ("steps", 500, 200), ("hidden", 256, 128)):
        if getattr(args, name) is None:  # --quick sets defaults only: explicit values win
            setattr(args, name, quick if args.quick else full)
    if args.size < 32 or 512 % args.size:
        p.error(f"--size must divide 512 and be >= 32 (SSIM's 11x11 window on the half-size sub-images), "
                f"got {args.size}")
    for name, minimum in (("steps", 0), ("hidden", 1), ("layers", 1), ("checkpoint_every", 1), ("ff_features", 1)):
        if getattr(args, name) < minimum:
            p.error(f"--{name.replace('_', '-')} must be >= {minimum}, got {getattr(args, name)}")
    for name in ("lr", "ff_sigma", "fkan_omega"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.fkan_frequencies is not None and args.fkan_frequencies < 1:
        p.error(f"--fkan-frequencies must be >= 1, got {args.fkan_frequencies}")
    if args.fkan_first_width is not None and (args.fkan_first_width < 1 or args.fkan_widths == "widening"):
        p.error(f"--fkan-first-width must be >= 1 and needs --fkan-widths uniform, got {args.fkan_first_width} "
                f"with --fkan-widths {args.fkan_widths}")
    if args.fkan_directions is not None and args.fkan_directions < 2:
        p.error(f"--fkan-directions must be >= 2 (the coordinates are 2-D), got {args.fkan_directions}")
    if args.crop is not None and not (32 <= args.crop <= args.size and args.crop % 2 == 0):
        p.error(f"--crop must be even and lie in [32, --size={args.size}], got {args.crop}")
    if args.eval_every < 0:
        p.error(f"--eval-every must be >= 0, got {args.eval_every}")
    if args.fkan_frequencies is None:
        args.fkan_frequencies = max(args.size // 8, 1)
    if args.ff_sigma is None:
        args.ff_sigma = args.size / 102.4
    args.out = args.out or ("runs/inr_image-quick" if args.quick else "runs/inr_image")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    image = load_camera(args.size)
    coords = grid_coords(args.size)
    if args.crop is not None:
        lo = (args.size - args.crop) // 2
        image, coords = image[lo : lo + args.crop, lo : lo + args.crop], coords[lo : lo + args.crop, lo : lo + args.crop]
    budget = count_params(build("SIREN", args.hidden, args))
    results = {}
    for name in args.models:
        width = args.hidden if name == "SIREN" else matched_width(name, budget, args)
        torch.manual_seed(args.seed)
        model = build(name, width, args)
        lr = args.lr if args.lr is not None else DEFAULT_LR[name]
        results[name] = fit(name, model, lr, coords, image, args, out) | {"width": width}
    header = f"{'model':>15} {'width':>5} {'params':>8} {'lr':>8} {'steps':>5} {'train PSNR':>10} {'train SSIM':>10} " \
             f"{'held-out PSNR':>13} {'held-out SSIM':>13} {'time s':>7}"
    side = image.shape[0]
    where = f"central {side}x{side} of " if args.crop is not None else ""
    print(f"\n{where}camera {args.size}x{args.size}, full-batch Adam on the {(side // 2) ** 2} even pixels, "
          f"held-out: the {(side // 2) ** 2} odd ones")
    print(header + "\n" + "-" * len(header))
    for name, r in results.items():
        print(f"{name:>15} {r['width']:>5} {r['params']:>8} {r['lr']:>8.3g} {r['steps']:>5} {r['train_psnr']:>10.2f} "
              f"{r['train_ssim']:>10.4f} {r['heldout_psnr']:>13.2f} {r['heldout_ssim']:>13.4f} {r['train_seconds']:>7.1f}")
    ref = bilinear_reference(image)
    print(f"{'bilinear interp':>15} {'-':>5} {0:>8} {'-':>8} {'-':>5} {'(exact)':>10} {'(exact)':>10} "
          f"{ref['heldout_psnr']:>13.2f} {ref['heldout_ssim']:>13.4f} {'-':>7}")
    for note in ranking_notes(results, ref["heldout_psnr"], run="this quick run" if args.quick else "this run"):
        print(note)
    plot(image, results, out / "reconstructions.png")
    written = [out / "reconstructions.png"]
    if args.eval_every:
        plot_frontier(results, ref["heldout_psnr"], out / "frontier.png")
        written.append(out / "frontier.png")
    summary = {"config": vars(args), "results": {k: {a: b for a, b in v.items() if a != "prediction"}
                                                 for k, v in results.items()},
               "bilinear_reference": ref}
    atomic_write_text(json.dumps(summary, indent=2), out / "results.json")
    print(f"\nwrote {', '.join(map(str, written))} and {out / 'results.json'}")
    return summary


if __name__ == "__main__":
    main()
