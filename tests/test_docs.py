"""The documentation site: ``make docs`` builds offline with warnings as errors, one page per public name.

The reference lists of names are the modules' own ``__all__`` (imported here, independently of
``docs/conf.py``), and a page counts only if it holds the name's anchor.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

__all__: list[str] = []

pytest.importorskip("sphinx", reason="the docs extra (pip install -e '.[docs]') builds the site")
pytest.importorskip("myst_parser", reason="the docs extra (pip install -e '.[docs]') builds the site")

ROOT = Path(__file__).resolve().parents[1]

MODULES = (
    "spectral",
    "spectral.mixers",
    "spectral.fft",
    "spectral.modes",
    "spectral.complex",
    "spectral.analysis",
    "spectral.checks",
    "spectral.activations",
    "operators",
    "operators.layers",
    "operators.datasets",
    "operators.evaluation",
    "operators.experiments",
    "operators.saving",
    "operators.checkpoint",
    "operators.training",
    "operators.losses",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
               str(ROOT / "docs"), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stderr.strip() == "", result.stderr[-4000:]
    return out


GUIDES = {
    # page under docs/ -> text its built page must hold (a README block or section it includes)
    "guides/install": "installs the dev extra",
    "guides/modes": "kept_bins.png",
    "guides/data": "darcy_train_16.pt",
    "guides/training": "EarlyStopping",
    "guides/neuraloperator": "from_neuralop",
    "guides/mixers": "scaled_dot_product_attention",
    "guides/performance": "need_use_acc_helper",
    "guides/results": "examples/shallow_water_sfno.html",
    "inr_image": "Reproducing SIREN",
}


def test_site_builds_with_index(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    for module in MODULES:
        assert f'href="api/{module}.html"' in index, module


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_has_a_page(site: Path, module: str) -> None:
    names = importlib.import_module(module).__all__
    assert names, module
    module_page = (site / "api" / f"{module}.html").read_text(encoding="utf-8")
    missing = []
    for name in names:
        page = site / "api" / "generated" / f"{module}.{name}.html"
        if not page.exists() or f'id="{module}.{name}"' not in page.read_text(encoding="utf-8"):
            missing.append(name)
        elif f'href="generated/{module}.{name}.html' not in module_page:
            missing.append(f"{name} (not linked from api/{module}.html)")
    assert not missing, f"{module}: no page for {missing}"


@pytest.mark.parametrize(
    ("page", "sections"),
    [
        ("operators.FNO", ("Parameters", "Shape", "Examples")),
        ("operators.SpectralConv", ("Parameters", "Shape", "Notes", "Examples")),
        ("operators.datasets.from_file", ("Parameters", "Returns", "Raises", "Shape", "Examples")),
    ],
)
def test_numpydoc_sections_render(site: Path, page: str, sections: tuple[str, ...]) -> None:
    html = (site / "api" / "generated" / f"{page}.html").read_text(encoding="utf-8")
    for section in sections:
        # Parameters / Returns / Raises become field-list names, the others rubrics.
        assert f">{section}<" in html, (page, section)
    assert "-----" not in html, f"{page}: a section header was left as plain text"
    assert "<p>*" not in html and "System Message" not in html, page


@pytest.mark.parametrize("page", sorted(GUIDES))
def test_guide_pages_exist_and_are_linked(site: Path, page: str) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f'href="{page}.html"' in index, f"{page} is not linked from index.html"
    html = (site / f"{page}.html").read_text(encoding="utf-8")
    assert GUIDES[page] in html, (page, GUIDES[page])
    assert "System Message" not in html, page


@pytest.mark.parametrize(("page", "picture"), [("modes", "kept_bins.png"), ("mixers", "mixers_cpu.png")])
def test_guide_picture_is_in_the_site(site: Path, page: str, picture: str) -> None:
    html = (site / "guides" / f"{page}.html").read_text(encoding="utf-8")
    assert '<img alt="' in html and f"_images/{picture}" in html
    png = site / "_images" / picture
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.read_bytes() == (ROOT / "docs" / "guides" / picture).read_bytes()


# An example script whose results share another's page (the demo runs darcy_fno.py --quick).
EXAMPLE_PAGE_OF = {"darcy_fno": "demo"}


def _example_pages() -> dict[str, str]:
    """``examples/<stem>.py`` -> the stem of its page under ``guides/examples``."""
    return {p.stem: EXAMPLE_PAGE_OF.get(p.stem, p.stem) for p in sorted((ROOT / "examples").glob("*.py"))}


@pytest.mark.parametrize("script", sorted(_example_pages()))
def test_every_example_has_a_results_page_linked_from_results(site: Path, script: str) -> None:
    page = _example_pages()[script]
    html = site / "guides" / "examples" / f"{page}.html"
    assert html.is_file(), f"examples/{script}.py has no page docs/guides/examples/{page}.rst"
    assert f"{script}.py" in html.read_text(encoding="utf-8"), f"guides/examples/{page} never names {script}.py"
    results = (site / "guides" / "results.html").read_text(encoding="utf-8")
    assert f'href="examples/{page}.html"' in results, f"guides/results does not link examples/{page}"


_IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"')


def test_every_image_a_page_shows_is_in_the_site(site: Path) -> None:
    missing, shown = [], set()
    for page in site.rglob("*.html"):
        for src in _IMG_SRC.findall(page.read_text(encoding="utf-8")):
            if src.startswith(("http://", "https://", "data:")):
                continue
            target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
            if not target.is_file() or (target.suffix == ".png" and target.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"):
                missing.append(f"{page.relative_to(site)}: {src}")
            else:
                shown.add(hashlib.sha256(target.read_bytes()).hexdigest())
    assert not missing, missing
    # every committed example image is shown on some page (Sphinx copies it into _images, maybe renamed)
    committed = {p.relative_to(ROOT): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in sorted((ROOT / "docs" / "_static" / "examples").rglob("*.png"))}
    orphans = [str(path) for path, digest in committed.items() if digest not in shown]
    assert not orphans, f"committed example images that no page shows: {orphans}"
