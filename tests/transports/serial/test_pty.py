"""The console on a real pseudo-terminal (the edge adapter behind ``--serial-pty``)."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

import serial

from firmware_sim.kernel import AsyncioDriver
from firmware_sim.system.device import DeviceState
from transports.serial import PtyConsole, attach_console

from .test_device_console import make


async def read_until(fd: int, marker: bytes, timeout: float = 5.0) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    deadline = loop.time() + timeout
    while marker not in data and loop.time() < deadline:
        try:
            data += os.read(fd, 4096)
        except BlockingIOError:
            await asyncio.sleep(0.01)
    return data


def test_pty_round_trip_and_symlink(tmp_path: Path) -> None:
    _, device, _ = make(name="ptydev")
    link = tmp_path / "ttyACM0"

    async def main() -> None:
        driver = AsyncioDriver(device.world)
        runner = asyncio.ensure_future(driver.run())
        pty = PtyConsole(attach_console(device), sync=driver.sync, wake=driver.wake, link=link)
        path = pty.open(asyncio.get_running_loop())
        try:
            assert path.startswith("/dev/pts/") and os.readlink(link) == path
            client = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(client)
            os.write(client, b"i")
            out = await read_until(client, b"Serial Number: P046AB1234ABC12\r\n")
            assert out == (b"Device ID: e00fce68aabbccddeeff0011\r\nDevice Secret: "
                           b"ABCDEFGHJKLMNPQ\r\nSerial Number: P046AB1234ABC12\r\n")
            os.write(client, b"C" + b"7" * 63 + b"\r\n")
            out = await read_until(client, b"Claim code set to: " + b"7" * 63 + b"\r\n")
            assert out.startswith(b"Enter 63-digit claim code: ")
            assert device.claim.pending_code() == "7" * 63
            os.write(client, b"\x03")  # Ctrl-C: raw mode, just a byte for the console
            os.close(client)
            # pyserial on the pty, in a thread (blocking reads)
            def with_pyserial() -> bytes:
                with serial.Serial(str(link), 9600, timeout=2) as port:
                    port.write(b"c")
                    return bytes(port.read(20))
            assert await asyncio.to_thread(with_pyserial) == b"Device claimed: no\r\n"
        finally:
            pty.close()
            driver.stop()
            await runner
        assert not link.exists()

    asyncio.run(main())


def test_output_nobody_reads_is_dropped_not_blocking() -> None:
    _, device, _ = make(name="flood")

    async def main() -> None:
        driver = AsyncioDriver(device.world)
        runner = asyncio.ensure_future(driver.run())
        pty = PtyConsole(attach_console(device), sync=driver.sync, wake=driver.wake)
        pty.open(asyncio.get_running_loop())
        try:
            port = attach_console(device)
            for _ in range(400):  # far more than the pty buffer holds
                port.receive(b"s")
            assert pty.dropped > 0
        finally:
            pty.close()
            driver.stop()
            await runner

    asyncio.run(main())


def test_a_client_opening_the_pty_at_14400_baud_puts_the_device_in_dfu_mode() -> None:
    """``system_lineCodingBitRateHandler``: the CDC port opened at 14400 baud enters DFU; the
    pty carries the rate a client sets (pyserial uses BOTHER for it) to the device."""
    _, device, _ = make(name="dfu-by-baud")

    async def main() -> None:
        driver = AsyncioDriver(device.world)
        runner = asyncio.ensure_future(driver.run())
        console = attach_console(device)
        pty = PtyConsole(console, sync=driver.sync, wake=driver.wake)
        path = pty.open(asyncio.get_running_loop())
        try:
            def open_at(rate: int) -> None:
                with serial.Serial(path, rate, timeout=0.1):
                    pass

            await asyncio.to_thread(open_at, 9600)
            await asyncio.sleep(0.3)
            assert device.running and console.bitrate == 9600
            await asyncio.to_thread(open_at, 14400)
            for _ in range(50):
                if device.state is DeviceState.DFU:
                    break
                await asyncio.sleep(0.05)
            assert device.state is DeviceState.DFU
        finally:
            pty.close()
            driver.stop()
            await runner
        rates = [r.fields["bitrate"] for r in device.world.trace.find("serial.line_coding")]
        assert rates == [9600, 14400]
        assert device.world.trace.count("usb.serial_dfu_request") == 1

    asyncio.run(main())
