"""The import graph of the package: no arrow runs up a layer, and no import forms a circle.

Layers, top to bottom (``surrogates/__init__.py`` states the rule)::

    cli > demo > runs > models > metrics > training > data > the foundation

The foundation is ``solvers/``, ``plots.py``, ``distributed.py``, ``coupling/`` and the package
root, with the sibling packages ``operators/`` and ``meshes/``, which never import
``surrogates``. Imports are read with :mod:`ast`, those inside functions included (a lazy import
is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("surrogates", "operators", "meshes")
#: First component under ``surrogates`` -> rank (higher may import lower or equal).
RANKS = {"cli": 7, "demo": 6, "runs": 5, "models": 4, "metrics": 3, "training": 2, "data": 1}
FOUNDATION = 0


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that ``name`` imports (``from a import b`` counts ``a.b`` when it is
    a module, else ``a``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _rank(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "surrogates" or len(parts) == 1:
        return FOUNDATION
    return RANKS.get(parts[1], FOUNDATION)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_the_graph_is_read(graph):
    """The parser sees the imports that are known to exist (a broken parser passes nothing)."""
    assert "surrogates.runs.folder" in graph["surrogates.runs.operators"]
    assert "surrogates.cli.options" in graph["surrogates.cli.lorenz96"]
    assert "operators.base" in graph["surrogates.runs.operators"]
    assert _rank("surrogates.cli.darcy") > _rank("surrogates.runs.lorenz96") > _rank(
        "surrogates.models.gp") > _rank("surrogates.metrics.uq") > _rank(
        "surrogates.training") > _rank("surrogates.data.common") > _rank("surrogates.plots")


def test_no_import_runs_up_a_layer(graph):
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if _rank(b) > _rank(a))
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


def test_siblings_never_import_surrogates(graph):
    bad = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                 if a.split(".")[0] in ("operators", "meshes") and b.split(".")[0] == "surrogates")
    assert not bad, "\n".join(bad)


def test_no_import_circle(graph):
    """Tarjan's strongly connected components: every component is a single module."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_top_level_holds_packages_and_three_modules():
    """The top level of ``surrogates/``: the layer packages, and the three shared modules."""
    top = ROOT / "surrogates"
    assert sorted(p.name for p in top.glob("*.py")) == [
        "__init__.py", "distributed.py", "plots.py", "training.py"]
    packages = sorted(p.name for p in top.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["cli", "coupling", "data", "demo", "metrics", "models", "runs",
                        "solvers"]
