"""The output of a token mixer for an empty batch (``B = 0``).

FFT backends reject a batch of 0 (MKL: "Inconsistent configuration parameters"), so
the mixers' functions return this instead of transforming (and for a meta input
where a step cannot run on meta tensors: the output has the input's shape).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

__all__ = ["empty_batch"]


def empty_batch(x: torch.Tensor, shape: Sequence[int], tensors: Iterable[torch.Tensor] = ()) -> torch.Tensor:
    """Zeros of ``shape`` in ``x``'s dtype and device, in the autograd graph of ``x`` and ``tensors``.

    Like torch's own layers on ``B = 0``, the result stays connected to its inputs and
    parameters (complex ones too), which then receive zero gradients instead of None.

    Shape
    -----
    x: (0, ...) -> shape (``shape[0] == 0``), x's dtype
    """
    total = x.sum()
    for t in tensors:
        s = t.sum()
        total = total + (s.real if s.is_complex() else s)
    return x.new_zeros(tuple(shape)) + total * 0  # a 0-dim addend keeps x's dtype
