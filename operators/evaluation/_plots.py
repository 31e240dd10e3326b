"""Plots of an operator's results: one sample's fields and error, and radial spectra.

Legend: ``n`` samples, ``C`` channels, ``*grid`` the ``d`` spatial axes (``W`` in 1-D,
``H, W`` in 2-D), ``S`` radial wavenumber shells. matplotlib is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from spectral.analysis import radial_spectrum
from spectral.checks import check_int, check_tensor

__all__ = ["plot_prediction", "mean_spectrum"]


def plot_prediction(
    path: Path,
    title: str,
    inputs: torch.Tensor,
    truth: torch.Tensor,
    pred: torch.Tensor,
    spectra: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    labels: Sequence[str] = ("input", "truth", "prediction", "error"),
    share_input_scale: bool | None = None,
) -> Path:
    """Write a PNG of one sample: input, truth, prediction, error, and radial spectra; return its path.

    Truth and prediction share one colour scale (2-D) or y-range (1-D); the input joins
    it when ``share_input_scale`` is true, or, when it is None, when the input looks like
    the same field on a comparable scale (:func:`_same_scale`: e.g. a vorticity record,
    not a permeability). The error panel is ``prediction - truth`` on a symmetric scale.

    Parameters
    ----------
    inputs, truth, pred : Tensor
        One sample, ``(W,)`` or ``(H, W)`` real (the input may have another grid).
    spectra : mapping of str to (Tensor, Tensor)
        Curve name -> ``(wavenumbers (S,), energy (S,))`` drawn on log axes, e.g. the
        test-set mean error spectrum per resolution and the truth's spectrum. Each curve
        gets its own line style and marker; a curve that coincides with an earlier one
        says so in the legend; the y-axis stops at ``1e-16`` of the largest energy
        (round-off below it is not shown).
    labels : sequence of str
        Titles of the four field panels.

    Returns
    -------
    Path
        ``path``, written atomically (a temporary file renamed over it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_in, t, p = (f.detach().double().cpu().numpy() for f in (inputs, truth, pred))
    lo, hi = min(t.min(), p.min()), max(t.max(), p.max())
    if share_input_scale is None:
        share_input_scale = _same_scale(x_in, t)
    if share_input_scale:
        lo, hi = min(lo, x_in.min()), max(hi, x_in.max())
    err = p - t
    error_title = labels[3] if "prediction - truth" in labels[3] else f"{labels[3]} = prediction - truth"
    titles = [*labels[:3], error_title]
    fig, axes = plt.subplots(1, 5, figsize=(22, 4.9), constrained_layout=True)
    for i, (ax, f, label) in enumerate(zip(axes[:4], (x_in, t, p, err), titles)):
        shared = i in (1, 2) or (i == 0 and share_input_scale)
        if f.ndim == 1:
            if i == 2:
                ax.plot(np.arange(len(f)) / len(f), f, lw=1.2, label="prediction")
                ax.plot(np.arange(len(t)) / len(t), t, "k--", lw=0.8, label="truth")
                ax.legend(loc="best", fontsize=8)
            else:
                ax.plot(np.arange(len(f)) / len(f), f, lw=1.2)
            if shared:
                pad = 0.05 * (hi - lo or 1.0)
                ax.set_ylim(lo - pad, hi + pad)
            ax.set_xlabel("x")
        else:
            if i == 3:
                lim = float(np.abs(f).max()) or 1.0
                im = ax.imshow(f.T, origin="lower", extent=(0, 1, 0, 1), cmap="RdBu_r", vmin=-lim, vmax=lim)
            else:
                im = ax.imshow(f.T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis",
                               vmin=lo if shared else None, vmax=hi if shared else None)
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_xlabel("x")
            if i == 0:
                ax.set_ylabel("y")
        ax.set_title(label)
    _plot_spectra(axes[4], spectra)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _same_scale(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the value ranges of ``a`` and ``b`` overlap over at least half of the wider one."""
    overlap = min(a.max(), b.max()) - max(a.min(), b.min())
    return bool(overlap > 0.5 * max(np.ptp(a), np.ptp(b), 1e-300))


def _plot_spectra(ax, spectra: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Log-log radial spectra, each with its own style; coinciding curves are named in the legend."""
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"), ((0, (1, 3)), "x")]
    curves = []
    for name, (k, e) in spectra.items():
        k, e = k.detach().double().cpu().numpy(), e.detach().double().cpu().numpy()
        keep = (k > 0) & (e > 0)
        curves.append((name, k[keep], e[keep]))
    top = max((e.max() for _, _, e in curves if len(e)), default=1.0)
    floor = 1e-16 * top
    for i, (name, k, e) in enumerate(curves):
        label = name
        for prev, k0, e0 in curves[:i]:
            m = min(len(k0), len(k))
            if m and np.array_equal(k0[:m], k[:m]) and np.median(np.abs(np.log(e[:m] / e0[:m]))) < 0.1:
                same = prev.split(" (")[0].removeprefix("error, ")
                label += f" (on the {same} curve" + (f" up to |k|={k[m - 1]:g})" if m < len(k) else ")")
                break
        line, marker = styles[i % len(styles)]
        ax.loglog(k, e, linestyle=line, marker=marker, markersize=4, markevery=(0.03 * i, 0.15),
                  markerfacecolor="none", lw=1.4, label=label)
    clipped = any(len(e) and e.min() < floor for _, _, e in curves)
    if clipped:
        ax.set_ylim(bottom=floor)
    ax.set_xlabel("wavenumber |k|")
    ax.set_ylabel("energy per shell")
    ax.set_title("radial spectrum" + (" (cut at 1e-16 of max)" if clipped else ""))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)


def mean_spectrum(field: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean radial spectrum over samples and channels: ``(wavenumbers (S,), energy (S,))`` float64.

    The energy of each shell (:func:`spectral.analysis.radial_spectrum`), averaged over
    the ``n C`` fields; it sums to the mean square of ``field``.

    Shape
    -----
    field: (n, C, *grid) real -> (S,), (S,) float64

    >>> k, e = mean_spectrum(torch.ones(2, 1, 8, 8), 2)
    >>> e.tolist()[:2]
    [1.0, 0.0]
    """
    check_tensor("mean_spectrum", "field", field, kind="floating")
    ndim = check_int("ndim", ndim, min=1, max=3)
    energy, k = radial_spectrum(field.double(), ndim=ndim)  # (n, C, S)
    return k, energy.reshape(-1, energy.shape[-1]).mean(0)
