"""Process group, device choice and deterministic, sharded batching for the Trainer.

Legend: ``n`` samples in a data set, ``G`` global batch size (the ``batch_size`` a
single process would use), ``W`` world size (processes), ``r`` rank, ``b`` batch index.

Batching contract
-----------------
An epoch's sample order is a pure function of ``(seed, epoch)`` (a permutation drawn
from a generator seeded by ``numpy.random.SeedSequence([seed, epoch])``), so a resumed
run replays exactly the order the uninterrupted run used. The order is cut into global
batches of ``G`` samples, identical for every ``W``; under ``torchrun`` rank ``r`` takes
a contiguous, near-equal slice of each global batch. Every rank therefore sees the same
number of batches, and weighting a rank's batch-mean loss by ``W * n_r / G`` makes
DistributedDataParallel's gradient average equal the single-process gradient of the
global batch. A rank whose slice of a (short, last) global batch is empty gets the
batch's first sample with weight 0, so that it still joins the gradient all-reduce.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

__all__ = [
    "DistContext",
    "resolve_device",
    "setup_distributed",
    "shard_bounds",
    "epoch_seed",
    "ShardedBatchSampler",
    "ContiguousBatches",
    "is_default_loader",
    "rebuild_loader",
    "all_reduce_sum",
    "all_gather_objects",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job: ``world_size == 1`` for a plain run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def resolve_device(device: torch.device | str | int | None) -> torch.device:
    """``device``, or CUDA when available, else CPU; a bare ``"cuda"`` gets an index.

    The index is ``LOCAL_RANK`` under torchrun, else the current CUDA device; an int
    ``i`` means ``torch.device(i)`` (CUDA device ``i``).

    Raises
    ------
    TypeError
        If ``device`` is not a torch.device, str, int or None.
    ValueError
        If ``device`` names no device type torch knows (e.g. ``"gpu"``), or a CUDA
        device while CUDA is not available or with an index beyond the visible devices.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device, bool) or not isinstance(device, (torch.device, str, int)):
        raise TypeError(f"device must be a torch.device, str, int or None, got {type(device).__name__}")
    given = device
    try:
        device = torch.device(device)
    except RuntimeError as err:  # torch says e.g. "Expected one of cpu, cuda, ... : gpu"
        raise ValueError(
            f"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0', got device={given!r}"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={given!r} needs CUDA, but CUDA is not available; use device='cpu' or None")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={given!r}: CUDA device {device.index} does not exist "
            f"({torch.cuda.device_count()} visible)"
        )
    if device.type == "cuda" and device.index is None:
        index = _env_int("LOCAL_RANK", -1)
        device = torch.device("cuda", index if index >= 0 else torch.cuda.current_device())
    return device


def _destroy_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def setup_distributed(device: torch.device) -> DistContext:
    """Join (or create) the default process group when launched by torchrun.

    An existing group is used as it is. Otherwise, when ``WORLD_SIZE > 1`` the group is
    created from the environment (``env://``) with NCCL for a CUDA device and gloo for
    CPU, and destroyed at interpreter exit.
    """
    local_rank = _env_int("LOCAL_RANK", 0)
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)
    if _env_int("WORLD_SIZE", 1) <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(_destroy_group)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous share of ``n`` items (sizes differ by <= 1)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed that depends only on ``(seed, epoch)``."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> 1


