"""The real-stack path: a simulated device provisioned through bumble's HCI/L2CAP/ATT.

Both ends live in this process on a bumble ``LocalLink`` (two virtual controllers); the phone
is the :class:`ProvisioningClient` over bleak backend classes that drive a bumble central.
Skipped when bumble (extra ``[bumble]``) is not installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

bumble_link = pytest.importorskip("bumble.link", reason="bumble is not installed (fwsim[bumble])")

from bleak import BleakClient, BleakScanner  # noqa: E402
from bleak.exc import BleakGATTProtocolError  # noqa: E402

from cloud_sim import Principal  # noqa: E402
from transports.ble.bridge import SteppingBridge  # noqa: E402
from transports.ble.bumble_central import BumbleCentral  # noqa: E402
from transports.ble.bumble_peripheral import BumblePeripheral, local_device  # noqa: E402
from transports.ble.client import (  # noqa: E402
    ProvisioningClient,
    ProvisioningError,
    scan_for_devices,
)
from transports.ble.gatt import RX_UUID, SERVICE_UUID, VERSION_UUID  # noqa: E402

from .conftest import SECRET, Rig, make_rig  # noqa: E402

T = TypeVar("T")
OWNER = Principal.user("bumble-owner@example.com")


def on_bumble(rig: Rig, body: Callable[[BumbleCentral], Awaitable[T]]) -> T:
    async def main() -> T:
        bridge = SteppingBridge(rig.world)
        link = bumble_link.LocalLink()
        device = BumblePeripheral(rig.peripheral, local_device(
            link, name="p2", address=rig.peripheral.address), bridge)
        await device.start()
        central = await BumbleCentral.on_link(link)
        try:
            return await asyncio.wait_for(body(central), 30)
        finally:
            await device.stop()
            await central.close()
            await bridge.aclose()

    return asyncio.run(main())


def test_provision_through_a_real_att_stack() -> None:
    rig = make_rig(11)

    async def body(central: BumbleCentral) -> tuple[list[str | None], bool]:
        devices = await BleakScanner.discover(timeout=0.5, service_uuids=[SERVICE_UUID],
                                              backend=central.scanner_backend)
        names = [d.name for d in devices]
        found = await scan_for_devices(0.5, backend=central.scanner_backend)
        code = rig.cloud.create_claim_code(OWNER, ttl_s=3600).code
        async with ProvisioningClient.for_address(found[0].ble_device, SECRET,
                                                  backend=central.client_backend) as client:
            assert client.client.mtu_size == 247
            await client.join_new_network("HomeNet", "home-pass-1")
            await client.set_claim_code(code)
            claimed = await client.is_claimed()
            await client.stop_listening()
        return names, claimed

    names, claimed = on_bumble(rig, body)
    assert names == ["P2-4ABC12"] and claimed is False
    rig.run(60.0)
    assert rig.logs("Send spark/device/claim/code event")
    assert rig.cloud.owner_of(rig.device.device_id) == OWNER
    assert rig.logs("[system.ctrl.ble] TRACE: Handshake done")
    assert rig.prov_events()[:2] == ["connected", "handshake_done"]


def test_wrong_secret_and_att_errors_through_bumble() -> None:
    rig = make_rig(12)

    async def body(central: BumbleCentral) -> int:
        found = await scan_for_devices(0.5, backend=central.scanner_backend)
        bad = ProvisioningClient.for_address(found[0].ble_device, "WRONGWRONGWRONG",
                                             backend=central.client_backend,
                                             handshake_timeout_s=5.0)
        with pytest.raises(ProvisioningError):
            await bad.open()
        await bad.close()
        await asyncio.sleep(0.3)
        async with BleakClient(found[0].ble_device, backend=central.client_backend) as client:
            assert bytes(await client.read_gatt_char(VERSION_UUID)) == b"\x02"
            with pytest.raises(BleakGATTProtocolError) as info:
                await client.write_gatt_char(RX_UUID, bytes(245), response=True)
            return int(info.value.args[0])

    assert on_bumble(rig, body) == 0x0D
    assert "handshake_failed" in rig.prov_events()
