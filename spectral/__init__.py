"""Spectral and Fourier layers for PyTorch on one set of FFT primitives.

Primitives: :mod:`spectral.fft` (truncated transforms, resampling),
:mod:`spectral.modes` (the kept-mode convention), :mod:`spectral.complex`
(complex weights, contraction, ModReLU), :mod:`spectral.analysis` (spectra).
"""

from spectral.analysis import radial_spectrum
from spectral.complex import ModReLU
from spectral.fft import resample

__all__ = [
    "ModReLU",
    "radial_spectrum",
    "resample",
]
