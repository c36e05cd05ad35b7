"""Command line of the ThingsBoard face: ``serve``, ``why``, ``press``, ``scenario``.

Used by ``python -m cloud_sim.thingsboard`` and by ``fwsim tb`` (:mod:`firmware_sim.cli.tb_cmd`).
``serve`` opens every endpoint on loopback and prints them with the demo logins and the device
tokens; ``why`` and ``press`` talk to a running server's ``/fwsim`` API as the tenant
administrator (the demo login by default). Expected errors are one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from firmware_sim.kernel.errors import ConfigurationError, FwSimError
from firmware_sim.kernel.world import parse_seed

DEFAULT_URL = "http://127.0.0.1:8080"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 0..65535")
    return port


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{value} out of range 0..100000")
    return value


def _seed(text: str) -> int:
    try:
        return parse_seed(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the emulated ThingsBoard on loopback",
                           description="REST + device HTTP API, MQTT (3.1.1 and 5) and CoAP on "
                           "loopback, with ThingsBoard's demo accounts and N claim-button "
                           "devices; prints every endpoint, login and device token, then runs "
                           "until Ctrl-C.")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    serve.add_argument("--http", type=_port, default=8080, metavar="PORT")
    serve.add_argument("--mqtt", type=_port, default=1883, metavar="PORT")
    serve.add_argument("--coap", type=_port, default=5683, metavar="PORT")
    serve.add_argument("--devices", type=_count, default=3, metavar="N",
                       help="claim-button devices to simulate (default 3)")
    serve.add_argument("--seed", type=_seed, default=None, help="world seed (default random)")
    serve.add_argument("--db", default=":memory:", metavar="FILE",
                       help="SQLite database (default :memory:)")
    serve.add_argument("--button-duration", type=_count, default=300_000, metavar="MS",
                       help="durationMs the simulated buttons send (default 300000)")
    serve.add_argument("--no-boot-press", action="store_true",
                       help="the simulated buttons send nothing until pressed (default: they "
                       "send claim info on boot)")
    serve.add_argument("--no-claiming-by-default", action="store_true",
                       help="security.claim.allowClaimingByDefault=false")
    serve.add_argument("--documented-reclaim-body", action="store_true",
                       help='answer DELETE .../claim with {"result":{},"setOrExpired":true}')
    serve.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS",
                       help="stop after this many seconds")
    serve.set_defaults(handler=_serve)
    for name, text in (("why", "show a device's claim state and history, with reasons"),
                       ("press", "press a simulated device's claim button")):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("device", help="device name")
        command.add_argument("--url", default=DEFAULT_URL, help=f"server (default {DEFAULT_URL})")
        command.add_argument("--user", default="tenant@thingsboard.org")
        command.add_argument("--password", default="tenant")
        command.add_argument("--json", action="store_true", help="print the raw JSON")
        command.set_defaults(handler=_why if name == "why" else _press)
    scenario = sub.add_parser("scenario", help="run ThingsBoard claiming scenarios")
    scenario.add_argument("name", nargs="?", help="scenario name (omit to list)")
    scenario.add_argument("--all", action="store_true", help="run every scenario")
    scenario.add_argument("--seed", type=_seed, default=0)
    scenario.add_argument("--trace", default=None, metavar="FILE", help="JSON-lines trace")
    scenario.set_defaults(handler=_scenario)


def build_parser(prog: str = "python -m cloud_sim.thingsboard") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="The emulated ThingsBoard.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
        return status
    except FwSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# -- serve --------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    return asyncio.run(_serve_async(args))


async def _serve_async(args: argparse.Namespace) -> int:
    from cloud_sim.server import wait_until_stopped
    from firmware_sim.kernel.world import World

    from .demo import device_name, seed_demo
    from .device import ButtonConfig, ClaimButtonDevice, MqttUplink
    from .server import TbServerConfig, ThingsBoardServer
    from .service import ThingsBoardService
    from .settings import ReclaimBody, ThingsBoardSettings
    from .store import TbStore
    from .uplinks import service_connector

    seed = args.seed if args.seed is not None else secrets.randbits(62)
    settings = ThingsBoardSettings(
        allow_claiming_by_default=not args.no_claiming_by_default,
        reclaim_body=ReclaimBody.DOCUMENTED if args.documented_reclaim_body
        else ReclaimBody.EMPTY)
    world = World(seed, trace_memory_limit=20_000)
    service = ThingsBoardService(world, store=TbStore(args.db), settings=settings,
                                 epoch_ms=int(time.time() * 1000))
    demo = seed_demo(service, devices=args.devices)
    server = ThingsBoardServer(service, TbServerConfig(
        host=args.host, http_port=args.http, mqtt_port=args.mqtt, coap_port=args.coap))

    def show(record: Any) -> None:
        if record.layer == "button" and record.kind == "claim.secret":
            secret = record.fields.get("secret") or "(empty)"
            print(f"button: {record.node:<16} secret {secret}  valid "
                  f"{record.fields.get('duration_ms', 0) / 1000:g} s", flush=True)

    world.trace.subscribe(show)
    reason = "error"
    try:
        await server.start()
        print(f"REST API:    {server.http_url}  (OpenAPI {server.http_url}/openapi.json)")
        print(f"device HTTP: {server.http_url}/api/v1/<token>/claim")
        print(f"MQTT:        {server.mqtt_url}  (3.1.1 and 5; username = device token)")
        print(f"CoAP:        {server.coap_url}/api/v1/<token>/claim")
        print(f"database:    {args.db}   seed: {seed}")
        for role, email, password in demo.logins():
            print(f"login:       {role:<13} {email} / {password}")
        server.driver.sync()
        for index, device in enumerate(demo.devices, 1):
            token = service.access_token_of(device)
            print(f"device:      {device.name!r} token {token}")
            button = ClaimButtonDevice(
                world, device_name(index),
                MqttUplink(world, device.name, token, service_connector(service)),
                ButtonConfig(duration_ms=args.button_duration, qr_text=False,
                             press_on_boot=not args.no_boot_press))
            service.buttons[device.name] = button.press_button
            button.power_on()
        server.driver.wake()
        print("ready: Ctrl-C to stop" if args.duration is None
              else f"ready: stopping after {args.duration:g} s", flush=True)
        reason = await wait_until_stopped(args.duration)
    finally:
        await server.stop()
        service.store.close()
    print(f"stopped ({'interrupted' if reason == 'signal' else reason})", file=sys.stderr)
    return 0


# -- why / press --------------------------------------------------------------------------------


def _request(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["X-Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text).get("message", text)
        except (ValueError, AttributeError):
            message = text
        raise ConfigurationError(f"{method} {url}: {exc.code} {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigurationError(f"cannot reach {url}: {exc}") from None
    return json.loads(text) if text else None


def _login(args: argparse.Namespace) -> str:
    tokens = _request("POST", f"{args.url.rstrip('/')}/api/auth/login",
                      {"username": args.user, "password": args.password})
    token: str = tokens["token"]
    return token


def _device_url(args: argparse.Namespace, action: str) -> str:
    name = urllib.parse.quote(args.device, safe="")
    return f"{args.url.rstrip('/')}/fwsim/devices/{name}/{action}"


def _why(args: argparse.Namespace) -> int:
    state = _request("GET", _device_url(args, "why"), token=_login(args))
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    print(f"device {state['device']}: assigned to {state['assigned_to'] or '(nobody)'}")
    cached = state["cached_claim_data"]
    print("  cached claim data: " + ("none" if cached is None else
          f"secret {cached['secret']}, expires {cached['expiration_time']}"
          f"{' (EXPIRED)' if cached['expired'] else ''}"))
    attributes = state["attributes"]
    print(f"  attributes: claimingAllowed={attributes['claimingAllowed']} "
          f"claimingData={attributes['claimingData']}")
    for event in state["history"]:
        print(f"  {event['ts']} {event['action']:<9} {event['outcome']:<10} "
              f"{event['reason']:<26} {event['message']}")
    return 0


def _press(args: argparse.Namespace) -> int:
    _request("POST", _device_url(args, "press"), body={}, token=_login(args))
    print(f"pressed the claim button of {args.device!r}")
    return 0


# -- scenarios ----------------------------------------------------------------------------------


def _scenario(args: argparse.Namespace) -> int:
    from .scenarios import TB_SCENARIOS, get_tb_scenario

    if not args.name and not args.all:
        for scenario in TB_SCENARIOS.values():
            print(f"{scenario.name:<26} {scenario.summary}")
        return 0
    names = list(TB_SCENARIOS) if args.all else [args.name]
    failed = 0
    for name in names:
        scenario = get_tb_scenario(name)
        trace = args.trace if len(names) == 1 else None
        result = scenario.run(args.seed, trace_path=trace)
        print(f"# scenario {name}, seed {args.seed}")
        for line in result.timeline:
            print(line)
        for check in result.checks:
            print(f"  [{'ok' if check.ok else 'FAILED'}] {check.description}")
        print(f"{'PASS' if result.passed else 'FAIL'} {name}: {result.verdict}\n")
        failed += not result.passed
    return 1 if failed else 0
