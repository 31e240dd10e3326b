"""A sweep of bad constructor arguments over every public module: named errors, never raw ones.

Every int, float, bool and string argument of each public class gets values of the wrong
kind (None, a string, a float where an int belongs, a bool, NaN, inf, a complex number, a
list) or out of range (-1, 0). Each must either be a value the argument legitimately takes
(listed in ``ACCEPTED``) or raise a TypeError / ValueError whose message names the argument:
never an AttributeError, an IndexError or a deep torch error, and never silent garbage.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import operators
import spectral
from operators import layers
from spectral import mixers

# The first positional arguments of a small valid instance, and keyword defaults that keep it small.
BASE = {
    "FAN": (3, 2), "FANLayer": (4, 8), "FANAttention": (8, 2), "FourierHead": (4, 6, 3), "FourierKANLayer": (3, 4, 3),
    "FKAN": (2, 1), "SIREN": (2, 1), "FourierFeatureINR": (2, 1), "ModReLU": (4,), "FNetMixer": (),
    "GlobalFilterMixer": (4, 6), "FFTNetMixer": (4, 6), "AFNOMixer": (4,), "AFFMixer": (4,),
    "CausalFourierMixer": (4, 6), "SpectralConv": (2, 3, (3, 3)), "FNO": (1, 1, (3, 3)),
    "SphericalConv": (2, 2, (6, 12)), "SFNO": (1, 1, (6, 12)), "LpLoss": (2,), "H1Loss": (2,),
    "SphereLoss": (), "ChannelLinear": (3, 4), "ChannelMLP": (3, 2, 4), "SoftGating": (3,),
    "GridEmbedding": (2,), "DomainPadding": (0.25,),
}
SMALL = {
    "FNO": dict(hidden_channels=4, n_layers=1), "SFNO": dict(hidden_channels=4, n_layers=1),
    "AFNOMixer": dict(num_blocks=2), "AFFMixer": dict(num_blocks=2), "FFTNetMixer": dict(num_heads=2),
    "FKAN": dict(hidden_features=8, num_frequencies=3), "SIREN": dict(hidden_features=8),
    "FourierFeatureINR": dict(hidden_features=8, num_features=4),
}
BAD = [None, "1", 1.5, True, math.nan, math.inf, -1, 0, np.int64(-2), [1], 1j]
# (class, argument, value) a user may legitimately pass.
ACCEPTED = {
    ("FKAN", "hidden_features", "[1]"),  # a list of widths
    ("SpectralConv", "n_modes", "[1]"), ("FNO", "n_modes", "[1]"),  # one axis given as a list
    ("FNO", "domain_padding", "[1]"),  # one fraction per axis
    ("FNO", "skip", "None"), ("FNO", "mlp_skip", "None"), ("SFNO", "skip", "None"), ("SFNO", "mlp_skip", "None"),
    ("LpLoss", "p", "inf"),  # the max norm
    ("DomainPadding", "fraction", "1.5"), ("DomainPadding", "fraction", "[1]"), ("DomainPadding", "fraction", "0"),
    ("SphereLoss", "p", "inf"),
    # 0 is a meaningful value: no lifting/projection MLP, no shrinkage, no floor, a zero initial filter
    *((cls, arg, "0") for cls in ("FNO", "SFNO") for arg in ("lifting_ratio", "projection_ratio", "mlp_expansion")),
    ("AFNOMixer", "sparsity_threshold", "0"), ("FourierHead", "eps", "0"), ("GlobalFilterMixer", "init_std", "0"),
    ("ModReLU", "init_bias", "-1"), ("ModReLU", "init_bias", "np.int64(-2)"),  # a dead zone around 0
}
SKIP_ARGS = {"device", "dtype", "mixer", "conv"}


def _classes():
    for package in (spectral, mixers, operators, layers):
        for name in package.__all__:
            if name in BASE:
                yield name, getattr(package, name)


CLASSES = dict(_classes())


def _cases():
    for name, cls in sorted(CLASSES.items()):
        params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in SKIP_ARGS]
        for index, param in enumerate(params):
            yield pytest.param(name, index, param, id=f"{name}-{param.name}")


def _harmless(param: inspect.Parameter, bad) -> bool:
    """The bad value equals the argument's own default, or is a default-like value of its kind."""
    default = param.default
    if bad is None and default is None:
        return True
    if isinstance(bad, bool) and isinstance(default, bool):
        return True
    if isinstance(default, (int, float)) and not isinstance(default, bool) and not isinstance(bad, bool):
        if isinstance(bad, (int, float, np.integer)) and not isinstance(bad, complex) and bad == default:
            return True
        if isinstance(default, float) and isinstance(bad, float) and math.isfinite(bad) and bad == 1.5:
            return True  # a plain float for a float argument
    return False


@pytest.mark.parametrize(("name", "index", "param"), list(_cases()))
def test_bad_values_raise_named_errors(name, index, param):
    cls = CLASSES[name]
    problems = []
    for bad in BAD:
        args, kwargs = list(BASE[name]), dict(SMALL.get(name, {}))
        if index < len(args):
            args[index] = bad
        else:
            kwargs[param.name] = bad
        try:
            cls(*args, **kwargs)
        except (TypeError, ValueError) as err:
            if param.name not in str(err):
                problems.append(f"{param.name}={bad!r}: {type(err).__name__} does not name it: {err}")
            continue
        except Exception as err:  # noqa: BLE001  (the point: any other exception is a defect)
            problems.append(f"{param.name}={bad!r}: raw {type(err).__name__}: {err}")
            continue
        if (name, param.name, repr(bad)) not in ACCEPTED and not _harmless(param, bad):
            problems.append(f"{param.name}={bad!r}: accepted")
    assert not problems, f"{name}: " + "; ".join(problems)


def test_every_public_class_with_arguments_is_swept():
    """A new public module without a row in BASE fails here."""
    swept = set(CLASSES)
    public = {n for p in (spectral, mixers, operators, layers) for n in p.__all__
              if isinstance(getattr(p, n), type) and hasattr(getattr(p, n), "forward")}
    exempt = {"MixerBlock", "SequenceClassifier", "FourierBlock", "LiftBlocksProject", "SpecBoost", "Normalized",
              "Trainer"}  # take modules or data, not sizes: covered by their own test files
    assert public - exempt <= swept, sorted(public - exempt - swept)
