"""The package's layers (docs/architecture.md): imports point down, never up, and never in a circle.

Every ``import`` in every module counts, the lazy ones inside functions too: a lazy import that
points up is still a dependency, only a slower one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hpo_service"

#: The rows of docs/architecture.md: a module may import its own row or lower rows.
ROWS: dict[str, int] = {
    "config": 0, "devices": 0, "jsonsafe": 0, "messages": 0, "spec": 0,
    "data": 1,
    "train": 2,
    "store": 3, "plots": 3,
    "scheduling": 4,
    "api": 5, "web": 5,
    "cli": 6, "__main__": 7,
}  # fmt: skip


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imported(name: str, path: Path) -> set[str]:
    """The hpo_service modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hpo_service"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("hpo_service"):
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
    known = {n for n, _ in modules()}
    return {m for m in found if m in known and m != name}


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hpo_service"


def test_every_area_has_a_row() -> None:
    areas = {area(name) for name, _ in modules()} - {"hpo_service", "_alembic"}
    assert areas <= set(ROWS), f"add {sorted(areas - set(ROWS))} to ROWS and docs/architecture.md"


def test_no_import_points_up() -> None:
    upward = []
    for name, path in modules():
        if area(name) not in ROWS:
            continue
        for target in imported(name, path):
            if area(target) in ROWS and ROWS[area(target)] > ROWS[area(name)]:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_import_circle() -> None:
    graph = {name: imported(name, path) for name, path in modules()}
    # A package's face (__init__) may re-export its own modules: that is not a circle.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []
