"""bleak code and the ProvisioningClient against simulated devices (virtual time, in process).

The "done when" of issue 7: over the bleak backend, a scan finds ``P2-XXXXXX``, the handshake
completes with the right secret, ``join_new_network`` + ``set_claim_code`` + ``is_claimed``
work, and the device then connects to the cloud and sends the claim code - or, with a
persisted session that resumes, does not - exactly as in the core scenarios.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError

from cloud_sim import Principal
from control_requests.types import RequestType
from firmware_sim.scenarios.catalog import NEW
from firmware_sim.system.radio import radio_environment
from transports.ble.bleak_backend import SimulatedBle
from transports.ble.client import ProvisioningClient, ProvisioningError, scan_for_devices
from transports.ble.client_channel import ClientControlChannel
from transports.ble.gatt import RX_UUID, SERVICE_UUID, TX_UUID, VERSION_UUID

from .conftest import SECRET, Rig, make_rig

T = TypeVar("T")
OWNER = Principal.user("new-owner@example.com")


def run(rig: Rig, body: Callable[[SimulatedBle], Awaitable[T]]) -> T:
    async def main() -> T:
        sim = SimulatedBle(rig.world)
        try:
            return await body(sim)
        finally:
            await sim.bridge.aclose()

    return asyncio.run(main())


def _claim_sent(rig: Rig) -> bool:
    return bool(rig.logs("Send spark/device/claim/code event"))


def test_existing_bleak_code_runs_unmodified(rig: Rig) -> None:
    """Plain bleak calls; only the backend classes come from fwsim."""

    async def body(sim: SimulatedBle) -> tuple[str | None, bytes, bool]:
        found = await BleakScanner.discover(timeout=0.2, service_uuids=[SERVICE_UUID],
                                            return_adv=True, backend=sim.scanner_backend)
        (device, advertisement), = found.values()
        channel = ClientControlChannel(SECRET)
        done = asyncio.Event()
        writers: set[asyncio.Task[None]] = set()

        async with BleakClient(device, backend=sim.client_backend) as client:
            assert client.backend_id == "FwsimBleakClient"
            version = bytes(await client.read_gatt_char(VERSION_UUID))
            size = client.services.get_characteristic(RX_UUID).max_write_without_response_size

            async def send(data: bytes) -> None:
                for start in range(0, len(data), size):
                    await client.write_gatt_char(RX_UUID, data[start:start + size],
                                                 response=True)

            def on_tx(_char: BleakGATTCharacteristic, data: bytearray) -> None:
                received = channel.data_received(bytes(data))
                if received.outgoing:
                    writers.add(asyncio.ensure_future(send(received.outgoing)))
                if received.handshake_done:
                    done.set()

            await client.start_notify(TX_UUID, on_tx)
            await send(channel.start())
            await asyncio.wait_for(done.wait(), 5)
        return advertisement.local_name, version, done.is_set()

    name, version, ok = run(rig, body)
    assert (name, version, ok) == ("P2-4ABC12", b"\x02", True)


def test_patch_bleak_makes_the_simulation_the_default_backend(rig: Rig) -> None:
    async def body(sim: SimulatedBle) -> tuple[list[str | None], bytes]:
        with sim.patch_bleak():
            devices = await BleakScanner.discover(timeout=0.2)
            async with BleakClient(devices[0]) as client:
                return [d.name for d in devices], bytes(await client.read_gatt_char(
                    VERSION_UUID))

    assert run(rig, body) == (["P2-4ABC12"], b"\x02")


def test_done_when_fresh_device_sends_the_claim_code() -> None:
    rig = make_rig(3)  # no credentials: listening mode, no session

    async def body(sim: SimulatedBle) -> bool:
        found = await scan_for_devices(1.0, backend=sim.scanner_backend, bridge=sim.bridge)
        assert [d.name for d in found] == ["P2-4ABC12"]
        assert (found[0].platform_id, found[0].setup_code) == (32, "4ABC12")
        code = rig.cloud.create_claim_code(OWNER, ttl_s=3600).code
        async with ProvisioningClient.for_address(found[0].ble_device, SECRET,
                                                  backend=sim.client_backend,
                                                  bridge=sim.bridge) as client:
            await client.join_new_network("HomeNet", "home-pass-1")
            await client.set_claim_code(code)
            claimed = await client.is_claimed()
            await client.stop_listening()
        return claimed

    assert run(rig, body) is False
    rig.run(60.0)
    assert rig.device.cloud.handshakes["full"] == 1
    assert _claim_sent(rig)
    assert rig.cloud.owner_of(rig.device.device_id) == OWNER
    assert rig.device.claim.is_device_claimed()


def test_done_when_resumed_session_does_not_send_the_claim_code() -> None:
    """The resume-bug scenario, with the phone on bleak: the session resumes, no code."""
    rig = make_rig(4, wifi=True, advertising="always")
    radio_environment(rig.world).add(NEW)
    rig.run(20.0)
    assert rig.device.cloud_connected and rig.device.cloud.handshakes["full"] == 1

    async def body(sim: SimulatedBle) -> None:
        found = await scan_for_devices(1.0, backend=sim.scanner_backend, bridge=sim.bridge)
        code = rig.cloud.create_claim_code(OWNER, ttl_s=3600).code
        async with ProvisioningClient.for_address(found[0].ble_device, SECRET,
                                                  backend=sim.client_backend,
                                                  bridge=sim.bridge) as client:
            await client.set_claim_code(code)
            await client.join_new_network(NEW.ssid, NEW.password)

    run(rig, body)
    rig.run(120.0)
    assert rig.device.cloud_connected
    assert rig.device.cloud.handshakes["resumed"] >= 1
    assert rig.device.cloud.handshakes["full"] == 1
    assert not _claim_sent(rig)
    assert rig.device.claim.pending_code() is not None
    assert rig.cloud.owner_of(rig.device.device_id) != OWNER


def test_wrong_secret_fails_and_the_device_stays_provisionable(rig: Rig) -> None:
    async def body(sim: SimulatedBle) -> bool:
        found = await scan_for_devices(0.5, backend=sim.scanner_backend, bridge=sim.bridge)
        bad = ProvisioningClient.for_address(found[0].ble_device, "WRONGWRONGWRONG",
                                             backend=sim.client_backend, bridge=sim.bridge)
        with pytest.raises(ProvisioningError, match="wrong mobile secret"):
            await bad.open()
        await bad.close()
        await sim.run_for(0.5)
        good = ProvisioningClient.for_address(found[0].ble_device, SECRET,
                                              backend=sim.client_backend, bridge=sim.bridge)
        async with good:
            return await good.is_claimed()

    assert run(rig, body) is False
    assert rig.prov_events()[:3] == ["connected", "handshake_failed", "disconnected"]


def test_att_errors_become_bleak_gatt_protocol_errors(rig: Rig) -> None:
    async def body(sim: SimulatedBle) -> list[int]:
        devices = await BleakScanner.discover(timeout=0.2, backend=sim.scanner_backend)
        codes = []
        async with BleakClient(devices[0], backend=sim.client_backend) as client:
            for action in (lambda: client.write_gatt_char(VERSION_UUID, b"\x01", response=True),
                           lambda: client.read_gatt_char(RX_UUID),
                           lambda: client.write_gatt_char(RX_UUID, bytes(245), response=True)):
                with pytest.raises(BleakGATTProtocolError) as info:
                    await action()
                codes.append(int(info.value.args[0]))
            with pytest.raises(BleakError, match="at most 244"):
                await client.write_gatt_char(RX_UUID, bytes(245), response=False)
        return codes

    assert run(rig, body) == [0x03, 0x02, 0x0D]


def test_unsolicited_disconnect_reaches_bleak(rig: Rig) -> None:
    async def body(sim: SimulatedBle) -> list[str]:
        devices = await BleakScanner.discover(timeout=0.2, backend=sim.scanner_backend)
        events: list[str] = []
        client = BleakClient(devices[0], lambda _c: events.append("disconnected"),
                             backend=sim.client_backend)
        await client.connect()
        sim.bridge.enter()
        rig.device.reset("user")
        sim.bridge.leave()
        await sim.run_for(0.5)
        assert not client.is_connected
        with pytest.raises(BleakError, match="Not connected"):
            await client.read_gatt_char(VERSION_UUID)
        return events

    assert run(rig, body) == ["disconnected"]


def test_timeouts_are_virtual_and_concurrent_requests_match_their_replies(rig: Rig) -> None:
    rig.device.control.set_app_handler(lambda request: None)  # APP_CUSTOM never answers

    async def body(sim: SimulatedBle) -> tuple[list[Any], float]:
        found = await scan_for_devices(0.5, backend=sim.scanner_backend, bridge=sim.bridge)
        async with ProvisioningClient.for_address(
                found[0].ble_device, SECRET, backend=sim.client_backend, bridge=sim.bridge,
                request_timeout_s=5.0) as client:
            echoes = await asyncio.gather(*(client.echo(bytes([i]) * (i * 50))
                                            for i in range(6)))
            started = rig.world.now
            with pytest.raises(ProvisioningError, match="timed out after 5 s"):
                await client.send_raw(RequestType.APP_CUSTOM, b"?")
            return echoes, rig.world.now - started

    echoes, waited = run(rig, body)
    assert echoes == [bytes([i]) * (i * 50) for i in range(6)]
    assert 5.0 <= waited < 6.0


def test_same_seed_same_trace_through_the_bridge() -> None:
    def once() -> list[str]:
        rig = make_rig(9)

        async def body(sim: SimulatedBle) -> None:
            found = await scan_for_devices(0.5, backend=sim.scanner_backend, bridge=sim.bridge)
            async with ProvisioningClient.for_address(
                    found[0].ble_device, SECRET, backend=sim.client_backend,
                    bridge=sim.bridge, randbytes=rig.world.rng_for("phone").randbytes) as c:
                await c.join_new_network("HomeNet", "home-pass-1")

        run(rig, body)
        return [record.summary() for record in rig.world.trace.records]

    assert once() == once()
