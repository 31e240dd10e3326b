"""The package roots export the public names that the design document fixes, and nothing dangling."""

from __future__ import annotations

import importlib

import pytest

# The list in the project's design document (DESIGN.md "Public names", kept outside this repository), written
# out here so a rename is caught.
DESIGN_NAMES = {
    "spectral": [
        "FANLayer", "FAN", "FANAttention", "FourierHead", "FNetMixer", "GlobalFilterMixer", "FFTNetMixer",
        "AFNOMixer", "AFFMixer", "CausalFourierMixer", "FourierKANLayer", "FKAN", "SIREN", "FourierFeatureINR",
        "ModReLU", "resample", "radial_spectrum",
    ],
    "operators": ["SpectralConv", "FNO", "SphericalConv", "SFNO", "SpecBoost", "LpLoss", "H1Loss", "Trainer",
                  "Normalized", "save_model", "load_model"],
    "operators.datasets": ["burgers", "darcy", "navier_stokes", "shallow_water", "from_file", "PDEBench",
                           "from_well", "Normalizer"],
}


@pytest.mark.parametrize("package", sorted(DESIGN_NAMES))
def test_design_names_are_exported(package):
    module = importlib.import_module(package)
    missing = [name for name in DESIGN_NAMES[package] if not hasattr(module, name)]
    assert not missing, f"{package} lacks {missing}"
    if hasattr(module, "__all__"):
        assert not [n for n in DESIGN_NAMES[package] if n not in module.__all__], f"{package}.__all__ is incomplete"


@pytest.mark.parametrize("package", ["spectral", "operators", "operators.datasets", "spectral.mixers"])
def test_all_entries_resolve(package):
    module = importlib.import_module(package)
    dangling = [name for name in getattr(module, "__all__", []) if not hasattr(module, name)]
    assert not dangling, f"{package}.__all__ names missing attributes: {dangling}"
    assert len(set(module.__all__)) == len(module.__all__), f"{package}.__all__ has duplicates"
