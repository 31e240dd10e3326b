"""Token mixers with one interface: ``forward(x, mask=None)``, ``(B, N, D) -> (B, N, D)``.

Legend: ``B`` batch, ``N`` tokens, ``D`` embedding, ``C`` channels, ``H, W`` grid.

Sequence mixers: :class:`FNetMixer`, :class:`GlobalFilterMixer`, :class:`FFTNetMixer`,
:class:`AFNOMixer`, :class:`CausalFourierMixer`; image mixer (``(B, C, H, W)``):
:class:`AFFMixer`. ``mask`` is ``(B, N)`` bool, True = real token (``(B, H, W)`` for
AFF); padded tokens change no output. No mixer holds a residual or a norm:
:class:`MixerBlock` and :class:`SequenceClassifier` build models from them.
"""

from spectral.mixers.aff import AFFMixer
from spectral.mixers.afno import AFNOMixer
from spectral.mixers.blocks import MixerBlock, SequenceClassifier
from spectral.mixers.causal import CausalFourierMixer
from spectral.mixers.fftnet import FFTNetMixer
from spectral.mixers.fnet import FNetMixer
from spectral.mixers.global_filter import GlobalFilterMixer

__all__ = [
    "AFFMixer",
    "AFNOMixer",
    "CausalFourierMixer",
    "FFTNetMixer",
    "FNetMixer",
    "GlobalFilterMixer",
    "MixerBlock",
    "SequenceClassifier",
]
