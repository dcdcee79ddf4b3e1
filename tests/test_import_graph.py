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


def _bound_names(init: Path, package: str) -> dict[str, bool]:
    """Names a package's __init__ binds at module level -> whether the binding is its own submodule of that name
    (lazy exports listed in a `_HOMES` dict count as bindings too)."""
    bound: dict[str, bool] = {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                bound[alias.asname or alias.name] = node.module == package and alias.asname in (None, alias.name)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound[node.name] = False
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            bound |= {name: False for name in names}
            if "_HOMES" in names and isinstance(node.value, ast.Dict):
                bound |= {k.value: False for k in node.value.keys if isinstance(k, ast.Constant)}
    return bound


def test_no_package_binds_a_submodules_name_to_something_else():
    """`import mdmtune.metrics.sudoku as m` must give the module: a function of the same name in the package's
    __init__ would be returned instead, or replaced by the module depending on import order."""
    modules = _modules()
    clashes = []
    for package, path in modules.items():
        if path.name != "__init__.py":
            continue
        children = {name.rsplit(".", 1)[1] for name in modules if name.startswith(package + ".")}
        for name, is_module in _bound_names(path, package).items():
            if name in children and not is_module:
                clashes.append(f"{package}.{name}")
    assert clashes == []
