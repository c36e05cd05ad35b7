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
        "Device OS log of dev (uptime ms; last 5 of * lines):",
        "00000* [[]*] *: *",
        "last 5 cloud records (world time):",
    ])
    assert "coap.acked" not in result.stdout.str()
    written = list((pytester.path / "traces").glob("*.jsonl"))
    assert len(written) == 1
    assert written[0].read_text().count("\n") > 20


def test_bad_seed_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a(fwsim_world):\n    pass\n")
    result = pytester.runpytest("--fwsim-seed", "nope")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*invalid seed 'nope'*"])


def test_device_factory_firmware_profile_wifi_timing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_factory="""
        from firmware_sim.apps import SessionEndWorkaround

        def test_factory(fwsim_make_device, fwsim_world):
            app = fwsim_make_device("app", firmware="session-end-workaround", timing="fast",
                                    power_on=True)
            photon = fwsim_make_device("ph", profile="photon", wifi=False, timing="fast",
                                       power_on=True)
            fwsim_world.run_for(10)
            assert isinstance(app.firmware, SessionEndWorkaround)
            assert app.cloud_connected and app.options.timing == "fast"
            assert photon.profile.name == "photon" and photon.listening.active

        def test_default_device(fwsim_device):
            assert fwsim_device.name == "dev" and fwsim_device.profile.name == "p2"
            assert not fwsim_device.running and len(fwsim_device.credentials) == 1
    """)
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize("carrier", ["control", "usb", "serial", "ble"])
def test_phone_fixture_provisions_over_each_carrier(pytester: pytest.Pytester,
                                                    carrier: str) -> None:
    pytester.makepyfile(test_phone=f"""
        def test_phone(fwsim_make_device, fwsim_phone, fwsim_testbed, fwsim_trace):
            device = fwsim_make_device(wifi=False, timing="fast", power_on=True)
            cloud = fwsim_testbed.cloud
            code = cloud.create_claim_code(cloud.user("me@example.com"))
            fwsim_testbed.run_for(2)
            phone = fwsim_phone(device, "{carrier}", think_time_s=0.5)
            phone.set_claim_code(code).join_new_network("HomeNet", "home-pass-1")
            if "{carrier}" != "serial":  # the console's w dialog leaves listening mode itself
                phone.stop_listening()
            phone.run()
            fwsim_testbed.run_for(60)
            assert phone.all_ok, phone.results
            assert cloud.owner_of(device.device_id) == cloud.user("me@example.com")
            assert fwsim_trace.count("claim.redeem", outcome="claimed") == 1
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_misspelt_kind_or_field_fails_instead_of_counting_zero(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_strict="""
        def test_misspelt_kind(fwsim_device, fwsim_world, fwsim_trace):
            fwsim_device.power_on()
            fwsim_world.run_for(30)
            assert fwsim_trace.count("claim.redem") == 0  # typo: must not pass

        def test_misspelt_field(fwsim_device, fwsim_world, fwsim_trace):
            fwsim_device.power_on()
            fwsim_world.run_for(30)
            assert fwsim_trace.count("claim.redeem", outcom="claimed") == 0

        def test_known_kind_that_did_not_happen(fwsim_device, fwsim_world, fwsim_trace):
            fwsim_device.power_on()
            fwsim_world.run_for(30)
            assert fwsim_trace.count("claim.redeem", outcome="claimed") == 0
            assert fwsim_trace.count("handshake.full", node="dev") == 1
            assert "cloud connected" not in "".join(fwsim_trace.log_lines("dev"))
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*UnknownTraceQuery: unknown trace kind 'claim.redem'; did you mean claim.redeem*",
        "*UnknownTraceQuery: unknown field 'outcom' for kind 'claim.redeem' (known: device_id, "
        "new_owner, outcome, previous_owner)*",
    ])


def test_seed_sweep(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep="""
        seen = []

        def test_seeded(fwsim_seed, fwsim_world):
            assert fwsim_world.seed == fwsim_seed
            seen.append(fwsim_seed)

        def test_not_seeded():
            pass

        def test_last():
            assert seen == [0, 1, 2, 3, 7]
    """)
    result = pytester.runpytest("--fwsim-seeds", "0..3,7", "-v")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*test_seeded?seed7? PASSED*"])
    bad = pytester.runpytest("--fwsim-seeds", "5..2")
    assert bad.ret != 0
    bad.stderr.fnmatch_lines(["*--fwsim-seeds: empty seed range '5..2'*"])


def test_the_catalog_knows_every_kind_the_scenarios_write() -> None:
    from firmware_sim.pytest_plugin import trace_catalog
    from firmware_sim.scenarios import CATALOG

    catalog = trace_catalog()
    for name in ("resume-bug", "session-end-workaround", "product-customer-transfer",
                 "tb-device-key"):
        result = CATALOG[name].run(0)
        unknown = {r.kind for r in result.world.trace.records} - set(catalog)
        assert not unknown, f"{name}: kinds missing from the catalog: {sorted(unknown)}"
        for record in result.world.trace.records:
            fields = catalog[record.kind]
            assert fields is None or set(record.fields) <= fields, (record.kind, record.fields)
