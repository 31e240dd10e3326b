"""Regenerate ``mixers_cpu.png``: the token-mixer benchmark's time-against-N plot shown in ``mixers.rst``.

Run from the repository root (the ``bench`` extra)::

    python docs/guides/mixers_plot.py            # N = 256 .. 16384: 11 minutes on a busy 2-core machine
    python docs/guides/mixers_plot.py --quick    # N = 256 and 1024: under 2 minutes there

It runs ``python -m benchmarks mixers --threads 1 [--quick]`` (which writes
``runs/bench-mixers-cpu[-quick].json`` and ``.png``) and copies the PNG here. Update the caption
in ``mixers.rst`` (command, date, machine load) when you commit a new picture.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main(quick: bool = False) -> Path:
    """Run the benchmark on one CPU thread and copy its plot to ``docs/guides/mixers_cpu.png``."""
    flags = ["--quick"] if quick else []
    subprocess.run([sys.executable, "-m", "benchmarks", "mixers", "--threads", "1", *flags], cwd=ROOT, check=True)
    target = HERE / "mixers_cpu.png"
    shutil.copyfile(ROOT / "runs" / f"bench-mixers-cpu{'-quick' if quick else ''}.png", target)
    print(f"copied to {target}")
    return target


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--quick"]):
        sys.exit("usage: python docs/guides/mixers_plot.py [--quick]")
    main(quick=sys.argv[1:] == ["--quick"])
