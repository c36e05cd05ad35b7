"""The console on a simulated device, through pyserial's ``fwsim://`` URL handler."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import serial

from cloud_sim import Cloud
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.system.device import DeviceState
from transports.serial import URL_HANDLER_PACKAGE, attach_console, enable_pyserial_urls

DEVICE_ID = "e00fce68aabbccddeeff0011"


def make(profile: str = "p2", *, wifi: bool = False, name: str = "dev"
         ) -> tuple[World, Device, Cloud]:
    world = World(3)
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    cloud = Cloud(world)
    device = Device(world, name, profile=profile, device_id=DEVICE_ID,
                    serial_number="P046AB1234ABC12", mobile_secret="ABCDEFGHJKLMNPQ",
                    wifi=[WifiCredentials("HomeNet", "home-pass-1")] if wifi else [])
    device.attach_cloud(cloud.connector())
    attach_console(device)
    device.power_on()
    world.run_for(1)
    return world, device, cloud


@pytest.fixture
def port() -> Iterator[tuple[World, Device, serial.SerialBase]]:
    enable_pyserial_urls()
    world, device, _ = make()
    assert device.listening.active  # no credentials: listening mode at boot
    handle = serial.serial_for_url("fwsim://dev", timeout=1)
    yield world, device, handle
    handle.close()


def test_enable_is_idempotent() -> None:
    enable_pyserial_urls()
    enable_pyserial_urls()
    assert serial.protocol_handler_packages.count(URL_HANDLER_PACKAGE) == 1


def test_identify_with_the_exact_text(port: tuple[World, Device, serial.SerialBase]) -> None:
    _, _, handle = port
    handle.write(b"i")
    assert handle.read(200) == (b"Device ID: e00fce68aabbccddeeff0011\r\n"
                                b"Device Secret: ABCDEFGHJKLMNPQ\r\n"
                                b"Serial Number: P046AB1234ABC12\r\n")


def test_claim_code_reaches_the_dct(port: tuple[World, Device, serial.SerialBase]) -> None:
    _, device, handle = port
    code = "Q" * 63
    handle.write(b"C" + code.encode() + b"\r\n")
    assert handle.read(300) == (b"Enter 63-digit claim code: " + code.encode()
                                + b"\r\nClaim code set to: " + code.encode() + b"\r\n")
    assert device.claim.pending_code() == code
    handle.write(b"C" + b"q" * 62 + b"\n")
    assert b"Claim code unchanged." in handle.read(300)
    assert device.claim.pending_code() == code
    handle.write(b"c")
    assert handle.read(100) == b"Device claimed: no\r\n"


def test_wifi_dialog_provisions_the_device(port: tuple[World, Device, serial.SerialBase]
                                           ) -> None:
    world, device, handle = port
    handle.write(b"w")
    assert handle.read(6) == b"SSID: "
    handle.write(b"HomeNet\n")
    assert handle.read(100) == b"HomeNet\r\nPassword: "  # found in the scan: WPA2, AES+TKIP
    handle.write(b"home-pass-1\n")
    assert handle.read(1000).endswith(b"    Particle <3 you!\r\n\r\n")
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    assert not device.listening.active  # Device OS leaves listening mode after saving
    assert device.credentials.get("HomeNet") is not None
    handle.write(b"i")
    assert handle.read(10) == b""  # no console outside listening mode


def test_no_output_outside_listening_mode() -> None:
    enable_pyserial_urls()
    world, device, _ = make(wifi=True, name="quiet")
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    handle = serial.serial_for_url("fwsim://quiet", timeout=0.5)
    handle.write(b"ivmC" + b"a" * 63 + b"\n")
    assert handle.read(100) == b""
    assert device.claim.pending_code() is None
    assert world.trace.count("serial.discarded") == 1
    device.listening.enter()
    handle.write(b"v")
    assert handle.read(100) == b"system firmware version: 6.2.0\n\r\n"
    handle.write(b"x")  # leave listening mode: the cloud connects again
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    handle.close()


def test_d_prints_the_diagnostic_json(port: tuple[World, Device, serial.SerialBase]) -> None:
    """Device OS's ``d`` (system_setup.cpp) writes system_format_diag_data's JSON - the bytes
    DIAGNOSTIC_INFO replies - then CR LF: listening mode, no credentials, the Wi-Fi interface
    off (net:stat TURNED_OFF 0), cloud DISCONNECTED (0)."""
    world, device, handle = port
    handle.write(b"d")
    line = handle.read_until(b"\r\n")
    uptime = device.uptime_ms() // 1000
    assert line == (b'{"sys:uptime":%d,"net:stat":0,"cloud:stat":0,"sys:protected":0}\r\n'
                    % uptime)
    replies: list[tuple[int, bytes]] = []
    device.control.submit("usb", 100, b"", lambda result, reply: replies.append((result, reply)))
    world.run_for(0.01)
    assert replies == [(0, line[:-2])]


def test_x_and_l(port: tuple[World, Device, serial.SerialBase]) -> None:
    world, device, handle = port
    boots = device.boot_count
    handle.write(b"L")  # startup listening flag + safe mode
    world.run_until(lambda: device.boot_count > boots, timeout=10)
    world.run_for(1)
    assert device.safe_mode and device.listening.active
    exits = world.trace.count("listening.exit")
    handle.write(b"x")
    handle.read(1)
    world.run_for(1)
    assert world.trace.count("listening.exit") == exits + 1
    # No Wi-Fi credentials: Device OS goes straight back to listening mode.
    assert world.trace.count("listening.no_credentials") == 1
    assert device.listening.active
    device.credentials.set(WifiCredentials("HomeNet", "home-pass-1"))
    handle.write(b"x")
    handle.read(1)
    world.run_for(1)
    assert not device.listening.active


def test_console_follows_reboots(port: tuple[World, Device, serial.SerialBase]) -> None:
    world, device, handle = port
    device.reset("user")
    world.run_for(2)
    assert device.listening.active
    handle.write(b"c")
    assert handle.read(100) == b"Device claimed: no\r\n"


def test_url_errors() -> None:
    enable_pyserial_urls()
    with pytest.raises(serial.SerialException, match="no simulated device named"):
        serial.serial_for_url("fwsim://nobody")
    # keep the world: the URL handler finds consoles by weak reference
    world, _, _ = make(name="opts")
    with pytest.raises(serial.SerialException, match="unknown option"):
        serial.serial_for_url("fwsim://opts?speed=1")
    handle = serial.serial_for_url("fwsim://opts?block_limit=2", timeout=None)
    assert handle.read(1) == b""  # nothing to read: gives up after 2 virtual seconds
    assert handle.in_waiting == 0
    handle.close()
    with pytest.raises(serial.PortNotOpenError):
        handle.write(b"i")
    assert world.now >= 2


def test_pyserial_url_at_14400_baud_enters_dfu_mode() -> None:
    """The pyserial URL handler passes the bit rate on as the port's line coding: 9600 does
    nothing, 14400 enters DFU mode (``system_lineCodingBitRateHandler``)."""
    enable_pyserial_urls()
    world, device, _ = make(name="baud")
    handle = serial.serial_for_url("fwsim://baud", timeout=0.5)
    assert device.running
    handle.baudrate = 14400
    world.run_for(1)
    assert device.state is DeviceState.DFU
    handle.close()
    assert [r.fields["bitrate"] for r in world.trace.find("serial.line_coding")] == [9600, 14400]
