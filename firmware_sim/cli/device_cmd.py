"""``fwsim device run``: one simulated device in real time, linked to a cloud over CoAP/UDP.

The device lives in its own World driven by the wall clock (``--speed`` times faster); its
cloud connection opens UDP sockets to ``--cloud coap://HOST:PORT`` (``fwsim cloud serve`` in
another process, or ``fwsim up``). The Device OS log is printed as it happens. With
``--scenario product-customer-transfer --api URL`` it runs that scenario's script against the
remote cloud instead and exits 0 when every check passes.

The link is DTLS 1.2 authenticated by the device's key (docs/security.md): the cloud must hold
the device's public key and the device the cloud's. With ``--api URL`` and the admin token
(``--admin-token`` or ``$FWSIM_ADMIN_TOKEN``) the device enrols itself first
(``POST /fwsim/devices/<id>/key``); without them the cloud must already know the key (a device
kept with ``--storage`` that enrolled before, against a cloud with a persistent ``--db``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .common import (
    BUILTIN_NAMES,
    add_firmware_errors_argument,
    add_timing_argument,
    positive_float,
    seed_arg,
    speed_arg,
)
from .live import add_live_log_arguments, start_live_log

FIRMWARE = BUILTIN_NAMES
"""The built-in firmware names (``firmware_sim.apps.BUILTIN_FIRMWARE``)."""
REMOTE_SCENARIOS = ("product-customer-transfer",)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..testbed.serving import add_edge_arguments

    parser = sub.add_parser("device", help="run a simulated device against a cloud",
                            description="A simulated device on real sockets.")
    cmds = parser.add_subparsers(dest="device_command", metavar="SUBCOMMAND")
    cmds.required = True
    run = cmds.add_parser(
        "run", help="run one device linked to a cloud over CoAP/UDP",
        description="Run one simulated device in real time against a cloud at --cloud "
        "(CoAP over UDP). Prints the Device OS log until interrupted (or --for SECONDS).")
    run.add_argument("--cloud", required=True, metavar="coap://HOST:PORT",
                     help="the cloud's device endpoint (see `fwsim cloud serve`)")
    run.add_argument("--profile", default="p2", help="platform profile (default p2)")
    run.add_argument("--device-id", metavar="HEX24", help="device id (default: from the seed)")
    run.add_argument("--name", default="dev", help="node name in the trace (default dev)")
    run.add_argument("--storage", metavar="DIR",
                     help="keep the DCT and Wi-Fi credentials in DIR (survive restarts)")
    run.add_argument("--claim-code", metavar="CODE",
                     help="store this claim code before booting (as a setup app would)")
    run.add_argument("--firmware", default=None, metavar="NAME|MODULE:CLASS|FILE.py",
                     help="application firmware: a built-in name (" + ", ".join(FIRMWARE)
                     + "), a Python import path module:Class, or a file path.py[:Class] "
                     "(default: an empty app)")
    run.add_argument("--seed", type=seed_arg, default=0, help="world seed (default 0)")
    run.add_argument("--speed", type=speed_arg, default=1.0,
                     help="virtual seconds per wall second (default 1)")
    run.add_argument("--for", dest="duration", type=positive_float, default=None,
                     metavar="SECONDS", help="stop after this many wall seconds")
    run.add_argument("--trace", metavar="FILE.jsonl",
                     help="write the structured trace, line by line as it happens")
    add_live_log_arguments(run)
    run.add_argument("--scenario", choices=REMOTE_SCENARIOS,
                     help="run this scenario's script against the remote cloud (needs --api)")
    run.add_argument("--api", metavar="http://HOST:PORT",
                     help="the cloud's REST API: the device enrols its key there first (with "
                     "--admin-token); needed by --scenario")
    run.add_argument("--timeout", type=positive_float, default=120.0, metavar="SECONDS",
                     help="wall-clock limit for --scenario (default 120)")
    run.add_argument("--admin-token", default=os.environ.get("FWSIM_ADMIN_TOKEN"),
                     metavar="TOKEN", help="the cloud's /fwsim admin token, to enrol the "
                     "device's key and for --scenario (printed by `fwsim cloud serve --admin`; "
                     "default $FWSIM_ADMIN_TOKEN)")
    add_timing_argument(run)
    add_firmware_errors_argument(run)
    add_edge_arguments(run)
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from transports.net import parse_cloud_url

    from ..kernel.errors import UsageError

    parse_cloud_url(args.cloud)  # a bad URL is a usage error before anything starts
    if args.api is not None and not args.api.startswith(("http://", "https://")):
        raise UsageError(f"invalid --api {args.api!r}: expected http://HOST:PORT")
    if args.scenario is not None:
        if not args.api:
            raise UsageError("--scenario needs --api http://HOST:PORT (the cloud's REST API)")
        return asyncio.run(_scenario(args))
    return asyncio.run(_device(args))


async def _device(args: argparse.Namespace) -> int:
    from ..kernel.errors import ConfigurationError, UsageError
    from ..kernel.realtime import stop_on_signals
    from ..kernel.trace import TraceRecord
    from ..system.network import WifiCredentials
    from ..system.radio import AccessPoint
    from ..testbed import DeviceSpec, LinkSpec, Testbed, TestbedSpec
    from ..testbed.adapters import surface_for
    from ..testbed.serving import EdgeContext, run_edge

    home = AccessPoint("HomeNet", "home-pass-1")
    spec = DeviceSpec(args.name, profile=args.profile, device_id=args.device_id,
                      storage_dir=args.storage, firmware=args.firmware,
                      wifi=(WifiCredentials(home.ssid, home.password),),
                      link=LinkSpec(cloud_url=args.cloud))
    testbed = Testbed(TestbedSpec(seed=args.seed, access_points=(home,), cloud=None,
                                  trace_path=args.trace, trace_memory_limit=20_000,
                                  timing=args.timing, firmware_errors=args.firmware_errors))
    handshakes = {"full": 0, "resumed": 0}
    try:
        driver = testbed.driver(args.speed)
        device = testbed.add_device(spec)
        if args.api is not None:  # the cloud learns the device's key, the device the cloud's
            from ..testbed import enrol_remote, remote_api

            try:
                with remote_api(args.api, admin_token=args.admin_token) as api:
                    enrol_remote(api, device)
            except OSError as exc:
                raise ConfigurationError(_remote_failure(args.api, exc)) from None
            except Exception as exc:  # httpx's transport errors, as in _scenario
                if type(exc).__module__.split(".")[0] != "httpx":
                    raise
                raise ConfigurationError(_remote_failure(args.api, exc)) from None
        if args.claim_code is not None:
            result = device.claim.set_claim_code(args.claim_code.encode("latin-1", "replace"))
            if result != 0:
                raise UsageError(f"the device refused the claim code (result {result})")
        print(f"fwsim device: {device.name} id {device.device_id} ({device.profile.name}) -> "
              f"{args.cloud}; serial {device.serial_number} mobile secret "
              f"{device.mobile_secret} setup code {device.setup_code}; Ctrl-C to stop",
              flush=True)
        start_live_log(args, testbed.world, devices=[device.name])
        name = device.name

        def count(record: TraceRecord) -> None:  # over every boot (each has its own state)
            if record.node == name and record.kind in ("handshake.full", "handshake.resumed"):
                handshakes[record.kind.removeprefix("handshake.")] += 1

        testbed.world.trace.subscribe(count)
        device.power_on()
        stop = asyncio.Event()
        with stop_on_signals(stop):
            ctx = EdgeContext(testbed.world, driver, [surface_for(device)], None)
            await run_edge(ctx, args, duration_s=args.duration,
                           announce=lambda line: print(f"fwsim device: {line}", flush=True),
                           stop_event=stop)
    finally:
        testbed.close()
    print(f"fwsim device: stopped; handshakes full={handshakes['full']} "
          f"resumed={handshakes['resumed']}", file=sys.stderr, flush=True)
    return 0


async def _scenario(args: argparse.Namespace) -> int:
    from ..kernel.errors import ConfigurationError
    from ..scenarios.transfer import run_remote

    try:
        result = await run_remote(args.api, args.cloud, seed=args.seed, speed=args.speed,
                                  timeout_s=args.timeout, timing=args.timing,
                                  admin_token=args.admin_token)
    except (OSError, ImportError) as exc:
        raise ConfigurationError(_remote_failure(args.api, exc)) from None
    except Exception as exc:  # httpx's transport errors, without importing httpx here
        if type(exc).__module__.split(".")[0] != "httpx":
            raise
        raise ConfigurationError(_remote_failure(args.api, exc)) from None
    if not args.quiet:
        print(f"# scenario {args.scenario} over CoAP/UDP {args.cloud} and HTTP {args.api}, "
              f"seed {args.seed}, speed {args.speed:g}x", flush=True)
        for line in result.timeline:
            print(line)
        print("#")
        for check in result.checks:
            print(f"# [{'ok' if check.ok else 'FAILED'}] {check.description}")
    print(f"{'PASS' if result.passed else 'FAIL'} {args.scenario} (seed {args.seed}, "
          f"{result.wall_seconds:.1f} s wall): {result.verdict}", flush=True)
    return 0 if result.passed else 1


def _remote_failure(api: str, exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return (f"--scenario needs the REST API client ({exc.name or exc}): install "
                "fwsim[cloud] for this")
    return f"cannot reach the cloud's REST API at {api}: {exc} (is `fwsim cloud serve` running?)"
