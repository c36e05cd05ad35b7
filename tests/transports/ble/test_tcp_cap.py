"""The served BLE controller's TCP listener: one host link, extra connections closed at once.

QA finding: bumble's own ``tcp-server`` accepted without limit (1,100 connections exhausted a
1,024 open-file limit) and asyncio logged a traceback per failed accept (53,073 in 15 s).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

pytest.importorskip("bumble")

from transports.ble.tcp_listener import (
    TcpListenerLimits,
    TcpServerTransport,
    open_tcp_server_transport,
)

from ..open_file_limit import FailingAccepts

HCI_RESET = bytes([0x01, 0x03, 0x0C, 0x00])
HCI_READ_BD_ADDR = bytes([0x01, 0x09, 0x10, 0x00])
EVENT = bytes([0x04, 0x0E, 0x04, 0x01, 0x03, 0x0C, 0x00])  # Command Complete (Reset), success


class Recorder:
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def on_packet(self, packet: bytes) -> None:
        self.packets.append(bytes(packet))


async def _until(condition: object, timeout: float = 3.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 2.0) == b""
    except ConnectionError:
        return True


def test_connections_past_the_one_host_are_closed_and_the_host_keeps_its_link() -> None:
    async def main() -> None:
        transport = await open_tcp_server_transport("127.0.0.1:0")
        recorder = Recorder()
        transport.source.set_packet_sink(recorder)
        host, port = transport.address
        try:
            reader, writer = await asyncio.open_connection(host, port)
            await _until(lambda: transport.host_attached)
            writer.write(HCI_RESET)
            await _until(lambda: recorder.packets == [HCI_RESET])

            extras = [await asyncio.open_connection(host, port) for _ in range(20)]
            closed = await asyncio.gather(*(_closed_by_peer(r) for r, _ in extras))
            assert all(closed)
            assert transport.refused == 20
            for _, extra in extras:
                extra.close()

            # the attached host is still served both ways
            writer.write(HCI_READ_BD_ADDR)
            await _until(lambda: recorder.packets == [HCI_RESET, HCI_READ_BD_ADDR])
            transport.sink.on_packet(EVENT)
            assert await asyncio.wait_for(reader.readexactly(len(EVENT)), 2.0) == EVENT

            # when it leaves, the next connection becomes the host (a half packet is forgotten)
            writer.write(HCI_RESET[:2])
            await writer.drain()
            writer.close()
            await _until(lambda: not transport.host_attached)
            _, second = await asyncio.open_connection(host, port)
            await _until(lambda: transport.host_attached)
            second.write(HCI_RESET)
            await _until(lambda: recorder.packets[-1:] == [HCI_RESET])
            assert len(recorder.packets) == 3
            second.close()
        finally:
            await transport.close()

    asyncio.run(main())


def test_accept_failing_at_the_open_file_limit_logs_one_line_and_recovers(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        accepts = FailingAccepts(200)
        transport: TcpServerTransport = await open_tcp_server_transport(
            "127.0.0.1:0", TcpListenerLimits(retry_delay_s=0.001, log_interval_s=60.0))
        try:
            await _until(lambda: accepts.left == 0)
            _, writer = await asyncio.open_connection(*transport.address)
            await _until(lambda: transport.host_attached)
            writer.close()
        finally:
            await transport.close()
        assert transport.accept_failures == 200

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    lines = [r for r in caplog.records if "accept failed" in r.getMessage()]
    assert len(lines) == 1
    assert "Too many open files" in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_a_bad_address_is_a_configuration_error() -> None:
    from firmware_sim.kernel.errors import ConfigurationError

    async def main() -> None:
        with pytest.raises(ConfigurationError, match="HOST:PORT"):
            await open_tcp_server_transport("127.0.0.1:port")

    asyncio.run(main())
