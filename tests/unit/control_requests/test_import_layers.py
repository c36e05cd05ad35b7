"""The control_requests package has no import cycle between its modules."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")


def test_no_module_of_control_requests_imports_itself_back() -> None:
    graph = grimp.build_graph("control_requests")
    modules = sorted(m for m in graph.modules if m != "control_requests")
    cycles = [(a, b) for a in modules for b in modules
              if a < b and graph.chain_exists(a, b) and graph.chain_exists(b, a)]
    assert cycles == []


def test_the_bottom_layers_import_what_their_headers_say() -> None:
    graph = grimp.build_graph("control_requests")

    def imports(module: str) -> set[str]:
        return {m for m in graph.find_modules_directly_imported_by(module)
                if not m.startswith("control_requests._pb")}

    assert imports("control_requests.types") == set()
    assert imports("control_requests.errors") == {"control_requests.types"}
    assert imports("control_requests.nanopb_rules") == {"control_requests.errors",
                                                       "control_requests.types"}
    assert imports("control_requests.services") == set()
