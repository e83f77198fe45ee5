"""The layering rules, read from the source with ``ast`` (nothing is imported or run).

- Only the HTTP edge imports it: no module outside ``proxy/server`` and the entry points
  above it (``proxy/cli.py``, ``proxy/__main__.py``) imports ``proxy.server``.
- No package cycles. Each direct subpackage of ``proxy`` (``proxy.processing``,
  ``proxy.lane``, ...) and each top-level module (``proxy.params``, ``proxy.runtime``, ...)
  is a node; every import from one node into another is an edge, wherever it is written:
  at the top, inside a function, or under ``if TYPE_CHECKING`` (a cycle a type hint needs
  is still a cycle in the design).
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "proxy"
ABOVE_THE_SERVER = frozenset({"proxy.cli", "proxy.__main__"})

Edges = Mapping[str, Mapping[str, list[str]]]  # node -> node -> "file:line" of each import


def modules() -> Iterator[tuple[str, Path, ast.Module]]:
    """Every module of the package: its dotted name, its file, its syntax tree."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def imported(name: str, path: Path, tree: ast.Module) -> Iterator[tuple[str, int]]:
    """The absolute name of everything ``tree`` imports (``from a import b`` gives both
    ``a`` and ``a.b``: b may be a module), with the line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def node_of(name: str) -> str | None:
    """``proxy.processing.plan`` -> ``proxy.processing``; None outside the package."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "proxy" and len(parts) > 1 else None


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{line}"


def package_edges() -> Edges:
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, path, tree in modules():
        source = node_of(name)
        if source is None:
            continue
        for target_name, line in imported(name, path, tree):
            target = node_of(target_name)
            if target is not None and target != source:
                sites = edges[source][target]
                if where(path, line) not in sites:
                    sites.append(where(path, line))
    return edges


def strongly_connected(edges: Edges) -> list[list[str]]:
    """Tarjan's components with more than one node: each holds at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    nodes = sorted({*edges, *(target for targets in edges.values() for target in targets)})
    for node in nodes:
        if node not in index:
            visit(node)
    return found


def shortest_cycle(edges: Edges, component: list[str]) -> list[str]:
    """A shortest cycle through the component's first node (breadth first, in it only)."""
    start = component[0]
    inside = set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(edges.get(node, {})):
                if target not in inside:
                    continue
                if target == start:
                    cycle = [node]
                    while cycle[-1] != start:
                        cycle.append(came_from[cycle[-1]])
                    return [start, *reversed(cycle[:-1]), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle in {component}")


def describe(edges: Edges, component: list[str]) -> str:
    cycle = shortest_cycle(edges, component)
    members = f" (in {{{', '.join(component)}}})" if len(component) > 2 else ""
    lines = [" -> ".join(cycle) + members]
    for source, target in itertools.pairwise(cycle):
        lines.append(f"    {source} -> {target}: {', '.join(edges[source][target])}")
    return "\n".join(lines)


def test_only_the_entry_points_import_the_server() -> None:
    offenders = [
        f"{where(path, line)} imports {target}"
        for name, path, tree in modules()
        if name != "proxy.server"
        and not name.startswith("proxy.server.")
        and name not in ABOVE_THE_SERVER
        for target, line in imported(name, path, tree)
        if target == "proxy.server" or target.startswith("proxy.server.")
    ]
    assert not offenders, (
        "below the HTTP edge, only proxy/cli.py and proxy/__main__.py may import "
        "proxy.server:\n" + "\n".join(offenders)
    )


def test_no_package_cycles() -> None:
    edges = package_edges()
    cycles = [describe(edges, component) for component in strongly_connected(edges)]
    assert not cycles, "package cycles (each node imports the next):\n" + "\n".join(cycles)


def test_the_checks_see_imports_written_anywhere(tmp_path: Path) -> None:
    """The reader itself: relative imports resolve, and function-local and type-checking
    imports count."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ..server import app\n"
        "if TYPE_CHECKING:\n"
        "    from proxy.lane.lane import Lane\n"
        "def later():\n"
        "    import proxy.qa.gate\n"
    )
    path = tmp_path / "proxy" / "cropping" / "example.py"
    found = {name for name, _ in imported("proxy.cropping.example", path, ast.parse(source))}
    assert {"proxy.server", "proxy.server.app", "proxy.lane.lane", "proxy.qa.gate"} <= found
    edges = {"proxy.a": {"proxy.b": ["a"]}, "proxy.b": {"proxy.c": ["b"]}, "proxy.c": {}}
    assert strongly_connected(edges) == []
    edges = {"proxy.a": {"proxy.b": ["x:1"]}, "proxy.b": {"proxy.a": ["y:2"]}}
    assert describe(edges, ["proxy.a", "proxy.b"]).splitlines() == [
        "proxy.a -> proxy.b -> proxy.a",
        "    proxy.a -> proxy.b: x:1",
        "    proxy.b -> proxy.a: y:2",
    ]
