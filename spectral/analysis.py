"""Radial (per-shell) energy spectra of fields and of errors.

Legend: ``B`` batch, ``*grid`` the last ``d`` axes, ``S`` radial shells.

For a field ``u`` on a periodic grid of ``P = prod(grid)`` points with Fourier
coefficients ``c_k = (1/P) sum_x u(x) exp(-2 pi i k.x / N)`` (``norm="forward"``),
Parseval gives ``sum_k |c_k|^2 = (1/P) sum_x |u(x)|^2``: the mean energy per grid
point. :func:`radial_spectrum` sums ``|c_k|^2`` over the shells
``s - 1/2 <= |k| < s + 1/2`` of integer wavenumber vectors ``k``, so the shells add
up to ``mean(|u|^2)`` exactly.
"""

from __future__ import annotations

import torch

from spectral.fft import compute_dtype

__all__ = ["radial_spectrum", "shell_index"]


def shell_index(grid: tuple[int, ...], device: torch.device | None = None) -> torch.Tensor:
    """Integer radial shell ``round(|k|)`` of every bin of a full ``fftn`` on ``grid``.

    >>> shell_index((4,)).tolist()
    [0, 1, 2, 1]
    """
    ks = [torch.fft.fftfreq(n, 1.0 / n, device=device, dtype=torch.float64) for n in grid]
    mesh = torch.meshgrid(*ks, indexing="ij")
    radius = torch.sqrt(sum(k**2 for k in mesh))
    return torch.round(radius).to(torch.long)


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
    wavenumber : Tensor
        ``(S,)`` the shell radii ``0 .. S-1``.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor or has neither a floating nor a complex dtype.
    ValueError
        If ``ndim`` is not 1, 2 or 3, or ``x`` has fewer than ``ndim`` axes.

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
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < ndim:
        raise ValueError(f"x: expected at least {ndim} dims (..., *grid), got {tuple(x.shape)}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"x must have a floating or complex dtype, got {x.dtype}")
    grid = tuple(x.shape[-ndim:])
    dims = tuple(range(-ndim, 0))
    xf = x.to(compute_dtype(x.dtype))  # half precisions (float16, bfloat16, complex32) in 32-bit
    power = torch.fft.fftn(xf, dim=dims, norm="forward").abs() ** 2  # (..., *grid) real
    shells = shell_index(grid, device=x.device).flatten()
    n_shells = int(shells.max()) + 1
    flat = power.reshape(*power.shape[: power.ndim - ndim], -1)
    energy = flat.new_zeros(*flat.shape[:-1], n_shells)
    energy.index_add_(-1, shells, flat)
    return energy, torch.arange(n_shells, device=x.device)
