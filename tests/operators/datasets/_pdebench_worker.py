"""A torchrun job that tests/operators/datasets/test_pdebench.py launches.

``python -m torch.distributed.run --standalone --nproc_per_node=2 _pdebench_worker.py FILE OUT``

Every rank opens the PDEBench file FILE and, with every item read logged to
``OUT/reads-rank{r}-pid{p}.txt`` (one line ``phase index`` per item, from whichever
process read it: the rank itself or one of its DataLoader workers):

* ``sampler``: one epoch of ``DataLoader(num_workers=2, batch_size=3)`` driven by
  ``DistributedSampler(shuffle=True, seed=0)``; the batches go to ``OUT/rank{r}.pt``;
* ``trainer``: one epoch of :class:`operators.Trainer` over a shuffled
  ``DataLoader(batch_size=4, num_workers=2)`` (the Trainer shards it itself).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from operators import FNO, Trainer  # noqa: E402
from operators.datasets.pdebench import PDEBench  # noqa: E402


class LoggedPDEBench(PDEBench):
    """PDEBench that appends ``phase index`` to a per-rank, per-process file for every item read."""

    def __init__(self, path: str, out: Path) -> None:
        super().__init__(path, history=2, horizon=1)
        self.out, self.phase = out, "init"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        name = f"reads-rank{os.environ['RANK']}-pid{os.getpid()}.txt"
        with open(self.out / name, "a") as fh:
            fh.write(f"{self.phase} {int(index)}\n")
        return super().__getitem__(index)


def main(path: str, out: str) -> None:
    torch.set_num_threads(1)
    out_dir = Path(out)
    data = LoggedPDEBench(path, out_dir)
    trainer = Trainer(FNO(data.in_channels, data.out_channels, (4,), hidden_channels=8, n_layers=2),
                      epochs=1, lr=1e-3, device="cpu", verbose=False)  # joins the gloo group
    rank = trainer.dist.rank
    data.phase = "sampler"
    sampler = DistributedSampler(data, shuffle=True, seed=0)  # rank and world size from the group
    batches = [(x, y) for x, y in DataLoader(data, batch_size=3, sampler=sampler, num_workers=2)]
    torch.save({"inputs": torch.cat([b[0] for b in batches]), "targets": torch.cat([b[1] for b in batches])},
               out_dir / f"rank{rank}.pt")
    data.phase = "trainer"
    history = trainer.fit(DataLoader(data, batch_size=4, shuffle=True, num_workers=2))
    if rank == 0:
        torch.save(history, out_dir / "history.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
