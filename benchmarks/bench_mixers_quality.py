"""Suite ``mixers-quality``: the same small model built with each mixer and with attention, trained on three tasks.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``Q`` classes.

Tasks (all data generated here or shipped in a registry package, seeded):

- ``mqar``: multi-query associative recall. 8 key-value pairs (16 keys, 16 values),
  then 8 queries (keys from the pairs, shuffled); the model predicts the value at
  every query position (``N = 24``, per-token output, 16 classes).
- ``listops``: ListOps-style nested expressions over digits with MAX, MIN, MED and SM
  (sum mod 10), depth up to 4, 2-4 arguments, at most 64 tokens, right-padded with a
  mask; the label is the value (10 classes).
- ``digits``: scikit-learn's 8x8 digits (1797 images), pixels 0..16 read as a 64-token
  sequence (row-major); AFF sees the 8 x 8 grid (10 classes).

Every model is :class:`spectral.mixers.SequenceClassifier` with ``dim = 64``, ``depth = 2``,
``mlp_ratio = 2`` and learned positions; only the mixer differs. ``attention`` is
multi-head self-attention (4 heads, q/k/v and output projections, SDPA with the key
padding mask), bidirectional like the FFT mixers except the causal one. The causal
mixer pools on the last real token (it sees the whole sequence only there), the
others on the mean. AdamW (lr 2e-3, weight decay 0.01, cosine decay), batch 64, the
same number of steps for every model of a task; one CPU thread (these models are far
too small for intra-op parallelism to pay, and 2 threads on a busy machine can run
several times slower). Rows: held-out accuracy (%) and
training wall time (s) of each mixer against attention; in both, a ratio above 1 means
the mixer is better (accuracy: ``ours / attention``, higher is better; time:
``attention / ours``, lower is better).

Each finished (task, model) result is stored atomically under ``runs/mixers-quality/``,
keyed by the configuration and a hash of this file and of every library module the
models import (``spectral.mixers`` and, transitively, ``spectral.fft``,
``spectral.complex``, ``spectral.modes``, ...); a rerun resumes from them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import nn

from benchmarks._harness import BenchContext, Row, imported_sources
from operators.experiments import progress_bar
from spectral.mixers import (
    AFFMixer,
    AFNOMixer,
    CausalFourierMixer,
    FFTNetMixer,
    FNetMixer,
    GlobalFilterMixer,
    SequenceClassifier,
)

DIM, DEPTH, HEADS, BATCH, LR = 64, 2, 4, 64, 2e-3
_ROOT = Path(__file__).resolve().parent.parent  # repository root: library modules are resolved under it
_MODEL_MODULES = ("spectral.mixers",)  # what the benchmarked models are built from
MODELS = ("attention", "fnet", "global-filter", "fftnet", "afno", "aff", "causal")
STEPS = {"mqar": 1000, "listops": 1000, "digits": 600}
QUICK_STEPS = {"mqar": 60, "listops": 60, "digits": 40}


class _Attention(nn.Module):
    """Multi-head self-attention with the mixers' interface (baseline): ``(B, N, D) -> (B, N, D)``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = nnf.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class _ImageMixer(nn.Module):
    """AFF on the tokens laid out as an ``(H, W)`` grid: ``(B, H W, D) <-> (B, D, H, W)``."""

    def __init__(self, dim: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = grid
        self.mixer = AFFMixer(dim, num_blocks=4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        h, w = self.grid if self.grid[0] * self.grid[1] == n else (1, n)
        img = x.transpose(1, 2).reshape(b, d, h, w)
        m = None if mask is None else mask.view(b, h, w)
        return self.mixer(img, m).reshape(b, d, n).transpose(1, 2)


def mixer_factory(name: str, max_len: int, grid: tuple[int, int]):
    return {
        "attention": partial(_Attention, DIM, HEADS),
        "fnet": FNetMixer,
        "global-filter": partial(GlobalFilterMixer, DIM, max_len),
        "fftnet": partial(FFTNetMixer, DIM, max_len, num_heads=HEADS),
        "afno": partial(AFNOMixer, DIM, num_blocks=4),
        "aff": partial(_ImageMixer, DIM, grid),
        "causal": partial(CausalFourierMixer, DIM, max_len),
    }[name]


# ---------------------------------------------------------------- data


def make_mqar(count: int, rng: np.random.Generator, pairs: int = 8, queries: int = 8, keys: int = 16, values: int = 16):
    """tokens (count, 2P + Q) in [0, keys + values), targets (count, 2P + Q) with -100 off the queries."""
    n = 2 * pairs + queries
    tokens = np.zeros((count, n), np.int64)
    targets = np.full((count, n), -100, np.int64)
    for i in range(count):
        k = rng.choice(keys, pairs, replace=False)
        v = rng.integers(0, values, pairs)
        tokens[i, 0 : 2 * pairs : 2], tokens[i, 1 : 2 * pairs : 2] = k, keys + v
        order = rng.permutation(pairs)[:queries]
        tokens[i, 2 * pairs :], targets[i, 2 * pairs :] = k[order], v[order]
    return tokens, targets, None, keys + values, values


_OPS = {"MAX": max, "MIN": min, "MED": lambda *a: sorted(a)[(len(a) - 1) // 2], "SM": lambda *a: sum(a) % 10}
_OP_TOKEN = {op: 10 + i for i, op in enumerate(_OPS)}  # digits 0..9, ops 10..13, "]" 14, pad 15


def _expression(rng: random.Random, depth: int) -> tuple[list[int], int]:
    """Tokens and value of a random expression (MED is the lower median)."""
    if depth == 0 or rng.random() < 0.25:
        d = rng.randrange(10)
        return [d], d
    op = rng.choice(list(_OPS))
    toks, vals = [_OP_TOKEN[op]], []
    for _ in range(rng.randint(2, 4)):
        t, v = _expression(rng, depth - 1)
        toks += t
        vals.append(v)
    return toks + [14], _OPS[op](*vals)


def make_listops(count: int, rng: np.random.Generator, max_len: int = 64, depth: int = 4):
    tokens = np.full((count, max_len), 15, np.int64)
    mask = np.zeros((count, max_len), bool)
    labels = np.zeros(count, np.int64)
    py_rng = random.Random(int(rng.integers(2**31)))
    i = 0
    while i < count:
        toks, val = _expression(py_rng, depth)
        if len(toks) < 5 or len(toks) > max_len:
            continue
        tokens[i, : len(toks)], mask[i, : len(toks)], labels[i] = toks, True, val
        i += 1
    return tokens, labels, mask, 16, 10


def make_digits(rng: np.random.Generator):
    from sklearn.datasets import load_digits

    d = load_digits()
    order = rng.permutation(len(d.target))
    tokens = d.images.reshape(len(d.target), 64).astype(np.int64)[order]
    return tokens, d.target.astype(np.int64)[order], None, 17, 10


def task_data(task: str, quick: bool, seed: int):
    rng = np.random.default_rng(seed)
    if task == "digits":
        tokens, labels, mask, vocab, classes = make_digits(rng)
        split = 1400
        parts = (tokens[:split], labels[:split], None), (tokens[split:], labels[split:], None)
        return parts, vocab, classes, (8, 8)
    train_n, test_n = (2000, 500) if quick else (10000, 1000)
    make = make_mqar if task == "mqar" else make_listops
    tokens, labels, mask, vocab, classes = make(train_n + test_n, rng)
    cut = lambda a, s: None if a is None else a[s]  # noqa: E731
    parts = tuple((tokens[s], labels[s], cut(mask, s)) for s in (slice(0, train_n), slice(train_n, None)))
    return parts, vocab, classes, (1, tokens.shape[1])


# ---------------------------------------------------------------- training


def _tensors(part, device):
    return tuple(None if a is None else torch.as_tensor(a, device=device) for a in part)


def evaluate(model, part, device) -> float:
    tokens, labels, mask = _tensors(part, device)
    model.eval()
    with torch.no_grad():
        logits = torch.cat(
            [
                model(tokens[i : i + 256], None if mask is None else mask[i : i + 256])
                for i in range(0, len(tokens), 256)
            ]
        )
    model.train()
    keep = labels != -100
    return float((logits.argmax(-1)[keep] == labels[keep]).float().mean()) * 100


def train_one(task: str, name: str, data, ctx: BenchContext) -> dict:
    (train, test), vocab, classes, grid = data
    max_len = train[0].shape[1]
    torch.manual_seed(ctx.seed)
    per_token = task == "mqar"
    pool = "none" if per_token else ("last" if name == "causal" else "mean")
    model = SequenceClassifier(
        vocab,
        classes,
        mixer_factory(name, max_len, grid),
        dim=DIM,
        depth=DEPTH,
        max_len=max_len,
        pool=pool,
        mlp_ratio=2.0,
    ).to(ctx.device)
    steps = (QUICK_STEPS if ctx.quick else STEPS)[task]
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    tokens, labels, mask = _tensors(train, ctx.device)
    gen = torch.Generator().manual_seed(ctx.seed)
    start = time.perf_counter()
    for _ in progress_bar(range(steps), desc=f"{task}/{name}", leave=False):
        idx = torch.randint(0, len(tokens), (BATCH,), generator=gen).to(ctx.device)
        logits = model(tokens[idx], None if mask is None else mask[idx])
        loss = nnf.cross_entropy(logits.reshape(-1, classes), labels[idx].reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    seconds = time.perf_counter() - start
    return {
        "task": task,
        "model": name,
        "test_acc": evaluate(model, test, ctx.device),
        "train_acc": evaluate(model, train, ctx.device),
        "train_seconds": seconds,
        "steps": steps,
        "params": sum(p.numel() for p in model.parameters()),
        "final_loss": loss.item(),
    }


def _cache_path(task: str, name: str, ctx: BenchContext) -> Path:
    h = hashlib.sha256()
    sources = {**imported_sources(_MODEL_MODULES, _ROOT), "bench_mixers_quality.py": Path(__file__).resolve()}
    for module, src in sources.items():
        h.update(module.encode() + b"\0" + src.read_bytes() + b"\0")
    h.update(json.dumps([task, name, ctx.quick, ctx.seed, str(ctx.device), torch.__version__]).encode())
    return Path("runs") / "mixers-quality" / f"{task}-{name}-{h.hexdigest()[:12]}.json"


def _write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def run(ctx: BenchContext) -> list[Row]:
    threads = torch.get_num_threads()
    if ctx.device.type == "cpu":
        torch.set_num_threads(1)  # tiny models: OpenMP synchronisation costs more than it gains
    try:
        results = _train_all(ctx)
    finally:
        torch.set_num_threads(threads)
    ctx.extra["quality"] = results
    report(results)
    rows = []
    for task in STEPS:
        att = next(r for r in results if r["task"] == task and r["model"] == "attention")
        for r in (r for r in results if r["task"] == task and r["model"] != "attention"):
            params = {"task": task, "steps": r["steps"], "params": r["params"], "dim": DIM, "depth": DEPTH}
            rows.append(
                Row(
                    "mixers-quality",
                    f"{task}-{r['model']}",
                    "test-acc",
                    r["model"],
                    "attention",
                    r["test_acc"],
                    att["test_acc"],
                    "%",
                    params,
                    higher_is_better=True,
                )
            )
            rows.append(
                Row(
                    "mixers-quality",
                    f"{task}-{r['model']}",
                    "train-time",
                    r["model"],
                    "attention",
                    r["train_seconds"],
                    att["train_seconds"],
                    "s",
                    params,
                )
            )
    return rows


def _train_all(ctx: BenchContext) -> list[dict]:
    results = []
    for task in STEPS:
        data = task_data(task, ctx.quick, ctx.seed)
        for name in MODELS:
            path = _cache_path(task, name, ctx)
            if path.exists():
                results.append(json.loads(path.read_text()))
                continue
            res = train_one(task, name, data, ctx)
            _write_atomic(path, res)
            results.append(res)
    return results


def report(results: list[dict]) -> None:
    """Accuracy / time table per task and the gap of the best FFT mixer to attention."""
    print(f"\n== mixers-quality: test accuracy % (train s) [params], dim={DIM}, depth={DEPTH} ==")
    tasks = list(STEPS)
    print(f"{'model':14s}" + "".join(f"{t:>28s}" for t in tasks))
    for name in MODELS:
        cells = []
        for t in tasks:
            r = next(r for r in results if r["task"] == t and r["model"] == name)
            cells.append(f"{r['test_acc']:6.1f} ({r['train_seconds']:5.1f}s) [{r['params'] // 1000}k]")
        print(f"{name:14s}" + "".join(f"{c:>28s}" for c in cells))
    for t in tasks:
        rs = [r for r in results if r["task"] == t]
        att = next(r["test_acc"] for r in rs if r["model"] == "attention")
        best = max((r for r in rs if r["model"] != "attention"), key=lambda r: r["test_acc"])
        ranking = " > ".join(r["model"] for r in sorted(rs, key=lambda r: -r["test_acc"]))
        print(
            f"{t}: best FFT mixer {best['model']} {best['test_acc']:.1f}% vs attention {att:.1f}% "
            f"(gap {att - best['test_acc']:+.1f} points); ranking {ranking}"
        )
