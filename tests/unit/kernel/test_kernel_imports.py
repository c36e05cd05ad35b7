"""The kernel depends on the standard library only and has no import cycle."""

from __future__ import annotations

import sys

import pytest

grimp = pytest.importorskip("grimp")


def test_the_kernel_imports_only_the_standard_library_and_has_no_cycle() -> None:
    graph = grimp.build_graph("firmware_sim", include_external_packages=True)
    kernel = sorted(m for m in graph.modules if m.startswith("firmware_sim.kernel."))
    assert "firmware_sim.kernel.choice" in kernel and "firmware_sim.kernel.stream" in kernel
    outside = {imported for module in [*kernel, "firmware_sim.kernel"]
               for imported in graph.find_modules_directly_imported_by(module)
               if not imported.startswith("firmware_sim.kernel")}
    assert {name.split(".")[0] for name in outside} <= set(sys.stdlib_module_names)
    cycles = [(a, b) for a in kernel for b in kernel
              if a < b and graph.chain_exists(a, b) and graph.chain_exists(b, a)]
    assert cycles == []
