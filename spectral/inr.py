"""Implicit neural representations: coordinates in ``[-1, 1]^d`` -> signal values.

Legend: ``...`` any leading (batch / grid) dims, ``d`` in_features (coordinate dims),
``H`` hidden_features, ``F_out`` out_features, ``K`` Fourier-KAN frequencies, ``R``
random Fourier features.

- :class:`FKAN`: a :class:`~spectral.kan.FourierKANLayer` on the coordinates (learnable
  per-coordinate Fourier series) followed by LayerNorm, then an MLP.
- :class:`SIREN`: sine activations ``sin(omega_0 (W x + b))`` with the SIREN initialisation.
- :class:`FourierFeatureINR`: random Fourier features ``[sin(2 pi B v), cos(2 pi B v)]``
  then a ReLU MLP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from spectral.activations import get_activation
from spectral.checks import check_choice, check_dtype_matches, check_int, check_number, check_real_dtype, check_tensor
from spectral.kan import FourierKANLayer

__all__ = ["FKAN_ACTIVATIONS", "FKAN", "SIREN", "FourierFeatureINR", "projection_directions", "widening_widths"]

FKAN_ACTIVATIONS = ("gated_tanh", "sine", "relu", "gelu", "silu")
FKANActivation = Literal["gated_tanh", "sine", "relu", "gelu", "silu"]


def _fkan_activation(name: str, z: torch.Tensor, omega_0: float) -> torch.Tensor:
    """FKAN's MLP activation: the two periodic ones here, the rest from :mod:`spectral.activations`."""
    if name == "gated_tanh":
        return (z + torch.tanh(omega_0 * z)) * torch.sigmoid(z)
    if name == "sine":
        return torch.sin(omega_0 * z)
    return get_activation(name)(z)


def _check_coords(owner: str, x: object, in_features: int, weight: torch.Tensor) -> None:
    check_tensor(owner, "coordinates", x)
    if x.ndim < 1 or x.shape[-1] != in_features:
        raise ValueError(f"{owner}: expected coordinates of shape (..., {in_features}), got {tuple(x.shape)}")
    check_dtype_matches(owner, x, weight, "coordinates")


def widening_widths(hidden_features: int) -> tuple[int, ...]:
    """The FKAN authors' image-model widths ``(H, 2H, 2H, 2H, 4H)`` for :class:`FKAN`'s ``hidden_features``."""
    h = check_int("hidden_features", hidden_features)
    return (h, 2 * h, 2 * h, 2 * h, 4 * h)


def _fkan_widths(hidden_features: object, n_layers: object) -> tuple[int, ...]:
    """Validated layer widths ``(H_1, ..., H_L)`` of :class:`FKAN`."""
    if isinstance(hidden_features, Sequence) and not isinstance(hidden_features, str):
        widths = tuple(hidden_features)
        if not widths:
            raise ValueError("hidden_features must be an int or a non-empty sequence of ints, got an empty sequence")
        widths = tuple(check_int(f"hidden_features[{i}]", w) for i, w in enumerate(widths))
        if n_layers is not None and check_int("n_layers", n_layers) != len(widths):
            raise ValueError(f"n_layers must equal len(hidden_features) = {len(widths)} when hidden_features is a "
                             f"sequence, got n_layers={n_layers!r} and hidden_features={widths}")
        return widths
    h = check_int("hidden_features", hidden_features)
    return (h,) * check_int("n_layers", 3 if n_layers is None else n_layers)


