"""Fuzz campaign: the REST API over real sockets (``fwsim cloud serve``).

Generated requests over every operation of the server's own OpenAPI document - path segments
that are Unicode digits, percent-encoded surrogates, huge numbers; JSON bodies with lone
surrogates, deep nesting, huge numbers and NaN; forms, multipart and raw bodies under the wrong
content type; foreign Host and Origin headers; the admin namespace with and without its token;
event streams (their first bytes); and a share of malformed HTTP - go over 8 keep-alive
connections. Counted: server errors (5xx), crashes (the server process gone, or a connection
dropped without an answer), hangs (no answer within 10 s). Afterwards a new account logs in and
claims a new device: the server must still answer correctly.

    python benchmarks/fuzz_rest.py [--count 100000] [--seed 1] [--workers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h11
import httpx

from benchmarks.fuzzing import NASTY_TEXT, CampaignResult

ADMIN = "fuzz-campaign-admin-token-0123456789"
DEVICES = [f"e00f{i:020x}" for i in range(1, 6)]
SEED = {"users": [{"username": "dev@acme.io", "password": "dev-pw"},
                  {"username": "other@dev.io", "password": "other-pw"}],
        "products": [{"id": 4242, "slug": "acme", "team": ["dev@acme.io"],
                      "client": {"id": "acme-client", "secret": "acme-secret"}}],
        "customers": [{"product": "acme", "email": "a@cust.io", "password": "a-pw"}],
        "devices": [{"id": DEVICES[0], "product": "acme", "owner": "customer:a@cust.io"},
                    {"id": DEVICES[1], "owner": "user:other@dev.io", "online": True},
                    {"id": DEVICES[2], "online": True}, {"id": DEVICES[3], "product": "acme"}]}
LOGIN = {"grant_type": "password", "username": "dev@acme.io", "password": "dev-pw",
         "client_id": "particle", "client_secret": "particle"}

SEGMENTS = ["%C2%B2", "%D9%A1%D9%A2", "%ED%A0%80", "%FF", "%00", "99999999999999999999",
            "4242", "acme", "dev%40acme.io", "a%40cust.io", "approve", "deny", "current",
            "x" * 300, "..", "%2e%2e", "-1", "0", *DEVICES, DEVICES[0].upper()]
FIELDS = ["id", "username", "password", "email", "notes", "name", "data", "client_id",
          "client_secret", "grant_type", "expires_in", "expires_at", "scope", "refresh_token",
          "request_transfer", "per_page", "page", "file", "code", "all", "token", "users",
          "products", "customers", "devices", "no_password", "deny", "iccid"]
MALFORMED = [
    b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
    b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: {host}\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: x\r\n\r\n",
    b"POST /v1/users HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n",
    b"POST /v1/users HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X-H: v\r\n" * 300 + b"Host: {host}\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nBad Header\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS ClientHello
]


def _nasty_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth < 3 and pick < 0.12:
        return [_nasty_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if depth < 3 and pick < 0.24:
        return {rng.choice(FIELDS): _nasty_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if pick < 0.4:
        return rng.choice([0, -1, 2**31, 2**63, 2**70, -(2**70), 1.5, 1e300, True, False, None])
    if pick < 0.55:
        return rng.choice(["\ud800", "a\udfffb", "\udbff\udc00x\ud800"])
    if pick < 0.8:
        return rng.choice(NASTY_TEXT + SEGMENTS + ["dev@acme.io", "true", "4242"])
    return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(20)))


class Generator:
    def __init__(self, rng: random.Random, operations: list[tuple[str, str]], host: str) -> None:
        self.rng = rng
        self.operations = operations
        self.host = host
        self.token = ""

    def request(self) -> tuple[str, bytes, bool]:
        """(method, request bytes, is an event stream)."""
        rng = self.rng
        if rng.random() < 0.05:
            raw = rng.choice(MALFORMED).replace(b"{host}", self.host.encode())
            return "GET", raw, False
        method, template = rng.choice(self.operations)
        if rng.random() < 0.03:
            method = rng.choice(["PATCH", "OPTIONS", "HEAD", "FOO", "TRACE"])
        path = re.sub(r"\{[^}]+\}", lambda _: rng.choice(SEGMENTS), template)
        if rng.random() < 0.4:
            path += f"?{rng.choice(FIELDS)}={rng.choice(SEGMENTS)}"
        headers = [("Host", self.host if rng.random() < 0.97 else "evil.example")]
        if rng.random() < 0.03:
            headers.append(("Origin", rng.choice(["http://evil.example", "null",
                                                  f"http://{self.host}"])))
        who = rng.random()
        if template.startswith("/fwsim"):
            if who < 0.85:
                headers.append(("X-Fwsim-Admin-Token", ADMIN))
        elif who < 0.8:
            headers.append(("Authorization", f"Bearer {self.token}"))
        elif who < 0.9:
            headers.append(("Authorization", rng.choice(["Bearer " + "0" * 40, "Basic !!",
                                                         "Basic YWNtZS1jbGllbnQ6YWNtZS1zZWNyZXQ=",
                                                         "Bearer \xb2\xb2"])))
        body = b""
        kind = rng.random()
        if kind < 0.45:
            document = (_nasty_value(rng, 1) if rng.random() < 0.1 else
                        {rng.choice(FIELDS): _nasty_value(rng) for _ in range(rng.randrange(5))})
            body = json.dumps(document).encode()
            headers.append(("Content-Type", "application/json"))
        elif kind < 0.65:
            body = "&".join(f"{rng.choice(FIELDS)}={rng.choice(SEGMENTS)}"
                            for _ in range(rng.randrange(5))).encode()
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif kind < 0.75:
            body = rng.choice([b"[" * 5000, b"{\"id\": 1e999999}", b"{\"a\": NaN}",
                               b"\xed\xa0\x80", b"{\"id\": " + b"9" * 5000 + b"}",
                               rng.randbytes(rng.randrange(300)),
                               b"--x\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n"
                               b"\xff\r\n--x--\r\n"])
            headers.append(("Content-Type", rng.choice([
                "application/json", "text/plain", "multipart/form-data; boundary=x",
                "application/x-www-form-urlencoded", "application/octet-stream"])))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        head += f"Content-Length: {len(body)}\r\n\r\n"
        sse = method == "GET" and "/events" in template and not template.startswith("/fwsim")
        return method, head.encode("latin-1", "replace") + body, sse


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
                   data: bytes, sse: bool, timeout: float) -> tuple[int | None, bool]:
    """Send ``data``; parse the answer: (status or None if closed unanswered, keep-alive)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    writer.write(data)
    status: int | None = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return status, False
        if event is h11.NEED_DATA:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            conn.receive_data(chunk)
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            if sse and status == 200:
                return status, False  # a stream: its head is the answer; hang up
        elif isinstance(event, h11.EndOfMessage):
            return status, conn.their_state is h11.DONE and conn.our_state is h11.DONE
        elif isinstance(event, h11.ConnectionClosed):
            return status, False


