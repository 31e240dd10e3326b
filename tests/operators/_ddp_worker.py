"""Training runs that tests/operators/test_training.py launches in subprocesses.

``python -m torch.distributed.run --nproc_per_node=2 _ddp_worker.py ddp OUT``
    Every rank trains the same tiny model on tensors and on a shuffled DataLoader
    (17 samples, global batch 8: the last batch has 1 sample, so rank 1 gets an empty
    share), and on tensors with gradient accumulation (batch 4, accumulate=2), and saves
    its final weights and histories to ``OUT/rank{r}.pt``.

``python _ddp_worker.py resume OUT --data tensors|loader|custom --ckpt DIR [--kill-at N]``
    One process trains with checkpoints in DIR (``resume=True``) with dropout and a
    numpy/random-based augmentation, so every RNG stream matters; with ``--kill-at N``
    it SIGKILLs itself during the N-th training forward pass. ``custom``: the loader case
    with an SGD-momentum optimiser, a OneCycleLR scheduler stepped per batch, gradient
    accumulation and an EarlyStopping callback (whose state is checkpointed).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from operators.training import EarlyStopping, Trainer  # noqa: E402

DTYPE = torch.float64


def make_data(n: int, grid: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth periodic inputs (n, 1, grid) and a nonlinear, shift-equivariant target."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(grid, dtype=DTYPE) / grid
    k = torch.arange(1, 4, dtype=DTYPE)
    coef = torch.randn(n, 3, 2, generator=g, dtype=DTYPE)
    x = (coef[..., :1] * torch.cos(2 * torch.pi * k[:, None] * t)).sum(1) + (
        coef[..., 1:] * torch.sin(2 * torch.pi * k[:, None] * t)
    ).sum(1)
    x = x[:, None]
    return x, torch.roll(x, 1, -1) + 0.3 * x**2


class KillAt(nn.Module):
    """Runs ``inner``; SIGKILLs the process on training forward number ``at`` (0: never)."""

    def __init__(self, inner: nn.Module, at: int = 0) -> None:
        super().__init__()
        self.inner, self.at, self.calls = inner, at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(x)


def make_model(dropout: float, kill_at: int = 0) -> nn.Module:
    torch.manual_seed(0)
    inner = nn.Sequential(
        nn.Conv1d(1, 8, 3, padding=1, padding_mode="circular", dtype=DTYPE),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Conv1d(8, 1, 1, dtype=DTYPE),
    )
    return KillAt(inner, kill_at)


def test_sets() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {"16": make_data(7, 16, 1), "32": make_data(5, 32, 2)}


def train_ddp_case(kind: str, checkpoint_dir: str | None = None) -> tuple[dict, list]:
    """The DDP scenario; run by each torchrun rank and in-process as the reference."""
    x, y = make_data(17, 16, 0)
    data = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True) if kind == "loader" else (x, y)
    # "accumulate": global batches of 4 (the last has 1 sample: rank 1 a placeholder) in groups of 2.
    batching = dict(batch_size=4, accumulate=2) if kind == "accumulate" else dict(batch_size=8)
    trainer = Trainer(
        make_model(0.0), epochs=3, eval_batch_size=3, lr=1e-2, grad_clip=0.5,
        seed=3, device="cpu", verbose=False, checkpoint_dir=checkpoint_dir, **batching,
    )
    history = trainer.fit(data, test_sets())
    return trainer.model.state_dict(), history


def _augment(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    # Data augmentation drawing on numpy's and Python's global RNGs.
    x = torch.stack([b[0] for b in batch])
    y = torch.stack([b[1] for b in batch])
    noise = torch.from_numpy(np.random.normal(scale=1e-2, size=tuple(x.shape)))
    return x + noise * random.uniform(0.5, 1.5), y


def train_resume_case(kind: str, checkpoint_dir: str, kill_at: int = 0) -> tuple[dict, list]:
    """Four epochs of 4 batches (20 samples, batch 6) with dropout; resumable."""
    np.random.seed(5)
    random.seed(5)
    x, y = make_data(20, 16, 0)
    if kind == "tensors":
        data: object = (x, y)
    else:
        data = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True, collate_fn=_augment)
    options: dict = dict(scheduler="step", step_size=2)
    if kind == "custom":  # 4 batches an epoch, 2 optimiser steps: 8 steps in all
        options = dict(
            optimizer=lambda params: torch.optim.SGD(params, lr=1e-2, momentum=0.9, nesterov=True),
            scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-2, total_steps=8),
            accumulate=2, callbacks=[EarlyStopping("16/loss", patience=3, min_delta=1e-3)],
        )
    trainer = Trainer(
        make_model(0.2, kill_at), epochs=4, batch_size=6, lr=1e-2, seed=11, device="cpu", verbose=False,
        checkpoint_dir=checkpoint_dir, resume=True, **options,
    )
    history = trainer.fit(data, test_sets())
    return trainer.model.state_dict(), history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ddp", "resume"])
    parser.add_argument("out")
    parser.add_argument("--data", choices=["tensors", "loader", "custom"], default="tensors")
    parser.add_argument("--ckpt")
    parser.add_argument("--kill-at", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.mode == "ddp":
        rank = int(os.environ["RANK"])
        ckpt = os.path.join(args.out, "ckpt")
        results = {kind: train_ddp_case(kind, ckpt if kind == "tensors" else None)
                   for kind in ("tensors", "loader", "accumulate")}
        torch.save(results, os.path.join(args.out, f"rank{rank}.pt"))
    else:
        torch.save(train_resume_case(args.data, args.ckpt, args.kill_at), args.out)


if __name__ == "__main__":
    main()
