"""The import contract of docs/architecture.md, enforced.

* import-linter's contracts (``[tool.importlinter]`` in pyproject.toml): the layers of the
  simulator, the kernel importing nothing of the project, the device model never importing the
  clouds, the transports or the testbed, control requests importing only the kernel, transports
  never importing device internals, the clouds importing only the kernel and the pure wire
  modules, and only the testbed, CLI and plugin importing across.
* no import cycle inside any package (checked with grimp over every package's children);
* the kernel imports only the standard library.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("firmware_sim", "control_requests", "transports", "cloud_sim")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)


def test_import_linter_contracts_are_kept() -> None:
    # in a subprocess: import-linter configures logging (dictConfig), which would disable the
    # loggers of modules imported earlier in this test session
    run = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports; raise SystemExit("
         f"lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True, "
         "no_logo=True))"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def _packages(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules
                  if m.split(".")[0] in PACKAGES and graph.find_children(m))


def _child_of(package: str, module: str) -> str | None:
    prefix = package + "."
    if not module.startswith(prefix):
        return None
    return prefix + module[len(prefix):].split(".")[0]


def _cycles(package: str, graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components (size > 1) of the package's children, each child
    standing for itself and everything below it."""
    children = sorted(graph.find_children(package))
    edges: dict[str, set[str]] = {child: set() for child in children}
    for child in children:
        for module in [child, *graph.find_descendants(child)]:
            for imported in graph.find_modules_directly_imported_by(module):
                target = _child_of(package, imported)
                if target is not None and target != child and target in edges:
                    edges[child].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for child in children:
        if child not in index:
            visit(child)
    return found


def test_no_import_cycle_inside_any_package(graph: grimp.ImportGraph) -> None:
    cycles = {package: found for package in _packages(graph)
              if (found := _cycles(package, graph))}
    assert not cycles, "import cycles: " + "; ".join(
        f"{package}: {' <-> '.join(c.rsplit('.', 1)[-1] for c in cycle)}"
        for package, found in cycles.items() for cycle in found)


def test_the_cycle_check_finds_a_cycle() -> None:
    """The checker itself: a package whose two modules import each other is reported."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles("pkg", graph) == [["pkg.a", "pkg.b"]]


def test_the_kernel_imports_only_the_standard_library(graph: grimp.ImportGraph) -> None:
    kernel = ["firmware_sim.kernel", *graph.find_descendants("firmware_sim.kernel")]
    outside = sorted({imported.split(".")[0] for module in kernel
                      for imported in graph.find_modules_directly_imported_by(module)
                      if not imported.startswith("firmware_sim.kernel")
                      and imported.split(".")[0] not in sys.stdlib_module_names
                      and imported != "firmware_sim"})
    assert outside == []
