"""What a socket client sees of the SoftAP edge when it cannot be served.

Real loopback sockets against ``serve_softap``, the world at 10x wall speed:

* SoftAP down (listening mode left): a new connection and one still open are reset (an RST,
  ``ConnectionResetError``), never closed cleanly - a clean close with no data crashes
  ``@particle/softap-setup``; the same ports serve again once listening mode returns;
* an HTTP request whose ``Content-Length`` is over ``max_body_bytes`` is answered at once, from
  its head alone, and the connection closes; the TCP protocol does the same.
"""

from __future__ import annotations

import asyncio

import pytest

from firmware_sim.kernel.realtime import AsyncioDriver
from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device
from firmware_sim.system.network import WifiCredentials
from firmware_sim.system.radio import radio_environment
from firmware_sim.testbed.adapters import surface_for
from tests.waiting import until
from transports.softap import SoftApClient, SoftApError, softap_for
from transports.softap.edge import SoftApLimits, SoftApServer, serve_softap

from .conftest import HOME
from .test_client_sockets import Ctx
from .test_limits import run

SPEED = 10.0
PROTOCOLS = ("tcp", "http")


async def _outcome(reader: asyncio.StreamReader, timeout_s: float = 3.0) -> str:
    """How the server ended the connection: ``reset``, ``closed`` (clean) or ``open``."""
    try:
        while await asyncio.wait_for(reader.read(1024), timeout_s):
            pass
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "open"
    return "closed"


async def _new_connection_outcome(port: int) -> str:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionResetError:  # the RST can beat the connect's completion
        return "reset"
    try:
        return await _outcome(reader)
    finally:
        writer.close()


def test_a_softap_that_is_down_resets_connections_and_comes_back_on_the_same_ports() -> None:
    async def main() -> None:
        world = World(3)
        radio_environment(world).add(HOME)
        device = Device(world, "photon", profile="photon",
                        wifi=[WifiCredentials("HomeNet", "home-pass-1")])
        driver = AsyncioDriver(world, speed=SPEED)
        surface = surface_for(device)
        ctx = Ctx(world, driver, [surface])
        device.power_on()
        runner = asyncio.ensure_future(driver.run())
        softap = softap_for(surface)

        def listening(enter: bool) -> None:
            driver.sync()
            if enter:
                device.listening.enter()
            else:
                device.listening.exit()
            driver.wake()

        try:
            handle = await serve_softap(ctx, surface, tcp_port=0, http_port=0)
            ports = {("tcp" if line.startswith("softap tcp") else "http"):
                     int(line.rsplit(":", 1)[1].strip("/")) for line in handle.lines[1:]}
            try:
                # a device with credentials is not in listening mode: the SoftAP is down
                assert await until(lambda: device.running)
                assert not softap.active
                for protocol in PROTOCOLS:
                    assert await _new_connection_outcome(ports[protocol]) == "reset"
                    with pytest.raises(SoftApError):
                        await SoftApClient("127.0.0.1", ports[protocol], protocol=protocol,
                                           timeout_s=3).version()

                listening(True)
                assert softap.active
                # connections open, mid-request, when listening mode ends
                opened = {}
                for protocol, partial in (("tcp", b"vers"), ("http", b"GET /version HT")):
                    reader, writer = await asyncio.open_connection("127.0.0.1", ports[protocol])
                    writer.write(partial)
                    opened[protocol] = reader, writer
                    assert await SoftApClient("127.0.0.1", ports[protocol], protocol=protocol,
                                              timeout_s=3).version() == 2
                assert await until(lambda: softap.open_sessions == 2)
                listening(False)
                for protocol, (reader, writer) in opened.items():
                    assert await _outcome(reader) == "reset", protocol
                    writer.close()
                    assert await _new_connection_outcome(ports[protocol]) == "reset"

                listening(True)  # listening mode again: the same ports serve
                for protocol in PROTOCOLS:
                    assert await SoftApClient("127.0.0.1", ports[protocol], protocol=protocol,
                                              timeout_s=3).version() == 2
            finally:
                assert handle.stop is not None
                await handle.stop()
        finally:
            driver.stop()
            await runner

    asyncio.run(main())


@pytest.mark.parametrize("length", [16385, 999_999_999])
def test_an_oversize_http_body_is_answered_from_the_head_alone(length: int) -> None:
    async def check(listeners: dict[str, SoftApServer], ports: dict[str, int]) -> None:
        loop = asyncio.get_running_loop()
        for protocol, head in (
                ("http", b"POST /set HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{}"
                 % length),
                ("tcp", b"set\n%d\n\n{}" % length)):
            reader, writer = await asyncio.open_connection("127.0.0.1", ports[protocol])
            started = loop.time()
            writer.write(head)
            # the reply and the close come at once (well before the 10 virtual s = 1 wall s
            # request timeout, and the body never comes)
            reply = await asyncio.wait_for(reader.read(), 0.5)
            assert loop.time() - started < 0.5
            if protocol == "http":
                assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
                assert b"\r\nConnection: close\r\n" in reply
                assert reply.endswith(b"\r\n\r\n0\r\n\r\n")  # an empty chunked body
            else:
                assert reply == b"\n\n"
            writer.close()

    run(check, SoftApLimits())
