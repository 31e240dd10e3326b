"""Radial (per-shell) energy spectra of fields and of errors.

Legend: ``n`` samples, ``B`` batch, ``C`` channels, ``*grid`` the last ``d`` axes
(``H, W`` in 2-D), ``S`` radial shells.

For a field ``u`` on a periodic grid of ``P = prod(grid)`` points with Fourier
coefficients ``c_k = (1/P) sum_x u(x) exp(-2 pi i k.x / N)`` (``norm="forward"``),
Parseval gives ``sum_k |c_k|^2 = (1/P) sum_x |u(x)|^2``: the mean energy per grid
point. :func:`radial_spectrum` sums ``|c_k|^2`` over the shells
``s - 1/2 <= |k| < s + 1/2`` of integer wavenumber vectors ``k``, so the shells add
up to ``mean(|u|^2)`` exactly.

Error spectra (:func:`error_spectrum`): where an operator's error sits in wavenumber.
For predictions ``p_i`` and targets ``y_i`` (``i = 1..n``) with error ``e_i = p_i - y_i``
and shell ``s`` the integer wavenumber vectors with ``round(|k|) = s``::

    E(s) = sum_i sum_c sum_{round(|k|)=s} |ê_{i,c}(k)|^2  /  sum_i sum_c mean_x |y_{i,c}(x)|^2.

By Parseval ``sum_s E(s) = sum |p - y|^2 / sum |y|^2`` over all samples, channels and
points: the normalised MSE of the whole set (the squared relative L2 error of the
concatenated samples). ``normalization="per-sample"`` divides each sample by its own
target energy and averages over samples instead, so ``sum_s E(s)`` is the mean over
samples of the squared relative L2 error ``||p_i - y_i||^2 / ||y_i||^2``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch

from spectral.checks import check_bool, check_choice, check_int, check_ints, check_number, check_tensor
from spectral.fft import compute_dtype, empty_batch

__all__ = [
    "radial_spectrum",
    "shell_index",
    "error_spectrum",
    "fraction_above",
    "plot_error_spectra",
    "NORMALIZATIONS",
]

NORMALIZATIONS: tuple[str, ...] = ("global", "per-sample")
Normalization = Literal["global", "per-sample"]


def shell_index(grid: tuple[int, ...], device: torch.device | None = None) -> torch.Tensor:
    """Integer radial shell ``round(|k|)`` of every bin of a full ``fftn`` on ``grid``.

    >>> shell_index((4,)).tolist()
    [0, 1, 2, 1]
    """
    grid = check_ints("grid", grid)
    ks = [torch.fft.fftfreq(n, 1.0 / n, device=device, dtype=torch.float64) for n in grid]
    mesh = torch.meshgrid(*ks, indexing="ij")
    radius = torch.sqrt(sum(k**2 for k in mesh))
    return torch.round(radius).to(torch.long)


def _n_shells(grid: tuple[int, ...]) -> int:
    """``max(shell_index(grid)) + 1`` without building it: the largest ``|k_i|`` is ``N_i // 2``."""
    return round(math.sqrt(float(sum((n // 2) ** 2 for n in grid)))) + 1


def radial_spectrum(x: torch.Tensor, ndim: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy of ``x`` per integer radial wavenumber shell over its last ``ndim`` axes.

    Parameters
    ----------
    x : Tensor
        ``(..., *grid)`` real or complex field(s); leading axes are batch axes. Half
        precisions (float16, bfloat16, complex32) are transformed in float32 / complex64.
    ndim : int
        Number of trailing spatial axes (1, 2 or 3).

    Returns
    -------
    energy : Tensor
        ``(..., S)`` real, ``energy[..., s] = sum_{round(|k|) = s} |c_k|^2`` with
        forward-normalised coefficients; ``energy.sum(-1) == mean(|x|^2)`` over the grid.
        An empty batch gives an empty ``energy``.
    wavenumber : Tensor
        ``(S,)`` the shell radii ``0 .. S-1``.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor or has neither a floating nor a complex dtype, or
        ``ndim`` is not an int (a bool is not).
    ValueError
        If ``ndim`` is not 1, 2 or 3, ``x`` has fewer than ``ndim`` axes or an empty grid axis.

    Shape
    -----
    x: (B, C, H, W) -> energy (B, C, S), S = round(sqrt(sum_i (N_i // 2)^2)) + 1

    Examples
    --------
    >>> u = torch.randn(3, 32, 32, dtype=torch.float64)
    >>> e, k = radial_spectrum(u, ndim=2)
    >>> bool(torch.allclose(e.sum(-1), (u ** 2).mean((-2, -1))))
    True
    """
    ndim = check_int("ndim", ndim, min=1, max=3)
    check_tensor("radial_spectrum", "x", x, kind="floating")
    if x.ndim < ndim:
        raise ValueError(f"x: expected at least {ndim} dims (..., *grid), got {tuple(x.shape)}")
    grid = tuple(x.shape[-ndim:])
    if 0 in grid:
        raise ValueError(f"radial_spectrum: x has an empty grid axis: shape {tuple(x.shape)} with {ndim} grid axes")
    n_shells = _n_shells(grid)
    xf = x.to(compute_dtype(x.dtype))  # half precisions (float16, bfloat16, complex32) in 32-bit
    wavenumbers = torch.arange(n_shells, device=x.device)
    real = xf.real.dtype if xf.is_complex() else xf.dtype
    if x.numel() == 0:  # an empty batch: FFT backends reject it
        return empty_batch(x, (*x.shape[:-ndim], n_shells), dtype=real), wavenumbers
    dims = tuple(range(-ndim, 0))
    power = torch.fft.fftn(xf, dim=dims, norm="forward").abs() ** 2  # (..., *grid) real
    shells = shell_index(grid, device=x.device).flatten()
    flat = power.reshape(*power.shape[: power.ndim - ndim], -1)
    energy = flat.new_zeros(*flat.shape[:-1], n_shells)
    energy.index_add_(-1, shells, flat)
    return energy, wavenumbers


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
        ``(S,)`` float64, ``E(s)``; zeros for ``n = 0`` samples (no sample, no error).
    wavenumbers : Tensor
        ``(S,)`` the shell radii ``0 .. S-1``.

    Raises
    ------
    ValueError
        Shapes that differ or have too few axes, an unknown ``normalization``, ``ndim``
        not in 1..3, or a target with zero energy (all zeros: the relative error is
        undefined; with ``"per-sample"``, any such sample). Compare absolute errors
        with ``radial_spectrum(pred - target)`` instead.
    TypeError
        A non-tensor or non-floating ``pred`` / ``target``, a non-int ``ndim``.

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
    check_choice("normalization", normalization, NORMALIZATIONS)
    ndim = check_int("ndim", ndim, min=1, max=3)
    for name, t in (("pred", pred), ("target", target)):
        check_tensor("error_spectrum", name, t, kind="floating")
    if pred.shape != target.shape or pred.ndim < ndim + 1:
        raise ValueError(
            f"pred and target must have the same shape (n, ..., *grid) with {ndim} grid axes, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    dtype = torch.complex128 if pred.is_complex() or target.is_complex() else torch.float64
    y = target.to(dtype)
    err_shells, k = radial_spectrum(pred.to(dtype) - y, ndim=ndim)  # (n, ..., S) float64
    if pred.shape[0] == 0:
        return empty_batch(pred, k.shape, [target], dtype=torch.float64), k
    err = err_shells.reshape(err_shells.shape[0], -1, err_shells.shape[-1]).sum(1)  # (n, S)
    ref = (y.abs() ** 2).mean(tuple(range(-ndim, 0))).reshape(y.shape[0], -1).sum(1)  # (n,) mean energy
    _check_target_energy(ref, normalization)
    if normalization == "global":
        return err.sum(0) / ref.sum(), k
    return (err / ref[:, None]).mean(0), k


def _check_target_energy(ref: torch.Tensor, normalization: str) -> None:
    """ValueError where the normalising target energy is zero (the relative error has no value)."""
    if ref.device.type == "meta":  # shapes only: no values to check
        return
    zero = (ref == 0).nonzero().flatten().tolist() if normalization == "per-sample" else ([] if ref.sum() > 0 else [-1])
    if zero:
        which = "target has zero energy (all zeros)" if zero == [-1] else \
            f"target samples {zero[:8]}{'...' if len(zero) > 8 else ''} have zero energy (all zeros)"
        raise ValueError(
            f"error_spectrum: {which}, so the error relative to it is undefined "
            f"(normalization={normalization!r}); compare absolute errors with radial_spectrum(pred - target)"
        )


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
    k = check_number("k", k)
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
    kept_mode = check_int("kept_mode", kept_mode, min=0, allow_none=True)
    log_x = check_bool("log_x", log_x)
    import matplotlib.pyplot as plt  # lazily: importing spectral never imports matplotlib

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
