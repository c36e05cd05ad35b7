"""Event-stream places after QA of ``fwsim up`` (findings 1 and 2 of the stream round).

1. Sign-up needs no authentication, so fresh accounts could fill the global stream cap (9
   accounts x 32 streams of 256) and lock the developer's own ``GET /v1/devices/events`` out
   with 429. Now the cap is shared fairly between accounts: at the cap, a newcomer whose
   account holds fewer streams than the largest account ends that account's oldest stream.
2. A stream's place was given back only in its body generator's ``finally``: a client gone
   before the generator first ran (an ASGI 2.4 server's ``send`` raises once the client has
   left, so the body is never started) kept its place for good. Now the response gives it back.

Both over real sockets with small caps (``ApiConfig``), plus the hub's rule directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from cloud_sim import Cloud, Principal
from cloud_sim.http import ApiConfig, context_of, create_app
from cloud_sim.http.fanout import PUBLIC, StreamHub, StreamLimitError
from cloud_sim.server import CloudServer, ServerConfig
from firmware_sim.kernel import World

from .conftest import open_cloud

HOST = "127.0.0.1"


def served(body: Callable[[CloudServer, httpx.AsyncClient], Awaitable[None]], *,
           max_streams: int, per_token: int) -> None:
    async def main() -> None:
        cloud = open_cloud(":memory:", seed=5, epoch=1_767_225_600)
        config = ServerConfig(http_port=0, coap_port=0,
                              api=ApiConfig(max_streams=max_streams,
                                            max_streams_per_token=per_token))
        server = CloudServer(cloud, config)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                await asyncio.wait_for(body(server, http), 20)
        finally:
            await server.stop()
            cloud.store.close()

    asyncio.run(main())


async def sign_up(http: httpx.AsyncClient, username: str) -> str:
    """A fresh account (no authentication needed) and an access token of it."""
    created = await http.post("/v1/users", json={"username": username, "password": "pw-1234"})
    assert created.status_code == 200, created.text
    token = await http.post("/oauth/token", auth=("particle", "particle"), data={
        "grant_type": "password", "username": username, "password": "pw-1234"})
    assert token.status_code == 200, token.text
    access: str = token.json()["access_token"]
    return access


class Sse:
    """One ``GET /v1/devices/events`` on its own connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 status: int, seen: bytes) -> None:
        self.reader, self.writer, self.status, self.seen = reader, writer, status, seen

    @classmethod
    async def open(cls, port: int, token: str) -> Sse:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"GET /v1/devices/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                     f"Authorization: Bearer {token}\r\n\r\n".encode())
        seen = b""
        while b"\r\n\r\n" not in seen:
            seen += await asyncio.wait_for(reader.read(4096), 5)
        status = int(seen.split()[1])
        if status == 200:
            while b":ok" not in seen:
                seen += await asyncio.wait_for(reader.read(4096), 5)
        return cls(reader, writer, status, seen)

    async def ended(self, within_s: float = 2.0) -> bool:
        """Did the response end (its last, empty chunk) within ``within_s``?"""
        try:
            while not self.seen.endswith(b"0\r\n\r\n"):
                more = await asyncio.wait_for(self.reader.read(4096), within_s)
                if not more:
                    return False
                self.seen += more
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.writer.close()


def test_fresh_accounts_cannot_lock_an_account_out_of_event_streams() -> None:
    async def body(server: CloudServer, http: httpx.AsyncClient) -> None:
        port, hub = server.http_port, context_of(server.app).hub
        flood: list[Sse] = []
        for name in ("f1@x.io", "f2@x.io"):  # 2 fresh accounts x 3 streams fill the cap of 6
            token = await sign_up(http, name)
            flood += [await Sse.open(port, token) for _ in range(3)]
        assert [s.status for s in flood] == [200] * 6 and len(hub) == 6
        developer = await sign_up(http, "dev@x.io")

        mine = [await Sse.open(port, developer)]
        assert mine[0].status == 200  # before: 429 until the flood's streams closed
        assert await flood[0].ended()  # the largest account's oldest stream, ended cleanly
        mine.append(await Sse.open(port, developer))
        assert mine[1].status == 200
        assert await flood[3].ended()  # now the other account held the most
        # a fair share now (2 / 2 / 2): neither the developer nor the flood gets a third
        third = await Sse.open(port, developer)
        assert third.status == 429
        again = await Sse.open(port, await sign_up(http, "f3@x.io"))
        assert again.status == 200  # a fresh account still gets one: it holds fewer ...
        assert await flood[1].ended()  # ... and the oldest stream of the largest gives way
        fourth = await Sse.open(port, await sign_up(http, "f4@x.io"))
        assert fourth.status == 200 and await flood[4].ended()
        # the developer's two streams are still open
        assert not await mine[0].ended(0.2) and not await mine[1].ended(0.2)
        assert len(hub) == 6 and hub.held_by(f"user:{_user_id(server, 'dev@x.io')}") == 2
        for stream in [*flood, *mine, third, again, fourth]:
            stream.close()

    served(body, max_streams=6, per_token=3)


