"""PDE data generators with validated solvers and an on-disk cache.

Each generator is deterministic for a seed, returns :class:`PDEData` (``inputs`` and
``targets`` of shape ``(n, C, *grid)`` plus ``meta``) or :class:`PDESequence`
(trajectories), can return several nested resolutions from one fine solve, and caches
its result (see :func:`default_cache_dir`).

* :func:`burgers`: 1-D viscous Burgers, ``u(0) -> u(1)`` (pseudo-spectral ETDRK4).
* :func:`darcy`: 2-D Darcy flow, ``a -> u`` (finite differences, sparse LU).
* :func:`navier_stokes`, :func:`navier_stokes_sequences`, :func:`time_stepping_pairs`:
  2-D vorticity on the torus (pseudo-spectral Crank-Nicolson/Heun).
* :func:`shallow_water`, :func:`shallow_water_rollouts`: shallow water on the sphere
  (torch-harmonics' ``ShallowWaterSolver``, imported on first use).

:func:`cached` is the on-disk cache itself, for scripts that cache their own data the
same way; :func:`cache_key` / :func:`cache_path` say where an entry lives.

Files the community uses:

* :func:`from_file`: neuraloperator's ``.pt``, the FNO paper's ``.mat`` (v5 and v7.3),
  ``.h5`` / ``.npz`` of named arrays, loaded into memory as :class:`PDEData`;
* :class:`PDEBench`: a map-style Dataset over one PDEBench HDF5 file that reads one item
  at a time (files larger than memory, DataLoader workers, DistributedSampler);
* :func:`from_well`: The Well's ``WellDataset`` as ``(input, target)`` pairs;
* :class:`Normalizer`: per-channel statistics (one streaming pass) with ``encode`` /
  ``decode``; wrap a model with :class:`operators.Normalized` to predict in physical units.
"""

from operators.datasets._cache import (
    CACHE_ENV_VAR,
    PDEData,
    PDESequence,
    cache_key,
    cache_path,
    cached,
    clear_cache,
    default_cache_dir,
)
from operators.datasets.burgers import burgers, burgers_solve
from operators.datasets.darcy import darcy, darcy_solve
from operators.datasets.files import from_file
from operators.datasets.pdebench import PDEBench
from operators.datasets.navier_stokes import (
    navier_stokes,
    navier_stokes_sequences,
    navier_stokes_solve,
    time_stepping_pairs,
)
from operators.datasets.shallow_water import shallow_water, shallow_water_rollouts
from operators.datasets.normalizer import Normalizer
from operators.datasets.well import from_well

__all__ = [
    "Normalizer",
    "from_well",
    "CACHE_ENV_VAR",
    "PDEData",
    "PDESequence",
    "cache_key",
    "cache_path",
    "cached",
    "clear_cache",
    "default_cache_dir",
    "burgers",
    "burgers_solve",
    "darcy",
    "darcy_solve",
    "from_file",
    "navier_stokes",
    "navier_stokes_sequences",
    "navier_stokes_solve",
    "time_stepping_pairs",
    "shallow_water",
    "shallow_water_rollouts",
    "PDEBench",
]
