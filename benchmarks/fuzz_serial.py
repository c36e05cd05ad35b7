"""Fuzz campaign: the listening-mode serial console on a real pseudo-terminal
(``fwsim serve --serial-pty``).

A device without Wi-Fi credentials sits in listening mode under the real-time driver (20x, so
the console's pauses pass quickly); its console is on a pty (:class:`~transports.serial.
PtyConsole`). Bytes go in as a host would type them: random bytes, the command letters with
their dialogs (``C`` claim codes of every length and alphabet, ``w`` Wi-Fi answers, ``f``
YMODEM garbage, ``s``/``v``/``d``/``m``/``c``/``i``), line endings, Ctrl-C, non-UTF-8 and long
lines. The letters that leave listening mode (``x``, ``L``) are left out - they end the
console by design. After every ~2,000 bytes the console must answer ``i`` with the device id: first
a dialog in progress is finished with valid answers (an SSID, security 0, cipher 1, line
endings); a ``w`` dialog that saved credentials leaves listening mode by design (Device OS
does), and the campaign puts the device back into it with START_LISTENING. Counted: crashes
(the driver gone, contained callback failures), hangs (no answer to ``i`` within 5 s).

    python benchmarks/fuzz_serial.py [--bytes 200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import tty
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fuzzing import NASTY_TEXT, CampaignResult
from cloud_sim import Cloud
from firmware_sim.kernel import AsyncioDriver, World
from firmware_sim.system import AccessPoint, Device, radio_environment
from transports.serial import PtyConsole, attach_console

DEVICE_ID = "e00fce68aabbccddeeff0011"
IDENTITY = f"Device ID: {DEVICE_ID}".encode()
SAFE_LETTERS = b"imfsvcCdw"
#: bytes typed between two liveness checks
ROUND_BYTES = 2000
#: valid answers for any dialog in progress: an SSID, security 0, cipher 1, line endings
FINISH_DIALOG = [b"z\r\n", b"0\r\n", b"1\r\n", b"\r\n", b"\r\n"]


def chunk(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.3:
        data = rng.randbytes(rng.randrange(1, 200))
    elif pick < 0.5:
        data = bytes([rng.choice(SAFE_LETTERS)]) + rng.choice([
            b"", b"\r\n", b"\r", b"\n", b"\x03", b"7" * 63 + b"\r\n", b"7" * 64 + b"\r\n",
            rng.choice(NASTY_TEXT).encode() + b"\r\n", b"\xff\xfe\r\n", b"x" * 600 + b"\r\n"])
    elif pick < 0.7:  # a Wi-Fi dialog with odd answers
        answers = [rng.choice(NASTY_TEXT).encode(), rng.randbytes(rng.randrange(40)),
                   rng.choice([b"0", b"1", b"2", b"3", b"9", b"-1", b"\xb2", b"99999999999"]),
                   rng.choice([b"y", b"n", b"", b"Y"])]
        data = b"w" + b"".join(a + rng.choice([b"\r\n", b"\r", b"\n"]) for a in answers)
    elif pick < 0.8:  # YMODEM: a header and garbage blocks
        data = b"f" + rng.choice([b"\x01", b"\x02", b"\x04", b"\x18"]) + rng.randbytes(
            rng.randrange(1, 1100))
    else:
        data = b"C" + bytes(rng.choice(b"ABCabc0123+/=\x00\x80\xff") for _ in range(
            rng.choice([0, 1, 62, 63, 64, 200]))) + b"\r\n"
    return bytes(b for b in data if b not in b"xL")


async def read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    data = b""
    while marker not in data and loop.time() < deadline:
        try:
            data += os.read(fd, 65536)
        except BlockingIOError:
            await asyncio.sleep(0.005)
    return data


async def drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except BlockingIOError:
            return


async def campaign(total_bytes: int, seed: int = 1) -> CampaignResult:
    result = CampaignResult("serial console on a pty", "bytes")
    started = time.monotonic()
    world = World(5, trace_memory_limit=5000)
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    device = Device(world, "serialfuzz", device_id=DEVICE_ID)
    device.attach_cloud(Cloud(world).connector())
    port = attach_console(device)
    device.power_on()
    world.run_for(1.0)
    driver = AsyncioDriver(world, speed=20.0)
    runner = asyncio.ensure_future(driver.run())
    pty = PtyConsole(port, sync=driver.sync, wake=driver.wake)
    path = pty.open(asyncio.get_running_loop())
    client = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(client)
    rng = random.Random(f"serial:{seed}")

    def listen_again() -> None:
        done: list[int] = []
        driver.sync()
        device.control.submit("usb", 70, b"", lambda result, _: done.append(result))
        driver.wake()

    async def identify() -> bool:
        for _ in range(3):
            for answer in FINISH_DIALOG:
                os.write(client, answer)
                await asyncio.sleep(0.03)
            await drain(client)
            if not device.listening.active:
                result.outcomes["listening mode re-entered"] += 1
                listen_again()
                await asyncio.sleep(0.2)
            os.write(client, b"i")
            if IDENTITY in await read_until(client, IDENTITY, 5.0):
                return True
        return False

    try:
        while result.inputs < total_bytes:
            data = b""
            while len(data) < ROUND_BYTES:
                data += chunk(rng)
            data = data[:total_bytes - result.inputs]
            for start in range(0, len(data), 256):  # what a pty takes at once
                os.write(client, data[start:start + 256])
                await asyncio.sleep(0.002)
                await drain(client)
            result.inputs += len(data)
            if not await identify():
                result.failure("hangs", f"no answer to 'i' after {data[:60]!r}")
            result.outcomes["liveness checks"] += 1
            if runner.done():
                result.failure("crashes", "the real-time driver died")
                break
        result.correct_after = await identify() and device.listening.active
        if driver.failure_count:
            result.failure("crashes", f"{driver.failure_count} contained callback failures: "
                           f"{driver.failures[:3]}")
        result.notes.append(f"pty output dropped (nobody read it in time): {pty.dropped:,} "
                            "bytes")
    finally:
        os.close(client)
        pty.close()
        driver.stop()
        await runner
    result.seconds = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(campaign(args.bytes, args.seed))
    print(result.report())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