def _user_id(server: CloudServer, username: str) -> str:
    user = server.cloud.store.find_user(username)
    assert user is not None
    return user.id


def test_streams_closed_at_once_give_their_places_back_over_sockets() -> None:
    async def body(server: CloudServer, http: httpx.AsyncClient) -> None:
        port, hub = server.http_port, context_of(server.app).hub
        token = await sign_up(http, "a@x.io")
        request = (f"GET /v1/devices/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode()
        for _ in range(3 * 4):  # three times the cap's worth, each closed right after its head
            _, writer = await asyncio.open_connection(HOST, port)
            writer.write(request)
            writer.close()
        for _ in range(100):
            if len(hub) == 0:
                break
            await asyncio.sleep(0.02)
        assert len(hub) == 0
        streams = [await Sse.open(port, token) for _ in range(4)]
        assert [s.status for s in streams] == [200] * 4
        for stream in streams:
            stream.close()

    served(body, max_streams=4, per_token=4)


def _events_scope(token: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/v1/devices/events", "raw_path": b"/v1/devices/events", "root_path": "",
            "query_string": b"", "client": (HOST, 40000), "server": (HOST, 80),
            "headers": [(b"host", b"localhost"), (b"authorization", f"Bearer {token}".encode())]}


def test_a_client_gone_before_the_stream_started_gives_its_place_back() -> None:
    """An ASGI 2.4 server's ``send`` raises OSError for a client that has left: the response
    head is never sent, the body generator never runs - its ``finally`` with it."""
    async def main() -> None:
        cloud = Cloud(World(3))
        app = create_app(cloud, config=ApiConfig(max_streams=2, max_streams_per_token=2))
        hub = context_of(app).hub
        user = cloud.create_user("a@x.io", "pw")
        token = cloud.issue_tokens(Principal.user(user.id), "particle").access.token

        async def send(message: dict[str, Any]) -> None:
            raise OSError("the client has gone")

        for _ in range(5):  # more than the cap's worth
            messages = [{"type": "http.request", "body": b"", "more_body": False}]

            async def receive(messages: list[dict[str, Any]] = messages) -> dict[str, Any]:
                return messages.pop(0) if messages else {"type": "http.disconnect"}

            await app(_events_scope(token), receive, send)  # no error escapes
            assert len(hub) == 0

    asyncio.run(main())


# -- the hub's fair share directly ----------------------------------------------------------------


def test_the_fair_share_rule() -> None:
    async def main() -> None:
        hub = StreamHub(Cloud(World(1)), max_streams=4, max_per_token=4)
        big = [hub.open([PUBLIC], None, f"t{i}", "big") for i in range(3)]
        small = hub.open([PUBLIC], None, "s", "small")
        assert len(hub) == 4
        newcomer = hub.open([PUBLIC], None, "n", "new")  # holds 0 < 3: big's oldest goes
        assert big[0].queue.get_nowait() is None and hub.held_by("big") == 2
        assert hub.evicted == 1
        # 2 / 1 / 1: "small" holds fewer than "big" and takes its oldest left
        hub.open([PUBLIC], None, "s2", "small")
        assert big[1].queue.get_nowait() is None
        # 1 / 2 / 1: equal shares or more are refused; no account given: never evicts
        for account in ("small", None):
            with pytest.raises(StreamLimitError, match="at most 4"):
                hub.open([PUBLIC], None, "x", account)
        # "new" (1) vs "small" (2): small's oldest goes, not big's or new's own
        hub.open([PUBLIC], None, "n2", "new")
        assert small.queue.get_nowait() is None and big[2].queue.empty()
        assert newcomer.queue.empty()
        assert (hub.held_by("big"), hub.held_by("small"), hub.held_by("new")) == (1, 1, 2)
        # ties: of equally large accounts, the one with the oldest stream gives way
        hub.open([PUBLIC], None, "z", "zero")  # 1/1/2/0 -> new's oldest (newcomer) goes
        assert newcomer.queue.get_nowait() is None
        hub.open([PUBLIC], None, "y", "other")  # all hold 1: the oldest is big[2]
        assert big[2].queue.get_nowait() is None and len(hub) == 4

    asyncio.run(main())
