"""Load test of the emulated cloud's REST API, driven from separate client processes.

``benchmarks/bench_cloud.py`` times its own httpx client in the server's neighbourhood; this
script measures the server. It starts ``fwsim cloud serve`` as a subprocess (SQLite in a
temporary file by default, as a user runs it), seeds users and devices through ``/fwsim/seed``
(not timed), then for each workload and each level of concurrent clients it starts client
processes (one keep-alive connection per simulated client, closed loop: a client sends its next
request when the previous answer is in; ``--client raw``, the default, writes and reads HTTP/1.1
by hand on asyncio streams, ``--client aiohttp`` uses aiohttp, which costs the clients about
twice the CPU per request - on a 2-core machine that CPU is taken from the server; h11 on the
same streams measured no cheaper than aiohttp, ~80% of a core at 2,000 requests/s) and prints:

* requests per second, p50 and p99 latency and the error count, over a fixed window;
* the server's CPU in that window (``/proc/<pid>/stat``) next to the client processes' CPU, so
  a reader can see which side is the bottleneck (on a 2-core machine the server, one Python
  thread, saturates at 100% of one core).

Workloads: ``claim`` (``POST /v1/devices`` with the id of a fresh unclaimed online device:
every request is a real claim), ``list`` (``GET /v1/devices``, the caller owns 10 devices),
``claim-code`` (``POST /v1/device_claims``), and ``404`` (an unknown path: the floor of
uvicorn + FastAPI + the runtime wrapper with no handler work).

Event fan-out: one simulated device (``fwsim device run`` in its own process) is connected over
CoAP/UDP; publisher processes send it events through ``POST /fwsim/devices/<id>/events`` as fast
as the server takes them (``--publishers`` connections), each published on the cloud's event
bus. Stream processes hold ``N`` matching streams (``GET /v1/devices/<id>/events``, the owner's
token) and ``M`` idle ones (``GET /v1/devices/events`` of users whose devices never publish).
It prints events published and delivered per second, how many deliveries were lost (a stream's
queue drops its oldest event when full), and the server's CPU per published event with and
without idle streams.

Needs the ``bench`` extra (``pip install -e '.[bench]'``: aiohttp, py-spy). On a shared machine
run with ``--wait-quiet``, or read the "others" column: other work skews every rate.

    python benchmarks/bench_rest_load.py [--seconds 5] [--levels 1,10,50]
        [--workloads claim,list,claim-code,404,fanout] [--client-procs 4]
        [--streams 100,1000] [--idle 0,1000] [--db :memory:] [--profile DIR]
        [--wait-quiet SECONDS]

``--profile DIR`` samples the server with py-spy (if installed) during the highest level (or
``--profile-level``) of every workload and during every fan-out row; it writes collapsed stacks
(``DIR/<workload>.txt``) and a summary of the samples by layer and by package (innermost
frame), by function (self) and by project function (inclusive). Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.targets import claim_line

CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-password"
EVENT_DEVICE = "e00fbe0c0000000000000001"
EVENT_NAME = "bench/tick"
LIST_DEVICES_PER_USER = 10
PROJECT_PACKAGES = ("cloud_sim/", "firmware_sim/", "transports/", "control_requests/")


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system (kernel: syscalls, loopback TCP) CPU seconds of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    return sum(cpu_split(pid))


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting for I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


def wait_for_quiet(threshold: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until the machine is busy less than ``threshold`` cores
    over one second: other people's work on a shared machine skews every figure. Returns the
    busy cores of the last second checked."""
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = machine_busy_seconds() - before
        if busy < threshold or time.monotonic() > deadline:
            return busy


# --- the server --------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    coap: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


#: the /fwsim namespace (seeding, publishing) is behind an admin token on a served cloud
ADMIN_TOKEN = "bench-rest-load-admin-token-0123456789ab"
ADMIN = {"X-Fwsim-Admin-Token": ADMIN_TOKEN}

