"""A panic flashes its SOS pattern before the reset, as ``panic_`` in Device OS's
``services/src/panic.c`` does: nothing runs for 10.4 s (hard fault), then the device resets with
the reason ``panic``. A power cut or a reset during the pattern ends it. A firmware that fails
the same way on every boot logs its Python traceback once. On virtual time."""

from __future__ import annotations

import logging

import pytest

from firmware_sim.system.app import Firmware, Particle
from firmware_sim.system.device import DeviceState, panic_sos_s
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.steering import Steering, device_state


class FailsInSetup(Firmware):
    def setup(self, particle: Particle) -> None:
        raise KeyError("setup bug")


def _bed(firmware: type[Firmware] = Firmware) -> Testbed:
    return Testbed(TestbedSpec(seed=3, devices=tuple(provisioned("d", firmware=firmware)),
                               timing="fast", firmware_errors="panic"))


def _connected(bed: Testbed) -> None:
    bed.power_on()
    assert bed.run_until(lambda: bed.devices["d"].cloud_connected, 30)


def test_the_pattern_lasts_as_panic_c_flashes_it() -> None:
    # 2 x (SOS 3.8 s + code x 0.6 s + 0.8 s)
    assert panic_sos_s(1) == pytest.approx(10.4)
    assert panic_sos_s(13) == pytest.approx(2 * (3.8 + 13 * 0.6 + 0.8))


def test_nothing_runs_during_the_pattern_then_the_device_resets() -> None:
    with _bed() as bed:
        _connected(bed)
        device = bed.devices["d"]
        boots = device.boot_count
        panicked_at = bed.world.now
        device.panic(1)
        assert device.state is DeviceState.PANIC and device_state(device) == "panic"
        assert not device.cloud_connected and not device.network.ready
        assert Steering(bed).state("d")["state"] == "panic"
        bed.run_for(10.3)
        assert device.state is DeviceState.PANIC and device.boot_count == boots
        assert not bed.world.trace.find("device.reset")
        assert bed.run_until(lambda: device.boot_count == boots + 1, 1)
        [reset] = bed.world.trace.find("device.reset")
        assert reset.get("reason") == "panic"
        assert reset.t_us - round(panicked_at * 1e6) == 10_400_000
        [panic] = bed.world.trace.find("device.panic")
        assert panic.get("code") == 1 and panic.get("sos_s") == pytest.approx(10.4)
        assert bed.run_until(lambda: device.cloud_connected, 30)


def test_a_power_cut_during_the_pattern_keeps_the_device_off() -> None:
    with _bed() as bed:
        _connected(bed)
        device = bed.devices["d"]
        boots = device.boot_count
        device.panic(1)
        bed.run_for(2)
        device.power_off()
        bed.run_for(20)  # the pattern's own reset must not boot a device without power
        assert device.state is DeviceState.OFF and device.boot_count == boots
        device.power_on()
        assert bed.run_until(lambda: device.cloud_connected, 30)
        assert device.cloud.inputs.reset_reason == "power_down"


def test_a_reset_during_the_pattern_ends_it_with_its_own_reason() -> None:
    with _bed() as bed:
        _connected(bed)
        device = bed.devices["d"]
        boots = device.boot_count
        device.panic(1)
        bed.run_for(1)
        device.reset("user")
        assert bed.run_until(lambda: device.boot_count == boots + 1, 1)
        assert [r.get("reason") for r in bed.world.trace.find("device.reset")] == ["user"]
        assert device.cloud.inputs.reset_reason == "user"
        assert device.cloud.inputs.reset_data == 0
        bed.run_for(15)  # the pattern's pending reset does not reset the device again
        assert device.boot_count == boots + 1


def test_a_boot_loop_logs_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), _bed(FailsInSetup) as bed:
        bed.power_on()
        bed.run_for(40)  # about 10.5 s per boot: four failing boots
        device = bed.devices["d"]
    failures = [r for r in caplog.records if "setup() raised KeyError" in r.getMessage()]
    assert len(failures) >= 3
    assert failures[0].exc_info is not None
    assert all(r.exc_info is None and "as the last time" in r.getMessage()
               for r in failures[1:])
    assert len(bed.world.trace.find("app.failed")) == len(failures)
    assert device.boot_count == len(failures)


