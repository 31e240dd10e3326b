"""Every example imports only public names of the library, and no example or example test edits ``sys.path``."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from tests.examples._load import EXAMPLES_DIR

SCRIPTS = sorted(EXAMPLES_DIR.glob("*.py"))
LIBRARY = ("operators", "spectral")
PATH_EDIT = re.compile(r"sys\.path\s*(\.|\+|=|\[)|syspath_" + "prepend")  # insert/append/assignment/pytest's


def _library_imports(path: Path) -> list[tuple[str, str | None]]:
    """``(module, name)`` of every import of the library in ``path`` (``name`` None for ``import module``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in LIBRARY:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] in LIBRARY]
    return found


def test_every_script_is_checked():
    assert len(SCRIPTS) >= 10 and not (EXAMPLES_DIR / "_common.py").exists()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_imports_only_public_library_names(script):
    imports = _library_imports(script)
    private = [f"{module}.{name}" for module, name in imports
               if any(part.startswith("_") for part in module.split(".")) or (name or "").startswith("_")]
    assert not private, f"{script.name} imports private names: {private}"
    for module, name in imports:
        imported = importlib.import_module(module)
        if name is not None:  # a public module's name: listed in its __all__ (or a submodule)
            public = getattr(imported, "__all__", None)
            assert public is None or name in public or importlib.util.find_spec(f"{module}.{name}"), \
                f"{script.name}: {name} is not in {module}.__all__"
    siblings = {p.stem for p in SCRIPTS}
    local = [node for node in ast.walk(ast.parse(script.read_text()))
             if isinstance(node, (ast.Import, ast.ImportFrom))
             and ({a.name.split(".")[0] for a in node.names} | {(getattr(node, "module", None) or "").split(".")[0]})
             & siblings]
    assert not local, f"{script.name} imports a sibling script as a module (load it by its path)"


@pytest.mark.parametrize("path", [*SCRIPTS, *sorted(Path(__file__).parent.glob("*.py"))], ids=lambda p: p.name)
def test_no_sys_path_edit(path):
    assert not PATH_EDIT.search(path.read_text()), f"{path.name} edits sys.path"