#: the server's launcher: the same ``fwsim cloud serve``, with its stream and connection caps
#: raised for the fan-out rows, its asyncio.run on uvloop (``--server-loop uvloop``) and
#: uvicorn's HTTP protocol chosen (``--server-http``)
_LAUNCHER = """
import asyncio, sys
loop, http = sys.argv[1:3]
if loop == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
import dataclasses
import cloud_sim.server as served
from cloud_sim.connections import ConnectionLimits
original = served.CloudServer.__init__
def init(self, cloud, config=None, **kwargs):
    config = config or served.ServerConfig()
    if http != "default":
        config.http_protocol = http
    # the fan-out rows hold up to ~1,100 streams, most of them on one token
    config.api = dataclasses.replace(config.api, max_streams=4096, max_streams_per_token=4096)
    config.limits = dataclasses.replace(config.limits, max_connections=4096)
    original(self, cloud, config, **kwargs)
served.CloudServer.__init__ = init
from firmware_sim.cli import main
sys.exit(main(sys.argv[3:]))
"""


def start_server(db: str, loop: str = "asyncio", http: str = "default",
                 source: Path | None = None) -> Server:
    """``source``: run the server from this source tree (a checkout of another commit, for
    before/after figures in one window) instead of the installed package."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(source.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    process = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, loop, http, "cloud", "serve", "--http", "0",
         "--coap", "0", "--db", db, "--seed", "1", "--admin", "--admin-token", ADMIN_TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=str(source) if source is not None else None)
    assert process.stdout is not None
    url = coap = ""
    for line in process.stdout:
        words = line.split()
        if "REST API" in line:
            url = words[4]
        elif "CoAP/UDP" in line:
            coap = words[3]
        elif "ready" in line:
            break
    if not url or not coap:
        process.kill()
        raise SystemExit(f"fwsim cloud serve did not start:\n{process.communicate()[0]}")
    # keep reading the server's output (a full pipe would block it; a closed one would break
    # its next print); its last lines are printed if it dies
    tail: deque[str] = deque(maxlen=20)
    stdout = process.stdout

    def drain() -> None:
        for line in stdout:
            tail.append(line)
        if process.wait() not in (0, -signal.SIGTERM):
            print("fwsim cloud serve exited:\n" + "".join(tail), file=sys.stderr)

    threading.Thread(target=drain, name="server-output", daemon=True).start()
    return Server(process, url, coap)


def device_ids(prefix: int, count: int, start: int = 0) -> list[str]:
    return [f"e00f{prefix:04x}{n:016x}" for n in range(start, start + count)]


class Admin:
    """Set-up through the emulator's admin namespace (not timed)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60, headers=ADMIN)

    def users(self, names: list[str]) -> list[str]:
        """Create users (PBKDF2 makes this ~10 ms each); their access tokens, in order."""
        tokens: list[str] = []
        for start in range(0, len(names), 50):
            batch = names[start:start + 50]
            body = self._seed({"users": [{"username": n, "password": PASSWORD} for n in batch]})
            tokens += [body["users"][n]["access_token"] for n in batch]
        return tokens

    def devices(self, ids: list[str], owner: str | None = None) -> None:
        for start in range(0, len(ids), 500):
            batch = [{"id": i, "online": True, "platform_id": 32,
                      **({"owner": f"user:{owner}"} if owner else {})}
                     for i in ids[start:start + 500]]
            self._seed({"devices": batch})

    def _seed(self, document: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/fwsim/seed", json=document)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def connected(self, device_id: str) -> bool:
        sessions = self.http.get("/fwsim/sessions").json()["sessions"]
        return any(s["device_id"] == device_id for s in sessions)


# --- client processes ---------------------------------------------------------------------------


@dataclass
class Job:
    """What one client process does: one closed-loop client (connection) per token."""

    url: str
    workload: str
    #: per client: its access token ("" for none) and, for claims, the devices it may claim
    tokens: list[str]
    ids: list[list[str]] = field(default_factory=list)
    #: ``aiohttp`` or ``raw`` (HTTP/1.1 written and read on asyncio streams: less client CPU
    #: per request, so on a 2-core machine the load generator takes less from the server)
    client: str = "aiohttp"


class OutOfDevices(Exception):
    """A claiming client has claimed every device seeded for it."""


@dataclass
class JobResult:
    done: int = 0
    errors: int = 0
    exhausted: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    first_error: str = ""


@dataclass(frozen=True)
class Request:
    """One request of a workload, as either client sends it."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    #: the status that counts as answered (the 404 workload expects its 404)
    expect: int = 200


def _requests_for(job: Job, connection: int) -> Callable[[], Request]:
    """The next request of client ``connection`` (raises :class:`OutOfDevices` when a
    claiming client has claimed all its devices)."""
    token = job.tokens[connection]
    auth = (("Authorization", f"Bearer {token}"),) if token else ()
    json_body = (("Content-Type", "application/json"),)
    fresh: Iterator[str] = iter(job.ids[connection]) if job.ids else iter(())

    def claim() -> Request:
        device = next(fresh, None)
        if device is None:
            raise OutOfDevices
        return Request("POST", "/v1/devices", f'{{"id":"{device}"}}'.encode(), auth + json_body)

    event = f'{{"name":"{EVENT_NAME}","data":"{"x" * 32}"}}'.encode()
    fixed = {
        "list": Request("GET", "/v1/devices", headers=auth),
        "claim-code": Request("POST", "/v1/device_claims", b"{}", auth + json_body),
        "404": Request("GET", "/v1/no-such-route", headers=auth, expect=404),
        "publish": Request("POST", f"/fwsim/devices/{EVENT_DEVICE}/events", event,
                           tuple(ADMIN.items()) + json_body)}
    if job.workload == "claim":
        return claim
    request = fixed[job.workload]
    return lambda: request


class ConnectionBroken(Exception):
    """The client's connection is in an unknown state: that client stops."""


class _AiohttpClient:
    """Requests through one aiohttp session (it keeps a keep-alive connection per client);
    a transport error is answered as status 0, and the client goes on."""

    def __init__(self, url: str) -> None:
        self.http = aiohttp.ClientSession(
            url, connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=60))

    async def exchange(self, request: Request) -> tuple[int, str]:
        try:
            async with self.http.request(request.method, request.path, data=request.body or None,
                                         headers=dict(request.headers)) as response:
                body = await response.read()
                return response.status, body[:200].decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, repr(exc)

    async def close(self) -> None:
        await self.http.close()


