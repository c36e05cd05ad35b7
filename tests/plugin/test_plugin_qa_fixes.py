"""The plugin's answers to a newcomer's mistakes: odd names, odd options, odd seeds."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

# imported here, not first inside an in-process pytester run (which unloads what it imported:
# a second import of cryptography's Python half then mismatches its compiled half)
import cloud_sim  # noqa: F401
import firmware_sim.testbed  # noqa: F401

pytest_plugins = ["pytester"]

SURROGATE_TEST = """
    def test_odd_event(fwsim_device, fwsim_world):
        fwsim_device.power_on()
        fwsim_world.run_until(lambda: fwsim_device.cloud_connected, timeout=60)
        try:
            fwsim_device.particle.publish("ev\\udcff", "x")
        except UnicodeEncodeError:  # the CoAP encoder refuses it (not the trace's business)
            pass
        fwsim_world.trace.emit("dev", "app", "app.note", name="ev\\udcff")
        fwsim_world.run_for(2)
        assert False, "deliberate"

    def test_after(fwsim_world):
        pass
"""


def test_a_lone_surrogate_in_the_trace_fails_only_its_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_odd=SURROGATE_TEST)
    result = pytester.runpytest("--fwsim-trace-dir", "traces")
    result.assert_outcomes(passed=1, failed=1)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    [written] = (pytester.path / "traces").glob("*.jsonl")
    from firmware_sim.kernel.trace import read_jsonl

    values = [value for r in read_jsonl(written) for value in r.fields.values()]
    assert "ev\udcff" in values
    assert "\\udcff" in written.read_text(encoding="utf-8")


def test_a_huge_seed_range_is_refused_before_it_is_built(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a(fwsim_seed):\n    pass\n")
    result = pytester.runpytest("--fwsim-seeds", "0..99999999999")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fwsim-seeds: at most 100000 seeds*"])
    assert "MemoryError" not in result.stderr.str()


def test_parse_seeds_counts_ranges_before_expanding() -> None:
    from firmware_sim.pytest_plugin import parse_seeds

    assert parse_seeds("0..99999") == list(range(100_000))
    with pytest.raises(ValueError, match="at most 100000"):
        parse_seeds("5,0..99999")
    with pytest.raises(ValueError, match="at most 100000"):
        parse_seeds(f"0..{2**63 - 1}")


def _rerun_command(output: str) -> str:
    line = next(line for line in output.splitlines() if "(rerun: " in line)
    return line.split("(rerun: ", 1)[1].rsplit(")", 1)[0]


def test_the_rerun_command_of_a_sweep_reruns_that_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_f="""
        import pytest

        @pytest.mark.parametrize("name", ["dev\\n2"])
        def test_fails(fwsim_world, fwsim_seed, name):
            assert fwsim_seed != 1
    """)
    result = pytester.runpytest("--fwsim-seeds", "0..2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    command = _rerun_command(result.stdout.str())
    assert command.startswith("pytest ") and command.endswith(" --fwsim-seeds 1")
    argv = shlex.split(command)  # what a shell makes of it
    assert argv[1] == "test_f.py::test_fails[seed1-dev\\n2]"
    # bash gives the same words, and pytest runs exactly the failed test with them
    echoed = subprocess.run(["bash", "-c", f"printf '%s\\0' {command}"], capture_output=True,
                            check=True).stdout.split(b"\0")[:-1]
    assert [word.decode() for word in echoed] == argv
    again = pytester.runpytest(*argv[1:], "-p", "no:cacheprovider")
    again.assert_outcomes(failed=1)


def test_parametrized_tests_write_distinct_trace_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p="""
        import pytest

        @pytest.mark.parametrize("p", ["a/b", "a_b"])
        def test_fails(fwsim_world, p):
            assert False
    """)
    result = pytester.runpytest("--fwsim-trace-dir", "traces")
    result.assert_outcomes(failed=2)
    assert len(list((pytester.path / "traces").glob("*.jsonl"))) == 2


def test_safe_names_keep_plain_ids_and_tell_altered_ones_apart() -> None:
    from firmware_sim.pytest_plugin import _safe_name

    assert _safe_name("tests/test_x.py::test_a") == "tests_test_x.py_test_a"
    ids = ["t.py::f[a/b]", "t.py::f[a_b]", "t.py::f[a b]", "t.py::f[" + "x" * 300 + "]",
           "t.py::f[" + "x" * 300 + "y]"]
    names = [_safe_name(nodeid) for nodeid in ids]
    assert len(set(names)) == len(ids)
    assert all(len(name) <= 151 and name.startswith("t.py_f_") for name in names)


def test_options_as_a_dict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_o="""
        import pytest
        from firmware_sim.kernel.errors import ConfigurationError

        def test_dict(fwsim_make_device):
            device = fwsim_make_device(options={"send_claim_code_on_resume": True},
                                       timing="fast")
            assert device.options.send_claim_code_on_resume is True
            assert device.options.timing == "fast"

        def test_unknown_field(fwsim_make_device):
            with pytest.raises(ConfigurationError,
                               match="unknown firmware option 'send_claim_code_on_resum'"):
                fwsim_make_device(options={"send_claim_code_on_resum": True})

        def test_wrong_type(fwsim_make_device):
            with pytest.raises(ConfigurationError, match="not list"):
                fwsim_make_device(options=[1])
    """)
    pytester.runpytest().assert_outcomes(passed=3)


def test_odd_device_names_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_n="""
        import pytest
        from firmware_sim.kernel.errors import UsageError

        @pytest.mark.parametrize("name", ["\\udcff", "dev\\n2", "a b", "", "x\\x00"])
        def test_name(fwsim_make_device, name):
            with pytest.raises(UsageError, match="invalid node name"):
                fwsim_make_device(name)
    """)
    pytester.runpytest().assert_outcomes(passed=5)


@pytest.mark.parametrize("value", ["-5", "-1"])
def test_negative_trace_lines_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_x="def test_a(fwsim_world):\n    pass\n")
    result = pytester.runpytest(f"--fwsim-trace-lines={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--fwsim-trace-lines: must be 0 or more, not {value}*"])


def test_zero_trace_lines_shows_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_z="""
        def test_fails(fwsim_device, fwsim_world):
            fwsim_device.power_on()
            fwsim_world.run_for(30)
            assert False
    """)
    result = pytester.runpytest("--fwsim-trace-lines=0", "--fwsim-trace-dir", "traces")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["Device OS log of dev (uptime ms; last 0 of * lines):",
                                 "last 0 cloud records (world time):"])
    assert "[system]" not in result.stdout.str()


@pytest.mark.parametrize(("env", "message"), [
    ("abc", "$FWSIM_SEED: invalid seed 'abc'"),
    ("1_000", "$FWSIM_SEED: invalid seed '1_000'"),
])
def test_a_bad_env_seed_names_the_variable(pytester: pytest.Pytester,
                                           monkeypatch: pytest.MonkeyPatch, env: str,
                                           message: str) -> None:
    monkeypatch.setenv("FWSIM_SEED", env)
    pytester.makepyfile(test_x="def test_a(fwsim_seed):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "--fwsim-seed:" not in result.stderr.str()


def test_an_empty_env_seed_is_unset(pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FWSIM_SEED", "")
    pytester.makepyfile(test_x="def test_a(fwsim_seed):\n    assert fwsim_seed == 0\n")
    pytester.runpytest().assert_outcomes(passed=1)
    monkeypatch.setenv("FWSIM_SEED", "010")
    pytester.makepyfile(test_x="def test_a(fwsim_seed):\n    assert fwsim_seed == 10\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_misspelt_node_fails_instead_of_counting_zero(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nodes="""
        import pytest
        from firmware_sim.pytest_plugin import UnknownTraceQuery

        def test_nodes(fwsim_device, fwsim_make_device, fwsim_world, fwsim_trace):
            fwsim_make_device("quiet")                     # in the world, never traced yet
            fwsim_device.power_on()
            fwsim_world.run_for(30)
            assert fwsim_trace.count("handshake.full", node="dev") == 1
            assert fwsim_trace.count("handshake.full", node="quiet") == 0
            assert fwsim_trace.log_lines("quiet") == []
            with pytest.raises(UnknownTraceQuery, match="unknown node 'de'; did you mean dev"):
                fwsim_trace.count("handshake.full", node="de")
            with pytest.raises(UnknownTraceQuery, match="unknown node 'de'; did you mean dev"):
                fwsim_trace.log_lines("de")
            with pytest.raises(UnknownTraceQuery, match="known nodes: .*quiet"):
                fwsim_trace.first(node="zzz")
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_strict_trace_without_a_world_knows_the_traced_nodes() -> None:
    from firmware_sim.kernel.world import World
    from firmware_sim.pytest_plugin import StrictTrace, UnknownTraceQuery

    world = World(3)
    strict = StrictTrace(world.trace)
    assert strict.count("world.created", node="world") == 1
    with pytest.raises(UnknownTraceQuery, match="unknown node 'wrld'"):
        strict.count("world.created", node="wrld")
    with pytest.raises(UnknownTraceQuery, match="unknown field 'sed' for kind"):
        strict.count("world.created", sed=3)


def test_trace_records_with_a_surrogate_round_trip_as_json() -> None:
    from firmware_sim.kernel.trace import TraceRecord

    record = TraceRecord(1, 2, "dev", "events", "publish", {"name": "ev\udcff"})
    assert json.loads(record.to_json())["fields"]["name"] == "ev\udcff"
