"""Shared fixtures: ``device`` (CPU, plus CUDA when present), a seeded ``generator``, TF32 off."""

from __future__ import annotations

import pytest
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=_DEVICES, ids=lambda d: f"device={d}")
def device(request) -> torch.device:
    """Every available device; CUDA cases also carry the ``gpu`` mark via the id."""
    return torch.device(request.param)


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU generator seeded the same way in every test."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One intra-op thread for tiny models and solves (extra threads only add contention on CI cores).

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    # Cases parametrised on the CUDA device are GPU tests: `make gpu-check` selects them with -m gpu.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and str(callspec.params.get("device", "")) == "cuda":
            item.add_marker(pytest.mark.gpu)


@pytest.fixture
def leaky_irfft(monkeypatch) -> None:
    """Make ``torch.fft.irfft`` let the imaginary parts of the DC and (even ``n``) Nyquist bins leak into
    its output, as some complex-to-real backends do (CPU's pocketfft drops them), so a test can check that
    the code takes the Hermitian part itself instead of relying on the backend."""
    real_irfft = torch.fft.irfft

    def irfft(x, n=None, dim=-1, norm=None):
        y = real_irfft(x, n=n, dim=dim, norm=norm)
        n = y.shape[dim]
        shape = [1] * y.ndim
        shape[dim] = n
        t = torch.arange(n, dtype=y.dtype, device=y.device).reshape(shape)
        leak = x.imag.narrow(dim, 0, 1) * torch.cos(0.7 * t)
        if n % 2 == 0 and x.shape[dim] == n // 2 + 1:
            leak = leak + x.imag.narrow(dim, n // 2, 1) * torch.sin(0.3 * t)
        return y + leak

    monkeypatch.setattr(torch.fft, "irfft", irfft)
