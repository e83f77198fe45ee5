"""``proxy.curation`` is domain below HTTP: none of its modules imports ``proxy.server``."""

from __future__ import annotations

import ast
from pathlib import Path

import proxy.curation

FOLDER = Path(proxy.curation.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_curation_imports_nothing_from_the_server() -> None:
    modules = sorted(FOLDER.glob("*.py"))
    assert len(modules) >= 4
    for module in modules:
        server = {name for name in _imports(module) if name.startswith("proxy.server")}
        assert server == set(), f"{module.name} imports {server}"
