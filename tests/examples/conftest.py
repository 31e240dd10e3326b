"""Fixtures shared by the example tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# The examples import their shared helpers as ``from _common import ...`` (a script's own folder is on
# sys.path when it runs): give every example test the same path, whichever test file runs first.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))


@pytest.fixture
def adam_lrs(monkeypatch) -> list[float]:
    """The learning rate of every ``torch.optim.Adam.step`` call made during the test, in order."""
    seen: list[float] = []
    real_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    return seen
