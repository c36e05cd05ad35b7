"""``Particle.function`` / ``Particle.variable`` on the device, on virtual time: registration
with Device OS's limits, the application describe (Device OS's ``{"f":[...],"v":{...}}`` only
when something is registered), and the device's answers to the cloud's function calls and
variable requests (the CoAP shapes of ``functions.h`` / ``variables.cpp``)."""

from __future__ import annotations

import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sim.device_endpoint import CallResult, parse_app_describe
from firmware_sim.communication import wire
from firmware_sim.system.app import MAX_FUNCTIONS, Firmware, Particle
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug


class Thermostat(Firmware):
    def setup(self, particle: Particle) -> None:
        self.calls: list[str] = []
        self.setpoint = 20
        assert particle.function("set", self.set_point)
        assert particle.variable("setpoint", lambda: self.setpoint, "int")
        assert particle.variable("temp", 21.5)
        assert particle.variable("heating", True)
        assert particle.variable("mode", "auto")

    def set_point(self, argument: str) -> int:
        self.calls.append(argument)
        self.setpoint = int(argument) if argument.lstrip("-").isdigit() else self.setpoint
        return -1 if not argument else self.setpoint


def test_registration_follows_device_os_limits() -> None:
    with Testbed(TestbedSpec(seed=1, devices=tuple(provisioned("d")))) as bed:
        particle = bed.devices["d"].particle
        assert particle.function("x" * 64, lambda a: 0)
        assert particle.function("é" * 32, lambda a: 0)  # 64 bytes of UTF-8
        for bad in ("", "x" * 65, "é" * 33, "\ud800"):
            assert not particle.function(bad, lambda a: 0)
            assert not particle.variable(bad, 1)
        assert not particle.function("f", "not callable")  # type: ignore[arg-type]
        assert not particle.variable("getter", lambda: 1)  # a getter needs its type
        assert not particle.variable("v", 1, "float")
        assert not particle.variable("v", [1])  # type: ignore[arg-type]
        # registering a name again replaces it in place
        assert particle.function("x" * 64, lambda a: 7)
        assert particle.call_function("x" * 64, "") == 7
        for n in range(MAX_FUNCTIONS - 2):
            assert particle.function(f"f{n}", lambda a: 0)
        assert not particle.function("one-too-many", lambda a: 0)
        assert particle.function("f0", lambda a: 1)  # replacing is still allowed
        assert len(particle.function_names) == MAX_FUNCTIONS
        logged = [r.get("message") for r in bed.world.trace.find("log")]
        assert "Too many cloud functions" in logged


def test_describe_lists_them_as_device_os_does_and_only_when_registered() -> None:
    spec = TestbedSpec(seed=2, devices=(*provisioned("plain"), *provisioned(
        "thermostat", firmware=Thermostat)), timing="fast")
    with Testbed(spec) as bed:
        bed.power_on()
        bed.run_for(3)
        plain = bed.devices["plain"]._app_describe()
        assert json.loads(plain) == {"app": plain.decode().split('"')[3], "f": [], "v": 1,
                                     "v_": {}}
        described = bed.devices["thermostat"]._app_describe()
        assert described == (b'{"f":["set"],"v":{"setpoint":2,"temp":9,"heating":1,'
                             b'"mode":4}}')
        assert parse_app_describe(b'{"p":32,"m":[]}') is None  # the system describe
        assert parse_app_describe(b"\xff") is None
        interface = parse_app_describe(described)
        assert interface is not None and interface.functions == ("set",)
        assert interface.variables == {"setpoint": 2, "temp": 9, "heating": 1, "mode": 4}
        legacy = parse_app_describe(plain)
        assert legacy is not None and not legacy.functions and not legacy.variables


def test_the_device_answers_calls_and_requests_in_device_os_encoding() -> None:
    spec = TestbedSpec(seed=3, devices=tuple(provisioned("t", firmware=Thermostat)),
                       timing="fast")
    with Testbed(spec) as bed:
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        endpoint = plug.cloud.endpoint
        device = bed.devices["t"]
        bed.power_on()
        assert bed.run_until(lambda: device.cloud_connected, 30)
        bed.run_for(1)
        answered: dict[str, CallResult] = {}

        def into(key: str):  # type: ignore[no-untyped-def]
            return lambda result: answered.__setitem__(key, result)

        endpoint.call_function(device.device_id, "set", "23", into("set 23"))
        bed.run_for(1)
        for name in ("setpoint", "temp", "heating", "mode"):
            endpoint.get_variable(device.device_id, name, into(name))
        endpoint.call_function(device.device_id, "set", "", into("set"))
        bed.run_for(2)
        assert answered == {"set 23": CallResult("ok", 23), "setpoint": CallResult("ok", 23),
                            "temp": CallResult("ok", 21.5), "heating": CallResult("ok", True),
                            "mode": CallResult("ok", "auto"), "set": CallResult("ok", -1)}
        results: list[CallResult] = []
        firmware = device.firmware
        assert isinstance(firmware, Thermostat) and firmware.calls == ["23", ""]
        # the wire: the call's ACK is empty, the answer a separate CON 2.04 with the token and
        # the int32 big-endian; a variable's a 2.05 (a double as its 8 native bytes)
        assert wire.encode_function_return(-1) == b"\xff\xff\xff\xff"
        assert wire.encode_variable(wire.VariableType.DOUBLE, 21.5) == struct.pack("<d", 21.5)
        assert wire.encode_variable(wire.VariableType.INT, 2**31) == struct.pack(">i", -2**31)
        answers = bed.world.trace.find("call.answer", node="cloud")
        assert sorted((r.get("name"), r.get("code")) for r in answers) == [
            ("heating", "2.05"), ("mode", "2.05"), ("set", "2.04"), ("set", "2.04"),
            ("setpoint", "2.05"), ("temp", "2.05")]
        # names the describe does not list are refused by the cloud itself; a variable the
        # device does not know (the describe was stale) is answered 4.04 by the device
        endpoint.call_function(device.device_id, "nope", "", results.append)
        endpoint.get_variable(device.device_id, "nope", results.append)
        assert results[-2:] == [CallResult("not_found"), CallResult("not_found")]
        firmware_particle = device.particle
        firmware_particle._variables.pop("mode")  # type: ignore[union-attr]
        endpoint.get_variable(device.device_id, "mode", results.append)
        bed.run_for(2)
        assert results[-1] == CallResult("not_found")
        # a device that went away without a word: the call times out on virtual time
        device.power_off()
        endpoint.call_function(device.device_id, "set", "1", results.append)
        bed.run_for(endpoint.options.call_timeout_s + 1)
        assert results[-1] == CallResult("timeout")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(functions=JSON, variables=JSON)
def test_any_describe_a_device_sends_is_read_or_refused_never_raises(functions: object,
                                                                     variables: object) -> None:
    """The describe comes from the device (an attacker's, too): any JSON in ``f`` and ``v`` -
    a list as a type code, a dict as a name - is left out, never an exception."""
    payload = json.dumps({"f": functions, "v": variables}).encode()
    interface = parse_app_describe(payload)
    if not isinstance(functions, list):
        assert interface is None
        return
    assert interface is not None
    assert all(isinstance(name, str) and 0 < len(name) <= 64 for name in interface.functions)
    assert all(type(code) is int and code in (1, 2, 4, 9)
               for code in interface.variables.values())
