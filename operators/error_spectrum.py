"""Where an operator's error sits in wavenumber: normalised radial error spectra and their plot.

Legend: ``n`` samples, ``C`` channels (any number of axes between samples and grid),
``*grid`` the last ``ndim`` axes (``H, W`` in 2-D), ``S`` radial shells.

Definition (:func:`error_spectrum`). For predictions ``p_i`` and targets ``y_i``
(``i = 1..n``) with error ``e_i = p_i - y_i``, forward-normalised Fourier coefficients
``ê_i(k) = (1/P) sum_x e_i(x) exp(-2 pi i k.x / N)`` over ``P = prod(grid)`` points, and
shell ``s`` the integer wavenumber vectors with ``round(|k|) = s``
(:func:`spectral.analysis.radial_spectrum`):

    E(s) = sum_i sum_c sum_{round(|k|)=s} |ê_{i,c}(k)|^2  /  sum_i sum_c mean_x |y_{i,c}(x)|^2.

By Parseval ``sum_s E(s) = sum |p - y|^2 / sum |y|^2`` over all samples, channels and
points: the normalised MSE of the whole set (the squared relative L2 error of the
concatenated samples). ``normalization="per-sample"`` divides each sample by its own
target energy and averages over samples instead, so ``sum_s E(s)`` is the mean over
samples of the squared relative L2 error ``||p_i - y_i||^2 / ||y_i||^2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch

from spectral.analysis import radial_spectrum

__all__ = ["error_spectrum", "fraction_above", "plot_error_spectra", "NORMALIZATIONS"]

NORMALIZATIONS: tuple[str, ...] = ("global", "per-sample")
Normalization = Literal["global", "per-sample"]


def error_spectrum(
    pred: torch.Tensor, target: torch.Tensor, *, ndim: int = 2, normalization: Normalization = "global"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Error energy per radial wavenumber shell, normalised to add up to the normalised MSE.

    Parameters
    ----------
    pred, target : Tensor
        Same shape ``(n, ..., *grid)``, real (or complex); every axis before the last
        ``ndim`` except the first (samples) is summed over as channels.
    ndim : int
        Number of trailing grid axes (1, 2 or 3).
    normalization : {"global", "per-sample"}
        Module docstring: ``"global"`` adds up to ``sum |p - y|^2 / sum |y|^2``,
        ``"per-sample"`` to ``mean_i ||p_i - y_i||^2 / ||y_i||^2``.

    Returns
    -------
    spectrum : Tensor
        ``(S,)`` float64, ``E(s)``.
    wavenumbers : Tensor
        ``(S,)`` the shell radii ``0 .. S-1``.

    Shape
    -----
    pred, target: (n, C, H, W) -> spectrum (S,) float64, S = round(sqrt(sum_i (N_i // 2)^2)) + 1

    Examples
    --------
    >>> y = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    >>> p = y + 0.1 * torch.randn_like(y)
    >>> e, k = error_spectrum(p, y)
    >>> bool(torch.isclose(e.sum(), ((p - y) ** 2).sum() / (y ** 2).sum()))
    True
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not (t.is_floating_point() or t.is_complex()):
            raise TypeError(f"{name} must have a floating or complex dtype, got {t.dtype}")
    if pred.shape != target.shape or pred.ndim < ndim + 1:
        raise ValueError(
            f"pred and target must have the same shape (n, ..., *grid) with {ndim} grid axes, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    dtype = torch.complex128 if pred.is_complex() or target.is_complex() else torch.float64
    y = target.to(dtype)
    err_shells, k = radial_spectrum(pred.to(dtype) - y, ndim=ndim)  # (n, ..., S) float64
    err = err_shells.reshape(err_shells.shape[0], -1, err_shells.shape[-1]).sum(1)  # (n, S)
    ref = (y.abs() ** 2).mean(tuple(range(-ndim, 0))).reshape(y.shape[0], -1).sum(1)  # (n,) mean energy
    tiny = torch.finfo(torch.float64).tiny
    if normalization == "global":
        return err.sum(0) / ref.sum().clamp_min(tiny), k
    return (err / ref.clamp_min(tiny)[:, None]).mean(0), k


def fraction_above(spectrum: torch.Tensor, wavenumbers: torch.Tensor, k: float) -> float:
    """Share of the error energy in the shells with wavenumber ``> k``: ``sum_{s > k} E(s) / sum_s E(s)``.

    With an FNO keeping ``n_modes = m`` (``|k_i| < m``), ``k = m - 1`` (its highest kept
    mode) gives the share at wavenumbers ``s >= m``.

    Shape
    -----
    spectrum, wavenumbers: (S,) -> float
    """
    if not (isinstance(spectrum, torch.Tensor) and isinstance(wavenumbers, torch.Tensor)) or spectrum.ndim != 1 \
            or spectrum.shape != wavenumbers.shape:
        raise ValueError(
            f"spectrum and wavenumbers must be 1-D tensors of equal length, got {_shape(spectrum)} and {_shape(wavenumbers)}"
        )
    total = float(spectrum.sum())
    if not total > 0:
        raise ValueError(f"spectrum must have a positive total, got {total}")
    return float(spectrum[wavenumbers > k].sum()) / total


def plot_error_spectra(
    spectra: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    kept_mode: int | None = None,
    ax: Any = None,
    title: str | None = None,
    log_x: bool = False,
) -> Any:
    """Plot several models' error spectra on one log-scale axis; returns the matplotlib Axes.

    Parameters
    ----------
    spectra : mapping of str to (spectrum, wavenumbers)
        Label -> the output of :func:`error_spectrum` (one curve each).
    kept_mode : int, optional
        Draw a vertical line at this wavenumber (an FNO's highest kept mode,
        ``n_modes - 1``).
    ax : matplotlib Axes, optional
        Drawn into; a new figure otherwise (matplotlib is imported here, not at import).
    title : str, optional
    log_x : bool
        Logarithmic wavenumber axis too (shell 0 is then left out).
    """
    if not isinstance(spectra, Mapping) or not spectra:
        raise ValueError(f"spectra must be a non-empty mapping label -> (spectrum, wavenumbers), got {spectra!r:.80}")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (spectrum, k) in spectra.items():
        s, kk = spectrum.detach().cpu().double(), k.detach().cpu().double()
        keep = (s > 0) & ((kk > 0) if log_x else torch.ones_like(kk, dtype=torch.bool))
        ax.plot(kk[keep].numpy(), s[keep].numpy(), marker=".", markersize=3, label=label)
    if kept_mode is not None:
        ax.axvline(kept_mode, color="k", linestyle="--", linewidth=1, label=f"highest kept mode ({kept_mode})")
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("radial wavenumber |k|")
    ax.set_ylabel("error energy / target energy")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


def _shape(t: object) -> object:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
