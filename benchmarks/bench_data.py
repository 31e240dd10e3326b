"""Suite ``data``: training from a PDEBench file larger than the memory a process may use.

A PDEBench-style scalar file (``tensor`` ``(n, 21, 64, 64)`` float32, contiguous, as
PDEBench writes it) is written to a temporary folder and deleted afterwards. The
README's FNO (``FNO(1, 1, (12, 12), hidden_channels=32, n_layers=4)``) trains on
``PDEBench(file)`` items (one step -> the next) with the :class:`operators.Trainer`:

* ``peak-rss``: a subprocess whose data memory is capped with ``RLIMIT_DATA`` (heap and
  anonymous mappings: every array and tensor; inherited by its DataLoader workers) trains
  one epoch over random items spread through the whole file with ``num_workers=2``; the
  row reports its peak resident set (``ru_maxrss``) against the cap (ratio > 1: under
  it), and the params say whether reading the whole file into memory fails under the
  same cap. The file's pages are dropped from the page cache first
  (``posix_fadvise(DONTNEED)``), so items come from the disk. The full run writes a
  file 4x the cap (6 GiB against 1.5 GiB) and also trains from a small file: peak RSS
  against file size.
* ``samples/s``: one Trainer epoch (batch 16) over random items of the largest file,
  from in-memory tensors (the baseline) and from the lazy loader with 0 and 2 workers,
  the file's pages dropped before each epoch (higher is better; the best of 5
  alternating rounds, 1 with ``--quick``). The workers need CPU time of their own: on a
  machine with 2 cores run ``python -m benchmarks data --threads 1``, or the model's
  two compute threads and the workers oversubscribe the cores.

Standalone, with other sizes: ``python -m benchmarks.bench_data --cap-gb 1 --file-gb 4``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._harness import BenchContext, Row, default_output_path, machine_info, print_table, rows_to_dicts, write_json

__all__ = ["run", "write_pdebench_file", "main"]

GiB = 2**30
GRID, STEPS, BATCH = 64, 21, 16
ROOT = Path(__file__).resolve().parents[1]


def write_pdebench_file(path: Path, size_bytes: int, *, seed: int = 0) -> int:
    """A 1-D-advection-style PDEBench file of about ``size_bytes``: ``tensor`` (n, 21, 64, 64) float32.

    Smooth travelling waves (a random low-frequency field shifted one point per step),
    written in blocks of 64 samples; ``x-coordinate``/``y-coordinate``/``t-coordinate``
    as PDEBench stores them. Returns the number of samples.
    """
    import h5py

    per_sample = STEPS * GRID * GRID * 4
    n = max(size_bytes // per_sample, 64)
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(GRID, 1 / GRID)
    low = (np.abs(k[:, None]) < 5) & (np.abs(k[None, :]) < 5)
    spec = (rng.standard_normal((64, GRID, GRID)) + 1j * rng.standard_normal((64, GRID, GRID))) * low
    base = np.fft.ifft2(spec).real.astype(np.float32)
    block = np.stack([np.roll(base, t, axis=-1) for t in range(STEPS)], axis=1)  # (64, T, H, W)
    block /= np.abs(block).max()
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("tensor", shape=(n, STEPS, GRID, GRID), dtype=np.float32)
        for lo in range(0, n, 64):
            hi = min(lo + 64, n)
            ds[lo:hi] = block[: hi - lo] * np.float32(1 + lo / n)
        f["x-coordinate"] = np.linspace(0, 1, GRID, dtype=np.float32)
        f["y-coordinate"] = np.linspace(0, 1, GRID, dtype=np.float32)
        f["t-coordinate"] = np.linspace(0, 2, STEPS + 1, dtype=np.float32)
    _drop_page_cache(path)
    return n


def _drop_page_cache(path: Path) -> None:
    """Flush ``path`` and drop its pages from the page cache (Linux; no-op elsewhere)."""
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _readme_fno() -> torch.nn.Module:
    from operators import FNO

    torch.manual_seed(0)
    return FNO(1, 1, (12, 12), hidden_channels=32, n_layers=4)


def _items(n_items: int, count: int, seed: int) -> list[int]:
    """``count`` distinct item indices spread over the whole file."""
    return np.random.default_rng(seed).choice(n_items, size=count, replace=False).tolist()


def _fit_seconds(train: object) -> float:
    """Wall seconds of one Trainer epoch (batch 16, shuffled) over ``train``."""
    from operators import Trainer

    trainer = Trainer(_readme_fno(), epochs=1, batch_size=BATCH, lr=1e-3, device="cpu", verbose=False)
    start = time.perf_counter()
    trainer.fit(train)
    return time.perf_counter() - start


def _throughput(path: Path, count: int, rounds: int) -> dict[str, float]:
    """Samples/s of a Trainer epoch over ``count`` items: in-memory tensors, lazy with 0 and 2 workers."""
    from torch.utils.data import DataLoader, Subset

    from operators.datasets.pdebench import PDEBench

    data = PDEBench(path)
    picked = _items(len(data), count, seed=1)
    pairs = [data[i] for i in picked]
    tensors = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))
    subset = Subset(data, picked)
    cases = {
        "in-memory": lambda: tensors,
        "lazy-0-workers": lambda: DataLoader(subset, batch_size=BATCH, shuffle=True),
        "lazy-2-workers": lambda: DataLoader(subset, batch_size=BATCH, shuffle=True, num_workers=2),
    }
    _fit_seconds((tensors[0][:BATCH], tensors[1][:BATCH]))  # warm-up: FFT plans, allocator
    best = dict.fromkeys(cases, 0.0)
    for _ in range(rounds):
        for name, make in cases.items():
            _drop_page_cache(path)
            best[name] = max(best[name], count / _fit_seconds(make()))
    return best


def _child(path: str, samples: int, cap: int, threads: int) -> dict:
    """In the capped subprocess: try an in-memory load, then train one epoch from the file with 2 workers."""
    import h5py
    from torch.utils.data import DataLoader, Subset

    from operators import Trainer
    from operators.datasets.pdebench import PDEBench

    torch.set_num_threads(threads)
    size = os.path.getsize(path)
    result = {"file_bytes": size, "cap_bytes": cap, "in_memory_load": "not tried (file under the cap)"}
    if size > cap:
        try:
            with h5py.File(path, "r") as f:
                f["tensor"][...]
            result["in_memory_load"] = "succeeded"
        except MemoryError:
            result["in_memory_load"] = "MemoryError"
    data = PDEBench(path)
    loader = DataLoader(Subset(data, _items(len(data), samples, seed=2)), batch_size=BATCH, shuffle=True, num_workers=2)
    start = time.perf_counter()
    history = Trainer(_readme_fno(), epochs=1, lr=1e-3, device="cpu", verbose=False).fit(loader)
    result.update(
        items=len(data), samples=samples, seconds=time.perf_counter() - start, train_loss=history[-1]["train_loss"],
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        worker_peak_rss_bytes=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    )
    return result


def _capped_training(path: Path, samples: int, cap: int) -> dict:
    """Run :func:`_child` in a fresh interpreter under ``RLIMIT_DATA = cap``; its JSON result."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    threads = str(torch.get_num_threads())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads}
    cmd = [sys.executable, "-m", "benchmarks.bench_data", "--child", str(path), "--samples", str(samples),
           "--cap-bytes", str(cap), "--threads", threads]
    _drop_page_cache(path)
    done = subprocess.run(cmd, cwd=ROOT, env=env, preexec_fn=limit, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"the capped training process failed (rc {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(ctx: BenchContext, cap_bytes: int, file_bytes: list[int], folder: str | None = None) -> list[Row]:
    """Peak-RSS rows for each file size (the largest also gives the throughput rows)."""
    rows, samples = [], 64 if ctx.quick else 256
    with tempfile.TemporaryDirectory(dir=folder, prefix="bench-data-") as tmp:
        for size in sorted(file_bytes):
            path = Path(tmp) / f"2D_advection_{size // 2**20}MiB.hdf5"
            start = time.perf_counter()
            n = write_pdebench_file(path, size)
            write_s = time.perf_counter() - start
            res = _capped_training(path, samples, cap_bytes)
            params = {**res, "write_seconds": round(write_s, 1), "file_over_cap": round(res["file_bytes"] / cap_bytes, 2),
                      "layout": f"tensor ({n}, {STEPS}, {GRID}, {GRID}) float32", "workers": 2, "batch": BATCH,
                      "cap": "RLIMIT_DATA on the training process and each worker"}
            case = f"file-{res['file_bytes'] / GiB:.2f}GiB-cap-{cap_bytes / GiB:.2f}GiB"
            rows.append(Row("data", case, "peak-rss", "trainer-process", "cap", res["peak_rss_bytes"] / 2**20,
                            cap_bytes / 2**20, "MB", params))
            rows.append(Row("data", case, "peak-rss-worker", "largest-worker", "cap",
                            res["worker_peak_rss_bytes"] / 2**20, cap_bytes / 2**20, "MB", params))
            if size == max(file_bytes):
                count = 64 if ctx.quick else 128
                speed = _throughput(path, count, rounds=1 if ctx.quick else 5)
                tparams = {"file_bytes": res["file_bytes"], "items": count, "batch": BATCH,
                           "model": "FNO(1, 1, (12, 12), hidden_channels=32, n_layers=4)",
                           "threads": torch.get_num_threads(),
                           "page_cache": "file pages dropped before each epoch"}
                for name in ("lazy-0-workers", "lazy-2-workers"):
                    rows.append(Row("data", f"trainer-epoch-{count}-items", "samples/s", name, "in-memory",
                                    speed[name], speed["in-memory"], "samples/s", tparams, higher_is_better=True))
    return rows


def run(ctx: BenchContext) -> list[Row]:
    """Quick: a 0.25 GiB file under a 1.5 GiB cap. Full: 0.25 GiB and 6 GiB files (4x the cap)."""
    cap = int(1.5 * GiB)
    sizes = [GiB // 4] if ctx.quick else [GiB // 4, 4 * cap]
    ctx.extra["note"] = "peak RSS per process (ru_maxrss) against RLIMIT_DATA; samples/s of one Trainer epoch"
    return measure(ctx, cap, sizes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_data", description=__doc__.splitlines()[0])
    parser.add_argument("--cap-gb", type=float, default=1.5, help="RLIMIT_DATA of the training process, GiB")
    parser.add_argument("--file-gb", type=float, default=None, help="file size, GiB (default 4x the cap)")
    parser.add_argument("--dir", default=None, help="where the temporary file goes (default the system temp folder)")
    parser.add_argument("--quick", action="store_true", help="64 training items instead of 256, one timing round")
    parser.add_argument("--json", default=None, help="results file (default runs/bench-data-cpu[-quick].json)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default torch's own)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--cap-bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.child is not None:
        print(json.dumps(_child(args.child, args.samples, args.cap_bytes, torch.get_num_threads())))
        return 0
    cap = int(args.cap_gb * GiB)
    size = int((args.file_gb if args.file_gb is not None else 4 * args.cap_gb) * GiB)
    ctx = BenchContext(device=torch.device("cpu"), quick=args.quick)
    rows = measure(ctx, cap, [size], args.dir)
    print_table(rows, title=f"data on cpu ({'quick' if args.quick else 'full'}); ratio > 1: ours better")
    path = args.json or default_output_path("data", "cpu", args.quick)
    write_json(path, {"machine": machine_info(ctx.device), "quick": args.quick,
                      "suites": [{"suite": "data", "rows": rows_to_dicts(rows), "extra": {}}]})
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
