"""The package's architecture as the tree shows it: no import cycles between modules, and the
compiled kernels know nothing of Mesa or the configuration.

The import graph is read from the source. Two graphs: the imports that run when a module is
imported (module level), and every import (function-level ones too: an import deferred into a
function to dodge a cycle still ties the two modules together). Imports under ``if TYPE_CHECKING:``
are for annotations only and count in neither.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"

#: Compiled numerical code: it must stay importable and testable without Mesa, Hydra or a scenario.
KERNEL_MODULES = ("sim.market.kernel", "sim.model.kernels", "sim.model.chains")
KERNEL_MUST_NOT_REACH = ("mesa", "omegaconf", "hydra", "pandas", "sim.world", "sim.model.model", "sim.policy")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SIM.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SIM.rglob("*.py") if "__pycache__" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module):
    """Import statements run when the module is imported (module body, try/if blocks included)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for h in node.handlers:
                stack.extend(h.body)


def _targets(name: str, node: ast.AST) -> set[str]:
    """Modules (of any package) a module-level import statement loads."""
    out: set[str] = set()
    if isinstance(node, ast.Import):
        out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        out.add(node.module)
        out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
    elif isinstance(node, ast.ImportFrom) and node.level:
        base = name.split(".")[: -node.level] if not MODULES[name].name == "__init__.py" else name.split(".")
        mod = ".".join(base + ([node.module] if node.module else []))
        out.add(mod)
        out.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in MODULES)
    return out


def _all_imports(tree: ast.Module):
    """Every import statement, deferred ones included, except those under ``if TYPE_CHECKING:``."""
    skip = {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node) for n in ast.walk(node)
    }
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in skip)


def import_graph(*, deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the modules it imports (every package, not only ``sim``): at import time, or with
    ``deferred`` anywhere in its code.
    """
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets: set[str] = set()
        for node in _all_imports(tree) if deferred else _top_level_imports(tree):
            targets |= _targets(name, node)
        # a submodule importing from its own package (``from sim.market import kernel`` in
        # sim.market.clearing) finds the package already initialising: not a cycle
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = targets - ancestors
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), among sim's modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        v = todo.pop()
        for w in graph.get(v, ()):
            if w not in seen:
                seen.add(w)
                if w in MODULES:
                    todo.append(w)
    return seen


def test_the_tree_has_the_packages_of_the_data_flow():
    for pkg in ("world", "model", "market", "coercion", "policy", "reporting", "experiments"):
        assert (SIM / pkg / "__init__.py").is_file(), f"sim/{pkg}/ is not a package"
    flat = sorted(p.name for p in SIM.glob("*.py"))
    assert flat == ["__init__.py", "api.py", "cli.py"], f"modules left flat in sim/: {flat}"


@pytest.mark.parametrize("deferred", [False, True], ids=["at-import", "deferred-too"])
def test_no_import_cycles_between_modules(deferred):
    cycles = _cycles(import_graph(deferred=deferred))
    assert not cycles, "modules import each other: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    graph = {"sim.api": {"sim.cli"}, "sim.cli": {"sim.api"}}
    assert _cycles(graph) == [["sim.api", "sim.cli"]]


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_kernels_know_no_mesa_and_no_configuration(module):
    assert module in MODULES, f"{module} moved: update KERNEL_MODULES"
    reached = _reach(import_graph(), module)
    bad = sorted(r for r in reached if any(r == b or r.startswith(b + ".") for b in KERNEL_MUST_NOT_REACH))
    assert not bad, f"{module} imports {bad} at import time"
