"""Layering: the library and the studio import only downward.

Each module's imports are read with :mod:`ast`. Among project modules, the imports at module level
(``if TYPE_CHECKING:`` blocks included) must form no cycle, and neither may all imports counting those
deferred into function bodies. The library never imports Qt or the studio (at any level), and the
decoding settings load without torch (the studio's forms use them before torch is loaded).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("textgen_core", "app")
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the project's packages."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _import_nodes(tree: ast.AST, *, in_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree``; those inside function bodies only when asked."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if in_functions or not isinstance(node, FUNCTIONS):
            stack.extend(ast.iter_child_nodes(node))


def _imported_names(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute dotted names an import statement in ``module`` refers to."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _project_module(name: str) -> str | None:
    """The project module ``name`` (or the longest project module it lies in), None if external."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph(*, in_functions: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _import_nodes(tree, in_functions=in_functions):
            names = _imported_names(module, node)
            if isinstance(node, ast.ImportFrom):
                # ``from pkg import x``: the submodule pkg.x when there is one, else pkg itself
                submodules = [n for n in names[:-1] if n in MODULES]
                names = submodules or names[-1:]
            for name in names:
                target = _project_module(name)
                if target is not None and target != module:
                    graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the first member of a strongly connected ``group``."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle in {group}")


def _describe(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_module_level_imports_have_no_cycle():
    cycles = _cycles(_graph(in_functions=False))
    assert not cycles, f"import cycles among project modules:\n{_describe(cycles)}"


def test_deferred_imports_also_go_downward():
    """Imports inside functions (kept there so the studio shows its window before torch loads) go
    downward too: a cycle is not broken by hiding one of its imports in a function body."""
    cycles = _cycles(_graph(in_functions=True))
    assert not cycles, f"import cycles among project modules, counting deferred imports:\n{_describe(cycles)}"


def test_the_graph_sees_the_project():
    """Guards the test itself: it finds the modules and the edges it is meant to check."""
    graph = _graph(in_functions=False)
    assert {"textgen_core.cli", "textgen_core.decoding.search", "app.window"} <= set(graph)
    assert "textgen_core.decoding.steppers" in graph["textgen_core.decoding.search"]
    assert "textgen_core.errors" in graph["textgen_core.decoding.steppers"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_library_never_imports_qt_or_the_studio():
    offending = []
    for module, path in MODULES.items():
        if not module.startswith("textgen_core"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _import_nodes(tree, in_functions=True):
            for name in _imported_names(module, node):
                top = name.split(".")[0]
                if top in ("PySide6", "PySide2", "PyQt5", "PyQt6", "pyqtgraph", "app"):
                    offending.append(f"{module} line {node.lineno}: {name}")
    assert not offending, "textgen_core imports the GUI:\n" + "\n".join(sorted(set(offending)))


def test_decoding_settings_load_without_torch():
    code = ("import sys; from textgen_core.decoding.config import DecodeConfig, STRATEGIES; "
            "DecodeConfig(strategy='beam', top_p=0.9); "
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')); "
            "print(loaded[:5]); sys.exit(1 if loaded else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"importing textgen_core.decoding.config loads torch: {done}"


def test_decoding_package_still_offers_its_names():
    import textgen_core.decoding as decoding
    from textgen_core.decoding import config, search

    assert all(getattr(decoding, name) is not None for name in decoding.__all__)
    assert decoding.DecodeConfig is search.DecodeConfig is config.DecodeConfig
    assert decoding.STRATEGIES is search.STRATEGIES is config.STRATEGIES
