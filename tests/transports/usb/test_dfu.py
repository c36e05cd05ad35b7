"""DFU mode and the claim code by DFU (issue 15): entering DFU, the DFU enumeration, the DfuSe
state machine, and the thread's other path - the claim code written into the DCT at 1762 by a
DFU download through the USB bridge, sent after the full handshake that follows."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sim import Cloud, Principal
from control_requests import RequestType
from firmware_sim.kernel import AsyncioDriver, World
from firmware_sim.system import (
    AccessPoint,
    Device,
    FirmwareOptions,
    WifiCredentials,
    radio_environment,
)
from firmware_sim.system.device import DeviceState
from transports.usb import BridgeUsbClient, UsbBridgeConnection, UsbBridgeServer, attach_usb
from transports.usb.device_port import UsbDevicePort
from transports.usb.dfu import DfuState, DfuStatus
from transports.usb.protocol import SetupPacket
from transports.usb.transfer import TransferResult, TransferStatus

from .dfu_host import MANIFEST, DfuError, DfuHost

CLAIM_CODE_OFFSET = 1762
DEVICE_ID = "e00fce68aabbccddeeff0011"


def make(profile: str = "p2", *, timing: str = "fast", protected: bool = False,
         seed: int = 0) -> tuple[World, Device, Cloud, UsbDevicePort]:
    world = World(seed)
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    cloud = Cloud(world)
    device = Device(world, "dev", profile=profile, device_id=DEVICE_ID,
                    wifi=[WifiCredentials("HomeNet", "home-pass-1")],
                    options=FirmwareOptions(timing=timing, device_protected=protected))
    device.attach_cloud(cloud.connector())
    port = attach_usb(device)
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    return world, device, cloud, port


def in_process(port: UsbDevicePort) -> DfuHost:
    async def control(setup: SetupPacket, data: bytes) -> TransferResult:
        return port.control_transfer(setup, data)

    return DfuHost(control)


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


# -- entering DFU ----------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "dfu_pid"), [("p2", 0xD020), ("photon2", 0xD020),
                                                  ("argon", 0xD00C), ("photon", 0xD006)])
def test_dfu_mode_request_enumerates_on_the_platforms_dfu_pid(profile: str,
                                                               dfu_pid: int) -> None:
    world, device, _, port = make(profile)
    out: list[tuple[int, bytes]] = []
    request = device.control.submit("usb", RequestType.DFU_MODE, b"",
                                    lambda result, reply: out.append((result, reply)))
    world.run_for(0.01)
    request.reply_delivered()
    assert out == [(0, b"")]
    world.run_for(0.9)
    assert device.state is DeviceState.RUNNING  # DFU_MODE acts 1000 ms after the reply
    world.run_for(0.3)
    assert device.state is DeviceState.DFU and port.in_dfu_mode
    listed = port.describe()
    assert (listed["vendorId"], listed["productId"], listed["dfu"]) == (0x2B04, dfu_pid, True)
    assert world.trace.count("device.dfu", node="dev") == 1


def test_the_cloud_and_the_serial_console_also_enter_dfu() -> None:
    world, device, cloud, port = make()
    assert cloud.endpoint.send_event(device.device_id, "spark/device/reset", b"dfu")
    world.run_for(2)
    assert device.state is DeviceState.DFU and port.in_dfu_mode
    world2, device2, _, port2 = make(seed=1)
    device2.line_coding_changed(9600)  # any other bit rate: nothing
    assert device2.running
    device2.line_coding_changed(14400)  # START_DFU_FLASHER_SERIAL_SPEED
    world2.run_for(1)
    assert device2.state is DeviceState.DFU and port2.in_dfu_mode


def test_dfu_descriptors_alt_settings_and_functional_descriptor() -> None:
    world, device, _, port = make()
    device.enter_dfu()
    world.run_for(1)
    info = run(in_process(port).describe())
    assert info.alt_names == {0: "@Internal Flash   /0x08000000/2048*004Kg",  # type: ignore[attr-defined]
                              1: "@DCT Flash   /0x00000000/1*016Ke"}
    assert info.transfer_size == 4096 and info.dfu_version == 0x011A  # type: ignore[attr-defined]
    assert info.attributes == 0x0B and info.serial == DEVICE_ID.upper()  # type: ignore[attr-defined]
    assert info.descriptor.idProduct == 0xD020 and info.descriptor.bcdDevice == 0x0252  # type: ignore[attr-defined]
    # the CDC service is gone: a vendor control request stalls
    assert port.control_transfer(SetupPacket(0xC0, 1, 0, 200, 64)).status is \
        TransferStatus.STALL


# -- the DfuSe state machine -----------------------------------------------------------------


def test_download_at_1762_writes_the_claim_code_and_upload_reads_it_back() -> None:
    world, device, _, port = make()
    device.enter_dfu()
    world.run_for(1)
    host = in_process(port)
    code = b"K" * 63
    run(host.download(1, CLAIM_CODE_OFFSET, code))
    assert device.claim.stored_code() == code and not device.claim.is_device_claimed()
    assert run(host.upload(1, CLAIM_CODE_OFFSET, 64)) == code + b"\xff"  # then `claimed`
    assert run(host.upload(0, 0x08000000, 8)) == b"\xff" * 8  # erased flash
    run(host.download(0, 0x08001000, b"firmware"))
    assert run(host.upload(0, 0x08001000, 8)) == b"firmware"


def test_state_machine_errors() -> None:
    world, device, _, port = make()
    device.enter_dfu()
    world.run_for(1)
    host = in_process(port)
    driver = port.dfu
    assert driver is not None
    # past the DCT (8391 bytes): the DCT write fails -> errUNKNOWN, dfuERROR
    with pytest.raises(DfuError):
        run(host.download(1, 8390, b"xx"))
    assert (driver.state, driver.status) == (DfuState.dfuERROR, DfuStatus.errUNKNOWN)
    # a DNLOAD in dfuERROR stalls; CLRSTATUS returns to dfuIDLE
    assert port.control_transfer(SetupPacket(0x21, 1, 2, 0, 1), b"x").status is \
        TransferStatus.STALL
    assert port.control_transfer(SetupPacket(0x21, 4, 0, 0, 0)).ok
    assert driver.state is DfuState.dfuIDLE
    # CLRSTATUS outside dfuERROR: no transition -> stall and dfuERROR
    assert port.control_transfer(SetupPacket(0x21, 4, 0, 0, 0)).status is TransferStatus.STALL
    run(host.clear_status())
    # mass erase (a 1-byte ERASE) is refused with errTARGET
    assert port.control_transfer(SetupPacket(0x21, 1, 0, 0, 1), b"\x41").ok
    run(host.get_status())  # dfuDNBUSY, then the command runs
    assert (driver.state, driver.status) == (DfuState.dfuERROR, DfuStatus.errTARGET)
    run(host.clear_status())
    # an unknown alternate setting stalls SET_INTERFACE
    assert port.control_transfer(SetupPacket(0x01, 11, 2, 0, 0)).status is TransferStatus.STALL
    assert run(host.get_state()) == DfuState.dfuIDLE


def test_protected_device_refuses_downloads_with_errvendor() -> None:
    world, device, _, port = make(protected=True)
    device.enter_dfu()
    world.run_for(1)
    host = in_process(port)
    info = run(host.describe())
    assert info.alt_names[1].endswith("Kb")  # type: ignore[attr-defined]
    with pytest.raises(DfuError):
        run(host.download(1, CLAIM_CODE_OFFSET, b"X" * 63))
    status = run(host.get_status())
    assert (status.status, status.state) == (DfuStatus.errVENDOR, DfuState.dfuERROR)  # type: ignore[attr-defined]
    assert device.claim.stored_code() != b"X" * 63


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0x21, 0xA1, 0x01, 0x81, 0x80]), st.integers(0, 12),
                          st.integers(0, 5), st.binary(max_size=8)), max_size=25))
def test_arbitrary_requests_only_complete_or_stall(
        requests: list[tuple[int, int, int, bytes]]) -> None:
    world, device, port = _DFU_RIG
    for request_type, request, value, data in requests:
        is_in = bool(request_type & 0x80)
        setup = SetupPacket(request_type, request, value, 0, 6 if is_in else len(data))
        result = port.control_transfer(setup, b"" if is_in else data)
        assert result.status in (TransferStatus.COMPLETED, TransferStatus.STALL)
        world.run_for(0.001)
        if device.state is not DeviceState.DFU:  # a leave: go back into DFU
            world.run_until(lambda: device.running, timeout=5)
            device.enter_dfu()
            world.run_for(1)


def _dfu_rig() -> tuple[World, Device, UsbDevicePort]:
    world, device, _, port = make(seed=3)
    device.enter_dfu()
    world.run_for(1)
    return world, device, port


_DFU_RIG = _dfu_rig()


# -- the thread's path, through the USB bridge -----------------------------------------------


def test_claim_code_by_dfu_through_the_usb_bridge_is_sent_after_a_full_handshake() -> None:
    """"I set the claim code using DFU instead of the control request": the control request
    DFU_MODE, a DfuSe download of the code at DCT offset 1762 (alt 1), the DfuSe leave; the
    device boots (reset reason dfu_mode), does a full handshake and publishes the code."""
    world, device, cloud, port = make()
    code = cloud.create_claim_code(Principal.user("dfu@example.com")).code

    async def main() -> None:
        driver = AsyncioDriver(world, speed=20.0)
        runner = asyncio.ensure_future(driver.run())
        server = UsbBridgeServer(lambda: [port], sync=driver.sync, wake=driver.wake)
        host_name, port_number = await server.start()
        address = f"{host_name}:{port_number}"
        try:
            client = await BridgeUsbClient.connect(address)
            try:
                assert (await client.send_raw(RequestType.DFU_MODE)).result == 0
            finally:
                await client.aclose()
            connection = await UsbBridgeConnection.connect(address)
            try:
                for _ in range(200):  # the device resets 1 s later and re-enumerates
                    listed = await connection.list_devices()
                    if listed and listed[0]["productId"] == 0xD020:
                        break
                    await asyncio.sleep(0.01)
                assert listed[0]["dfu"] is True and listed[0]["vendorId"] == 0x2B04
                await connection.open(listed[0]["serialNumber"])
                host = DfuHost(connection.control)
                info = await host.describe()
                assert info.alt_names[1] == "@DCT Flash   /0x00000000/1*016Ke"
                await host.download(1, CLAIM_CODE_OFFSET, code.encode())
                status = await host.leave(CLAIM_CODE_OFFSET)
                assert status.state == MANIFEST
            finally:
                await connection.close()
            for _ in range(500):
                if device.claim.is_device_claimed():
                    break
                await asyncio.sleep(0.01)
        finally:
            await server.stop()
            driver.stop()
            await runner

    asyncio.run(asyncio.wait_for(main(), 30))
    lines = device.log_lines()
    boot = max(i for i, line in enumerate(lines) if "Establish secure connection" in line)
    after = [line[11:] for line in lines[boot:]]
    assert "[comm.protocol.handshake] INFO: Sending HELLO message" in after  # full handshake
    assert f"[system] INFO: Send spark/device/claim/code event for code {code}" in after
    assert device.claim.is_device_claimed()
    assert cloud.owner_of(device.device_id) == Principal.user("dfu@example.com")
    assert [e.data for e in cloud.bus.find("spark/device/last_reset")][-1] == "dfu_mode"
    writes = world.trace.find("dfu.write", node="dev")
    assert [(w.get("alt"), w.get("address"), w.get("size")) for w in writes] == [
        (1, CLAIM_CODE_OFFSET, 63)]


@pytest.mark.interop
def test_particle_usb_writes_the_claim_code_over_dfu_through_the_bridge() -> None:
    """particle-usb 4.1.0's own DFU support (``writeOverDfu`` with ``leave``) through the USB
    bridge and fwsim's node-usb stand-in: the code lands at 1762 and is sent after the boot."""
    import json
    import shutil
    from pathlib import Path

    node = shutil.which("node")
    script = Path(__file__).with_name("particle_usb_dfu.js")
    package = Path(__file__).parents[2] / "interop/node/node_modules/particle-usb/package.json"
    if node is None or not package.exists():
        pytest.skip("node or particle-usb (tests/interop/node) is not installed")
    world, device, cloud, port = make()
    code = cloud.create_claim_code(Principal.user("node@example.com")).code

    async def main() -> dict[str, object]:
        driver = AsyncioDriver(world, speed=20.0)
        runner = asyncio.ensure_future(driver.run())
        server = UsbBridgeServer(lambda: [port], sync=driver.sync, wake=driver.wake)
        host_name, port_number = await server.start()
        try:
            process = await asyncio.create_subprocess_exec(
                node, str(script), code, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={"PATH": "/usr/bin:/bin", "FWSIM_USB_BRIDGE": f"{host_name}:{port_number}"})
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, stderr.decode()
            for _ in range(500):
                if device.claim.is_device_claimed():
                    break
                await asyncio.sleep(0.01)
            result: dict[str, object] = json.loads(stdout)
            return result
        finally:
            await server.stop()
            driver.stop()
            await runner

    out = asyncio.run(main())
    assert out["cdcProductId"] == 0xC020 and out["dfuModeResult"] == 0
    assert out["inDfuMode"] is True and out["dfuProductId"] == 0xD020
    assert out["before"] == "ff" * 64  # no code yet, `claimed` erased
    assert any(f"Send spark/device/claim/code event for code {code}" in line
               for line in device.log_lines())
    assert device.claim.is_device_claimed()
    assert cloud.owner_of(device.device_id) == Principal.user("node@example.com")
