"""Default run folders of the PDE examples and the demo: no default command writes into another's folder.

``make demo`` (``demo.py``), ``darcy_fno.py --quick`` and ``darcy_fno.py`` train different
configurations; each run folder holds one configuration's results, so each default command
gets its own folder (``runs/demo``, ``runs/darcy-quick``, ``runs/darcy``), and an explicit
``--out`` always wins. The module attribute ``RUNS`` is pointed at a temporary folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.examples._load import load_example

__all__: list[str] = []

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]

TINY = ["--n-train", "4", "--n-test", "2", "--epochs", "1", "--batch-size", "4", "--width", "4", "--layers", "1",
        "--modes", "3", "--no-progress"]
DARCY = ["--resolution", "8", *TINY]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the module: the tiny Darcy set is generated once."""
    return tmp_path_factory.mktemp("cache")


def _run_folder(results: dict) -> Path:
    return Path(results["plot"]).parent


@pytest.mark.parametrize(("quick", "folder"), [(True, "darcy-quick"), (False, "darcy")], ids=["quick", "full"])
def test_darcy_quick_and_full_runs_have_their_own_folders(quick, folder, tmp_path, shared_cache):
    darcy_fno = load_example("darcy_fno")
    darcy_fno.RUNS = tmp_path
    results = darcy_fno.main((["--quick"] if quick else []) + DARCY + ["--cache-dir", str(shared_cache)])
    assert _run_folder(results) == tmp_path / folder
    assert json.loads((tmp_path / folder / "args.json").read_text())["resolution"] == 8


def test_explicit_out_wins_over_the_quick_folder(tmp_path, shared_cache):
    darcy_fno = load_example("darcy_fno")
    darcy_fno.RUNS = tmp_path / "runs"
    results = darcy_fno.main(["--quick", "--out", str(tmp_path / "mine"), *DARCY, "--cache-dir", str(shared_cache)])
    assert _run_folder(results) == tmp_path / "mine"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("example", "full", "folder"),
    [("darcy", False, "demo"), ("darcy", True, "demo-full"), ("burgers", False, "demo-burgers"),
     ("burgers", True, "demo-burgers-full")],
)
def test_demo_default_folders(example, full, folder, monkeypatch, tmp_path):
    demo = load_example("demo")
    monkeypatch.setattr(demo, "RUNS", tmp_path)
    assert demo.default_out(example, full) == tmp_path / folder


def test_demo_writes_runs_demo_not_the_examples_folder(tmp_path, shared_cache, capsys):
    demo = load_example("demo")
    demo.RUNS = tmp_path
    results = demo.main([*DARCY, "--cache-dir", str(shared_cache)])
    assert _run_folder(results) == tmp_path / "demo"
    assert (tmp_path / "demo" / "results.json").is_file()
    text = capsys.readouterr().out
    assert f"plot         : {tmp_path / 'demo'}" in text
    # the quick summary points to the page holding the full setting's figures
    page = re.search(r"docs/guides/examples/\w+\.rst", text).group(0)
    assert "darcy_fno.py" in (ROOT / page).read_text(encoding="utf-8")
    explicit = demo.main([*DARCY, "--cache-dir", str(shared_cache), "--out", str(tmp_path / "mine")])
    assert _run_folder(explicit) == tmp_path / "mine"
