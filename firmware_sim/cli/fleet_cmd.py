"""``fwsim fleet run``: a fleet of devices split into shards (worlds in separate processes)
claiming devices from one cloud process over the real UDP link."""

from __future__ import annotations

import argparse

from .common import positive_float, positive_int, seed_arg


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = sub.add_parser("fleet", help="fleets of devices in several processes",
                           description="Fleets of simulated devices split into shards.")
    commands = fleet.add_subparsers(dest="fleet_command", required=True)
    run = commands.add_parser(
        "run", help="claim N devices by claim code from K shard processes and one cloud",
        description="Start the Particle cloud in its own process (one claim code per device), "
        "then K shards - each its own world and process with N/K devices, every device on its "
        "own UDP socket to the cloud. Every device boots, connects, sends its claim code and "
        "clears it when the cloud confirms. Prints each shard's figures and the devices per "
        "second over the run; exit status 1 unless every device was claimed.")
    run.add_argument("--devices", type=positive_int, default=1000, metavar="N",
                     help="devices in the fleet (default 1000)")
    run.add_argument("--shards", type=positive_int, default=1, metavar="K",
                     help="worlds, each in its own process (default 1)")
    run.add_argument("--backend", choices=["process", "inline", "ray"], default="process",
                     help="where shards run: processes on this machine (default), this "
                     "process one after the other, or Ray tasks (needs the ray extra)")
    run.add_argument("--ray-address", metavar="ADDR",
                     help="with --backend ray: the cluster to join (default: a local Ray)")
    run.add_argument("--host", default="127.0.0.1",
                     help="address the cloud listens on (default 127.0.0.1; a Ray cluster's "
                     "machines must reach it)")
    run.add_argument("--timing", choices=["fast", "thread"], default="fast",
                     help="the devices' timing profile (default fast)")
    run.add_argument("--seed", type=seed_arg, default=0, help="seed of shard 0 (shard i: +i)")
    run.add_argument("--in-flight", type=positive_int, default=DEFAULT_IN_FLIGHT, metavar="M",
                     help="per shard, devices between power-on and claimed at once at most "
                     f"(default {DEFAULT_IN_FLIGHT}: thousands of DTLS handshakes at once "
                     "outrun the cloud process, time out and are retried without end)")
    run.add_argument("--timeout", type=positive_float, default=300.0, metavar="S",
                     help="wall seconds a shard waits for its devices (default 300)")
    run.set_defaults(handler=_run)


#: ``--in-flight`` by default. Measured (2 cores, one shard, DTLS over UDP): 4,000 devices all
#: at once claimed 0 in 300 s (every handshake timed out and was retried while the cloud process
#: used a whole core); 2,000 with 200 in flight: all claimed, 20 devices/s.
DEFAULT_IN_FLIGHT = 200


def _run(args: argparse.Namespace) -> int:
    from ..fleet import FleetPlan, InlineBackend, ProcessBackend, RayBackend, ShardBackend
    from ..kernel.errors import UsageError

    if args.shards > args.devices:
        raise UsageError("--shards must not exceed --devices")
    backend: ShardBackend
    if args.backend == "ray":
        backend = RayBackend(address=args.ray_address)
    elif args.backend == "inline":
        backend = InlineBackend()
    else:
        backend = ProcessBackend()
    from ..fleet import run_fleet

    result = run_fleet(FleetPlan(devices=args.devices, shards=args.shards, seed=args.seed,
                                 timing=args.timing, host=args.host, timeout_s=args.timeout,
                                 in_flight=args.in_flight),
                       backend)
    for line in result.lines():
        print(line)
    return 0 if result.ok else 1
