"""Grid embedding: the normalised coordinates of a regular grid as extra channels.

Legend: ``B`` batch, ``C`` channels, ``*grid`` the ``d`` spatial axes (``H, W`` in 2-D).
"""

from __future__ import annotations

import torch
from torch import nn

from operators.layers.inputs import check_field, grid_letters
from spectral.checks import check_int

__all__ = ["GridEmbedding"]


class GridEmbedding(nn.Module):
    """Append the normalised grid coordinates as ``d`` extra channels.

    Coordinate ``j`` of point ``i`` on an axis of ``N`` points is ``i / N`` (the periodic
    unit interval), so a grid of ``2N`` points contains the ``N``-point grid exactly.
    Computed for whatever grid the input has; no parameters.

    Parameters
    ----------
    ndim : int
        Number ``d`` of spatial axes (1 to 3).

    Shape
    -----
    x: (B, C, *grid) real -> (B, C + d, *grid) real

    Examples
    --------
    >>> emb = GridEmbedding(2)
    >>> y = emb(torch.zeros(1, 3, 4, 8))
    >>> y.shape, y[0, 3, :, 0].tolist()
    (torch.Size([1, 5, 4, 8]), [0.0, 0.25, 0.5, 0.75])
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.ndim = check_int("ndim", ndim, min=1, max=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_field(type(self).__name__, x, "C", grid_letters(self.ndim))
        grid = x.shape[2:]
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) / n for n in grid]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (d, *grid)
        return torch.cat([x, coords.unsqueeze(0).expand(x.shape[0], *coords.shape)], dim=1)

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}"
