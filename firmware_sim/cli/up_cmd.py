"""``fwsim up``: the emulated cloud and simulated devices, ready for an app developer.

One testbed world holds the cloud and ``--devices N`` devices; it runs in real time. The cloud
serves its REST API and its CoAP/UDP device endpoint; the devices reach it over that UDP
socket, exactly as a device in another process would. Each device is then exposed through the
*edge services* registered in ``firmware_sim.testbed.serving`` (USB bridge, SoftAP, BLE, ...):
adding a transport to ``fwsim serve`` adds it here too, with its own options. ``up`` prints
every endpoint, the developer account and a ready-made access token, then runs until Ctrl-C
(exit status 0) or ``--for SECONDS``.

The cloud is seeded on every start (idempotently, so a persistent ``--db`` keeps working): a
developer account, and with ``--product`` a product whose team is that developer, with an OAuth
client for creating customers and the devices imported into it. Devices start unclaimed and
online, so ``particle device add <id>`` or ``claimDevice`` works at once. A device the cloud
has no name for is named as here (``lamp``: ``particle call lamp ...`` works once it is
claimed) when that is a valid Particle device name no other device of the cloud has; else it
keeps the cloud's ``fwsim_<last 6 hex of its id>``. The banner prints the cloud's name.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import TYPE_CHECKING

from .cloud_cmd import add_cloud_arguments, cloud_spec, say, serve_options
from .common import (
    BUILTIN_NAMES,
    add_firmware_errors_argument,
    add_timing_argument,
    device_arg,
    load_device_config,
)
from .live import add_live_log_arguments, start_live_log
from .tb_cmd import add_serve_arguments, refuse_thingsboard_options
from .tb_cmd import serve as serve_thingsboard

if TYPE_CHECKING:
    from cloud_sim.cloud import Cloud
    from cloud_sim.model import DeviceRecord, Principal

    from ..dashboard import Dashboard
    from ..system.device import Device
    from ..system.network import WifiCredentials
    from ..testbed import DeviceSpec, ServedCloud
    from ..testbed.clouds.particle import ParticlePlug

DEVELOPER = "developer@fwsim.local"
#: the product's OAuth client (its secret is fresh on every start)
PRODUCT_CLIENT_ID = "fwsim-product-client"
PREFIX = "fwsim up"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("--devices must be between 1 and 1000")
    return value


def _product(text: str) -> tuple[int, str]:
    number, _, slug = text.partition(":")
    if not number.isdigit() or not 1 <= int(number) < 2**31 or not slug or slug.isdigit():
        raise argparse.ArgumentTypeError(f"invalid product {text!r}: expected ID:SLUG")
    return int(number), slug


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..testbed.serving import add_edge_arguments

    parser = sub.add_parser(
        "up", help="start the cloud and simulated devices, print endpoints and a token",
        description="Start the emulated cloud (REST API + CoAP/UDP) and simulated devices in "
        "real time, print every endpoint and a ready-made access token, and run until "
        "interrupted (Ctrl-C exits with status 0).")
    add_cloud_arguments(parser, default_seed=0)
    parser.add_argument("--devices", type=_count, default=1, metavar="N",
                        help="number of simulated devices (default 1)")
    parser.add_argument("--profile", default="p2",
                        help="platform profile of the devices: p2, photon2, argon, photon")
    parser.add_argument("--product", type=_product, metavar="ID:SLUG",
                        help="also create this product (the developer on its team, an OAuth "
                        "client for customers) and import the devices into it")
    parser.add_argument("--username", default=DEVELOPER,
                        help=f"developer account to create (default {DEVELOPER})")
    parser.add_argument("--password", default=None,
                        help="its password, set on every start (default: a fresh random one, "
                        "printed at start: a fixed default would let any local user log in)")
    parser.add_argument("--unprovisioned", action="store_true",
                        help="boot the devices without Wi-Fi credentials (listening mode), for "
                        "setup over SoftAP, BLE, USB or serial; the access point HomeNet / "
                        "home-pass-1 is in range")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="keep each device's DCT and Wi-Fi credentials under DIR/<name>")
    parser.add_argument("--token", metavar="TOKEN",
                        help="the developer's access token to print (default: a fresh random "
                        "one on every start; the previous start's token is revoked)")
    parser.add_argument("--firmware", default=None, metavar="NAME|MODULE:CLASS|FILE.py",
                        help="application firmware of every device: a built-in name ("
                        + ", ".join(BUILTIN_NAMES) + "), a Python import path module:Class, "
                        "or a file path.py[:Class]")
    parser.add_argument("--device", dest="device_specs", action="append", type=device_arg,
                        metavar="NAME:PROFILE[:FIRMWARE]",
                        help="a device of your own (repeatable; replaces --devices/--profile/"
                        "--firmware), e.g. --device bench:p2:session-end-workaround")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="devices from a TOML file: [[device]] tables with name, profile, "
                        "firmware, timing (docs/cloud-api.md, 'fwsim up')")
    parser.add_argument("--trace", metavar="FILE.jsonl",
                        help="write the structured trace, line by line as it happens")
    add_timing_argument(parser)
    add_firmware_errors_argument(parser)
    add_live_log_arguments(parser)
    add_edge_arguments(parser)
    add_serve_arguments(parser, "--cloud")
    parser.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    if args.cloud_kind == "thingsboard":
        return serve_thingsboard(args, PREFIX, edges=True)
    refuse_thingsboard_options(args)
    return asyncio.run(_up_async(args))


def seed_cloud(cloud: Cloud, args: argparse.Namespace, devices: list[Device]) -> str:
    """Developer account (+ product); returns the access token to print (fresh per start)."""
    from cloud_sim import accounts, ownership
    from cloud_sim.http.devices import is_device_name
    from cloud_sim.model import DeviceRecord, Principal
    from cloud_sim.security import start_token

    # a fixed default password or client secret would let any local user in: fresh ones on
    # every start unless given (printed by _announce), as the access token
    if args.password is None:
        args.password = secrets.token_urlsafe(12)
    args.product_client_secret = secrets.token_urlsafe(24)
    store = cloud.store
    with store.transaction():
        user = store.find_user(args.username)
        if user is None:
            user = cloud.create_user(args.username, args.password)
        else:  # the password is this start's, like the token
            user.password_hash = accounts.hash_password(args.password, cloud.rng)
            store.update_user(user)
        product_id = None
        if args.product is not None:
            product_id, slug = args.product
            product = store.get_product(product_id) or cloud.create_product(
                product_id, slug, slug, team={user.id},
                platform_id=devices[0].profile.platform_id)
            product.team.add(user.id)
            store.update_product(product)
            cloud.create_product_client(product, PRODUCT_CLIENT_ID, args.product_client_secret,
                                        owner=user.id)
        ids = {device.device_id for device in devices}
        taken = {cloud_name(record) for record in store.list_devices() if record.id not in ids}
        for device in devices:
            record = store.get_device(device.device_id) or DeviceRecord(device.device_id)
            record.platform_id = device.profile.platform_id
            if product_id is not None:
                record.product_id = product_id
            if record.name is None and device.name not in taken and is_device_name(
                    device.name) and len(device.name) <= 64 and not ownership.is_device_id(
                    device.name.lower()):
                record.name = device.name
            taken.add(cloud_name(record))
            store.put_device(record)
    return start_token(cloud, Principal.user(user.id), "fwsim-up", args.token)


def cloud_name(record: DeviceRecord) -> str:
    """The name the cloud's REST API shows and finds a device by (``display_name`` of
    ``cloud_sim/http/render.py``)."""
    from cloud_sim.http.render import display_name

    return display_name(record)


async def _up_async(args: argparse.Namespace) -> int:
    from ..kernel.realtime import stop_on_signals

    stop = asyncio.Event()
    # from the very start: a Ctrl-C while the world is being built stops it as well (asyncio's
    # own handler would cancel the start-up, which went on regardless)
    with stop_on_signals(stop):
        return await _up_started(args, stop)


async def _up_started(args: argparse.Namespace, stop: asyncio.Event) -> int:
    from ..system.network import WifiCredentials
    from ..system.radio import AccessPoint
    from ..testbed import SERVED, LinkSpec, Testbed, TestbedSpec
    from ..testbed.adapters import surface_for
    from ..testbed.clouds.particle import ParticlePlug
    from ..testbed.serving import EdgeContext, run_edge
    from ..testbed.steering import Steering

    home = AccessPoint("HomeNet", "home-pass-1")
    wifi = () if args.unprovisioned else (WifiCredentials(home.ssid, home.password),)
    devices = up_device_specs(args, wifi)
    cloud = cloud_spec(args)
    testbed = Testbed(TestbedSpec(seed=args.seed, access_points=(home,), cloud=cloud,
                                  devices=devices, link=LinkSpec(cloud_url=SERVED),
                                  timing=args.timing, trace_path=args.trace,
                                  trace_memory_limit=20_000,
                                  firmware_errors=args.firmware_errors))
    plug = testbed.cloud
    assert isinstance(plug, ParticlePlug)
    token = seed_cloud(plug.cloud, args, list(testbed))
    served: ServedCloud | None = None
    dashboard: Dashboard | None = None
    steering = Steering(testbed)
    try:
        served = await testbed.serve_cloud(serve_options(args))
        if served.server is not None:
            from ..testbed.steering_routes import mount_steering

            mount_steering(served.server.app, steering)
            from ..dashboard import mount_dashboard

            dashboard = mount_dashboard(served, testbed, steering=steering)
        code = plug.create_claim_code(
            _developer(plug, args),
            product_id=args.product[0] if args.product is not None else None)
        _announce(args, served, token, code, list(testbed), plug)
        for label, value in dashboard.lines if dashboard is not None else ():
            say(PREFIX, label, value)
        start_live_log(args, testbed.world, devices=list(testbed.devices),
                       cloud=plug.name,
                       ids=[(d.name, d.device_id) for d in testbed])
        testbed.power_on()
        ctx = EdgeContext(testbed.world, testbed.driver(),
                          [surface_for(device) for device in testbed], plug)
        await run_edge(ctx, args, duration_s=args.duration, announce=_print_line,
                       stop_event=stop)
    finally:
        if dashboard is not None:
            dashboard.close()
        steering.close()
        if served is not None:
            await served.stop()
        testbed.close()
    print(f"{PREFIX}: stopped", file=sys.stderr, flush=True)
    return 0


def _developer(plug: ParticlePlug, args: argparse.Namespace) -> Principal:
    from cloud_sim.model import Principal

    user = plug.cloud.store.find_user(args.username)
    assert user is not None
    return Principal.user(user.id)


def up_device_specs(args: argparse.Namespace, wifi: tuple[WifiCredentials, ...]
                    ) -> tuple[DeviceSpec, ...]:
    """The devices of ``fwsim up``: ``--config``, else ``--device`` (repeatable), else
    ``--devices N`` of ``--profile`` running ``--firmware``."""
    from pathlib import Path

    from ..kernel.errors import UsageError
    from ..testbed import DeviceSpec

    chosen: list[tuple[str, str, str | None, str | None]] = []
    if args.config is not None:
        if args.device_specs:
            raise UsageError("give --config or --device, not both")
        chosen = load_device_config(args.config)
    elif args.device_specs:
        chosen = [(name, profile, firmware, None) for name, profile, firmware
                  in args.device_specs]
    else:
        chosen = [(f"dev{i + 1}", args.profile, args.firmware, None)
                  for i in range(args.devices)]
    names = [name for name, *_ in chosen]
    if len(set(names)) != len(names):
        raise UsageError(f"device names must be unique: {', '.join(names)}")
    return tuple(
        DeviceSpec(name, profile=profile, firmware=firmware or args.firmware, wifi=wifi,
                   timing=timing,
                   storage_dir=(Path(args.state_dir) / name if args.state_dir else None))
        for name, profile, firmware, timing in chosen)


def _print_line(line: str) -> None:
    print(f"{PREFIX}: {line}", flush=True)


def _announce(args: argparse.Namespace, served: ServedCloud, token: str, code: str,
              devices: list[Device], plug: ParticlePlug) -> None:
    from ..apps import firmware_name

    http_url = served.http_url
    admin_token = getattr(served.server, "admin_token", None)
    for label, value in served.lines:
        say(PREFIX, label, value)
    say(PREFIX, "admin", f"{http_url}/fwsim/state  (outbox /fwsim/outbox; "
        f"X-Fwsim-Admin-Token: {admin_token})")
    say(PREFIX, "steer", f"export FWSIM_URL={http_url} FWSIM_ADMIN_TOKEN={admin_token}; "
        "fwsim ctl devices")
    say(PREFIX, "events", f"{http_url}/v1/devices/events  (server-sent events)")
    say(PREFIX, "database", args.db)
    say(PREFIX, "developer", f"{args.username} / {args.password}")
    say(PREFIX, "access token", token)
    if args.product is not None:
        product_id, slug = args.product
        say(PREFIX, "product", f"{product_id} ({slug}); OAuth client {PRODUCT_CLIENT_ID} / "
            f"{args.product_client_secret}")
    for device in devices:
        record = plug.cloud.store.get_device(device.device_id)
        named = cloud_name(record) if record is not None else "-"
        say(PREFIX, f"device {device.name}", f"{device.device_id} ({device.profile.name}, "
            f"firmware {firmware_name(device.firmware_factory)}), cloud name {named}, cloud "
            f"link {served.device_url}")
        say(PREFIX, "", f"serial {device.serial_number}  mobile secret {device.mobile_secret}"
            f"  setup code {device.setup_code}")
    say(PREFIX, "claim code", f"{code}  (for {args.username}"
        + (f", product {args.product[0]}" if args.product is not None else "")
        + "; set it on a device over USB, BLE, SoftAP, serial or `fwsim ctl set-claim-code`)")
    first = devices[0]
    say(PREFIX, "try", f"curl -H 'Authorization: Bearer {token}' -d id={first.device_id} "
        f"{http_url}/v1/devices   (claims {first.name} once it is online; then "
        f"curl -H 'Authorization: Bearer {token}' {http_url}/v1/devices lists it)")
