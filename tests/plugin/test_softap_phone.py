"""The plugin's phone over SoftAP: ``fwsim_phone(device, carrier="softap")`` provisions a
Photon in listening mode, and tells clearly when it cannot."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("carrier", ["softap", "softap-http"])
def test_phone_fixture_provisions_a_photon_over_softap(pytester: pytest.Pytester,
                                                       carrier: str) -> None:
    pytester.makepyfile(test_softap=f"""
        def test_softap(fwsim_make_device, fwsim_phone, fwsim_testbed, fwsim_trace):
            device = fwsim_make_device("ph", profile="photon", wifi=False, timing="fast",
                                       power_on=True)
            cloud = fwsim_testbed.cloud
            code = cloud.create_claim_code(cloud.user("me@example.com"))
            fwsim_testbed.run_for(2)
            assert device.listening.active
            phone = fwsim_phone(device, carrier="{carrier}", think_time_s=0.5)
            # connect-ap, the last command of join_new_network, ends listening mode itself
            phone.set_claim_code(code).join_new_network("HomeNet", "home-pass-1").run()
            fwsim_testbed.run_for(60)
            assert phone.all_ok, phone.results
            assert device.credentials.get("HomeNet").password == "home-pass-1"
            assert cloud.owner_of(device.device_id) == cloud.user("me@example.com")
            assert fwsim_trace.count("handshake.full", node="ph") == 1
            assert fwsim_trace.count("claim.redeem", outcome="claimed") == 1
            assert fwsim_trace.count("softap.command", name="configure-ap") == 1
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_softap_phone_bad_cases(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_softap_bad="""
        import pytest
        from firmware_sim.kernel.errors import ConfigurationError, ResultCode

        def test_not_listening(fwsim_make_device, fwsim_phone, fwsim_testbed, fwsim_trace):
            device = fwsim_make_device("ph", profile="photon", timing="fast", power_on=True)
            fwsim_testbed.run_for(10)
            phone = fwsim_phone(device, carrier="softap", think_time_s=0.5)
            phone.set_claim_code("c" * 63).run()
            fwsim_testbed.run_for(5)
            assert phone.results == [("set_claim_code", ResultCode.INVALID_STATE)]
            assert fwsim_trace.count("softap_phone.unreachable", step="set_claim_code") == 1

        def test_wrong_password(fwsim_make_device, fwsim_phone, fwsim_testbed, fwsim_trace):
            device = fwsim_make_device("ph", profile="photon", wifi=False, timing="fast",
                                       power_on=True)
            fwsim_testbed.run_for(2)
            phone = fwsim_phone(device, carrier="softap", think_time_s=0.5)
            phone.join_new_network("HomeNet", "not-the-password").run()
            fwsim_testbed.run_for(90)
            assert phone.results == [("join_new_network HomeNet", ResultCode.TIMEOUT)]
            assert fwsim_trace.count("network.join_failed", reason="authentication failed") > 0
            assert fwsim_trace.count("softap_phone.join_timeout", ssid="HomeNet") == 1

        def test_a_p2_has_no_softap(fwsim_device, fwsim_phone):
            with pytest.raises(ConfigurationError, match="no SoftAP"):
                fwsim_phone(fwsim_device, carrier="softap")
    """)
    pytester.runpytest().assert_outcomes(passed=3)
