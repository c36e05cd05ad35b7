"""``fwsim cloud serve``: the emulated Particle cloud on real sockets (REST API + CoAP/UDP)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from typing import TYPE_CHECKING

from .common import port_arg, positive_float, seed_arg, speed_arg
from .live import add_live_log_arguments, start_live_log
from .tb_cmd import add_serve_arguments, refuse_thingsboard_options
from .tb_cmd import serve as serve_thingsboard

if TYPE_CHECKING:
    from ..testbed import CloudSpec, ServeOptions




def add_cloud_arguments(parser: argparse.ArgumentParser, *, default_http: int = 8080,
                        default_coap: int = 5683, default_seed: int | None = None) -> None:
    """Options shared by ``fwsim cloud serve`` and ``fwsim up``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address for the REST API and the CoAP socket (default 127.0.0.1)")
    parser.add_argument("--http", type=port_arg, default=default_http, metavar="PORT",
                        help=f"REST API port (default {default_http}; 0: any free port)")
    parser.add_argument("--coap", type=port_arg, default=default_coap, metavar="PORT",
                        help=f"CoAP/UDP device port (default {default_coap}; 0: any free port)")
    parser.add_argument("--db", default="fwsim-cloud.db", metavar="FILE",
                        help="SQLite database (default fwsim-cloud.db; ':memory:' keeps "
                        "nothing)")
    parser.add_argument("--seed", type=seed_arg, default=default_seed,
                        help="world seed (default: "
                        f"{'random' if default_seed is None else default_seed})")
    parser.add_argument("--speed", type=speed_arg, default=1.0,
                        help="virtual seconds per wall second (default 1)")
    parser.add_argument("--claim-code-ttl", type=positive_float, default=3600.0,
                        metavar="SECONDS", help="claim-code time to live (default 3600)")
    parser.add_argument("--allow-offline-claims", action="store_true",
                        help="let the claim API take unclaimed developer devices that are "
                        "offline (Particle requires them online)")
    parser.add_argument("--for", dest="duration", type=positive_float, default=None,
                        metavar="SECONDS", help="stop after this many wall seconds "
                        "(default: run until interrupted)")
    parser.add_argument("--admin-token", metavar="TOKEN",
                        help="the /fwsim admin namespace's token (default: a fresh random one, "
                        "printed at start)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a further host name the REST API answers to (repeatable; the "
                        "bound address always works)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("cloud", help="run the emulated Particle cloud",
                            description="The emulated Particle cloud.")
    cmds = parser.add_subparsers(dest="cloud_command", metavar="SUBCOMMAND")
    cmds.required = True
    serve = cmds.add_parser(
        "serve", help="serve the REST API and the CoAP/UDP device link",
        description="Serve the REST API (particle-api-js / particle-cli compatible, OpenAPI at "
        "/openapi.json; with --admin the emulator's admin namespace /fwsim) and the device link "
        "(CoAP over UDP) until interrupted. Prints the endpoints first.")
    add_cloud_arguments(serve, default_seed=0)
    serve.add_argument("--trace", metavar="FILE.jsonl",
                       help="write the structured trace, line by line as it happens")
    add_live_log_arguments(serve, devices=False)
    serve.add_argument("--admin", action="store_true",
                       help="serve the /fwsim admin namespace (seeding, outbox, transfers), "
                       "behind the admin token printed at start (--admin-token implies it)")
    add_serve_arguments(serve, "--kind")
    serve.set_defaults(handler=_serve)


def cloud_spec(args: argparse.Namespace) -> CloudSpec:
    """The Particle cloud of a serving command: SQLite ``--db``, cloud time from the wall
    clock, the claim-code lifetime and claim policy from the options. A random seed is chosen
    (and written back to ``args.seed``) when none was given."""
    from cloud_sim import ApiClaimPolicy

    from ..testbed import CloudSpec
    from ..testbed.clouds.particle import SERVED_OFFLINE_AFTER_S, ParticleSettings

    if args.seed is None:
        args.seed = secrets.randbits(62)
    settings = ParticleSettings(
        db=args.db, epoch=int(time.time()), claim_code_ttl_s=args.claim_code_ttl,
        claim_policy=ApiClaimPolicy(require_online=not args.allow_offline_claims),
        offline_after_s=SERVED_OFFLINE_AFTER_S, unpredictable=True)
    return CloudSpec("particle", settings=settings)


def serve_options(args: argparse.Namespace) -> ServeOptions:
    from ..testbed import ServeOptions

    # `cloud serve` has --admin (off by default); `up` has none: its admin namespace is on
    admin = bool(getattr(args, "admin", True)) or args.admin_token is not None
    return ServeOptions(host=args.host, http_port=args.http, device_port=args.coap,
                        speed=args.speed,
                        extra={"admin": admin, "admin_token": args.admin_token,
                               "allowed_hosts": tuple(args.allow_host)})


def say(prefix: str, label: str, value: str) -> None:
    print(f"{prefix}: {label:<12} {value}", flush=True)


def _serve(args: argparse.Namespace) -> int:
    if args.cloud_kind == "thingsboard":
        return serve_thingsboard(args, "fwsim cloud")
    refuse_thingsboard_options(args)
    return asyncio.run(_serve_async(args))


async def _serve_async(args: argparse.Namespace) -> int:
    from cloud_sim.server import wait_until_stopped

    from ..testbed import Testbed, TestbedSpec

    cloud = cloud_spec(args)
    testbed = Testbed(TestbedSpec(seed=args.seed, cloud=cloud, access_points=(),
                                  trace_path=getattr(args, "trace", None),
                                  trace_memory_limit=20_000))
    reason = "error"
    dashboard = None
    try:
        served = await testbed.serve_cloud(serve_options(args))
        driver = asyncio.create_task(testbed.driver().run())
        try:
            for label, value in served.lines:
                say("fwsim cloud", label, value)
            admin_token = getattr(served.server, "admin_token", None)
            say("fwsim cloud", "admin", f"{served.http_url}/fwsim/state  (X-Fwsim-Admin-Token: "
                f"{admin_token})" if admin_token else "off (--admin to serve /fwsim)")
            if admin_token:
                from ..dashboard import mount_dashboard

                dashboard = mount_dashboard(served, testbed)
                for label, value in dashboard.lines:
                    say("fwsim cloud", label, value)
            say("fwsim cloud", "database", args.db)
            say("fwsim cloud", "seed", f"{args.seed}, speed {args.speed:g}x")
            say("fwsim cloud", "ready", "Ctrl-C to stop" if args.duration is None
                else f"stopping after {args.duration:g} s")
            assert testbed.cloud is not None
            start_live_log(args, testbed.world, cloud=testbed.cloud.name)
            reason = await wait_until_stopped(args.duration)
        finally:
            if dashboard is not None:
                dashboard.close()
            await served.stop()
            testbed.driver().stop()
            await driver
    finally:
        testbed.close()
    print(f"fwsim cloud: stopped ({'interrupted' if reason == 'signal' else 'time is up'})",
          file=sys.stderr, flush=True)
    return 0
