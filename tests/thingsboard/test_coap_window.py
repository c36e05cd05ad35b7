"""aiocoap's duplicate-detection window on the ThingsBoard CoAP port is capped (security QA:
each request's ~2 KB response was kept 247 s with no cap; 20,243 requests grew the server from
130 to 172 MB)."""

from __future__ import annotations

import asyncio
import socket
import struct

import aiocoap
import pytest

from cloud_sim.runtime import NullRuntime
from cloud_sim.thingsboard import coap
from cloud_sim.thingsboard.coap import BoundedRecentMessages, serve_coap
from cloud_sim.thingsboard.service import ThingsBoardService
from firmware_sim.kernel.world import World

LIMIT = 20


def test_the_window_forgets_the_oldest_beyond_its_limit_and_the_expired() -> None:
    now = [0.0]
    window = BoundedRecentMessages(3, clock=lambda: now[0])
    for key in "abcd":
        window.add(key, 10.0)
        now[0] += 1
    assert list(window) == ["b", "c", "d"] and window.forgotten == 1
    window["c"] = "response"  # aiocoap storing the response of a request it holds
    assert list(window) == ["b", "c", "d"] and window["c"] == "response"
    now[0] = 12.5  # b (added at 1) and c (at 2) are past their 10 s
    window.add("e", 10.0)
    assert list(window) == ["d", "e"] and window.forgotten == 1


def _claim(mid: int) -> bytes:
    """A CON POST to api/v1/nope/claim (a bad token: 4.01)."""
    options = b"".join(bytes([0xB0 | len(part) if i == 0 else len(part)]) + part
                       for i, part in enumerate((b"api", b"v1", b"nope", b"claim")))
    return struct.pack("!BBH", 0x40, 0x02, mid) + options


def test_served_coap_keeps_at_most_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coap, "MAX_RECENT_MESSAGES", LIMIT)
    service = ThingsBoardService(World(3))

    async def main() -> None:
        port = _free_udp_port()
        context = await serve_coap(service, NullRuntime(), "127.0.0.1", port)
        try:
            [interface] = context.request_interfaces
            window = interface.token_interface._recent_messages
            assert isinstance(window, BoundedRecentMessages) and window.limit == LIMIT
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                loop = asyncio.get_running_loop()
                answers = []
                for mid in range(3 * LIMIT):
                    await loop.sock_sendto(sock, _claim(mid), ("127.0.0.1", port))
                    answers.append(await asyncio.wait_for(loop.sock_recv(sock, 1500), 5))
                assert all(answer[1] == aiocoap.UNAUTHORIZED for answer in answers)
                assert len(window) == LIMIT and window.forgotten == 2 * LIMIT
                assert all(isinstance(response, aiocoap.Message)
                           for response in window.values())
                # a duplicate within the window still gets its stored answer, unhandled again
                await loop.sock_sendto(sock, _claim(3 * LIMIT - 1), ("127.0.0.1", port))
                again = await asyncio.wait_for(loop.sock_recv(sock, 1500), 5)
                assert again == answers[-1] and len(window) == LIMIT
                assert window.forgotten == 2 * LIMIT
        finally:
            await context.shutdown()

    asyncio.run(main())



def _free_udp_port() -> int:
    for port in range(47600, 47700):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free UDP port in 47600-47699")
