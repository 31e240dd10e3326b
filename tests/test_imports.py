"""Importing the packages is light: no heavy optional dependency is loaded until a name that needs it is used.

Checked through ``sys.modules`` in a fresh interpreter (a subprocess), never with a timer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch_harmonics", "matplotlib", "scipy")

_PROBE = """
import importlib, json, pkgutil, sys
heavy = {heavy!r}
def loaded():
    return sorted({{name.split(".")[0] for name in sys.modules}} & heavy)
steps = []
{code}
print(json.dumps(steps))
"""

_EVERY_MODULE = """
for root in ("spectral", "operators"):
    package = importlib.import_module(root)
    steps.append((root, loaded()))
    for info in pkgutil.walk_packages(package.__path__, root + "."):
        importlib.import_module(info.name)
        steps.append((info.name, loaded()))
from operators import FNO, SFNO, H1Loss, LpLoss, SpecBoost, SphericalConv
import operators.datasets
steps.append(("public names", loaded()))
"""


def _run(code: str) -> list[tuple[str, list[str]]]:
    """``steps``, a list of (what was just done, heavy modules loaded by then), from a fresh interpreter."""
    probe = _PROBE.format(heavy=set(HEAVY), code=code)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [tuple(step) for step in json.loads(done.stdout.strip().splitlines()[-1])]


def test_importing_every_module_loads_no_heavy_optional_dependency():
    """``import spectral``, ``import operators`` and every submodule (datasets included) leave out
    torch-harmonics, matplotlib and scipy; the first module that pulls one in is named."""
    steps = _run(_EVERY_MODULE)
    assert len(steps) > 10 and steps[0][0] == "spectral"
    first_heavy = next(((name, heavy) for name, heavy in steps if heavy), None)
    assert first_heavy is None, f"importing {first_heavy[0]} loaded {first_heavy[1]}"


def test_spherical_layers_import_torch_harmonics_when_built():
    """The names are importable without torch-harmonics; building a spherical layer loads it."""
    steps = _run("from operators import SphericalConv\nsteps.append(('import', loaded()))\n"
                 "SphericalConv(1, 1, (4, 8))\nsteps.append(('build', loaded()))")
    assert steps[0] == ("import", [])
    assert "torch_harmonics" in steps[1][1]
