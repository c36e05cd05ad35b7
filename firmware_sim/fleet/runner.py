"""A whole fleet run: the cloud process, the shards, the verdict.

How this works
--------------
:func:`run_fleet` starts :mod:`~firmware_sim.fleet.cloud_process` (claim codes made in the cloud
process before it serves), splits the codes into ``shards`` contiguous slices, has the backend
run one :class:`~firmware_sim.fleet.shard.ShardTask` per slice, then asks the cloud (admin
namespace) how many claim codes were consumed, and stops it. Devices per second is the number
of devices whose claim was confirmed divided by the window from the first shard's power-on to
the last shard's last confirmation.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from ..kernel.errors import ConfigurationError, UsageError
from ..system.timing import FAST
from .backends import ProcessBackend, ShardBackend
from .shard import ShardResult, ShardTask

#: the environment variable that carries the admin token to the cloud process
ADMIN_TOKEN_ENV = "FWSIM_FLEET_ADMIN_TOKEN"


@dataclass(frozen=True)
class FleetPlan:
    devices: int
    shards: int = 1
    seed: int = 0
    timing: str = FAST.name
    users: int = 100
    #: where the cloud listens (other machines of a Ray cluster must reach it)
    host: str = "127.0.0.1"
    timeout_s: float = 300.0
    #: per shard: devices booting at once at most (None: all at once; ShardTask.in_flight)
    in_flight: int | None = None

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise UsageError("a fleet needs at least one device")
        if not 1 <= self.shards <= self.devices:
            raise UsageError("shards must be between 1 and the number of devices")


@dataclass
class FleetResult:
    plan: FleetPlan
    backend: str
    shards: list[ShardResult] = field(default_factory=list)
    #: claim codes the cloud marked consumed
    consumed: int = 0
    wall_s: float = 0.0
    #: CPU seconds the cloud process used while the shards ran
    cloud_cpu_s: float = 0.0

    @property
    def cleared(self) -> int:
        return sum(shard.cleared for shard in self.shards)

    @property
    def window_s(self) -> float:
        if not self.shards:
            return 0.0
        return (max(s.finished_at for s in self.shards)
                - min(s.started_at for s in self.shards))

    @property
    def devices_per_s(self) -> float:
        window = self.window_s
        return self.cleared / window if window > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.cleared == self.plan.devices == self.consumed

    def lines(self) -> list[str]:
        out = [f"fleet: {self.plan.devices} devices in {self.plan.shards} shard(s) "
               f"({self.backend} backend), cloud in its own process over UDP"]
        for s in self.shards:
            out.append(f"  shard {s.index}: {s.cleared}/{s.devices} claimed, built in "
                       f"{s.build_s:.2f} s, ran {s.run_s:.2f} s "
                       f"({_rate(s.devices_per_s)} devices/s), cpu {s.cpu_s:.2f} s, "
                       f"{s.steps} steps")
        out.append(f"  claimed (cloud): {self.consumed}/{self.plan.devices}; confirmed on "
                   f"devices: {self.cleared}; window {self.window_s:.2f} s; "
                   f"{_rate(self.devices_per_s)} devices/s; cloud process cpu "
                   f"{self.cloud_cpu_s:.2f} s; total wall {self.wall_s:.1f} s")
        return out


def _rate(per_s: float) -> str:
    """A devices/s figure: whole numbers from 10 up, two significant digits below (0.56, not
    a rounded-up 1)."""
    return f"{per_s:.0f}" if per_s >= 10 else f"{per_s:.2g}"


def _start_cloud(plan: FleetPlan, token: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim.fleet.cloud_process", "--codes", str(plan.devices),
         "--users", str(plan.users), "--seed", str(plan.seed), "--host", plan.host],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        # the token in the environment, not on the command line every local user can read
        env={**os.environ, "PYTHONUNBUFFERED": "1", ADMIN_TOKEN_ENV: token})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        raise ConfigurationError(f"the fleet's cloud did not start (exit {proc.returncode})")
    started = json.loads(line)
    if "error" in started:
        proc.wait(timeout=30)
        raise ConfigurationError(str(started["error"]))
    return proc, started


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _consumed(http_url: str, token: str) -> int:
    request = urllib.request.Request(f"{http_url}/fwsim/claim_codes",
                                     headers={"X-Fwsim-Admin-Token": token})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    return sum(1 for claim in body["claim_codes"] if claim.get("status") == "consumed")


def run_fleet(plan: FleetPlan, backend: ShardBackend | None = None) -> FleetResult:
    backend = backend or ProcessBackend()
    started = time.perf_counter()
    token = secrets.token_hex(20)
    proc, cloud = _start_cloud(plan, token)
    try:
        codes = [str(code) for code in cloud["codes"]]  # type: ignore[attr-defined]
        size, extra = divmod(len(codes), plan.shards)
        slices, start = [], 0
        for index in range(plan.shards):
            end = start + size + (1 if index < extra else 0)
            slices.append(tuple(codes[start:end]))
            start = end
        result = FleetResult(plan, backend.name)
        cloud_cpu0 = process_cpu_s(proc.pid)
        with backend.barrier(plan.shards) as barrier:
            tasks = [ShardTask(index, str(cloud["coap"]), chunk, seed=plan.seed + index,
                               timing=plan.timing, timeout_s=plan.timeout_s,
                               start_barrier=barrier, in_flight=plan.in_flight,
                               api_url=str(cloud["http"]), admin_token=token)
                     for index, chunk in enumerate(slices)]
            result.shards = backend.run(tasks)
        result.cloud_cpu_s = process_cpu_s(proc.pid) - cloud_cpu0
        result.consumed = _consumed(str(cloud["http"]), token)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    result.wall_s = time.perf_counter() - started
    return result


__all__ = ["FleetPlan", "FleetResult", "run_fleet"]
