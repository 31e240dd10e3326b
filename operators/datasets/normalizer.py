"""Per-channel standardisation with statistics fitted in one streaming pass.

Legend: ``n`` samples, ``B`` batch, ``C`` channels, ``*grid`` the spatial axes of one sample.

:class:`Normalizer` holds a per-channel ``mean`` and ``std`` as buffers (so they are
saved with a model's ``state_dict``); :meth:`Normalizer.fit` computes them from a tensor,
a Dataset or a DataLoader in one pass, merging batch statistics in float64 (Chan et
al.'s parallel form of Welford's update, on data shifted by the first batch's mean so a
large offset costs no precision), so data larger than memory can be fitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from spectral.checks import check_int, check_number, check_real_dtype, check_tensor, describe

__all__ = ["Normalizer"]


class Normalizer(nn.Module):
    """Per-channel standardisation: ``encode(x) = (x - mean) / scale``, ``scale = max(std, eps)``.

    ``decode(z) = z * scale + mean`` is its exact inverse (up to round-off). ``mean`` and
    ``std`` are per-channel buffers of shape ``(C,)``: they travel with ``.to(...)`` and
    are part of the ``state_dict``. Build one from data with :meth:`fit` (or set the
    buffers yourself); a new Normalizer is the identity (``mean = 0``, ``std = 1``).

    Parameters
    ----------
    channels : int
        Number of channels ``C`` (axis 1 of every batch).
    eps : float, optional
        Smallest scale (default 1e-6): a channel whose standard deviation is below it
        (a constant channel, e.g. a mask) is divided by ``eps`` instead, so it encodes
        to about 0 instead of infinity. Choose it below the smallest standard deviation
        that matters in your units.
    device, dtype : optional
        Of the buffers (default: CPU, ``torch.get_default_dtype()``). :meth:`encode`
        and :meth:`decode` compute in the dtype of their input.

    Shape
    -----
    ``encode``/``decode``: ``(B, C, *grid)`` real -> ``(B, C, *grid)``, same dtype.

    Examples
    --------
    >>> x = torch.randn(8, 2, 16, 16) * torch.tensor([1.0, 5.0]).view(1, 2, 1, 1) + 3
    >>> norm = Normalizer.fit(x)
    >>> z = norm.encode(x)
    >>> bool(z.mean((0, 2, 3)).abs().max() < 1e-5), bool(torch.allclose(norm.decode(z), x, atol=1e-5))
    (True, True)
    """

    def __init__(self, channels: int, *, eps: float = 1e-6, device=None, dtype=None) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.eps = check_number("eps", eps, min=0, min_open=True)
        dtype = check_real_dtype("dtype", dtype)
        self.register_buffer("mean", torch.zeros(self.channels, device=device, dtype=dtype))
        self.register_buffer("std", torch.ones(self.channels, device=device, dtype=dtype))

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        data: Any,
        *,
        element: int | str | None = None,
        eps: float = 1e-6,
        batch_size: int = 256,
        device=None,
        dtype=None,
    ) -> Normalizer:
        """A Normalizer with the per-channel mean and (population) std of ``data``.

        Statistics are over every axis but axis 1 (samples and grid points), computed in
        float64 in one pass and equal to ``numpy``'s ``mean``/``std`` (``ddof=0``) over
        the same values up to round-off. Only one batch is held at a time.

        Parameters
        ----------
        data : Tensor, PDEData, Dataset, DataLoader or iterable of batches
            A tensor ``(n, C, *grid)`` (read ``batch_size`` samples at a time); an object
            with ``inputs`` and ``targets`` (:class:`~operators.datasets.PDEData`: pick
            one with ``element``); a map-style or iterable ``Dataset`` (read through a
            ``DataLoader(data, batch_size)``); a ``DataLoader`` or any iterable of batches
            ``(B, C, *grid)``, used as given (its workers included).
        element : int or str, optional
            Which part of each item or batch: an index for ``(input, target)`` pairs
            (0 inputs, 1 targets), a key for dict batches; for PDEData 0/``"inputs"`` or
            1/``"targets"``. Required whenever the items are not plain tensors.
        eps : float, optional
            See the class.
        batch_size : int, optional
            Samples per step for tensors and Datasets (default 256).
        device, dtype : optional
            Of the buffers (default: the data's device, ``torch.get_default_dtype()``).

        Raises
        ------
        ValueError
            A batch with fewer than 2 axes, a channel count that changes between
            batches, non-finite values (naming the batch), no samples at all, or
            ``element`` missing/out of range for the items.
        TypeError
            Complex data, a numpy array, a tuple or list (pass one tensor), or an
            ``element`` of the wrong kind.
        """
        check_int("batch_size", batch_size)
        ((mean, std),) = _fit_moments(data, (element,), batch_size)
        return _from_moments(cls, mean, std, eps=eps, device=device, dtype=dtype)

    # ------------------------------------------------------------------ transforms
    @property
    def scale(self) -> torch.Tensor:
        """``max(std, eps)`` per channel, ``(C,)``: what :meth:`encode` divides by."""
        return self.std.clamp_min(self.eps)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / scale`` per channel; ``x (B, C, *grid)`` -> same shape and dtype."""
        mean, scale = self._stats(x, "encode")
        return (x - mean) / scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z * scale + mean`` per channel (the inverse of :meth:`encode`); same shape and dtype."""
        mean, scale = self._stats(z, "decode")
        return z * scale + mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`encode`."""
        return self.encode(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, eps={self.eps:g}"

    def _stats(self, x: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor(f"Normalizer.{what}", "x", x)
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"Normalizer.{what}: expected x of shape (B, {self.channels}, *grid), got {tuple(x.shape)}"
                + (" (one sample? use x[None])" if x.ndim >= 1 and x.shape[0] == self.channels else "")
            )
        view = (self.channels,) + (1,) * (x.ndim - 2)
        return self.mean.to(x.dtype).view(view), self.scale.to(x.dtype).view(view)


# ------------------------------------------------------------------ private
class _Moments:
    """Running per-channel count, mean and sum of squared deviations (float64), merged batch by batch."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None
        self.shift: torch.Tensor | None = None
        self.shape: tuple[int, ...] | None = None

    def update(self, batch: torch.Tensor, index: int) -> None:
        if batch.is_complex():
            raise TypeError(f"Normalizer.fit: batch {index} is complex ({batch.dtype}); only real data")
        if batch.ndim < 2:
            raise ValueError(f"Normalizer.fit: batch {index} must have shape (B, C, *grid), got {tuple(batch.shape)}")
        if self.shape is not None and batch.shape[1] != self.shape[1]:
            raise ValueError(
                f"Normalizer.fit: batch {index} has shape {tuple(batch.shape)} but the earlier batches had "
                f"{self.shape[1]} channels (shape {self.shape})"
            )
        self.shape = tuple(batch.shape)
        x = batch.detach().to(torch.float64)
        n_b = x.numel() // x.shape[1]
        if n_b == 0:
            return
        if not torch.isfinite(x).all():
            raise ValueError(f"Normalizer.fit: batch {index} (shape {tuple(batch.shape)}) holds NaN or infinite values")
        dims = [0, *range(2, x.ndim)]
        view = (-1,) + (1,) * (x.ndim - 2)
        if self.shift is None:  # statistics of x - shift: small numbers whatever the offset of the data
            self.shift = x.mean(dims)
        x = x - self.shift.to(x.device).view(view)
        mean_b = x.mean(dims)  # (C,) float64
        m2_b = (x - mean_b.view(view)).square().sum(dims)
        if self.mean is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.count + n_b  # Chan et al.'s merge of (count, mean, M2) pairs
        delta = mean_b - self.mean.to(mean_b.device)
        self.mean = self.mean.to(mean_b.device) + delta * (n_b / n)
        self.m2 = self.m2.to(mean_b.device) + m2_b + delta.square() * (self.count * n_b / n)
        self.count = n

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean is None:
            got = "no batches" if self.shape is None else f"only empty batches (shape {self.shape})"
            raise ValueError(f"Normalizer.fit: no samples to fit (got {got})")
        return self.shift.to(self.mean.device) + self.mean, (self.m2 / self.count).sqrt()


def _fit_moments(data: Any, elements: tuple, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel ``(mean, std)`` of each of ``elements`` of ``data``, in one pass."""
    moments = [_Moments() for _ in elements]
    for i, parts in enumerate(_batches(data, elements, batch_size)):
        for m, part in zip(moments, parts):
            m.update(part, i)
    return [m.result() for m in moments]


def _from_moments(cls: type, mean: torch.Tensor, std: torch.Tensor, *, eps: float, device, dtype) -> Any:
    norm = cls(mean.shape[0], eps=eps, device=device if device is not None else mean.device, dtype=dtype)
    with torch.no_grad():
        norm.mean.copy_(mean)
        norm.std.copy_(std)
    return norm


_PARTS = {0: "inputs", 1: "targets", "inputs": "inputs", "targets": "targets"}


def _batches(data: Any, elements: tuple, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Every batch of ``data`` as a tuple: one ``(B, C, *grid)`` tensor per entry of ``elements``."""
    if isinstance(data, torch.Tensor):
        if elements != (None,):
            raise ValueError(f"Normalizer.fit: element={elements[0]!r} picks a part of pairs, dicts or PDEData; "
                             f"data is a tensor {tuple(data.shape)} (leave element out)")
        if data.ndim < 2:
            raise ValueError(f"Normalizer.fit: expected data of shape (n, C, *grid), got {tuple(data.shape)}")
        for batch in data.split(batch_size):
            yield (batch,)
        return
    if type(data).__module__ == "numpy":
        raise TypeError(f"Normalizer.fit: data must be a tensor, Dataset or DataLoader, got {describe(data)} "
                        "(convert with torch.as_tensor)")
    if isinstance(data, (tuple, list)):
        raise TypeError(f"Normalizer.fit: got a {type(data).__name__}; pass one tensor (e.g. pair[1] for the targets), "
                        "a Dataset or a DataLoader")
    if hasattr(data, "inputs") and hasattr(data, "targets") and not isinstance(data, (Dataset, DataLoader)):
        bad = [e for e in elements if isinstance(e, bool) or not isinstance(e, (int, str)) or e not in _PARTS]
        if bad:
            raise ValueError(f"Normalizer.fit: for {type(data).__name__} data say which part with element=0 (inputs) "
                             f"or element=1 (targets), got element={bad[0]!r}")
        parts = [_batches(getattr(data, _PARTS[e]), (None,), batch_size) for e in elements]
        for batches in zip(*parts):
            yield tuple(b for (b,) in batches)
        return
    if isinstance(data, Dataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False)
    if not isinstance(data, Iterable):
        raise TypeError(f"Normalizer.fit: data must be a tensor, PDEData, Dataset or DataLoader, got {describe(data)}")
    for i, batch in enumerate(data):
        yield tuple(_pick(batch, e, i) for e in elements)


def _pick(batch: Any, element: int | str | None, index: int) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        if not isinstance(element, str) or element not in batch:
            raise ValueError(f"Normalizer.fit: batch {index} is a dict with keys {sorted(map(str, batch))}; "
                             f"say which with element=<key>, got element={element!r}")
        return _pick(batch[element], None, index)
    if isinstance(batch, (tuple, list)):
        if element is None:
            raise ValueError(f"Normalizer.fit: batch {index} is a {type(batch).__name__} of {len(batch)}; say which "
                             "part with element=0 (inputs) or element=1 (targets)")
        if isinstance(element, str) or not -len(batch) <= check_int("element", element, min=None) < len(batch):
            raise ValueError(f"Normalizer.fit: element={element!r} does not index batch {index}, "
                             f"a {type(batch).__name__} of {len(batch)}")
        return _pick(batch[element], None, index)
    raise TypeError(f"Normalizer.fit: batch {index} must be a tensor, a pair or a dict, got {describe(batch)}")
