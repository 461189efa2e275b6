"""No import cycles inside the ``persistable`` package, lazy (function-level) imports included.

Imports are read from the syntax trees, not by importing: ``import a.b`` and
``from a import b`` (when ``a.b`` is a module) point at ``a.b``, ``from a.b import name``
at ``a.b``. Imports under ``if TYPE_CHECKING:`` never run and are left out; importing a
submodule also runs its parent package's ``__init__``, which is not counted as an edge
(every module would otherwise be in a cycle with its package).
"""

from __future__ import annotations

import ast
from pathlib import Path

import persistable

PACKAGE_ROOT = Path(persistable.__file__).resolve().parent


def _modules(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package ``__init__``) for every ``.py`` file of the package."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(
    tree: ast.Module, name: str, is_package: bool, modules: dict[str, tuple[Path, bool]]
) -> set[str]:
    """The package's modules that one module's code imports, at any depth, outside TYPE_CHECKING."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                skipped.update(id(inner) for inner in ast.walk(statement))
    here = name.split(".") if is_package else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                # `from a import b`: the module a.b if there is one, else a (b is a name in a).
                submodule = f"{module}.{alias.name}"
                if submodule in modules:
                    targets.add(submodule)
                elif module in modules:
                    targets.add(module)
    targets.discard(name)
    return targets


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    modules = _modules(package_dir)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = _imported(tree, name, is_package, modules)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            if children:
                child = children.pop()
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    return "; ".join(f"{name} -> {sorted(graph[name] & members)}" for name in component)


def test_the_package_has_no_import_cycle() -> None:
    """No module of persistable imports, directly or through others, a module that imports it."""
    graph = import_graph(PACKAGE_ROOT)
    assert len(graph) > 100, "the package was not found where expected"
    found = cycles(graph)
    assert found == [], "import cycles: " + " | ".join(_describe(c, graph) for c in found)


def test_a_lazy_import_cycle_is_found(tmp_path: Path) -> None:
    """The check sees a cycle closed by an import inside a function, through a package __init__."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("from .b import thing\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import c\n"
        "def thing():\n    from ..a import x\n"
    )
    (package / "c.py").write_text("import pkg.a\n")
    graph = import_graph(package)
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]
    assert graph["pkg.sub.b"] == {"pkg.a"}  # the TYPE_CHECKING import is not an edge


def test_type_checking_imports_are_not_edges(tmp_path: Path) -> None:
    """Two modules that import each other only for type annotations are no cycle."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    from pkg.b import B\n"
    )
    (package / "b.py").write_text("from pkg.a import A\n")
    assert cycles(import_graph(package)) == []
