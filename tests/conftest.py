"""Suite-wide settings: in CI (FWSIM_REQUIRE_INTEROP=1) a skipped interop test fails; with
FWSIM_HYPOTHESIS_PROFILE=ci Hypothesis draws the same examples every run; the project's modules
are byte-compiled once before the run."""

from __future__ import annotations

import compileall
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

#: ``.ci/run`` sets FWSIM_HYPOTHESIS_PROFILE=ci: the same examples on every CI run (a red CI
#: is then reproducible and means a change broke something); local runs draw new examples each
#: time and keep finding new inputs.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("FWSIM_HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("firmware_sim", "control_requests", "transports", "cloud_sim")


def pytest_configure(config: pytest.Config) -> None:
    """Hundreds of tests start ``fwsim`` or ``python -m firmware_sim.cli`` in a subprocess. With
    PYTHONDONTWRITEBYTECODE set (as in CI's environment) nothing caches the compiled modules of
    an editable install, so each of those processes compiled ~250 modules from source (0.3 s of
    a 0.8 s start). Compiling them once here (the controller only, not each xdist worker) lets
    every subprocess load the cached bytecode; compileall writes even when that variable is
    set, and skips modules whose cache is up to date."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for package in PACKAGES:
        compileall.compile_dir(REPO / package, quiet=2, workers=1)


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