def test_steering_resets_a_panicking_device_and_names_its_state() -> None:
    from firmware_sim.kernel.errors import UsageError

    with _bed() as bed:
        _connected(bed)
        device = bed.devices["d"]
        steering = Steering(bed)
        device.panic(1)
        with pytest.raises(UsageError, match="d is panicking"):
            steering.publish("d", "x")
        steering.reset("d")  # the RESET button: the panicking device runs no System.reset()
        assert bed.run_until(lambda: device.cloud_connected, 30)
        assert [r.get("reason") for r in bed.world.trace.find("device.reset")] == ["pin_reset"]
        assert device.cloud.inputs.reset_reason == "pin_reset"


def test_an_earlier_panic_s_reset_does_not_cut_a_later_panic_short() -> None:
    """QA: a reset during a boot loop's pattern left that pattern's reset scheduled, and it cut
    the next boot's pattern short - the loop ran faster and faster."""
    with _bed(FailsInSetup) as bed:
        device = bed.devices["d"]
        bed.power_on()
        assert bed.run_until(lambda: device.state is DeviceState.PANIC, 30)
        bed.run_for(2)
        device.reset("pin_reset")  # ends this pattern; the next boot panics again at once
        bed.run_for(60)
        panics = [r.t_us for r in bed.world.trace.find("device.panic")]
        resets = [(r.t_us, r.get("reason")) for r in bed.world.trace.find("device.reset")]
        assert resets[0][1] == "pin_reset"
        # every later pattern runs its full 10.4 s
        later = [t for t, reason in resets[1:]]
        assert later and all(reason == "panic" for _, reason in resets[1:])
        for panic_at, reset_at in zip(panics[1:], later, strict=False):
            assert reset_at - panic_at == 10_400_000


@pytest.mark.parametrize("stop", ["panic", "power_off"])
def test_a_device_that_is_not_running_answers_no_control_request(stop: str) -> None:
    """Fidelity audit: a panicking device (interrupts off) or one without power answered
    SET_CLAIM_CODE at once and wrote its DCT when a request came in process."""
    from control_requests import RequestType

    with _bed() as bed:
        _connected(bed)
        device = bed.devices["d"]
        device.panic(1) if stop == "panic" else device.power_off()
        answers: list[tuple[int, bytes]] = []
        device.control.submit("control", int(RequestType.DEVICE_ID), b"",
                              lambda result, reply: answers.append((result, reply)))
        bed.run_for(1)
        assert answers == []
        assert bed.world.trace.find("control.dropped")
        # after the next boot the device answers again
        if stop == "power_off":
            device.power_on()
        assert bed.run_until(lambda: device.running, 30)
        device.control.submit("control", int(RequestType.DEVICE_ID), b"",
                              lambda result, reply: answers.append((result, reply)))
        bed.run_for(1)
        assert [result for result, _ in answers] == [0]


def test_an_exception_whose_str_raises_still_panics_its_device(
        caplog: pytest.LogCaptureFixture) -> None:
    """Security QA: formatting such an exception raised inside the guard, so the device neither
    panicked nor got an app.failed record."""

    class Odd(Exception):
        def __str__(self) -> str:
            raise ValueError("str of the exception raises")

    def bad_timer() -> None:
        raise Odd

    with caplog.at_level(logging.ERROR), _bed() as bed:
        _connected(bed)
        device = bed.devices["d"]
        device.particle.after(1, bad_timer)
        bed.run_for(2)
        [failed] = bed.world.trace.find("app.failed")
        assert failed.get("error") == "Odd: (its str() raised)"
        assert device.state is DeviceState.PANIC
    assert any("device d: the firmware's a timer raised Odd" in r.getMessage()
               for r in caplog.records)
