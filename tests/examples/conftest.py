"""Fixtures shared by the example tests."""

from __future__ import annotations

import pytest
import torch


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
