"""Draw ``kept_bins.png``: the rfft2 bins that ``n_modes = (4, 4)`` keeps on an 8x8 and a 9x9 grid.

Run from the repository root (matplotlib, from the ``examples`` extra)::

    python docs/guides/kept_bins.py

The kept wavenumbers come from :func:`spectral.modes.compact_wavenumbers`; the bins of the full
spectrum come from ``torch.fft.fftfreq`` / ``rfftfreq``, so the picture shows where the library's
compact spectrum sits inside ``torch.fft.rfft2``'s output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from spectral.modes import compact_wavenumbers  # noqa: E402

__all__ = ["draw"]

N_MODES = (4, 4)


def draw(path: Path) -> None:
    """Write the figure to ``path``."""
    rows_kept, cols_kept = (set(k.tolist()) for k in compact_wavenumbers(N_MODES))
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 4.4))
    for ax, n in zip(axes, (8, 9)):
        rows = (torch.fft.fftfreq(n) * n).round().int().tolist()     # FFT order: 0, 1, ..., -1
        cols = (torch.fft.rfftfreq(n) * n).round().int().tolist()    # 0 .. n // 2
        for i, kr in enumerate(rows):
            for j, kc in enumerate(cols):
                kept = kr in rows_kept and kc in cols_kept
                nyquist = n % 2 == 0 and (abs(kr) == n // 2 or kc == n // 2)
                colour = "#3b75af" if kept else ("#f2c2c2" if nyquist else "#eeeeee")
                ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=colour, edgecolor="white"))
                ax.text(j + 0.5, i + 0.5, f"{kr},{kc}", ha="center", va="center", fontsize=7,
                        color="white" if kept else "#555555")
        ax.set_xlim(0, len(cols))
        ax.set_ylim(len(rows), 0)
        ax.set_aspect("equal")
        ax.set_xticks([j + 0.5 for j in range(len(cols))], [str(j) for j in range(len(cols))])
        ax.set_yticks([i + 0.5 for i in range(len(rows))], [str(i) for i in range(len(rows))])
        ax.set_xlabel("rfft bin on the last axis (wavenumber 0 .. N // 2)")
        ax.set_ylabel("fft bin on the first axis (FFT order)")
        ax.set_title(f"{n} x {n} grid, n_modes = {N_MODES}")
    fig.suptitle("Kept bins (blue, labelled k1,k2): |k| < 4 on both axes; "
                 "red: the Nyquist bins, never kept", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    draw(Path(__file__).resolve().parent / "kept_bins.png")
