"""The Well's data sets as channels-first ``(input, target)`` pairs.

Legend: ``T_in``/``T_out`` input/output time steps, ``F`` time-varying field channels
(tensor fields flattened, e.g. a velocity is 2 channels in 2-D), ``F_c`` constant
(time-invariant) field channels, ``*grid`` the spatial axes.

The Well (https://polymathic-ai.org/the_well) ships its own reader,
``the_well.data.WellDataset``, which knows its HDF5 layout; :func:`from_well` only
rearranges that reader's items for operators written channels first, the way The Well's
own ``DefaultChannelsFirstFormatter`` does for a batch. The ``the_well`` package is an
optional dependency (``pip install spectral-operators[data]``), imported on first use.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch.utils.data import Dataset

from spectral.checks import check_bool, check_number, describe

__all__ = ["from_well", "WellPairs"]


def from_well(dataset: Any, *, constant_fields: bool = True, nan: float | None = 0.0) -> WellPairs:
    """Wrap a ``the_well.data.WellDataset`` into a Dataset of channels-first ``(input, target)`` pairs.

    Each item of ``dataset`` is a dict; this keeps its fields and stacks time on the
    channel axis (channel ``t * F + f`` is field channel ``f`` at step ``t``):

    * ``input``: ``input_fields (T_in, *grid, F)`` -> ``(T_in * F, *grid)``, followed by
      ``constant_fields (*grid, F_c)`` -> ``(F_c, *grid)`` when the data set has any
      and ``constant_fields`` is True;
    * ``target``: ``output_fields (T_out, *grid, F)`` -> ``(T_out * F, *grid)``.

    Scalars, grids and boundary conditions of the item are dropped. Items are read
    one at a time by the WellDataset (nothing else is loaded), so the result works with
    ``DataLoader(num_workers=...)`` and the Trainer's sharding like the WellDataset does.

    Parameters
    ----------
    dataset : the_well.data.WellDataset
        The Well's reader, configured as usual (``n_steps_input``, ``n_steps_output``,
        strides, its own normalisation if wanted).
    constant_fields : bool, optional
        Append the constant fields to the input (default True, as The Well's formatter).
    nan : float or None, optional
        Value that replaces NaNs (default 0.0, as The Well's formatter does: some of its
        data sets mark obstacles with NaN); None keeps them.

    Returns
    -------
    WellPairs
        A map-style Dataset; ``in_channels`` and ``out_channels`` give the channel
        counts for the operator (``FNO(data.in_channels, data.out_channels, ...)``).

    Raises
    ------
    ImportError
        The ``the_well`` package is not installed.
    TypeError
        ``dataset`` is not a WellDataset.

    Shape
    -----
    item: ``((T_in * F [+ F_c], *grid), (T_out * F, *grid))``, the file's dtype (float32).
    """
    try:
        from the_well.data import WellDataset
    except ImportError as err:  # pragma: no cover - the_well is in the dev extra
        raise ImportError("from_well needs The Well's package: pip install the_well "
                          "(or pip install spectral-operators[data])") from err
    if not isinstance(dataset, WellDataset):
        raise TypeError(f"from_well: dataset must be a the_well.data.WellDataset, got {describe(dataset)}")
    return WellPairs(dataset, constant_fields=constant_fields, nan=nan)


class WellPairs(Dataset):
    """A WellDataset's items as ``(input, target)`` tensors, channels first (see :func:`from_well`).

    Attributes
    ----------
    dataset : the_well.data.WellDataset
        The wrapped reader (its ``metadata`` names the fields).
    in_channels, out_channels : int
        ``T_in * F [+ F_c]`` and ``T_out * F``.
    """

    def __init__(self, dataset: Any, *, constant_fields: bool = True, nan: float | None = 0.0) -> None:
        self.dataset = dataset
        self.constant_fields = check_bool("constant_fields", constant_fields)
        self.nan = check_number("nan", nan, allow_none=True)
        meta = dataset.metadata
        steps_out = min(dataset.n_steps_output, dataset.max_rollout_steps)  # what the reader returns
        self.in_channels = dataset.n_steps_input * meta.n_fields + (meta.n_constant_fields if constant_fields else 0)
        self.out_channels = steps_out * meta.n_fields

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.dataset[index]
        missing = [k for k in ("input_fields", "output_fields") if k not in item]
        if missing:
            raise ValueError(f"from_well: item {index} of {self.dataset!r} has no {missing} "
                             f"(keys: {sorted(item)}); the data set has no time-varying fields?")
        x = rearrange(item["input_fields"], "t ... f -> (t f) ...")  # (T_in * F, *grid)
        if self.constant_fields and "constant_fields" in item:
            const = rearrange(item["constant_fields"], "... f -> f ...")  # (F_c, *grid)
            x = torch.cat([x, const.to(x.dtype)], dim=0)
        y = rearrange(item["output_fields"], "t ... f -> (t f) ...")  # (T_out * F, *grid)
        if self.nan is not None:
            x = torch.where(x.isnan(), torch.full_like(x, self.nan), x)
            y = torch.where(y.isnan(), torch.full_like(y, self.nan), y)
        return x, y

    def __repr__(self) -> str:
        return (f"WellPairs({self.dataset!r}, n={len(self)}, in_channels={self.in_channels}, "
                f"out_channels={self.out_channels})")
