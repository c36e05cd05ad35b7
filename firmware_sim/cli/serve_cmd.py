"""``fwsim serve``: one simulated device in real time, exposed to real clients.

Which transports are exposed depends on the options of the edge services
(``firmware_sim.edge.SERVICE_MODULES``): each adds its own options below.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .common import seed_arg


def _ap_arg(text: str) -> tuple[str, str | None]:
    ssid, sep, password = text.partition(":")
    if not ssid:
        raise argparse.ArgumentTypeError(f"invalid network {text!r}: expected SSID[:PASSWORD]")
    return ssid, (password if sep else None)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..edge import add_service_arguments

    parser = sub.add_parser("serve", help="run a device in real time for real clients",
                            description="Run one simulated device (and an in-process cloud) in "
                            "real time and expose it to real clients over the transports "
                            "selected by the options below.")
    add_device_arguments(parser)
    parser.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                        help="stop after this many seconds (default: run until Ctrl-C)")
    add_service_arguments(parser)
    parser.set_defaults(handler=_serve)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="p2",
                        help="platform profile: p2, photon2, argon, photon (default p2)")
    parser.add_argument("--device-id", help="24 hex characters (default: derived from the seed)")
    parser.add_argument("--serial", help="15-character serial number")
    parser.add_argument("--secret", help="15-character mobile secret")
    parser.add_argument("--storage", metavar="DIR",
                        help="keep the device's DCT and Wi-Fi credentials in DIR")
    parser.add_argument("--seed", type=seed_arg, default=0, help="world seed (default 0)")
    parser.add_argument("--ap", action="append", type=_ap_arg, metavar="SSID[:PASSWORD]",
                        help="an access point in range (repeatable; default HomeNet:home-pass-1)")
    parser.add_argument("--wifi", action="append", type=_ap_arg, metavar="SSID[:PASSWORD]",
                        help="Wi-Fi credentials the device already knows (repeatable)")
    parser.add_argument("--trace", metavar="FILE.jsonl", help="write the structured trace")


def build_world(args: argparse.Namespace) -> tuple[object, object, object]:
    """World, device and in-process cloud from the device options."""
    from cloud_sim import Cloud

    from ..kernel.trace import JsonlSink
    from ..kernel.world import World
    from ..system import AccessPoint, Device, WifiCredentials, radio_environment
    from ..system.radio import WifiSecurity

    sinks = [JsonlSink(args.trace)] if args.trace else []
    world = World(args.seed, sinks=sinks, trace_memory_limit=10_000)
    radio = radio_environment(world)
    for ssid, password in args.ap or [("HomeNet", "home-pass-1")]:
        radio.add(AccessPoint(ssid, password, security=WifiSecurity.WPA2_PSK if password
                              else WifiSecurity.NO_SECURITY))
    cloud = Cloud(world)
    device = Device(world, "dev", profile=args.profile, device_id=args.device_id,
                    serial_number=args.serial, mobile_secret=args.secret,
                    storage_dir=args.storage,
                    wifi=[WifiCredentials(ssid, pw) for ssid, pw in args.wifi or []])
    device.attach_cloud(cloud.connector())
    return world, device, cloud


def describe_device(device: object) -> str:
    from ..system import Device

    assert isinstance(device, Device)
    return (f"device {device.name}: {device.profile.name} id {device.device_id} serial "
            f"{device.serial_number} mobile secret {device.mobile_secret} setup code "
            f"{device.setup_code}")


def _serve(args: argparse.Namespace) -> int:
    from ..edge import EdgeContext, run_edge
    from ..kernel.realtime import AsyncioDriver
    from ..kernel.world import World

    world, device, cloud = build_world(args)
    assert isinstance(world, World)

    async def main() -> None:
        driver = AsyncioDriver(world)
        ctx = EdgeContext(world, driver, [device], cloud)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        device.power_on()  # type: ignore[attr-defined]

        def announce(line: str) -> None:
            print(line, flush=True)

        announce(describe_device(device))
        await run_edge(ctx, args, duration_s=args.duration, announce=announce, stop_event=stop)

    try:
        asyncio.run(main())
    finally:
        world.trace.close()
    print("stopped", file=sys.stderr)
    return 0
