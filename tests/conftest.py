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


def pytest_collection_modifyitems(config, items):
    # Cases parametrised on the CUDA device are GPU tests: `make gpu-check` selects them with -m gpu.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and str(callspec.params.get("device", "")) == "cuda":
            item.add_marker(pytest.mark.gpu)
