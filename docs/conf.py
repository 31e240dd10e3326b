"""Sphinx configuration for the spectral-operators API reference.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``). The build is
offline: nothing is downloaded. One page per public module is written to ``docs/api/`` from the
module's ``__all__`` on every build, and autosummary writes one page per name under
``docs/api/generated/``, so a name added to ``__all__`` gets its page without editing the docs.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

# Public modules documented in the API reference, in the order of the index.
API_MODULES = (
    "spectral",
    "spectral.fft",
    "spectral.modes",
    "spectral.complex",
    "spectral.analysis",
    "spectral.checks",
    "spectral.activations",
    "spectral.mixers",
    "operators",
    "operators.layers",
    "operators.datasets",
    "operators.losses",
    "operators.training",
    "operators.evaluation",
    "operators.experiments",
    "operators.saving",
    "operators.checkpoint",
)

project = "spectral-operators"
author = "spectral-operators contributors"
copyright = "spectral-operators contributors"
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",  # docs/inr_image.md and the README sections the guides include (docs extra)
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# No LaTeX on the build machines, so maths goes to MathJax: the HTML is built offline, but the
# browser fetches MathJax from its CDN when a page with maths is opened (without the network the
# TeX source is shown as written).

templates_path = ["_templates"]
exclude_patterns = ["_build", "inr_image_sweep.py"]
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = "spectral-operators"
# alabaster's default 940 px page cut the README's code blocks and the example tables on the right
# (seen in a headless-browser screenshot); the figures of the example pages need the width too.
html_theme_options = {"page_width": "1280px", "sidebar_width": "240px", "body_max_width": "none"}

autosummary_generate = True
autosummary_imported_members = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"show-inheritance": False}
# A method without its own docstring (``extra_repr`` ...) is left out instead of showing torch's
# advice to subclass authors ("you should re-implement this method") on our pages.
autodoc_inherit_docstrings = False
add_module_names = False

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True
napoleon_use_rtype = False

# The same object is documented under each public name that exports it (``spectral.FAN`` and
# ``spectral.fan.FAN`` ...), so a short cross-reference such as :class:`FAN` can match several
# pages; Sphinx then links the first one, which is what we want.
suppress_warnings = ["ref.python"]

_STANDARD_SECTIONS = {
    "Args", "Arguments", "Attention", "Attributes", "Caution", "Danger", "Error", "Example",
    "Examples", "Hint", "Important", "Keyword Args", "Keyword Arguments", "Methods", "Note",
    "Notes", "Other Parameters", "Parameters", "Receive", "Receives", "Return", "Returns",
    "Raise", "Raises", "References", "See Also", "Tip", "Todo", "Warning", "Warnings", "Warn",
    "Warns", "Yield", "Yields",
}


def _custom_sections() -> list[str]:
    """Section headings used in the packages' docstrings beyond numpydoc's (``Shape`` ...)."""
    found: set[str] = set()
    pattern = re.compile(r"^[ \t]*([A-Z][A-Za-z ]*[a-z])[ \t]*\n[ \t]*-{3,}[ \t]*$", re.M)
    for package in ("spectral", "operators"):
        for path in (ROOT / package).rglob("*.py"):
            found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return sorted(found - _STANDARD_SECTIONS)


napoleon_custom_sections = _custom_sections()

_INLINE_STAR = re.compile(r"(?<![\\*\w`])\*(?=[\w(])")


def _escape_shape_stars(app, what, name, obj, options, lines: list[str]) -> None:
    """Escape ``*grid``-style stars in Shape sections so reST does not read them as emphasis."""
    inside = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
            inside = stripped == "Shape"
            continue
        if inside:
            parts = line.split("``")
            parts[::2] = [_INLINE_STAR.sub(r"\\*", part) for part in parts[::2]]
            lines[i] = "``".join(parts)


def _drop_builtin_value_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """A constant (``FFT_NORMS``, ``CACHE_ENV_VAR`` ...) shows its value, not ``tuple``'s docstring."""
    if what not in ("data", "attribute") or type(obj).__module__ != "builtins":
        return
    type_doc = [line.strip() for line in inspect.cleandoc(type(obj).__doc__ or "").splitlines()]
    text = [line.strip() for line in lines if line.strip()]
    if text and all(line in type_doc for line in text):  # autodoc may have cut a signature line
        lines[:] = []


def _module_page(module_name: str) -> str:
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    title = f"``{module_name}``"
    lines = [
        ".. This page is generated by docs/conf.py from the module's __all__; do not edit.",
        "",
        title,
        "=" * len(title),
        "",
        f".. automodule:: {module_name}",
        "   :no-members:",
        "",
        f".. currentmodule:: {module_name}",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "   :nosignatures:",
        "",
    ]
    lines += [f"   {name}" for name in names]
    return "\n".join(lines) + "\n"


def _write_api_pages() -> None:
    """Write ``docs/api/<module>.rst`` for each public module (only when its text changes)."""
    api = DOCS / "api"
    api.mkdir(exist_ok=True)
    for module_name in API_MODULES:
        page = api / f"{module_name}.rst"
        text = _module_page(module_name)
        if not page.exists() or page.read_text(encoding="utf-8") != text:
            page.write_text(text, encoding="utf-8")


_write_api_pages()


def _patch_autosummary_summary() -> None:
    """Never cut an autosummary one-line summary inside a ````literal````.

    autosummary ends the summary at the first ``". "``, even inside ````Q o (L_n o ... o L_1) o P````,
    and then warns about the unterminated literal; extend such a summary to the next sentence end
    that closes every literal.
    """
    from sphinx.ext import autosummary

    original = autosummary.extract_summary

    def extract_summary(doc, settings):
        summary = original(doc, settings)
        if summary.count("``") % 2 == 0:
            return summary
        lines = [line.strip() for line in doc]
        while lines and not lines[0]:
            lines.pop(0)
        stanza = " ".join(lines[: lines.index("")] if "" in lines else lines)
        sentences = autosummary.periods_re.split(stanza)
        for i in range(len(sentences)):
            candidate = ". ".join(sentences[: i + 1]).rstrip(".") + "."
            if candidate.count("``") % 2 == 0:
                return candidate
        return stanza

    autosummary.extract_summary = extract_summary


def _class_directive():
    """``py:class`` without ``:canonical:``.

    autodoc marks every re-exported class with its defining path (``spectral.mixers.aff.AFFMixer``);
    a class public in two modules would then register that private path twice.
    """
    from sphinx.domains.python import PyClasslike

    class PublicClasslike(PyClasslike):
        def run(self):
            self.options.pop("canonical", None)
            return super().run()

    return PublicClasslike


def setup(app):
    _patch_autosummary_summary()
    directive = _class_directive()
    app.add_directive_to_domain("py", "class", directive, override=True)
    app.add_directive_to_domain("py", "exception", directive, override=True)
    app.connect("autodoc-process-docstring", _escape_shape_stars, priority=400)
    app.connect("autodoc-process-docstring", _drop_builtin_value_docstring)
    return {"parallel_read_safe": True}