Served = tuple[str, Callable[[], bool], Callable[[], list[str]]]


@asynccontextmanager
async def server_process() -> AsyncIterator[Served]:
    """``fwsim cloud serve`` in a subprocess; its log goes to a file (a pipe nobody reads
    would fill up and block the server), scanned afterwards for tracebacks."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "cloud", "serve",
                                 "--http", "0", "--coap", "0", "--db", ":memory:",
                                 "--admin-token", ADMIN, "--for", "86400"],
                                stdout=subprocess.PIPE, stderr=log, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            url = line.split()[4] if "REST API" in line else url
            if "ready" in line:
                break

        def tracebacks() -> list[str]:
            log.seek(0)
            return [line for line in log.read().splitlines()
                    if "Traceback" in line or "internal error" in line]

        try:
            yield url, lambda: proc.poll() is None, tracebacks
        finally:
            proc.terminate()
            proc.communicate(timeout=20)


@asynccontextmanager
async def server_in_process() -> AsyncIterator[Served]:
    from cloud_sim.server import CloudServer, ServerConfig
    from firmware_sim.testbed.served import open_served_cloud

    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage())

    collector = Collect(logging.ERROR)
    watched = [logging.getLogger(name) for name in ("cloud_sim.http", "uvicorn.error",
                                                    "asyncio", "fwsim.realtime")]
    for logger in watched:
        logger.addHandler(collector)
    cloud = open_served_cloud(":memory:", seed=1, epoch=int(time.time()))
    server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0, admin=True,
                                             admin_token=ADMIN))
    await server.start()
    try:
        yield server.http_url, lambda: all(not t.done() for t in server._tasks), lambda: errors
    finally:
        await server.stop()
        cloud.store.close()
        for logger in watched:
            logger.removeHandler(collector)


async def campaign(count: int, seed: int = 1, *, workers: int = 8,
                   in_process: bool = False) -> CampaignResult:
    result = CampaignResult("REST API over sockets", "requests")
    started = time.monotonic()
    opener = server_in_process if in_process else server_process
    async with opener() as (url, alive, logged_errors):
        host = url.split("//", 1)[1]
        address, port = host.rsplit(":", 1)
        async with httpx.AsyncClient(base_url=url, headers={"X-Fwsim-Admin-Token": ADMIN},
                                     timeout=10) as http:
            assert (await http.post("/fwsim/seed", json=SEED)).status_code == 200
            operations = sorted((m.upper(), p) for p, ops in
                                (await http.get("/openapi.json")).json()["paths"].items()
                                for m in ops)

            async def login() -> str:
                answer = await http.post("/oauth/token", data=LOGIN)
                return str(answer.json().get("access_token", "")) if answer.status_code == 200 \
                    else "0" * 40

            share = [count // workers + (1 if i < count % workers else 0)
                     for i in range(workers)]

            async def worker(index: int) -> None:
                generator = Generator(random.Random(f"{seed}:{index}"), operations, host)
                connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
                for n in range(share[index]):
                    if n % 200 == 0:
                        generator.token = await login()
                    method, data, sse = generator.request()
                    if connection is None:
                        connection = await asyncio.open_connection(address, int(port))
                    try:
                        status, keep = await exchange(*connection, method, data, sse, 10.0)
                    except TimeoutError:
                        result.failure("hangs", data.decode("latin-1"))
                        status, keep = None, False
                    except ConnectionError:
                        status, keep = None, False
                    result.inputs += 1
                    result.outcomes[str(status) if status else "closed"] += 1
                    if status is not None and status >= 500:
                        result.failure("server_errors", f"{status} {data.decode('latin-1')}")
                    if not keep:
                        connection[1].close()
                        connection = None
                if connection is not None:
                    connection[1].close()

            await asyncio.gather(*(worker(i) for i in range(workers)))
            if not alive():
                result.failure("crashes", "the server is gone")
            for line in logged_errors():  # a 500 the client never saw is still one
                result.failure("server_errors", f"logged: {line}")
            # afterwards: a new account logs in and claims a new device
            fresh = DEVICES[4]
            seeded = await http.post("/fwsim/seed", json={
                "users": [{"username": "after@x.io", "password": "pw"}],
                "devices": [{"id": fresh, "online": True}]})
            token = await http.post("/oauth/token", data={**LOGIN, "username": "after@x.io",
                                                          "password": "pw"})
            bearer = {"Authorization": f"Bearer {token.json().get('access_token')}"}
            claimed = await http.post("/v1/devices", json={"id": fresh}, headers=bearer)
            mine = await http.get("/v1/devices", headers=bearer)
            result.correct_after = (seeded.status_code == 200 and claimed.status_code == 200
                                    and [d["id"] for d in mine.json()] == [fresh])
    if result.outcomes["closed"]:
        result.notes.append(f"{result.outcomes['closed']} answers were a closed connection "
                            "(malformed HTTP the server dropped, or a request that timed out)")
    result.seconds = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--in-process", action="store_true",
                        help="serve in this process instead of a `fwsim cloud serve` subprocess")
    args = parser.parse_args()
    result = asyncio.run(campaign(args.count, args.seed, workers=args.workers,
                                  in_process=args.in_process))
    print(result.report())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
