"""Forecasting two real series with FAN Transformers and a Fourier-head forecaster.

Series shipped inside statsmodels: weekly Mauna Loa CO2 (``statsmodels.datasets.co2``,
1958-2001; missing weeks linearly interpolated) and yearly sunspot numbers
(``statsmodels.datasets.sunspots``, 1700-2008). Each series is split chronologically
70/15/15 into train/validation/test; sliding windows map a context of ``L`` values to
the next ``H`` (a window belongs to the split that holds its targets). Values are
taken relative to the last context value and scaled by the training series' std.

Models (one small pre-norm Transformer over patches of the context, the same size for all):

- Transformer: ``nn.MultiheadAttention`` and a GELU feed-forward block, point forecasts (MSE).
- Transformer + FAN FFN: the feed-forward block's first layer is a :class:`~spectral.fan.FANLayer`.
- FANformer: the attention is :class:`~spectral.fan_attention.FANAttention`.
- Linear head / Fourier head: the Transformer's features go to a categorical
  distribution over ``--bins`` value bins per horizon step (``nn.Linear`` vs
  :class:`~spectral.fourier_head.FourierHead`), trained with NLL; the point forecast
  is the distribution's mean.

Reference rows: the last value repeated, and the seasonal naive forecast (the value
one season earlier: 52 weeks, 11 years). The table gives test MSE and MAE in the
series' units, mean over seeds; the best validation epoch is used. Finished runs are
stored in ``<out>/results.json`` (atomic writes) and skipped on rerun; a rerun with
other settings first moves that file to ``<out>/results-<config hash>.json`` (and
resumes from such a file of its own settings), so no finished run is lost. ``--quick``
writes to its own folder, ``runs/forecast-quick``.

    python examples/forecast.py --quick      # 1 seed, 40 epochs, about 2 CPU-minutes
    python examples/forecast.py              # 3 seeds, 60 epochs, about 9 CPU-minutes

Both print, per series, whether the Fourier head is ranked against the linear head as in the
full run, quoting the full run's figures. Measured results, commands and the plot: the
documentation page docs/guides/examples/forecast.rst.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from operators.evaluation import ranking_summary
from operators.experiments import check_int_option, check_number_option, load_runs, progress_bar, save_json
from spectral.fan import FANLayer
from spectral.fan_attention import FANAttention
from spectral.fourier_head import FourierHead

# name -> (context L, horizon H, patch, season)
SERIES = {"co2": (156, 52, 13, 52), "sunspots": (33, 11, 3, 11)}
MODELS = ("Transformer", "Transformer + FAN FFN", "FANformer", "Linear head (bins)", "Fourier head (bins)")
HEADS = ("Linear head (bins)", "Fourier head (bins)")
#: Test MSE of the two distributional heads in the full setting (docs/guides/examples/forecast.rst).
FULL_MSE = {"co2": {HEADS[0]: 0.5018, HEADS[1]: 0.6363},
            "sunspots": {HEADS[0]: 1299, HEADS[1]: 1511}}
FULL_COMMAND = "python examples/forecast.py"


def load_series(name: str) -> np.ndarray:
    import statsmodels.api as sm

    if name == "co2":
        return sm.datasets.co2.load_pandas().data["co2"].interpolate(limit_direction="both").to_numpy(np.float64)
    return sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float64)


def time_axis(name: str) -> np.ndarray:
    """Decimal years of the samples of :func:`load_series`."""
    import statsmodels.api as sm

    if name == "co2":
        index = sm.datasets.co2.load_pandas().data.index
        return (index.year + (index.day_of_year - 1) / 365.25).to_numpy(np.float64)
    return sm.datasets.sunspots.load_pandas().data["YEAR"].to_numpy(np.float64)


def windows(series: np.ndarray, start: int, stop: int, ctx: int, horizon: int):
    """Context/target pairs whose targets lie in ``series[start:stop]``: (W, L), (W, H)."""
    origins = np.arange(max(start, ctx), stop - horizon + 1)  # index of the first target
    x = np.stack([series[o - ctx:o] for o in origins])
    y = np.stack([series[o:o + horizon] for o in origins])
    return x, y


class Block(nn.Module):
    """Pre-norm Transformer block; ``fan_attention`` / ``fan_ffn`` swap in the FAN parts."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float, fan_attention: bool, fan_ffn: bool):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = FANAttention(dim, heads, dropout=dropout) if fan_attention \
            else nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        first = FANLayer(dim, hidden) if fan_ffn else nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        self.ffn = nn.Sequential(first, nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, h, need_weights=False)[0])
        return x + self.drop(self.ffn(self.norm2(x)))


