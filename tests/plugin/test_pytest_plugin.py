"""The pytest11 plugin: fixtures, --fwsim-seed, failure report with seed and trace file."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_fixtures_and_failure_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample="""
        def test_connects(fwsim_world, fwsim_device):
            fwsim_device.power_on()
            assert fwsim_world.run_until(lambda: fwsim_device.cloud_connected, timeout=60)

        def test_fails(fwsim_world, fwsim_device, fwsim_seed):
            fwsim_device.power_on()
            fwsim_world.run_for(30)
            assert fwsim_seed == 99
            assert False, "deliberate"
    """)
    result = pytester.runpytest("--fwsim-seed", "99",
                                "--fwsim-trace-dir", "traces", "--fwsim-trace-lines", "5")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*fwsim*",
        "seed: 99  (rerun: pytest test_sample.py::test_fails --fwsim-seed 99)",
        "full trace: traces*test_sample.py_test_fails.jsonl",
        "last 5 trace records:",
    ])
    written = list((pytester.path / "traces").glob("*.jsonl"))
    assert len(written) == 1
    assert written[0].read_text().count("\n") > 20


def test_bad_seed_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a(fwsim_world):\n    pass\n")
    result = pytester.runpytest("--fwsim-seed", "nope")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*invalid seed 'nope'*"])