class ShardedBatchSampler(Sampler[list[int]]):
    """Global batches of a seeded per-epoch order, sliced for one rank.

    Yields one list of indices per global batch (see the module notes); ``sizes(b)``
    gives ``(n_local, n_global)`` of batch ``b``, with ``n_local == 0`` for a
    placeholder batch that must be weighted 0.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def sizes(self, b: int) -> tuple[int, int]:
        n_global = min(self.batch_size, self.n - b * self.batch_size)
        start, stop = shard_bounds(n_global, self.rank, self.world_size)
        return stop - start, n_global

    def index_batches(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        for b in range(len(self)):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            start, stop = shard_bounds(len(batch), self.rank, self.world_size)
            yield batch[start:stop] if stop > start else batch[:1]

    def __iter__(self) -> Iterator[list[int]]:
        for idx in self.index_batches():
            yield idx.tolist()


class ContiguousBatches(Sampler[list[int]]):
    """Batches of ``range(start, stop)`` in order (one rank's share of an evaluation set)."""

    def __init__(self, start: int, stop: int, batch_size: int) -> None:
        self.start, self.stop, self.batch_size = start, stop, batch_size

    def __len__(self) -> int:
        return -(-(self.stop - self.start) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for lo in range(self.start, self.stop, self.batch_size):
            yield list(range(lo, min(lo + self.batch_size, self.stop)))


def is_default_loader(loader: DataLoader) -> bool:
    """True for a map-style loader built with ``batch_size``/``shuffle`` only (no custom sampler)."""
    sampler, dataset = loader.sampler, loader.dataset
    if isinstance(dataset, IterableDataset) or type(loader.batch_sampler) is not BatchSampler:
        return False
    if type(sampler) is RandomSampler:  # one pass without replacement, like shuffle=True
        return not sampler.replacement and sampler.num_samples == len(dataset)  # type: ignore[arg-type]
    return type(sampler) is SequentialSampler


def rebuild_loader(
    loader: DataLoader, batch_sampler: Sampler[list[int]], generator: torch.Generator
) -> DataLoader:
    """The same loader (dataset, workers, collate, pinning) driven by ``batch_sampler``.

    Persistent workers are turned off: their seeds would be fixed by the first epoch a
    process runs, so a resumed run would not replay the uninterrupted one.
    """
    return DataLoader(
        loader.dataset,
        batch_sampler=batch_sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=False,
    )


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over ranks in place (a no-op for a single process)."""
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj: object, ctx: DistContext) -> list[object]:
    """``[obj of rank 0, obj of rank 1, ...]``; ``[obj]`` for a single process."""
    if not ctx.enabled:
        return [obj]
    out: list[object] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


Batch = tuple[torch.Tensor, torch.Tensor, int, int]


def check_pair(data: object, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate an ``(inputs, targets)`` pair of tensors with equal, non-zero lengths."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(
            f"{what} must be a DataLoader or a pair (inputs, targets) of tensors, "
            f"got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        )
    x, y = data
    for name, t in (("inputs", x), ("targets", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what} {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim == 0:
            raise ValueError(f"{what} {name} must have a leading sample axis, got shape ()")
    if len(x) != len(y):
        raise ValueError(
            f"{what}: inputs and targets must hold the same number of samples, got inputs "
            f"of shape {tuple(x.shape)} and targets of shape {tuple(y.shape)}"
        )
    if len(x) == 0:
        raise ValueError(f"{what} is empty: inputs of shape {tuple(x.shape)}")
    return x, y


class BatchSource:
    """One data set as ``(x, y, n_local, n_global)`` batches per epoch (see module notes).

    ``pair`` tensors are indexed directly; a default DataLoader is rebuilt around the
    Trainer's sampler; any other loader is iterated as it is (one process only), with
    ``set_epoch`` called when its sampler has one and its generators' states exposed
    through :meth:`rng_state` for checkpoints.

    ``settings`` records the batching actually used, whatever its origin (the Trainer's
    arguments for tensors, the loader's own for a DataLoader): ``batch_size`` (global),
    ``shuffle`` (None when a custom sampler decides the order), ``drop_last`` and
    ``n_samples`` (the data set's length; None when it has none).
    """

    def __init__(
        self,
        what: str,
        *,
        pair: tuple[torch.Tensor, torch.Tensor] | None = None,
        loader: DataLoader | None = None,
        sampler: Sampler[list[int]] | None = None,
        seed: int = 0,
        settings: dict[str, Any] | None = None,
        batch_keys: tuple[str, str] | None = None,
    ) -> None:
        self.what, self.pair, self.loader, self.sampler, self.seed = what, pair, loader, sampler, seed
        self.batch_keys = batch_keys
        self.settings: dict[str, Any] = dict(settings or {})

    def __len__(self) -> int:
        return len(self.sampler if self.sampler is not None else self.loader)  # type: ignore[arg-type]

    def _sizes(self, b: int, n: int) -> tuple[int, int]:
        if isinstance(self.sampler, ShardedBatchSampler):
            return self.sampler.sizes(b)
        return n, n

    def batches(self, epoch: int) -> Iterator[Batch]:
        if self.pair is not None:
            yield from self._tensor_batches(epoch)
            return
        loader: DataLoader = self.loader  # type: ignore[assignment]
        if self.sampler is not None:
            if isinstance(self.sampler, ShardedBatchSampler):
                self.sampler.set_epoch(epoch)
            # The workers' base seed, like the order, is a function of (seed, epoch).
            loader.generator.manual_seed(epoch_seed(self.seed, epoch) ^ 0x5EED)  # type: ignore[union-attr]
        else:
            for s in (loader.sampler, loader.batch_sampler):
                if hasattr(s, "set_epoch"):
                    s.set_epoch(epoch)
        for b, batch in enumerate(loader):
            if isinstance(batch, Mapping):
                batch = self._from_dict(batch)
            if not (
                isinstance(batch, (tuple, list))
                and len(batch) == 2
                and all(isinstance(t, torch.Tensor) for t in batch)
            ):
                raise TypeError(
                    f"{self.what}: each DataLoader batch must be a pair (inputs, targets) "
                    f"of tensors, got {type(batch).__name__}"
                )
            yield (batch[0], batch[1], *self._sizes(b, len(batch[0])))

    def _from_dict(self, batch: Mapping[str, Any]) -> tuple[Any, Any]:
        if self.batch_keys is None:
            raise TypeError(
                f"{self.what}: the DataLoader yields dicts (keys {sorted(batch)}); pass batch_keys=(inputs key, "
                "targets key) to the Trainer, e.g. batch_keys=('x', 'y')"
            )
        missing = [k for k in self.batch_keys if k not in batch]
        if missing:
            raise ValueError(
                f"{self.what}: batch_keys={self.batch_keys!r}, but a batch has no key {missing[0]!r} "
                f"(its keys: {sorted(batch)})"
            )
        return batch[self.batch_keys[0]], batch[self.batch_keys[1]]

    def _tensor_batches(self, epoch: int) -> Iterator[Batch]:
        x, y = self.pair  # type: ignore[misc]
        if isinstance(self.sampler, ShardedBatchSampler):
            self.sampler.set_epoch(epoch)
            for b, idx in enumerate(self.sampler.index_batches()):
                yield (x[idx], y[idx], *self.sampler.sizes(b))
        else:
            for idx in self.sampler:  # type: ignore[union-attr]
                lo, hi = idx[0], idx[-1] + 1
                yield x[lo:hi], y[lo:hi], hi - lo, hi - lo

    def _generators(self) -> dict[str, torch.Generator]:
        if self.loader is None or self.sampler is not None:
            return {}
        found = {
            "sampler": getattr(self.loader.sampler, "generator", None),
            "loader": self.loader.generator,
        }
        return {k: g for k, g in found.items() if isinstance(g, torch.Generator)}

    def rng_state(self) -> dict[str, torch.Tensor]:
        return {k: g.get_state() for k, g in self._generators().items()}

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        for k, g in self._generators().items():
            if k in state:
                g.set_state(state[k])


def make_source(
    data: object,
    what: str,
    *,
    batch_size: int,
    shuffle: bool,
    drop_last: bool,
    seed: int,
    ctx: DistContext,
    train: bool,
    batch_keys: tuple[str, str] | None = None,
) -> BatchSource:
    """Wrap tensors or a DataLoader for training (sharded global batches) or evaluation.

    Evaluation never shuffles nor drops samples, whatever the arguments or the loader say.
    A DataLoader may yield ``(inputs, targets)`` pairs, or dicts from which ``batch_keys``
    picks the inputs and targets.
    """
    if isinstance(data, DataLoader):
        if is_default_loader(data):
            n = len(data.dataset)  # type: ignore[arg-type]
            if n == 0:
                raise ValueError(f"{what} is empty: its DataLoader's dataset has 0 samples")
            shuffle, drop_last = type(data.sampler) is RandomSampler, data.drop_last
            sampler: Sampler[list[int]]
            if train:
                sampler = ShardedBatchSampler(
                    n, data.batch_size, shuffle=shuffle,  # type: ignore[arg-type]
                    drop_last=drop_last, seed=seed, rank=ctx.rank, world_size=ctx.world_size,
                )
            else:
                sampler = ContiguousBatches(*shard_bounds(n, ctx.rank, ctx.world_size), data.batch_size)  # type: ignore[arg-type]
            loader = rebuild_loader(data, sampler, torch.Generator())
            settings = _settings(data.batch_size, shuffle and train, drop_last and train, n)
            return BatchSource(what, loader=loader, sampler=sampler, seed=seed, settings=settings, batch_keys=batch_keys)
        if ctx.enabled:
            raise ValueError(
                f"{what}: under torchrun the Trainer shards the data itself and needs a "
                "map-style DataLoader built with batch_size/shuffle/drop_last only, got "
                f"dataset={type(data.dataset).__name__}, sampler={type(data.sampler).__name__}, "
                f"batch_sampler={type(data.batch_sampler).__name__}"
            )
        try:
            n_samples: int | None = len(data.dataset)  # type: ignore[arg-type]
        except TypeError:  # an IterableDataset without __len__
            n_samples = None
        settings = _settings(data.batch_size, None, data.drop_last, n_samples)  # the sampler decides
        return BatchSource(what, loader=data, settings=settings, batch_keys=batch_keys)
    x, y = check_pair(data, what)
    if train:
        sampler = ShardedBatchSampler(
            len(x), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
            rank=ctx.rank, world_size=ctx.world_size,
        )
    else:
        sampler = ContiguousBatches(*shard_bounds(len(x), ctx.rank, ctx.world_size), batch_size)
    settings = _settings(batch_size, shuffle and train, drop_last and train, len(x))
    return BatchSource(what, pair=(x, y), sampler=sampler, settings=settings)


def _settings(batch_size: int | None, shuffle: bool | None, drop_last: bool, n_samples: int | None) -> dict[str, Any]:
    """:attr:`BatchSource.settings` (evaluation reads tensors and default loaders in order, every sample once)."""
    return {"batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last, "n_samples": n_samples}