class Forecaster(nn.Module):
    """Patches -> Transformer -> flattened features -> H point forecasts or (H, bins) log-probabilities."""

    def __init__(self, ctx: int, horizon: int, patch: int, kind: str, args):
        super().__init__()
        d, tokens = args.dim, ctx // patch
        self.patch, self.horizon, self.kind = patch, horizon, kind
        self.embed = nn.Linear(patch, d)
        self.pos = nn.Parameter(torch.randn(tokens, d) * 0.02)
        self.blocks = nn.ModuleList(
            Block(d, args.heads, 2 * d, args.dropout, kind == "FANformer", kind == "Transformer + FAN FFN")
            for _ in range(args.layers)
        )
        self.norm = nn.LayerNorm(d)
        if kind.endswith("(bins)"):  # per-step features through a bottleneck, then the categorical head
            feat = 8
            self.readout = nn.Sequential(nn.Linear(tokens * d, 2 * d), nn.GELU(), nn.Linear(2 * d, horizon * feat))
            self.head = FourierHead(feat, args.bins, args.frequencies) if kind.startswith("Fourier") \
                else nn.Sequential(nn.Linear(feat, args.bins), nn.LogSoftmax(dim=-1))
        else:
            self.readout, self.head = nn.Linear(tokens * d, horizon), None

    def forward(self, x):  # x: (B, L) -> (B, H) or (B, H, bins) log-probabilities
        h = self.embed(rearrange(x, "b (t p) -> b t p", p=self.patch)) + self.pos
        for block in self.blocks:
            h = block(h)
        out = self.readout(rearrange(self.norm(h), "b t d -> b (t d)"))
        if self.head is None:
            return out
        return self.head(rearrange(out, "b (h f) -> b h f", h=self.horizon))


