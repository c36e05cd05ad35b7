"""The dashboard's login brake and stream cap over real sockets, as ``fwsim up`` serves them
(security QA of ``fwsim up``).

* Eleven wrong tokens used to lock the admin out: the right token then got ``429 too many wrong
  tokens: wait a minute`` too. The right token now always logs in; only wrong ones are braked.
* 23-24 live streams could be opened where 16 is the cap, because only streams waiting for a
  change were counted. Every open stream now counts, from its acceptance to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx

from firmware_sim.dashboard import Dashboard, mount_dashboard
from firmware_sim.dashboard.app import MAX_STREAMS
from firmware_sim.dashboard.security import MAX_FAILED_LOGINS_PER_MINUTE
from firmware_sim.testbed import SERVED, LinkSpec, ServeOptions, Testbed, TestbedSpec, provisioned

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def served(body: Callable[[str, Dashboard], Awaitable[None]]) -> None:
    """``body(base URL, dashboard)`` against a served cloud with the dashboard mounted."""
    async def main() -> None:
        bed = Testbed(TestbedSpec(seed=3, devices=provisioned("dev1"), timing="fast",
                                  link=LinkSpec(cloud_url=SERVED)))
        served = await bed.serve_cloud(ServeOptions(extra={"admin": True}))
        dashboard = mount_dashboard(served, bed)
        try:
            await asyncio.wait_for(body(served.http_url, dashboard), 20)
        finally:
            dashboard.close()
            await served.stop()
            bed.close()

    asyncio.run(main())


def test_the_right_token_logs_in_after_any_number_of_wrong_ones() -> None:
    async def body(base: str, dashboard: Dashboard) -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            wrong = [(await http.post("/ui/login", json={"token": "wrong"})).status_code
                     for _ in range(MAX_FAILED_LOGINS_PER_MINUTE + 5)]
            assert wrong == [401] * MAX_FAILED_LOGINS_PER_MINUTE + [429] * 5
            right = await http.post("/ui/login", json={"token": dashboard.token})
            assert right.status_code == 200 and right.json()["ok"] is True
            assert (await http.get("/ui/api/devices")).status_code == 200  # the cookie works
            form = await http.post("/ui/login", content=f"token={dashboard.token}", headers={
                "content-type": "application/x-www-form-urlencoded"})
            assert form.status_code == 303
            # the brake still holds for wrong tokens
            again = await http.post("/ui/login", json={"token": "wrong"})
            assert again.status_code == 429 and "wait a minute" in again.json()["error"]

    served(body)


async def open_stream(base: str, cookie: str) -> tuple[int, Streams]:
    host_port = base.removeprefix("http://")
    host, _, port = host_port.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /ui/api/stream HTTP/1.1\r\nHost: {host_port}\r\n"
                 f"Cookie: {cookie}\r\n\r\n".encode())
    status = int((await asyncio.wait_for(reader.readline(), 5)).split()[1])
    return status, (reader, writer)


def test_every_open_stream_counts_against_the_cap() -> None:
    async def body(base: str, dashboard: Dashboard) -> None:
        app = dashboard.app
        assert app is not None
        async with httpx.AsyncClient(base_url=base) as http:
            login = await http.post("/ui/login", json={"token": dashboard.token})
            cookie = login.headers["set-cookie"].split(";", 1)[0]
        # all at once: a stream computing its first rows or pausing between updates is not
        # waiting for a change, and used not to count
        opened = await asyncio.gather(*(open_stream(base, cookie)
                                        for _ in range(MAX_STREAMS + 6)))
        statuses = sorted(status for status, _ in opened)
        assert statuses == [200] * MAX_STREAMS + [429] * 6
        assert app.open_streams == MAX_STREAMS
        live = [streams for status, streams in opened if status == 200]
        live[0][1].close()  # one viewer leaves: its place is free again
        for _ in range(100):
            status, streams = await open_stream(base, cookie)
            live.append(streams)
            if status == 200:
                break
            await asyncio.sleep(0.02)
        assert status == 200 and app.open_streams == MAX_STREAMS
        for _, writer in [*(streams for _, streams in opened), *live]:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        for _ in range(100):  # every place is given back when its viewer leaves
            if app.open_streams == 0:
                break
            await asyncio.sleep(0.02)
        assert app.open_streams == 0

    served(body)
