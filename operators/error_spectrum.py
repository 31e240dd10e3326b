"""Normalised radial error spectra and their plot: moved to :mod:`spectral.analysis`.

They depend only on :mod:`spectral`; this module re-exports them so that
``from operators.error_spectrum import error_spectrum`` keeps working.
"""

from __future__ import annotations

from spectral.analysis import (  # noqa: F401  (Normalization: the type of the normalization argument)
    NORMALIZATIONS,
    Normalization,
    error_spectrum,
    fraction_above,
    plot_error_spectra,
)

__all__ = ["error_spectrum", "fraction_above", "plot_error_spectra", "NORMALIZATIONS"]
