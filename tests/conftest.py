"""Suite-wide settings: in CI (FWSIM_REQUIRE_INTEROP=1) a skipped interop test fails."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if (os.environ.get("FWSIM_REQUIRE_INTEROP") == "1" and report.skipped
            and item.get_closest_marker("interop") is not None):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"interop test skipped in CI (FWSIM_REQUIRE_INTEROP=1): {reason}"
