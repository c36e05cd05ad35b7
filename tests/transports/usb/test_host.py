"""particle-usb's request pipeline over the in-process USB bus, on virtual time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from control_requests import requests
from control_requests.dispatcher import AppRequest
from control_requests.errors import ControlRequestFailed
from control_requests.requests import ControlReply
from firmware_sim.kernel import UsageError, World
from firmware_sim.system import Device
from transports.usb import (
    HostOptions,
    UsbError,
    UsbRequestTimeout,
    VirtualUsbHost,
    attach_usb,
)
from transports.usb.protocol import ServiceType, SetupPacket
from transports.usb.transfer import TransferResult

from .conftest import DEVICE_ID, make_device

Rig = tuple[World, Device, object]


def reply_later(world: World, request: AppRequest, delay: float, data: bytes) -> None:
    world.call_later(delay, request.reply, 0, data)


class Recorder:
    """Wraps the bus to log every control transfer with its virtual time."""

    def __init__(self, host: VirtualUsbHost) -> None:
        self.log: list[tuple[float, SetupPacket, TransferResult]] = []
        io = host.io
        inner = io.control_transfer
        world = host.world

        def record(setup: SetupPacket, data: bytes,
                   done: Callable[[TransferResult], None]) -> None:
            def finished(result: TransferResult) -> None:
                self.log.append((world.now, setup, result))
                done(result)
            inner(setup, data, finished)

        io.control_transfer = record  # type: ignore[method-assign]

    def requests_of(self, kind: ServiceType) -> list[tuple[float, SetupPacket, TransferResult]]:
        return [entry for entry in self.log if entry[1].bRequest == kind
                and entry[1].request_kind == 2]


def test_open_reads_identity_then_resets_stale_requests(p2: Rig) -> None:
    world, device, _ = p2
    host = VirtualUsbHost(world, device)
    recorder = Recorder(host)
    host.open()
    assert host.host.device_id == DEVICE_ID  # from iSerialNumber, lowercased
    assert host.host.firmware_version == "6.2.0"
    assert host.host.platform is not None and host.host.platform.name == "p2"
    host.call(requests.is_claimed())
    kinds = [(setup.bmRequestType, setup.bRequest, setup.wIndex) for _, setup, _ in
             recorder.log]
    assert kinds[:4] == [(0x80, 6, 0), (0x80, 6, 0x0409), (0x80, 6, 0x0409), (0xC0, 0x50, 30)]
    assert kinds[4] == (0xC0, ServiceType.RESET, 0)  # RESET all, before the first INIT
    assert kinds[5] == (0xC0, ServiceType.INIT, 201)


def test_claim_code_and_is_claimed(p2: Rig) -> None:
    world, device, _ = p2
    host = VirtualUsbHost(world, device).open()
    assert host.call(requests.is_claimed()) is False
    host.call(requests.set_claim_code("MYCLAIMCODE"))
    assert device.claim.pending_code() == "MYCLAIMCODE"
    assert host.call(requests.get_device_id()) == DEVICE_ID
    assert host.call(requests.get_system_version()) == "6.2.0"


def test_async_control_client(p2: Rig) -> None:
    world, device, _ = p2
    client = VirtualUsbHost(world, device).open().client()

    async def scenario() -> tuple[bool, str]:
        await client.set_claim_code("c" * 63)
        await client.join_new_network("NewNet", "new-pass-22")
        return await client.is_claimed(), await client.get_device_id()

    assert asyncio.run(scenario()) == (False, DEVICE_ID)
    assert device.claim.pending_code() == "c" * 63
    assert device.network.current is not None and device.network.current.ssid == "NewNet"
    with pytest.raises(ControlRequestFailed) as failed:
        asyncio.run(client.join_new_network("Nowhere", "x" * 8))
    assert failed.value.code == -170  # NOT_FOUND
    assert asyncio.run(client.send_raw(9999)) == ControlReply(-120, b"")


def test_check_polling_backoff(p2: Rig) -> None:
    """A request that takes a while (joining a network: about 10 s with the thread profile's
    Wi-Fi power-on, join and DHCP): CHECK at the particle-usb backoff, then every second until
    the result is in."""
    world, device, _ = p2
    host = VirtualUsbHost(world, device).open()
    recorder = Recorder(host)
    start = world.now
    host.call(requests.join_new_network("NewNet", "new-pass-22"))
    checks = [round((t - start) * 1000) for t, _, _ in recorder.requests_of(ServiceType.CHECK)]
    # the rig's device booted 0.1 s ago: its Wi-Fi is still powering on, then joins, then DHCP
    net = device.timing.network
    join_ms = round((net.power_on_s - 0.1 + net.join_delay_s + net.dhcp_s) * 1000)
    assert join_ms == 9900
    # INIT (OK, payload <= 64) + SEND at 0, then CHECKs after 50, 50, 100, 100, 250, 250, 500,
    # 500 and 1000 ms, then every 1000 ms; the first CHECK after the join has the result
    expected = [50, 100, 200, 300, 550, 800, 1300, 1800, 2800]
    while expected[-1] < join_ms:
        expected.append(expected[-1] + 1000)
    assert checks == expected
    assert recorder.requests_of(ServiceType.CHECK)[-1][2].data[:4] == bytes([9, 0, 0, 0])


def test_check_backoff_continues_at_one_second(p2: Rig) -> None:
    world, device, _ = p2
    device.control.set_app_handler(
        lambda request: reply_later(world, request, 6.0, b"done"))
    host = VirtualUsbHost(world, device).open()
    recorder = Recorder(host)
    start = world.now
    assert host.request(10, bytes(100)) == ControlReply(0, b"done")  # PENDING: allocated first
    checks = [round((t - start) * 1000) for t, _, _ in recorder.requests_of(ServiceType.CHECK)]
    assert checks[0] == 50  # the allocation check; then SEND and the backoff restarts
    assert [b - a for a, b in itertools.pairwise(checks[1:])] == [
        50, 100, 100, 250, 250, 500, 500, 1000, 1000, 1000, 1000, 1000][:len(checks) - 2]
    assert checks[-1] - checks[1] >= 6000


@pytest.mark.parametrize("size", [0, 1, 64, 65, 4096, 4097, 65535])
def test_payload_sizes_round_trip(p2: Rig, size: int) -> None:
    world, device, _ = p2
    host = VirtualUsbHost(world, device).open()
    recorder = Recorder(host)
    payload = bytes(i % 253 for i in range(size))
    assert host.request(1, payload) == ControlReply(0, payload)  # ECHO
    inits = recorder.requests_of(ServiceType.INIT)
    sends = recorder.requests_of(ServiceType.SEND)
    recvs = recorder.requests_of(ServiceType.RECV)
    assert len(sends) == -(-size // 4096) and len(recvs) == -(-size // 4096)
    assert all(setup.wLength <= 4096 for _, setup, _ in sends + recvs)
    init_status = inits[0][2].data[4]
    assert init_status == (2 if size > 64 else 0)  # PENDING above 64 bytes, else OK


def test_too_large_payload_and_type_are_refused_by_the_host(p2: Rig) -> None:
    world, device, _ = p2
    host = VirtualUsbHost(world, device).open()
    with pytest.raises(UsageError, match="too large"):
        host.request(1, bytes(65536))
    with pytest.raises(UsageError, match="Invalid request type"):
        host.request(0x10000)
    with pytest.raises(UsageError):
        host.request(-1)
    assert host.request(1, b"still fine") == ControlReply(0, b"still fine")


def test_busy_device_queues_the_fifth_request(p2: Rig) -> None:
    world, device, _ = p2
    device.control.set_app_handler(
        lambda request: reply_later(world, request, 1.0, request.payload))
    host = VirtualUsbHost(world, device).open()
    outcomes: list[ControlReply | UsbError] = []
    for index in range(6):
        host.submit(10, bytes([index]), outcomes.append)
    assert world.run_until(lambda: len(outcomes) == 6, timeout=120)
    assert sorted(o.data for o in outcomes if isinstance(o, ControlReply)) == [
        bytes([i]) for i in range(6)]
    assert world.trace.count("usb.busy") == 1  # then the host limits itself to 4
    assert max(r.get("id") for r in world.trace.find("usb.init")) == 6


def test_busy_from_another_host_does_not_spin(p2: Rig) -> None:
    """Another host holds all four slots: this host waits 50 ms between INITs."""
    world, device, _ = p2
    device.control.set_app_handler(lambda request: None)  # APP_CUSTOM never answers
    hog = VirtualUsbHost(world, device).open()
    for _ in range(4):
        hog.submit(10, b"", lambda outcome: None)
    world.run_for(0.5)
    host = VirtualUsbHost(world, device).open()  # its RESET(0) frees the hog's slots...
    for _ in range(4):
        hog.submit(10, b"", lambda outcome: None)  # ...which the hog takes again
    world.run_for(0.2)
    outcomes: list[ControlReply | UsbError] = []
    host.submit(1, b"x", outcomes.append, timeout_s=2.0)
    world.run_for(3)
    assert len(outcomes) == 1 and isinstance(outcomes[0], UsbRequestTimeout)
    busy = world.trace.count("usb.busy")
    assert 5 <= busy <= 60  # about one INIT per 50 ms, not a tight loop


def test_request_timeout_resets_the_request(p2: Rig) -> None:
    world, device, _ = p2
    device.control.set_app_handler(lambda request: None)  # never answers
    host = VirtualUsbHost(world, device).open()
    recorder = Recorder(host)
    start = world.now
    with pytest.raises(UsbRequestTimeout):
        host.request(10, b"", timeout_s=None)
    assert world.now - start == pytest.approx(60.0, abs=0.01)  # globalOptions.requestTimeout
    world.run_for(0.1)
    resets = recorder.requests_of(ServiceType.RESET)
    assert resets and resets[-1][1].wIndex == 1  # RESET of that request's id
    service = attach_usb(device).service
    assert service is not None and service.active_count == 0
    assert host.host.active == 0


def test_device_reset_over_usb_acts_after_the_reply(p2: Rig) -> None:
    world, device, _ = p2
    host = VirtualUsbHost(world, device).open()
    boots = device.boot_count
    host.call(requests.reset())
    replied = world.now
    assert device.running
    world.run_until(lambda: device.boot_count > boots, timeout=5)
    assert world.now - replied >= 1.0  # acts 1000 ms after the reply was delivered
    with pytest.raises(UsbError):  # the old handle is stale after re-enumeration
        host.request(1, b"x")
    again = VirtualUsbHost(world, device).open()
    assert again.request(1, b"x") == ControlReply(0, b"x")


def test_start_listening_over_usb(p2: Rig) -> None:
    world, device, _ = p2
    host = VirtualUsbHost(world, device).open()
    host.call(requests.stop_listening())
    assert not device.listening.active
    host.call(requests.start_listening())
    assert device.listening.active
    assert int(host.call(requests.get_device_mode())) == 1


def test_concurrent_requests_option() -> None:
    world, device, _ = make_device()
    host = VirtualUsbHost(world, device, HostOptions(concurrent_requests=1)).open()
    outcomes: list[ControlReply | UsbError] = []
    for index in range(3):
        host.submit(1, bytes([index]), outcomes.append)
    world.run_until(lambda: len(outcomes) == 3, timeout=10)
    assert [o.data for o in outcomes if isinstance(o, ControlReply)] == [b"\x00", b"\x01",
                                                                         b"\x02"]
    assert world.trace.count("usb.busy") == 0


def test_host_refuses_requests_when_closed(p2: Rig) -> None:
    world, device, _ = p2
    host = VirtualUsbHost(world, device)
    with pytest.raises(UsbError, match="not open"):
        host.request(1)
    host.open()
    host.close()
    with pytest.raises(UsbError, match="not open"):
        host.request(1)


def test_opening_a_detached_device_fails(p2: Rig) -> None:
    world, device, _ = p2
    device.power_off()
    with pytest.raises(UsbError, match="no_device"):
        VirtualUsbHost(world, device).open()


def test_control_requests_not_supported_quirk() -> None:
    """particle-usb's ``controlRequestsNotSupported`` (the Tachyon, 0x2B04:0xC02A): open reads
    the descriptors only - no firmware version, no RESET of stale requests - and every
    request is refused with NotAllowed."""
    from firmware_sim.profiles import get_profile
    from firmware_sim.system import AccessPoint, radio_environment
    from transports.usb import UsbNotAllowed
    from transports.usb.platforms import QUIRK_NO_CONTROL_REQUESTS, platform_for_usb_ids

    world = World(0)
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    tachyon = get_profile("p2").with_overrides(name="tachyon", platform_id=42,
                                               usb_pid=0xC02A, dfu_pid=0, quirks=frozenset())
    device = Device(world, "t", profile=tachyon, device_id=DEVICE_ID)
    device.power_on()
    world.run_for(1)
    host = VirtualUsbHost(world, device)
    recorder = Recorder(host)
    host.open()
    assert host.host.platform is not None and host.host.platform.name == "tachyon"
    assert QUIRK_NO_CONTROL_REQUESTS in host.host.quirks
    assert host.host.firmware_version is None
    world.run_for(1)
    assert {setup.request_kind for _, setup, _ in recorder.log} == {0}  # GET_DESCRIPTOR only
    with pytest.raises(UsbNotAllowed, match="Control requests are not supported"):
        host.request(1, b"x")
    assert platform_for_usb_ids(0x2B04, 0) is None  # "no DFU" is not a DFU PID


def test_a_transfer_the_device_never_completes_times_out_after_5000_ms(p2: Rig) -> None:
    """particle-usb sets node-usb's per-transfer timeout to 5000 ms: the P2 never completes a
    zero-length vendor OUT transfer, the host hears TIMED_OUT 5 s later."""
    world, device, _ = p2
    host = VirtualUsbHost(world, device)
    start = world.now
    result = host.transfer(SetupPacket(0x40, 0x50, 0, 302, 0))
    assert result.status.value == "timed_out"
    assert world.now - start == pytest.approx(5.0)
