"""Spectral and Fourier layers for PyTorch on one set of FFT primitives.

Primitives: :mod:`spectral.fft` (truncated transforms, resampling),
:mod:`spectral.modes` (the kept-mode convention), :mod:`spectral.complex`
(complex weights, contraction, ModReLU), :mod:`spectral.analysis` (energy and error
spectra), :mod:`spectral.checks` (the argument and input checks every layer uses) and
:mod:`spectral.activations` (the activation registry).
Layers: FAN and FANformer attention, the Fourier head, FFT token mixers,
Fourier-KAN layers and implicit neural representations.
"""

from spectral.analysis import radial_spectrum
from spectral.complex import ModReLU
from spectral.fan import FAN, FANLayer
from spectral.fan_attention import FANAttention
from spectral.fft import resample
from spectral.fourier_head import FourierHead
from spectral.inr import FKAN, SIREN, FourierFeatureINR, projection_directions, widening_widths
from spectral.kan import FourierKANLayer
from spectral.mixers import (
    AFFMixer,
    AFNOMixer,
    CausalFourierMixer,
    FFTNetMixer,
    FNetMixer,
    GlobalFilterMixer,
)

__all__ = [
    "AFFMixer",
    "AFNOMixer",
    "CausalFourierMixer",
    "FAN",
    "FANAttention",
    "FANLayer",
    "FFTNetMixer",
    "FKAN",
    "FNetMixer",
    "FourierFeatureINR",
    "FourierHead",
    "FourierKANLayer",
    "GlobalFilterMixer",
    "ModReLU",
    "SIREN",
    "projection_directions",
    "radial_spectrum",
    "resample",
    "widening_widths",
]