def fit_and_forecast(series_name: str, kind: str, seed: int, args) -> dict:
    ctx, horizon, patch, _ = SERIES[series_name]
    s = load_series(series_name)
    n_train, n_val = int(0.7 * len(s)), int(0.15 * len(s))
    scale = float(s[:n_train].std())
    splits = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(s))}
    data = {}
    for split, (a, b) in splits.items():
        x, y = windows(s, a, b, ctx, horizon)
        last = x[:, -1:]
        data[split] = (torch.tensor((x - last) / scale, dtype=torch.float32),
                       torch.tensor((y - last) / scale, dtype=torch.float32), last[:, 0])
    r = 1.2 * float(data["train"][1].abs().max())  # bins cover [-r, r] in scaled units
    centers = torch.linspace(-r, r, 2 * args.bins + 1)[1::2]
    torch.manual_seed(seed)
    model = Forecaster(ctx, horizon, patch, kind, args)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)

    def predict(x):
        out = model(x)
        return out if model.head is None else out.exp() @ centers  # mean of the predicted distribution

    def loss_fn(x, y):
        out = model(x)
        if model.head is None:
            return F.mse_loss(out, y)
        target = ((y.clamp(-r, r) + r) / (2 * r) * args.bins).long().clamp(0, args.bins - 1)
        return F.nll_loss(rearrange(out, "b h k -> (b h) k"), target.flatten())

    best = (float("inf"), None)
    x_tr, y_tr, _ = data["train"]
    for _ in progress_bar(range(args.epochs), desc=f"{series_name:>8} {kind:<21} seed {seed}", leave=False,
                          progress=args.progress):
        model.train()
        for idx in torch.randperm(len(x_tr), generator=gen).split(args.batch_size):
            loss = loss_fn(x_tr[idx], y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = F.mse_loss(predict(data["val"][0]), data["val"][1]).item()
        if val < best[0]:
            best = (val, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    model.eval()
    x_te, y_te, last = data["test"]
    with torch.no_grad():
        pred = predict(x_te).double().numpy() * scale + last[:, None]
    truth = y_te.double().numpy() * scale + last[:, None]
    return {"mse": float(np.mean((pred - truth) ** 2)), "mae": float(np.mean(np.abs(pred - truth))),
            "first_forecast": pred[0].tolist(), "params": sum(p.numel() for p in model.parameters())}


def naive_rows(series_name: str) -> dict:
    ctx, horizon, _, season = SERIES[series_name]
    s = load_series(series_name)
    start = int(0.7 * len(s)) + int(0.15 * len(s))
    x, y = windows(s, start, len(s), ctx, horizon)
    last = np.repeat(x[:, -1:], horizon, axis=1)
    seasonal = np.stack([x[:, ctx - season + (h % season)] for h in range(horizon)], axis=1)
    return {name: {"mse": float(np.mean((p - y) ** 2)), "mae": float(np.mean(np.abs(p - y))), "first": p[0].tolist()}
            for name, p in (("last value", last), ("seasonal naive", seasonal))}


def plot(results: dict, naive: dict, seed: int, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = {"co2": "CO2 (ppm, weekly)", "sunspots": "sunspot number (yearly)"}
    fig, axes = plt.subplots(len(args.series), 1, figsize=(11, 3.2 * len(args.series)), squeeze=False)
    for ax, name in zip(axes[:, 0], args.series):
        ctx, horizon, _, _ = SERIES[name]
        s = load_series(name)
        start = int(0.7 * len(s)) + int(0.15 * len(s))
        origin = max(start, ctx)
        t = time_axis(name)[origin - ctx:origin + horizon]
        ax.plot(t, s[origin - ctx:origin + horizon], color="k", lw=1.3, label="observed")
        ax.axvline((t[ctx - 1] + t[ctx]) / 2, color="0.6", ls=":", label="forecast origin")
        ax.plot(t[ctx:], naive[name]["seasonal naive"]["first"], color="0.5", lw=1, ls="--", label="seasonal naive")
        for kind in MODELS:
            ax.plot(t[ctx:], results[f"{name}|{kind}|{seed}"]["first_forecast"], lw=1, label=kind)
        ax.set_title(f"{name}: the first test window ({ctx} context values, then {horizon} forecast steps from "
                     f"{t[ctx]:.1f}); models of seed {seed}", fontsize=9)
        ax.set_xlabel("year", fontsize=8)
        ax.set_ylabel(units.get(name, name), fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def head_ranking(rows: list[dict], quick: bool) -> list[str]:
    """Per series, whether the rows rank the Fourier and linear heads as the full run did (:data:`FULL_MSE`).

    ``rows`` are :func:`main`'s table rows (``series``, ``model``, ``mse``); one paragraph of
    :func:`operators.evaluation.ranking_summary` per series that has both heads, quoting
    the full run's figures and :data:`FULL_COMMAND`.
    """
    mse = {(r["series"], r["model"]): r["mse"] for r in rows}
    return [ranking_summary({h: mse[name, h] for h in HEADS}, reference, metric=f"{name} test MSE",
                            command=FULL_COMMAND, run="this quick run" if quick else "this run")
            for name, reference in FULL_MSE.items() if all((name, h) in mse for h in HEADS)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 seed and 40 epochs, output runs/forecast-quick (explicit options win)")
    p.add_argument("--series", nargs="+", choices=sorted(SERIES), default=list(SERIES),
                   help=f"series to forecast (default: both, {' '.join(SERIES)}; co2: context {SERIES['co2'][0]} weeks, "
                        f"horizon {SERIES['co2'][1]}; sunspots: context {SERIES['sunspots'][0]} years, horizon "
                        f"{SERIES['sunspots'][1]})")
    p.add_argument("--seeds", type=int, help="seeds per model and series, 0 .. SEEDS - 1 (default 3; --quick 1)")
    p.add_argument("--epochs", type=int,
                   help="training epochs; the best validation epoch is kept (default 60; --quick 40)")
    p.add_argument("--dim", type=int, default=32,
                   help="token width of every model; feed-forward hidden width 2 x dim (default 32)")
    p.add_argument("--heads", type=int, default=4, help="attention heads; must divide --dim (default 4)")
    p.add_argument("--layers", type=int, default=2, help="Transformer blocks of every model (default 2)")
    p.add_argument("--dropout", type=float, default=0.1,
                   help="dropout in attention and feed-forward blocks, in [0, 1) (default 0.1)")
    p.add_argument("--bins", type=int, default=50,
                   help="value bins of the distributional heads (linear and Fourier), >= 2 (default 50)")
    p.add_argument("--frequencies", type=int, default=12, help="Fourier head frequencies (default 12)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate, weight decay 1e-4 (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=32, help="training windows per batch (default 32)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: small models run best on 1)")
    p.add_argument("--out", type=Path, help="output folder (default runs/forecast; --quick: runs/forecast-quick)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: only on a terminal)")
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.epochs is None:
        args.epochs = 40 if args.quick else 60
    if args.out is None:
        args.out = Path("runs/forecast-quick" if args.quick else "runs/forecast")
    for name, low in (("seeds", 1), ("epochs", 1), ("dim", 1), ("heads", 1), ("layers", 1), ("bins", 2),
                      ("frequencies", 1), ("batch_size", 1), ("threads", 1)):
        check_int_option(p, args, name, low)
    if args.dim % args.heads:
        p.error(f"--dim must be divisible by --heads, got --dim {args.dim} and --heads {args.heads}")
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must lie in [0, 1), got {args.dropout}")
    check_number_option(p, args, "lr")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out must be a folder, got the file {args.out}")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    config = {k: getattr(args, k) for k in ("epochs", "dim", "heads", "layers", "dropout", "bins", "frequencies",
                                            "lr", "batch_size")}
    store = args.out / "results.json"
    results = load_runs(store, config)
    seeds = list(range(args.seeds))
    jobs = [(n, k, s) for n in args.series for s in seeds for k in MODELS if f"{n}|{k}|{s}" not in results]
    start = time.time()
    for name, kind, seed in progress_bar(jobs, desc="trainings", progress=args.progress):
        results[f"{name}|{kind}|{seed}"] = fit_and_forecast(name, kind, seed, args)
        save_json(store, {"config": config, "runs": results})
    naive = {name: naive_rows(name) for name in args.series}
    rows = []
    for name in args.series:
        for ref, r in naive[name].items():
            rows.append({"series": name, "model": ref, "params": 0, "mse": r["mse"], "mae": r["mae"]})
        for kind in MODELS:
            runs = [results[f"{name}|{kind}|{s}"] for s in seeds]
            rows.append({"series": name, "model": kind, "params": runs[0]["params"],
                         "mse": float(np.mean([r["mse"] for r in runs])), "mae": float(np.mean([r["mae"] for r in runs]))})
    print(f"\nForecasting, test split ({len(seeds)} seed(s), {args.epochs} epochs, {time.time() - start:.0f} s)")
    print(f"{'series':<9} {'model':<22} {'params':>7} {'MSE':>10} {'MAE':>8}")
    for r in rows:
        print(f"{r['series']:<9} {r['model']:<22} {r['params']:>7d} {r['mse']:>10.4g} {r['mae']:>8.4g}")
    for text in head_ranking(rows, args.quick):
        print("\n" + text)
    plot(results, naive, seeds[0], args, args.out / "forecast.png")
    print(f"plot: {args.out / 'forecast.png'}")
    return rows


if __name__ == "__main__":
    main()