class _RawClient:
    """HTTP/1.1 written and read by hand on one asyncio stream connection (module header)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host

    async def exchange(self, request: Request) -> tuple[int, str]:
        head = "".join(f"{name}: {value}\r\n" for name, value in request.headers)
        self.writer.write(f"{request.method} {request.path} HTTP/1.1\r\nHost: {self.host}\r\n"
                          f"{head}Content-Length: {len(request.body)}\r\n\r\n".encode()
                          + request.body)
        try:
            return await asyncio.wait_for(self._answer(), 60)
        except (OSError, ValueError, IndexError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            raise ConnectionBroken(repr(exc)) from None

    async def _answer(self) -> tuple[int, str]:
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int((await reader.readuntil(b"\r\n")).strip() or b"0", 16):
                body += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, body[:200].decode("utf-8", "replace")

    async def close(self) -> None:
        self.writer.close()


async def _run_job(job: Job, control: Connection) -> JobResult:
    """Connect, report ready, receive the window (``time.monotonic()`` values, one clock for
    every process on Linux), run the clients through it."""
    result = JobResult()
    clients: list[_AiohttpClient | _RawClient]
    if job.client == "raw":
        host, _, port = job.url.removeprefix("http://").rstrip("/").rpartition(":")
        clients = [_RawClient(*await asyncio.open_connection(host, int(port)), f"{host}:{port}")
                   for _ in job.tokens]
    else:
        clients = [_AiohttpClient(job.url)] * len(job.tokens)  # one session, a connection each
    requests = [_requests_for(job, n) for n in range(len(job.tokens))]
    # open every connection before the window (an unknown path costs no store work)
    await asyncio.gather(*(client.exchange(Request("GET", "/v1/warm-up")) for client in clients))
    control.send("ready")
    start_at, stop_at = control.recv()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))

    async def run(client: _AiohttpClient | _RawClient, request: Callable[[], Request]) -> None:
        while (started := time.monotonic()) < stop_at:
            try:
                sent = request()
                status, body = await client.exchange(sent)
            except OutOfDevices:
                result.exhausted += 1
                return
            except ConnectionBroken as exc:
                result.errors += 1
                result.first_error = result.first_error or str(exc)
                return
            if status != sent.expect:
                result.errors += 1
                result.first_error = result.first_error or f"{status} {body}"
            result.latencies.append(time.monotonic() - started)

    cpu_before = time.process_time()
    await asyncio.gather(*(run(c, r) for c, r in zip(clients, requests, strict=True)))
    result.cpu = time.process_time() - cpu_before
    for client in dict.fromkeys(clients):  # the aiohttp session once
        await client.close()
    result.done = len(result.latencies)
    return result


def _job_process(job: Job, control: Connection) -> None:
    control.send(asyncio.run(_run_job(job, control)))
    control.close()


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[n::parts] for n in range(parts)]


# --- streams -----------------------------------------------------------------------------------


@dataclass
class StreamJob:
    url: str
    matching: list[str]  # one token per matching stream
    idle: list[str]  # one token per idle stream


@dataclass
class StreamResult:
    events: int = 0
    failed: int = 0
    cpu: float = 0.0


async def _run_streams(job: StreamJob, control: Connection) -> StreamResult:
    """Open the streams, tell the parent; count events, answer "count"; end at "stop"."""
    result = StreamResult()
    loop = asyncio.get_running_loop()
    opened = asyncio.Event()
    messages: asyncio.Queue[str] = asyncio.Queue()
    loop.add_reader(control.fileno(), lambda: messages.put_nowait(control.recv()))
    pending = len(job.matching) + len(job.idle)
    marker = b"event: " + EVENT_NAME.encode()

    def one_fewer() -> None:
        nonlocal pending
        pending -= 1
        if not pending:
            opened.set()

    async def stream(path: str, token: str, counts: bool) -> None:
        try:
            async with http.get(path, headers={"Authorization": f"Bearer {token}"}) as response:
                first = await response.content.readline()
                if response.status != 200 or not first.startswith(b":ok"):
                    raise aiohttp.ClientPayloadError(f"{response.status} {first[:80]!r}")
                one_fewer()
                async for line in response.content:
                    if counts and line.startswith(marker):
                        result.events += 1
        except (aiohttp.ClientError, TimeoutError):
            result.failed += 1
            one_fewer()

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(job.url, connector=connector, timeout=timeout) as http:
        tasks = [asyncio.create_task(stream(f"/v1/devices/{EVENT_DEVICE}/events", t, True))
                 for t in job.matching]
        tasks += [asyncio.create_task(stream("/v1/devices/events", t, False)) for t in job.idle]
        if tasks:
            await opened.wait()
        control.send(result.failed)
        assert await messages.get() == "start"
        cpu_before = time.process_time()
        while (message := await messages.get()) == "count":
            control.send(result.events)
        assert message == "stop"
        result.cpu = time.process_time() - cpu_before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    loop.remove_reader(control.fileno())
    return result


def _stream_process(job: StreamJob, control: Connection) -> None:
    control.send(asyncio.run(_run_streams(job, control)))
    control.close()


# --- reporting ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def profiled(server: Server, seconds: float, target: Path | None) -> Iterator[None]:
    """Sample the server with py-spy for ``seconds`` while the body runs (when asked)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if target is None or not Path(spy).exists():
        yield
        return
    process = subprocess.Popen(
        [spy, "record", "--pid", str(server.pid), "--duration", str(max(1, int(seconds))),
         "--rate", "200", "--format", "raw", "--output", str(target), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        _, errors = process.communicate(timeout=seconds + 30)
        if process.returncode:
            print(f"  (py-spy failed: {errors.strip().splitlines()[-1:]})")
        else:
            summarize_profile(target)


def layer_of(stack: str) -> str:
    """The layer a py-spy sample belongs to, by its innermost frame (docs/performance.md)."""
    leaf = stack.rsplit(";", 1)[-1]
    path = leaf.partition(" (")[2]
    if "_SelectorSocketTransport.write" in leaf:
        return "socket send (kernel, incl. waking the client)"
    if "sqlite_store" in path:
        return "SQLite (SqliteStore + sqlite3)"
    if "emit (firmware_sim/kernel/trace" in stack:
        return "trace records"
    if path.startswith(("h11/", "uvicorn/")):
        return "HTTP/1.1 parse+serialize (uvicorn on h11)"
    if path.startswith(("fastapi/", "starlette/")):
        return "FastAPI/Starlette (routing, middleware, request/response)"
    if path.startswith("json/"):
        return "stdlib json"
    if path.startswith(PROJECT_PACKAGES):
        return "project code (handlers, auth, params, render)"
    if path.startswith(("asyncio/", "selectors")):
        return "asyncio loop"
    return "other stdlib (dataclasses, enum, typing, urllib, ...)"


def summarize_profile(collapsed: Path, top: int = 15) -> None:
    """Summarize py-spy raw output: samples by layer and by package (innermost frame), by
    function (self), and the project's own functions (inclusive)."""
    by_layer: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    own: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        by_layer[layer_of(stack)] += count
        frames = []
        for frame in stack.split(";"):
            function, _, where = frame.partition(" (")
            path = where.rsplit(":", 1)[0]
            frames.append((function, path))
        function, path = frames[-1]
        by_package[path.split("/", 1)[0] if "/" in path else path] += count
        own[f"{function} ({path})"] += count
        for function, path in {f for f in frames if f[1].startswith(PROJECT_PACKAGES)}:
            project[f"{function} ({path})"] += count
    if not total:
        return
    def block(title: str, counter: Counter[str], limit: int) -> list[str]:
        return [title] + [f"  {100 * n / total:5.1f}%  {name}"
                          for name, n in counter.most_common(limit)]
    lines = [f"{total} samples of the server's main thread (py-spy, {collapsed.name})"]
    lines += block("self, by layer:", by_layer, top)
    lines += block("self, by package:", by_package, top)
    lines += block("self, by function:", own, top)
    lines += block("inclusive, the project's functions:", project, 2 * top)
    summary = collapsed.with_suffix(".summary.txt")
    summary.write_text("\n".join(lines) + "\n")
    print(f"  profile: {collapsed} ({total} samples), summary {summary}")


# --- workloads ---------------------------------------------------------------------------------


@dataclass
class Bench:
    server: Server
    admin: Admin
    seconds: float
    client_procs: int
    profile_dir: Path | None
    claim_rate_guess: float
    client: str = "raw"
    users: dict[str, list[str]] = field(default_factory=dict)
    _device_prefix: int = 0
    #: CPU seconds the whole machine was busy during the last window
    machine_busy: float = 0.0
    #: the server's system (kernel) CPU seconds in the last window
    server_system: float = 0.0
    #: the server's CPU seconds and the machine's busy seconds when the last window began
    window_start: tuple[float, float] = (0.0, 0.0)
    #: the last window (``time.monotonic()``)
    window: tuple[float, float] = (0.0, 0.0)
    #: before each row, wait until the machine is busy less than this many cores
    quiet_threshold: float = 0.25
    quiet_max_wait: float = 0.0
    #: issue 16's verdicts on the rows it bounds (:mod:`benchmarks.targets`)
    verdicts: list[str] = field(default_factory=list)

    def settle(self) -> None:
        if self.quiet_max_wait > 0:
            wait_for_quiet(self.quiet_threshold, self.quiet_max_wait)

    def others(self, span: float, *accounted: float) -> str:
        """CPU of the rest of the machine in the last window (other users' work disturbs)."""
        return f"{100 * max(0.0, self.machine_busy - sum(accounted)) / span:>9.0f}%"

    def tokens(self, kind: str, count: int) -> list[str]:
        """``count`` distinct users of ``kind`` (created on first use)."""
        have = self.users.setdefault(kind, [])
        if len(have) < count:
            names = [f"{kind}{n}@bench.example" for n in range(len(have), count)]
            tokens = self.admin.users(names)
            if kind == "list":
                for name in names:
                    self._device_prefix += 1
                    self.admin.devices(device_ids(self._device_prefix, LIST_DEVICES_PER_USER),
                                       owner=name)
            have += tokens
        return have[:count]

    def fresh_devices(self, count: int) -> list[str]:
        self._device_prefix += 1
        ids = device_ids(self._device_prefix, count)
        self.admin.devices(ids)
        return ids

    def level(self, workload: str, clients: int, profile: bool) -> None:
        kind = {"claim": "claim", "list": "list", "claim-code": "code", "404": "claim"}[workload]
        tokens = self.tokens(kind, clients)
        ids: list[list[str]] = []
        if workload == "claim":
            budget = int(self.claim_rate_guess * self.seconds)
            per_client = max(budget // clients, 50)
            pool = self.fresh_devices(per_client * clients)
            ids = [pool[n * per_client:(n + 1) * per_client] for n in range(clients)]
        procs = min(clients, self.client_procs)
        self.settle()
        jobs = [Job(self.server.url, workload, tokens=part_tokens, ids=part_ids,
                    client=self.client)
                for part_tokens, part_ids in zip(split(tokens, procs),
                                                 split(ids, procs) if ids else [[]] * procs,
                                                 strict=True)]
        target = (self.profile_dir / f"{workload}.txt") if profile and self.profile_dir else None
        results, server_cpu = self._measure(jobs, target)
        latencies = [value for result in results for value in result.latencies]
        done = sum(r.done for r in results)
        errors = sum(r.errors for r in results)
        exhausted = sum(r.exhausted for r in results)
        client_cpu = sum(r.cpu for r in results)
        note = "" if not exhausted else f"  ({exhausted} clients ran out of devices)"
        first_error = next((r.first_error for r in results if r.first_error), "")
        if first_error:
            note += f"  first error: {first_error[:120]}"
        p50, p99 = percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3
        system_share = self.server_system / server_cpu if server_cpu else 0.0
        per_cpu = done / server_cpu if server_cpu else float("nan")
        if workload == "claim":
            verdict = claim_line(clients, done / self.seconds, p99, errors)
            if verdict is not None:
                self.verdicts.append(verdict)
        print(f"{workload:<12}{clients:>8}{procs:>6}{done / self.seconds:>9.0f}{p50:>8.1f}"
              f"{p99:>8.1f}{errors:>7}{100 * server_cpu / self.seconds:>7.0f}% "
              f"({system_share:>4.0%} sys){per_cpu:>8.0f}{100 * client_cpu / self.seconds:>9.0f}%"
              f"{self.others(self.seconds, server_cpu, client_cpu)}{note}")

    def _measure(self, jobs: list[Job], target: Path | None) -> tuple[list[JobResult], float]:
        """Run ``jobs`` in client processes through one window of ``self.seconds``; the
        server's CPU seconds in it. ``self.window`` holds the window, ``self.window_start``
        the server's CPU and the machine's busy seconds when it began."""
        context = multiprocessing.get_context("spawn")
        controls, processes = [], []
        for job in jobs:
            mine, theirs = context.Pipe()
            process = context.Process(target=_job_process, args=(job, theirs), daemon=True)
            process.start()
            theirs.close()
            controls.append(mine)
            processes.append(process)
        for control in controls:
            if control.recv() != "ready":
                raise SystemExit("a client process did not start")
        start_at = time.monotonic() + 0.2
        stop_at = start_at + self.seconds
        self.window = start_at, stop_at
        for control in controls:
            control.send((start_at, stop_at))
        time.sleep(max(0.0, start_at - time.monotonic()))
        before, busy_before = cpu_split(self.server.pid), machine_busy_seconds()
        self.window_start = sum(before), busy_before
        with profiled(self.server, self.seconds, target):
            time.sleep(max(0.0, stop_at - time.monotonic()))
            after = cpu_split(self.server.pid)
            self.machine_busy = machine_busy_seconds() - busy_before
        self.server_system = after[1] - before[1]
        server_cpu = sum(after) - sum(before)
        results = [control.recv() for control in controls]
        for process in processes:
            process.join()
        return results, server_cpu

    # -- event fan-out ------------------------------------------------------------------------

    def fanout(self, configurations: list[tuple[int, int]], publishers: int) -> None:
        owner = "streamer@bench.example"
        [owner_token] = self.admin.users([owner])
        self.admin.devices([EVENT_DEVICE], owner=owner)
        idle_tokens = self.tokens("idle", 100)
        device = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.cli", "device", "run", "--cloud",
             self.server.coap, "--device-id", EVENT_DEVICE, "--quiet", "--seed", "1",
             # the device link is DTLS: the device enrols its key first
             "--api", self.server.url, "--admin-token", ADMIN_TOKEN],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not self.admin.connected(EVENT_DEVICE):
                if time.monotonic() > deadline or device.poll() is not None:
                    raise SystemExit("the event device did not connect to the cloud")
                time.sleep(0.2)
            print(f"\nevent fan-out: {publishers} publisher connections POST "
                  f"/fwsim/devices/<id>/events for {self.seconds:g} s (the device is connected "
                  f"over CoAP/UDP from its own process); delivered/s counts until the last "
                  f"stream has every event ('drain s' after the first publish); µs/event is "
                  f"the server's CPU per published event, 'keepalive' the part it spends with "
                  f"no events at all")
            print(f"{'streams':>8}{'idle':>6}{'published/s':>12}{'delivered/s':>12}"
                  f"{'drain s':>8}{'lost':>7}{'server':>10}{'µs/event':>10}{'keepalive':>11}"
                  f"{'device':>10}{'clients':>10}{'others':>10}")
            for matching, idle in configurations:
                self._fanout_row(owner_token, idle_tokens, matching, idle, publishers, device.pid)
        finally:
            device.terminate()
            device.wait(timeout=15)

    def _fanout_row(self, owner_token: str, idle_tokens: list[str], matching: int, idle: int,
                    publishers: int, device_pid: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.settle()
        stream_procs = max(1, min(self.client_procs, (matching + idle + 249) // 250))
        idle_list = [idle_tokens[n % len(idle_tokens)] for n in range(idle)]
        quiet_s = 5.0  # one keep-alive period of every stream
        controls, processes = [], []
        for part_matching, part_idle in zip(split([owner_token] * matching, stream_procs),
                                            split(idle_list, stream_procs), strict=True):
            mine, theirs = context.Pipe()
            process = context.Process(target=_stream_process, daemon=True,
                                      args=(StreamJob(self.server.url, part_matching, part_idle),
                                            theirs))
            process.start()
            theirs.close()
            controls.append(mine)
            processes.append(process)
        failed = sum(control.recv() for control in controls)
        # every stream is open: the server's CPU with streams but no events, then with events
        before = cpu_seconds(self.server.pid)
        time.sleep(quiet_s)
        quiet_cpu_rate = (cpu_seconds(self.server.pid) - before) / quiet_s
        jobs = [Job(self.server.url, "publish", tokens=[""] * len(part), client=self.client)
                for part in split(list(range(publishers)), min(publishers, 2))]
        for control in controls:
            control.send("start")
        device_before = cpu_seconds(device_pid)
        target = self.profile_dir / f"fanout-{matching}-{idle}.txt" if self.profile_dir else None
        results, _ = self._measure(jobs, target)
        server_before, busy_before = self.window_start
        start_at, stop_at = self.window
        published = sum(r.done - r.errors for r in results)
        # the streams lag behind the publishers: wait until every delivery is in (or stalls
        # for 2 s: a stream that fell more than its queue behind has lost events); the CPU
        # figures are taken at the last delivery
        delivered, last_change = 0, time.monotonic()
        server_cpu = cpu_seconds(self.server.pid) - server_before
        device_cpu = cpu_seconds(device_pid) - device_before
        self.machine_busy = machine_busy_seconds() - busy_before
        while delivered < published * matching and time.monotonic() - last_change < 2.0:
            time.sleep(0.05)
            for control in controls:
                control.send("count")
            now_delivered = sum(control.recv() for control in controls)
            if now_delivered != delivered:
                delivered, last_change = now_delivered, time.monotonic()
                server_cpu = cpu_seconds(self.server.pid) - server_before
                device_cpu = cpu_seconds(device_pid) - device_before
                self.machine_busy = machine_busy_seconds() - busy_before
        span = max(last_change, stop_at) - start_at
        for control in controls:
            control.send("stop")
        stream_results: list[StreamResult] = [control.recv() for control in controls]
        for process in processes:
            process.join(timeout=30)
        delivered = sum(r.events for r in stream_results)
        lost = published * matching - delivered
        per_event = server_cpu / published * 1e6 if published else float("nan")
        keepalive_part = quiet_cpu_rate * span / published * 1e6 if published else float("nan")
        client_cpu = sum(r.cpu for r in results) + sum(r.cpu for r in stream_results)
        errors = sum(r.errors for r in results)
        note = f"  ({failed} streams failed to open)" if failed else ""
        note += f"  ({errors} publish errors: {results[0].first_error[:80]})" if errors else ""
        print(f"{matching:>8}{idle:>6}{published / self.seconds:>12.0f}"
              f"{delivered / span:>12.0f}{span:>8.1f}{lost:>7}"
              f"{100 * server_cpu / span:>9.0f}%{per_event:>10.0f}{keepalive_part:>11.0f}"
              f"{100 * device_cpu / span:>9.0f}%{100 * client_cpu / span:>9.0f}%"
              f"{self.others(span, server_cpu, client_cpu, device_cpu)}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per row")
    parser.add_argument("--levels", default="1,10,50", help="concurrent clients per workload")
    parser.add_argument("--workloads", default="claim,list,claim-code,404,fanout")
    parser.add_argument("--client", choices=["raw", "aiohttp"], default="raw",
                        help="the load generator's HTTP client: raw (requests written and read "
                        "by hand on asyncio streams, the least client CPU per request) or "
                        "aiohttp")
    parser.add_argument("--client-procs", type=int, default=4,
                        help="client processes per row (at most one per client)")
    parser.add_argument("--streams", default="100,1000", help="matching streams per fan-out row")
    parser.add_argument("--idle", default="0,1000",
                        help="idle streams next to 10 matching ones, for the idle-cost rows")
    parser.add_argument("--publishers", type=int, default=4,
                        help="concurrent publisher connections in the fan-out rows")
    parser.add_argument("--db", default="", help="SQLite file (default: a temporary file; "
                        "':memory:' for an in-memory store)")
    parser.add_argument("--claim-rate-guess", type=float, default=4000,
                        help="claims per second to seed devices for (a client that runs out "
                        "stops and is reported)")
    parser.add_argument("--server-loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="the server's event loop (uvloop: the policy set before "
                        "fwsim cloud serve's asyncio.run)")
    parser.add_argument("--server-http", choices=["default", "auto", "h11", "httptools"],
                        default="default", help="uvicorn's HTTP/1.1 protocol in the server "
                        "(ServerConfig.http_protocol; default: the server's own default)")
    parser.add_argument("--server-src", type=Path, metavar="DIR",
                        help="run the server from this source tree (e.g. `git archive` of "
                        "another commit) for before/after figures in one window")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the server here")
    parser.add_argument("--profile-level", type=int, default=0,
                        help="the client level to profile (default: the highest)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each row wait up to SECONDS until the rest of the machine "
                        "is nearly idle (a shared machine skews every figure)")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    workloads = args.workloads.split(",")
    levels = [int(n) for n in args.levels.split(",")]
    profile_level = args.profile_level or max(levels)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fwsim-bench-") as scratch:
        db = args.db or str(Path(scratch) / "cloud.db")
        server = start_server(db, args.server_loop, args.server_http, args.server_src)
        try:
            bench = Bench(server, Admin(server.url), args.seconds, args.client_procs,
                          args.profile, args.claim_rate_guess, quiet_max_wait=args.wait_quiet,
                          client=args.client)
            store = "in memory" if db == ":memory:" else "file"
            print(f"fwsim cloud serve (uvicorn, SQLite {store}) at {server.url}; "
                  f"{args.client} clients in separate processes; "
                  f"{os.cpu_count()} CPUs; {args.seconds:g} s per row; load average before "
                  f"{os.getloadavg()[0]:.2f}")
            print(f"{'workload':<12}{'clients':>8}{'procs':>6}{'req/s':>9}{'p50 ms':>8}"
                  f"{'p99 ms':>8}{'errors':>7}{'server CPU':>17}{'req/CPUs':>8}{'clients':>10}"
                  f"{'others':>10}")
            for workload in workloads:
                if workload == "fanout":
                    continue
                for clients in levels:
                    bench.level(workload, clients, profile=clients == profile_level)
            if "fanout" in workloads:
                rows = [(int(n), 0) for n in args.streams.split(",")]
                rows += [(10, int(n)) for n in args.idle.split(",")]
                bench.fanout(rows, args.publishers)
        finally:
            server.stop()
    for line in bench.verdicts:
        print(line)
    print("(CPU: % of one core over the window; server = the fwsim process, clients = all "
          "load-generator processes, others = the rest of the machine, which disturbs the "
          "figures when it is not near 0; req/CPUs = requests per CPU-second of the server, "
          "what one saturated core would serve)")


if __name__ == "__main__":
    main()
