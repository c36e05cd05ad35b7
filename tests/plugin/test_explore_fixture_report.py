"""A failing test that searched with ``fwsim_explore`` gets an ``fwsim`` report section, as a
``fwsim_testbed`` test does: the search's seed, the command that reruns it, each finding and
the command that replays it."""

from __future__ import annotations

import shlex

import pytest

# imported here, not first inside an in-process pytester run (which unloads what it imported)
import cloud_sim  # noqa: F401
import firmware_sim.explore
import firmware_sim.testbed  # noqa: F401

pytest_plugins = ["pytester"]

SEARCH_TEST = """
    def always(records):
        return "the world breaks on purpose"

    def test_search(fwsim_explore):
        fwsim_explore(runs=2, properties=[always], shrink_failures=False)
"""


def test_the_report_names_the_seed_and_reruns_the_search(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SEARCH_TEST)
    result = pytester.runpytest("--fwsim-seed", "7", "--fwsim-trace-dir", "traces",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- fwsim -*",
        "explore p2-provisioning (random), seed: 7  (rerun: pytest test_s.py::test_search "
        "--fwsim-seed 7); 2 runs, 1 distinct violation",
        "- always: the world breaks on purpose",
        "  replay: fwsim scenario run --file traces/test_s.py_test_search/always.toml",
    ])
    line = next(x for x in result.stdout.lines if x.startswith("explore p2-provisioning"))
    command = line.split("(rerun: ", 1)[1].split(")", 1)[0]
    again = pytester.runpytest(*shlex.split(command)[1:], "--fwsim-trace-dir", "traces",
                               "-p", "no:cacheprovider")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["explore p2-provisioning (random), seed: 7  (rerun: *"])
