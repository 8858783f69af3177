"""Imports go one way, top to bottom, and never in a circle (docs/architecture.md).

A small AST check over ``src/smsbridge``: every ``import`` counts, wherever it stands —
module level, under ``if TYPE_CHECKING:``, or inside a function (a function-local import
hides a dependency, it does not remove it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "smsbridge"
SOURCE = Path(__file__).resolve().parents[2] / "src" / PACKAGE

LAYERS: tuple[tuple[str, ...], ...] = (
    # highest first: a module may import its own layer's siblings and anything below
    ("__main__", "cli"),
    ("app", "container", "process_tuning"),
    ("web", "api"),
    ("services", "delivery"),
    ("observability",),
    ("storage",),
    ("domain", "providers"),
    ("errors", "config", "__init__"),
)
"""Layers by the first name under ``smsbridge`` (``smsbridge.storage.claim`` → ``storage``)."""

RANK = {name: len(LAYERS) - index for index, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def source_modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root`` (migrations are scripts Alembic loads)."""
    return {
        module_name(path, root): path
        for path in sorted(root.rglob("*.py"))
        if "migrations" not in path.relative_to(root).parts
    }


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies in (``a.b.C`` → ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_modules(
    module: str, path: Path, modules: dict[str, Path]
) -> Iterator[tuple[str, int]]:
    """Every project module that ``module`` imports, with the line of the import."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from smsbridge.domain import ports`` imports the module ``ports``
                target = _resolve(f"{base}.{alias.name}", modules) or _resolve(base, modules)
                if target is not None:
                    yield target, node.lineno


def import_graph(root: Path = SOURCE) -> dict[str, dict[str, int]]:
    """module → {imported module: line of its first import}."""
    modules = source_modules(root)
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for target, line in imported_modules(module, path, modules):
            if target != module:
                edges.setdefault(target, line)
    return graph


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module are cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = sorted({layer_of(m) for m in source_modules(SOURCE)} - set(RANK))
    assert not unplaced, f"place these in LAYERS (and in docs/architecture.md): {unplaced}"


def test_no_import_points_upward() -> None:
    graph = import_graph()
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)}), line {line}"
        for module, edges in sorted(graph.items())
        for target, line in sorted(edges.items())
        if RANK.get(layer_of(target), 0) > RANK.get(layer_of(module), 0)
    ]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = [
        " <-> ".join(component)
        + "\n    "
        + "\n    ".join(
            f"{a} -> {b} (line {graph[a][b]})"
            for a in component
            for b in sorted(graph[a])
            if b in component
        )
        for component in strongly_connected(graph)
    ]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_cycles_between_packages() -> None:
    """Siblings of one layer (``services``/``delivery``, ``web``/``api``) may use each other
    one way only: a package-level circle is a knot even when no two modules form one."""
    graph = import_graph()
    packages: dict[str, dict[str, int]] = {}
    witness: dict[tuple[str, str], str] = {}
    for module, edges in graph.items():
        for target, line in edges.items():
            a, b = layer_of(module), layer_of(target)
            if a != b:
                packages.setdefault(a, {})[b] = line
                witness.setdefault((a, b), f"{module} -> {target} (line {line})")
            packages.setdefault(b, {})
    cycles = [
        " <-> ".join(component)
        + "\n    "
        + "\n    ".join(
            witness[a, b] for a in component for b in sorted(packages[a]) if b in component
        )
        for component in strongly_connected(packages)
    ]
    assert not cycles, "package cycles:\n" + "\n".join(cycles)


# --- the checker checks: small packages written to a temporary directory ---------------------


def _graph_of(files: dict[str, str], tmp_path: Path) -> dict[str, dict[str, int]]:
    root = tmp_path / PACKAGE
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return import_graph(root)


MAX_MODULE_LINES = 450


def test_no_module_outgrows_one_concern() -> None:
    """Modules are split before they sprawl (issue 17): none over MAX_MODULE_LINES lines."""
    sizes = {
        str(path.relative_to(SOURCE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in SOURCE.rglob("*.py")
    }
    assert sizes, "no module found"
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


@pytest.mark.parametrize(
    "text",
    [
        "from smsbridge.storage import tables\n",
        "from smsbridge.storage.tables import T\n",
        "import smsbridge.storage.tables\n",
        "from ..storage import tables\n",
        "import typing\nif typing.TYPE_CHECKING:\n    from smsbridge.storage.tables import T\n",
        "def f():\n    from smsbridge.storage.tables import T\n    return T\n",
    ],
    ids=["from-package", "from-module", "import", "relative", "type-checking", "local"],
)
def test_every_form_of_import_is_seen(text: str, tmp_path: Path) -> None:
    graph = _graph_of(
        {"__init__.py": "", "domain/__init__.py": "", "domain/x.py": text,
         "storage/__init__.py": "", "storage/tables.py": "T = 1\n"},
        tmp_path,
    )  # fmt: skip
    assert "smsbridge.storage.tables" in graph["smsbridge.domain.x"]


def test_a_cycle_is_found(tmp_path: Path) -> None:
    graph = _graph_of(
        {"__init__.py": "", "domain/__init__.py": "",
         "domain/a.py": "from smsbridge.domain.b import B\nA = 1\n",
         "domain/b.py": "def f():\n    from smsbridge.domain import a\nB = 1\n",
         "domain/c.py": "from smsbridge.domain.a import A\n"},
        tmp_path,
    )  # fmt: skip
    assert strongly_connected(graph) == [["smsbridge.domain.a", "smsbridge.domain.b"]]