def projection_directions(in_features: int, directions: int, *, dtype=None, device=None) -> torch.Tensor:
    """Fixed unit vectors for :class:`FKAN`'s ``directions`` option: ``(d, D)``, one per column.

    ``d = 1``: only ``D = 1`` (the axis). ``d = 2``: the angles ``m pi / D``, ``m = 0..D-1``,
    evenly spread over the half circle (a direction and its opposite give the same series);
    both axes are among them when ``D`` is even. ``d >= 3``: the ``d`` axes, then ``D - d``
    directions drawn from a Gaussian with a fixed seed (so every instance gets the same ones).

    >>> projection_directions(2, 4).T
    tensor([[ 1.0000,  0.0000],
            [ 0.7071,  0.7071],
            [ 0.0000,  1.0000],
            [-0.7071,  0.7071]])
    """
    d = check_int("in_features", in_features)
    n = check_int("directions", directions)
    if n < d or (d == 1 and n > 1):
        need = "1 for in_features=1" if d == 1 else f"at least in_features={d}"
        raise ValueError(f"directions must be {need}, got {n}")
    if d == 2:
        theta = torch.arange(n, dtype=torch.float64) * math.pi / n
        u = torch.stack((torch.cos(theta), torch.sin(theta)))  # (2, D)
        u[u.abs() < 1e-12] = 0.0  # exact axes: cos(pi / 2) is 6e-17 in floating point
    else:
        extra = torch.randn(d, n - d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        u = torch.cat((torch.eye(d, dtype=torch.float64), extra / extra.norm(dim=0)), dim=1)  # (d, D)
    return u.to(dtype=dtype or torch.get_default_dtype(), device=device)


class _CoordinateNet(nn.Module):
    """What every INR here shares: validated ``in_features``/``out_features``, Linear layers, a read-out."""

    def _build(self, in_features: object, out_features: object, device, dtype) -> dict:
        """Check and store the widths; the factory arguments for the parameters."""
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        return {"device": device, "dtype": check_real_dtype("dtype", dtype)}

    def _uniform_widths(self, hidden_features: object, n_layers: object) -> list[int]:
        """Check and store ``hidden_features`` and ``n_layers``: the widths ``[H] * n_layers``."""
        self.hidden_features = check_int("hidden_features", hidden_features)
        self.n_layers = check_int("n_layers", n_layers)
        return [self.hidden_features] * self.n_layers

    def _build_mlp(self, sizes: Sequence[int], factory: dict) -> None:
        """``layers``: Linear ``sizes[i] -> sizes[i + 1]``; ``out``: Linear ``sizes[-1] -> out_features``."""
        self.layers = nn.ModuleList(nn.Linear(a, b, **factory) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], self.out_features, **factory)


def _siren_uniform_(linear: nn.Linear, bound: float) -> None:
    """SIREN weight init ``U(-bound, bound)``; the bias keeps ``nn.Linear``'s default."""
    linear.reset_parameters()
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)


class SIREN(_CoordinateNet):
    """Sinusoidal representation network: ``h <- sin(omega_0 (W h + b))``, then a linear output.

    Initialisation (Sitzmann et al.): first layer ``W ~ U(-1/d, 1/d)``; every later layer
    (output included) ``W ~ U(-sqrt(6/n)/omega_0, sqrt(6/n)/omega_0)`` with ``n`` its fan-in,
    so pre-activations stay standard-distributed through depth. Biases keep
    ``nn.Linear``'s default ``U(-1/sqrt(n), 1/sqrt(n))``.

    Parameters
    ----------
    in_features : int
        ``d``, coordinate dimensions.
    out_features : int
        ``F_out``, signal channels.
    hidden_features : int
        ``H``, width of every sine layer.
    n_layers : int
        Number of sine layers (``d -> H``, then ``n_layers - 1`` of ``H -> H``); a linear
        ``H -> F_out`` layer follows.
    omega_0 : float
        Frequency factor of every sine layer (30 in the paper).
    device, dtype
        Where and in which dtype to create the parameters.

    Shape
    -----
    x: (..., d) real in [-1, 1] -> (..., F_out) real

    Notes
    -----
    Centre the targets. The output starts near zero and, at the paper's Adam lr 1e-4, its bias
    moves by about 1e-4 per step, so an offset such as an image's mean grey level 0.47 on a
    [0, 1] scale takes thousands of steps to absorb; the reference maps images to [-1, 1]
    (``examples/inr_image.py``: 32.2 -> 43.2 dB train PSNR after 300 steps at 128x128).

    References
    ----------
    Sitzmann et al., "Implicit Neural Representations with Periodic Activation Functions", NeurIPS 2020.

    Examples
    --------
    >>> SIREN(2, 1, hidden_features=32, n_layers=2)(torch.rand(8, 8, 2)).shape
    torch.Size([8, 8, 1])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden_features: int = 256,
        n_layers: int = 3,
        omega_0: float = 30.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = self._build(in_features, out_features, device, dtype)
        widths = self._uniform_widths(hidden_features, n_layers)
        self.omega_0 = check_number("omega_0", omega_0, min=0, min_open=True)
        self._build_mlp([self.in_features, *widths], factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _siren_uniform_(self.layers[0], 1.0 / self.in_features)
        bound = math.sqrt(6.0 / self.hidden_features) / self.omega_0
        for linear in [*self.layers[1:], self.out]:
            _siren_uniform_(linear, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_coords("SIREN", x, self.in_features, self.layers[0].weight)
        for linear in self.layers:
            x = torch.sin(self.omega_0 * linear(x))  # (..., H)
        return self.out(x)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, hidden_features={self.hidden_features}, "
            f"n_layers={self.n_layers}, omega_0={self.omega_0}"
        )


class FourierFeatureINR(_CoordinateNet):
    """Random Fourier features then a ReLU MLP: ``MLP([sin(2 pi B v), cos(2 pi B v)])``.

    ``B`` is ``(R, d)`` with entries ``N(0, sigma^2)``, drawn at construction (and by
    :meth:`reset_parameters`) and kept fixed: a persistent buffer, so it is saved in the
    ``state_dict`` but not trained and not counted in ``parameters()``.

    Parameters
    ----------
    in_features : int
        ``d``, coordinate dimensions.
    out_features : int
        ``F_out``, signal channels.
    num_features : int
        ``R``, random frequencies (the embedding has ``2 R`` entries).
    sigma : float
        Standard deviation of ``B``, in cycles per unit coordinate; the scale of detail the
        network fits easily (too large: noisy interpolation; too small: blur).
    hidden_features : int
        ``H``, width of every ReLU layer.
    n_layers : int
        ReLU layers (``2R -> H``, then ``n_layers - 1`` of ``H -> H``) before the linear output.
    device, dtype
        Where and in which dtype to create parameters and ``B``.

    Shape
    -----
    x: (..., d) real in [-1, 1] -> (..., F_out) real

    References
    ----------
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low
    Dimensional Domains", NeurIPS 2020.

    Examples
    --------
    >>> FourierFeatureINR(3, 2, num_features=16, hidden_features=32)(torch.rand(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        num_features: int = 256,
        sigma: float = 10.0,
        hidden_features: int = 256,
        n_layers: int = 3,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = self._build(in_features, out_features, device, dtype)
        self.num_features = check_int("num_features", num_features)
        self.sigma = check_number("sigma", sigma, min=0, min_open=True)
        widths = self._uniform_widths(hidden_features, n_layers)
        self.register_buffer("frequencies", torch.empty(self.num_features, self.in_features, **factory))  # (R, d)
        self._build_mlp([2 * self.num_features, *widths], factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.frequencies.normal_(0.0, self.sigma)
        for linear in [*self.layers, self.out]:
            linear.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_coords("FourierFeatureINR", x, self.in_features, self.out.weight)
        proj = (2 * math.pi) * (x @ self.frequencies.t())  # (..., R)
        x = torch.cat((torch.sin(proj), torch.cos(proj)), dim=-1)  # (..., 2R)
        for linear in self.layers:
            x = torch.relu(linear(x))  # (..., H)
        return self.out(x)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, num_features={self.num_features}, sigma={self.sigma}, "
            f"hidden_features={self.hidden_features}, n_layers={self.n_layers}"
        )


class FKAN(_CoordinateNet):
    """Fourier-KAN implicit representation: a learnable Fourier series per coordinate, then an MLP.

    ``h = LayerNorm(FourierKAN(x))``, ``h <- act(W h + b)`` for ``n_layers - 1`` layers,
    ``y = W_out h + b_out``. The first layer gives every (coordinate, hidden unit) pair its
    own series ``sum_k A cos(k x_i) + B sin(k x_i)``, so the network learns which
    frequencies the signal needs instead of fixing them in advance (SIREN's ``omega_0``,
    Fourier features' ``sigma``).

    Parameters
    ----------
    in_features : int
        ``d``, coordinate dimensions.
    out_features : int
        ``F_out``, signal channels.
    num_frequencies : int
        ``K``: wavenumbers ``1..K`` of the first layer. On ``[-1, 1]`` wavenumber ``k`` has
        ``k / pi`` periods, so a grid of ``N`` points per axis is resolved up to ``K ~ pi N / 2``.
        To interpolate between the samples keep ``K`` well below that: the MLP multiplies the
        first layer's frequencies (on a 128x128 training grid, Nyquist ~201, held-out PSNR
        fell from 23.3 dB at ``K = 32`` to 22.5 at 64 and 21.1 at 128; ``examples/inr_image.py``).
    hidden_features : int or sequence of int
        An int ``H``: the width of the Fourier-KAN layer and of every MLP layer. A sequence
        ``(H_1, ..., H_L)``: the Fourier-KAN layer is ``H_1`` wide and the MLP layers are
        ``H_1 -> H_2 -> ... -> H_L`` (the authors' widening MLP is ``(H, 2H, 2H, 2H, 4H)``,
        see :func:`widening_widths`).
    n_layers : int, optional
        Hidden layers in all: the Fourier-KAN layer plus ``n_layers - 1`` MLP layers. Default
        3 for an int ``hidden_features``; for a sequence it is ``len(hidden_features)`` and,
        if given, must equal it.
    activation : {"gated_tanh", "sine", "relu", "gelu", "silu"}
        MLP activation. ``"gated_tanh"`` is ``(z + tanh(omega_0 z)) sigmoid(z)`` (the
        authors' code); ``"sine"`` is ``sin(omega_0 z)``. For these two the MLP and output
        weights use the SIREN hidden-layer init ``U(+-sqrt(6/n)/omega_0)``, ``n`` the
        layer's fan-in; the others keep ``nn.Linear``'s default.
    omega_0 : float
        Frequency factor of ``"gated_tanh"`` and ``"sine"`` (ignored by the others).
    smooth_init : bool
        Passed to :class:`~spectral.kan.FourierKANLayer` (``1/k^2`` initial coefficients).
    directions : int, optional
        ``None`` (default): the Fourier-KAN layer acts on the ``d`` coordinates, as in the
        paper. An int ``D``: it acts on the projections ``u_m . x`` onto ``D`` fixed unit
        vectors instead (:func:`projection_directions`; a non-persistent buffer
        ``directions_matrix`` of shape ``(d, D)``), so its series also run along oblique
        directions. The layer then has ``D / d`` times the parameters. See Notes.
    device, dtype
        Where and in which dtype to create the parameters.

    Raises
    ------
    TypeError
        For a count that is not an int (None, str, float, bool), an ``omega_0`` that is not a
        real number, a non-bool ``smooth_init``, a non-real ``dtype``; in ``forward`` for
        coordinates that are not a real floating tensor.
    ValueError
        For an unknown ``activation`` (the message lists :data:`FKAN_ACTIVATIONS`), counts
        below 1, an empty ``hidden_features`` sequence or one whose length differs from
        ``n_layers``, a non-positive or non-finite ``omega_0``, or ``directions`` below ``d``
        (or above 1 for ``d = 1``); in ``forward`` for a last axis other than ``d``.

    Shape
    -----
    x: (..., d) real in [-1, 1] -> (..., F_out) real

    Notes
    -----
    The authors' image model (``FKAN_INR.ipynb``) is this first layer with LayerNorm, then four
    gated-tanh layers widening ``H -> 2H -> 2H -> 2H -> 4H`` with the SIREN hidden-layer init,
    and a linear output, trained with Adam 1e-4 decayed to 1e-5:
    ``hidden_features=widening_widths(H)``. An int ``hidden_features`` keeps every layer ``H`` wide.

    ``directions``: the paper's first layer is a sum of one-axis series, so an oblique edge has
    to be assembled by the MLP, and between the training pixels the fit shows axis-aligned
    streaks. Series along ``D`` fixed directions remove most of that. On the 256x256 camera image
    fitted on its even pixels (``examples/inr_image.py``, ~132.5k parameters, 500 Adam steps),
    held-out / training PSNR: the paper's form 25.66 / 38.42 dB; ``directions=8, omega_0=10``
    26.57 / 36.91; ``directions=16, num_frequencies=16, activation="sine"`` with
    ``hidden_features=(64, 284, 284)`` (a narrow Fourier layer, a wide MLP) at Adam lr 1.3e-4,
    mean of eight seeds, 26.94 / 37.06 against SIREN's 26.89 / 36.62: at least level with SIREN,
    by small margins (docs/inr_image.md).

    References
    ----------
    Mehrabian et al., "Implicit Neural Representations with Fourier Kolmogorov-Arnold
    Networks", ICASSP 2025 (arXiv:2409.09323).

    Examples
    --------
    >>> net = FKAN(2, 3, num_frequencies=16, hidden_features=32, n_layers=2)
    >>> net(torch.rand(4, 4, 2) * 2 - 1).shape
    torch.Size([4, 4, 3])
    >>> FKAN(2, 1, num_frequencies=8, hidden_features=widening_widths(16)).widths
    (16, 32, 32, 32, 64)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        num_frequencies: int = 64,
        hidden_features: int | Sequence[int] = 256,
        n_layers: int | None = None,
        activation: FKANActivation = "gated_tanh",
        omega_0: float = 30.0,
        smooth_init: bool = False,
        directions: int | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.activation = check_choice("activation", activation, FKAN_ACTIVATIONS)
        factory = self._build(in_features, out_features, device, dtype)
        self.widths = _fkan_widths(hidden_features, n_layers)
        sequence = isinstance(hidden_features, Sequence) and not isinstance(hidden_features, str)
        self.hidden_features = self.widths if sequence else self.widths[0]
        self.n_layers = len(self.widths)
        self.omega_0 = check_number("omega_0", omega_0, min=0, min_open=True)
        self.directions = check_int("directions", directions, allow_none=True)
        if self.directions is not None:
            u = projection_directions(self.in_features, self.directions, **factory)  # (d, D)
            self.register_buffer("directions_matrix", u, persistent=False)
        else:
            self.directions_matrix = None
        series_inputs = self.in_features if self.directions is None else self.directions
        self.kan = FourierKANLayer(series_inputs, self.widths[0], num_frequencies, smooth_init=smooth_init, **factory)
        self.norm = nn.LayerNorm(self.widths[0], **factory)
        self._build_mlp(self.widths, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.kan.reset_parameters()
        self.norm.reset_parameters()
        periodic = self.activation in ("gated_tanh", "sine")
        for linear in [*self.layers, self.out]:
            if periodic:
                _siren_uniform_(linear, math.sqrt(6.0 / linear.in_features) / self.omega_0)
            else:
                linear.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_coords("FKAN", x, self.in_features, self.kan.weight)
        if self.directions_matrix is not None:
            x = x @ self.directions_matrix  # (..., D) projections onto the fixed directions
        h = self.norm(self.kan(x))  # (..., H_1)
        for linear in self.layers:
            h = _fkan_activation(self.activation, linear(h), self.omega_0)  # (..., H_l)
        return self.out(h)

    @property
    def num_frequencies(self) -> int:
        return self.kan.num_frequencies

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, num_frequencies={self.num_frequencies}, "
            f"hidden_features={self.hidden_features}, n_layers={self.n_layers}, "
            f"activation={self.activation!r}, omega_0={self.omega_0}"
            + ("" if self.directions is None else f", directions={self.directions}")
        )
