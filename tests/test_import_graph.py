"""The package's modules import each other without circles: each module can be read (and changed) knowing only what
it imports. Imports inside functions count too (a lazy import only hides a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mdmtune"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the mdmtune modules it imports (`from package import submodule` points at the submodule)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mdmtune"):
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                edges[name] |= submodules or ({node.module} & modules.keys())
            elif isinstance(node, ast.Import):
                edges[name] |= {alias.name for alias in node.names} & modules.keys()
    return edges


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while (top := stack.pop()) != module:
                group.append(top)
            if group:
                found.append(sorted([*group, module]))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_itself_back():
    assert _circles(_edges(_modules())) == []


def test_the_package_root_holds_only_the_package_and_its_errors():
    """Every module lives in the subpackage of its layer (core, data, metrics, models, options, sampling, tuning,
    sandbox, export, integrations, plots, testbeds, training, cli, service); the root keeps the one exception
    family that every layer raises."""
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "errors.py"]


def test_the_core_layers_import_no_outer_layer():
    """The core (math, data, metrics, options, sampling, models, tuning) never imports the shells or the CLI."""
    edges = _edges(_modules())
    core = ("mdmtune.core", "mdmtune.data", "mdmtune.metrics", "mdmtune.models", "mdmtune.options", "mdmtune.sampling")
    core += ("mdmtune.tuning", "mdmtune.sandbox", "mdmtune.export")
    shells = ("mdmtune.cli", "mdmtune.service.app", "mdmtune.service.db", "mdmtune.service.workers")
    upward = [
        (module, target)
        for module, targets in edges.items()
        if module.startswith(core)
        for target in targets
        if target.startswith(shells)
    ]
    assert upward == []
