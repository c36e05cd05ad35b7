"""``fwsim serve``: one simulated device in real time, exposed to real clients.

The device and an in-process Particle cloud live in one testbed world. Which transports are
exposed depends on the options of the edge services (``firmware_sim.testbed.serving``'s
registry): each adds its own options below.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .common import BUILTIN_NAMES, add_firmware_errors_argument, add_timing_argument, seed_arg
from .live import add_live_log_arguments, start_live_log

#: the in-process cloud's user a printed claim code belongs to
DEFAULT_OWNER = "developer@fwsim.local"


def _ap_arg(text: str) -> tuple[str, str | None]:
    ssid, sep, password = text.partition(":")
    if not ssid:
        raise argparse.ArgumentTypeError(f"invalid network {text!r}: expected SSID[:PASSWORD]")
    return ssid, (password if sep else None)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..testbed.serving import add_edge_arguments

    parser = sub.add_parser("serve", help="run a device in real time for real clients",
                            description="Run one simulated device (and an in-process cloud) in "
                            "real time and expose it to real clients over the transports "
                            "selected by the options below.")
    add_device_arguments(parser)
    parser.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--claim-code-for", "--softap-claim-owner", dest="claim_owner",
                        metavar="EMAIL", default=DEFAULT_OWNER,
                        help="the user of the in-process cloud a printed claim code is for "
                        f"(default {DEFAULT_OWNER}): set it over USB, BLE, SoftAP or serial "
                        "and the cloud accepts it")
    add_live_log_arguments(parser)
    add_edge_arguments(parser)
    parser.set_defaults(handler=_serve)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="p2",
                        help="platform profile: p2, photon2, argon, photon (default p2)")
    parser.add_argument("--firmware", default=None, metavar="NAME|MODULE:CLASS|FILE.py",
                        help="application firmware: a built-in name (" + ", ".join(BUILTIN_NAMES)
                        + "), a Python import path module:Class, or a file path.py[:Class]")
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
    parser.add_argument("--trace", metavar="FILE.jsonl",
                        help="write the structured trace, line by line as it happens")
    add_timing_argument(parser)
    add_firmware_errors_argument(parser)


def build_testbed(args: argparse.Namespace) -> object:
    """The testbed of ``fwsim serve``: radio, in-process Particle cloud, one device ``dev``."""
    from ..system import AccessPoint, WifiCredentials
    from ..system.radio import WifiSecurity
    from ..testbed import CloudSpec, DeviceSpec, Testbed, TestbedSpec

    access_points = tuple(
        AccessPoint(ssid, password, security=WifiSecurity.WPA2_PSK if password
                    else WifiSecurity.NO_SECURITY)
        for ssid, password in args.ap or [("HomeNet", "home-pass-1")])
    device = DeviceSpec("dev", profile=args.profile, firmware=args.firmware,
                        device_id=args.device_id, serial_number=args.serial,
                        mobile_secret=args.secret, storage_dir=args.storage,
                        wifi=tuple(WifiCredentials(ssid, pw) for ssid, pw in args.wifi or []))
    return Testbed(TestbedSpec(seed=args.seed, access_points=access_points,
                               cloud=CloudSpec("particle"), devices=(device,),
                               timing=args.timing, firmware_errors=args.firmware_errors,
                               trace_path=args.trace, trace_memory_limit=10_000,
                               secrets_from_os=True))


def describe_device(device: object) -> str:
    from ..apps import firmware_name
    from ..system import Device

    assert isinstance(device, Device)
    return (f"device {device.name}: {device.profile.name} id {device.device_id} serial "
            f"{device.serial_number} mobile secret {device.mobile_secret} setup code "
            f"{device.setup_code} firmware {firmware_name(device.firmware_factory)}")


def _serve(args: argparse.Namespace) -> int:
    from ..kernel.realtime import stop_on_signals
    from ..testbed import Testbed
    from ..testbed.adapters import surface_for
    from ..testbed.clouds.particle import ParticlePlug
    from ..testbed.serving import EdgeContext, run_edge

    testbed = build_testbed(args)
    assert isinstance(testbed, Testbed)

    async def main() -> None:
        ctx = EdgeContext(testbed.world, testbed.driver(),
                          [surface_for(device) for device in testbed], testbed.cloud)
        stop = asyncio.Event()

        def announce(line: str) -> None:
            print(line, flush=True)

        with stop_on_signals(stop):
            announce(describe_device(testbed.device))
            cloud = testbed.cloud
            assert isinstance(cloud, ParticlePlug)
            code = cloud.create_claim_code(cloud.user(args.claim_owner))
            announce(f"claim code {code} for {args.claim_owner}")
            start_live_log(args, testbed.world, devices=list(testbed.devices), cloud=cloud.name,
                           ids=[(d.name, d.device_id) for d in testbed])
            testbed.power_on()
            await run_edge(ctx, args, duration_s=args.duration, announce=announce,
                           stop_event=stop)

    try:
        asyncio.run(main())
    finally:
        testbed.close()
    print("stopped", file=sys.stderr)
    return 0
