"""The package's layering: no import cycle, each database behind its own package,
the picker the only module naming both, and the optional extras out of ``import
trio_failurelog``. Read from the source (imports inside functions included), as
trio's ``test_exports.py`` guards its surface."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import trio_failurelog

PACKAGE = "trio_failurelog"
ROOT = Path(trio_failurelog.__file__).parent
PICKER = f"{PACKAGE}._backends"
BACKENDS = (f"{PACKAGE}._sqlite", f"{PACKAGE}._postgres")
POSTGRES = f"{PACKAGE}._postgres"
#: Modules that must stay leaves as far as the backends go: nothing they
#: import, however indirectly, is a backend.
BACKEND_FREE = (
    f"{PACKAGE}._database",
    f"{PACKAGE}._protocols",
    f"{PACKAGE}._table",
    f"{PACKAGE}._timetext",
    f"{PACKAGE}._readsql",
)

#: The only imports of one module's private (underscore) names by another,
#: each with its reason. Submodules of a package (``._store``) are not names.
ALLOWED_PRIVATE_IMPORTS: Mapping[tuple[str, str], str] = {
    # The OpenTelemetry attribute is repaired to encodable text exactly as a
    # record's text is; one function, kept where the record's rules live.
    (f"{PACKAGE}._otel", "_repair_text"): "text repair shared with the record",
    # The redactor rebuilds each record it redacts the way the record builds
    # itself (a writable draft, then frozen), on the writer's hot path, without
    # validating the untouched fields again; the rules stay in one module.
    (f"{PACKAGE}._redaction", "_Draft"): "a record's writable storage",
    (f"{PACKAGE}._redaction", "_new_draft"): "a draft from a record",
    (f"{PACKAGE}._redaction", "_FIELD_NAMES"): "a record's fields, in order",
    (f"{PACKAGE}._redaction", "_repair_text"): "redacted text repaired as a record's is",
    (f"{PACKAGE}._redaction", "_utf8_length"): "query_len counted as a record counts it",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(ROOT.rglob("*.py"))
    }


def _imports(name: str, tree: ast.Module, is_package: bool) -> Iterator[tuple[str, str | None]]:
    """``(module, imported name or None)`` for every import in ``tree``, at any depth.

    ``from . import x`` yields the package (and ``x``); resolving whether ``x``
    is a submodule is left to the caller.
    """
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            for alias in node.names:
                yield module, alias.name


def _graph() -> tuple[dict[str, set[str]], dict[str, set[tuple[str, str]]]]:
    """The package's import graph (module -> modules of the package it imports),
    and every ``from`` import of a name (module -> {(source module, name)})."""
    modules = _modules()
    packages = {_module_name(path) for path in ROOT.rglob("__init__.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    names: dict[str, set[tuple[str, str]]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for module, imported in _imports(name, tree, name in packages):
            submodule = f"{module}.{imported}" if imported else None
            if submodule in modules:
                assert submodule is not None
                graph[name].add(submodule)
            elif module in modules:
                graph[name].add(module)
                if imported is not None:
                    names[name].add((module, imported))
            elif module.split(".")[0] != PACKAGE:
                graph[name].add(module)  # an outside module: kept to check psycopg
            # A parent package is imported first: it runs too.
            parent = module
            while parent.count(".") and parent in modules:
                parent = parent.rpartition(".")[0]
                if parent in modules and parent != name and not name.startswith(parent + "."):
                    graph[name].add(parent)
    return graph, names


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for target in graph.get(node, ()):
            if target in graph and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_cycle_finder_finds_a_cycle_through_any_number_of_modules() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_inside_functions() -> None:
    graph, _names = _graph()
    assert f"{PACKAGE}._postgres" in graph[PICKER]  # imported only when a URL is opened
    assert f"{PACKAGE}._html" in graph[f"{PACKAGE}._cli"]  # imported in its command


def test_there_is_no_import_cycle() -> None:
    graph, _names = _graph()
    assert find_cycle(graph) is None


def test_psycopg_is_imported_only_inside_the_postgres_backend() -> None:
    graph, _names = _graph()
    leaks = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if target.split(".")[0].startswith("psycopg") and not _inside(name, POSTGRES)
    )
    assert leaks == []
    assert any(t == "psycopg" for t in graph[f"{POSTGRES}._connect"])  # the check sees it


def test_only_the_picker_imports_both_backends() -> None:
    graph, _names = _graph()
    both = sorted(
        name
        for name, targets in graph.items()
        if all(any(_inside(t, backend) for t in targets) for backend in BACKENDS)
    )
    assert both == [PICKER]


def test_no_backend_imports_another() -> None:
    graph, _names = _graph()
    crossing = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        for own in BACKENDS
        for other in BACKENDS
        if own != other and _inside(name, own) and _inside(target, other)
    )
    assert crossing == []


@pytest.mark.parametrize("leaf", BACKEND_FREE)
def test_the_shared_layers_reach_no_backend(leaf: str) -> None:
    graph, _names = _graph()
    reached = sorted(m for m in _reachable(graph, leaf) if any(_inside(m, b) for b in BACKENDS))
    assert reached == []


def test_no_module_imports_another_modules_private_names() -> None:
    names = _graph()[1]
    private = {
        (name, imported): source
        for name, pairs in names.items()
        for source, imported in pairs
        if imported.startswith("_")
        and not imported.startswith("__")
        and not _inside(name, source)  # a package's __init__ importing its own submodule
    }
    assert sorted(private) == sorted(ALLOWED_PRIVATE_IMPORTS)


def test_importing_the_package_loads_no_optional_extra() -> None:
    code = (
        "import sys, trio_failurelog\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'psycopg', 'psycopg_binary', 'psycopg_c', 'rich', 'opentelemetry'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
