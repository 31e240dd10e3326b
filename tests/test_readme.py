"""Every Python block of README.md runs as written (the usage examples cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _block_id(block: str) -> str:
    first = next(line for line in block.splitlines() if line.startswith(("from spectral", "from operators")))
    return first.split()[1]


def test_readme_has_usage_blocks():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{i}-{_block_id(b)}" for i, b in enumerate(BLOCKS)])
def test_readme_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the blocks write (runs/...) land in a temporary folder
    monkeypatch.setenv("SPECTRAL_OPERATORS_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
