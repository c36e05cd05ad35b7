"""The emulated ThingsBoard on the command line.

* ``fwsim up --cloud thingsboard`` and ``fwsim cloud serve --kind thingsboard`` branch into
  :func:`serve`: one testbed world with the ``thingsboard`` cloud (ThingsBoard's demo accounts,
  ``up``: ``--devices N`` claim buttons linked in process), served on loopback - REST + device
  HTTP API, MQTT 3.1.1/5, CoAP - printing every endpoint, login and device token, then running
  until Ctrl-C or ``--for SECONDS``. The options they share are added by
  :func:`add_serve_arguments`. The demo accounts' passwords are fresh from the OS CSPRNG on
  every start (printed; ``--tb-password`` fixes them): ThingsBoard's published ones would let
  anyone who reaches the port in as the tenant administrator. Device tokens, ids and button
  secrets of a served world come from the OS CSPRNG (``TbCloudSettings.unpredictable``),
  whatever the seed; ``--allow-host`` names the HTTP API answers to besides the bound address.
* ``fwsim tb why DEVICE`` / ``fwsim tb press DEVICE``: a running server's admin API
  (``/fwsim/devices/{name}/why`` and ``/press``), logged in as the tenant administrator (the
  password printed at start: ``FWSIM_TB_PASSWORD`` or ``--password``);
* ``fwsim tb scenario [NAME | --all]``: the ThingsBoard claiming scenarios;
* ``fwsim tb button --token T [--mqtt HOST:PORT | --http URL | --coap HOST:PORT]``: one
  simulated claim button against any ThingsBoard-style server, a real one included
  (``tb_button.py``).

Expected errors are one line (``fwsim: error: ...``, exit 2); what needs the ``thingsboard``
extra says so in that line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from .common import port_arg, seed_arg

if TYPE_CHECKING:
    from ..kernel.trace import TraceRecord

DEFAULT_URL = "http://127.0.0.1:8080"
#: ``--db`` left at the Particle cloud's default means this file for ThingsBoard
PARTICLE_DB, THINGSBOARD_DB = "fwsim-cloud.db", "fwsim-thingsboard.db"
#: the tenant administrator's password for ``fwsim tb why`` / ``press`` when ``--password`` is not
#: given (the environment is private to the user; a command line is not)
PASSWORD_ENV = "FWSIM_TB_PASSWORD"
#: at most this many device tokens are printed at start
MAX_DEVICE_LINES = 50
#: options of ``fwsim up`` that concern Particle devices only
PARTICLE_ONLY = (("product", "--product"), ("unprovisioned", "--unprovisioned"),
                 ("state_dir", "--state-dir"), ("firmware", "--firmware"),
                 ("allow_offline_claims", "--allow-offline-claims"))
#: options of ``fwsim up`` / ``fwsim cloud serve`` with a default that concern the Particle cloud
#: or its devices only: refused when given another value (their parsers' defaults)
PARTICLE_ONLY_VALUES = (("claim_code_ttl", "--claim-code-ttl", 3600.0),
                        ("timing", "--timing", "thread"),
                        ("firmware_errors", "--firmware-errors", "panic"),
                        ("username", "--username", "developer@fwsim.local"),
                        ("password", "--password", None), ("token", "--token", None))
#: what to use instead of a refused Particle option, where ThingsBoard has an equivalent
INSTEAD = {"--password": " (the demo accounts' password is --tb-password)"}


def say(prefix: str, label: str, value: str) -> None:
    """One line of a serving command's announcement (the layout of ``fwsim up``'s lines)."""
    print(f"{prefix}: {label:<12} {value}", flush=True)


def _password(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("the password must not be empty")
    if len(text) > 256:
        raise argparse.ArgumentTypeError("the password must be at most 256 characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("the password must be valid UTF-8") from None
    return text


def _duration_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}") from None
    if not 0 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"{value} out of range 0..{2**63 - 1} ms")
    return value


# -- fwsim up --cloud thingsboard / fwsim cloud serve --kind thingsboard ------------------------


def add_serve_arguments(parser: argparse.ArgumentParser, flag: str) -> None:
    """``flag`` (``--cloud`` or ``--kind``) choosing the cloud, and ThingsBoard's options."""
    from ..testbed import cloud_kinds

    parser.add_argument(flag, dest="cloud_kind", choices=cloud_kinds(), default="particle",
                        help="which emulated cloud (default particle)")
    group = parser.add_argument_group(f"ThingsBoard ({flag} thingsboard)", description=(
        f"with {flag} thingsboard: --http serves the REST and device HTTP API, --coap the CoAP "
        f"claim API; --db defaults to {THINGSBOARD_DB}"))
    group.add_argument("--mqtt", type=port_arg, default=1883, metavar="PORT",
                       help="MQTT 3.1.1/5 port (default 1883; 0: any free port)")
    group.add_argument("--button-duration", type=_duration_ms, default=300_000, metavar="MS",
                       help="durationMs the simulated claim buttons send (default 300000)")
    group.add_argument("--no-boot-press", action="store_true",
                       help="the claim buttons send nothing until pressed (default: claim "
                       "info on boot)")
    group.add_argument("--no-claiming-by-default", action="store_true",
                       help="security.claim.allowClaimingByDefault=false")
    group.add_argument("--documented-reclaim-body", action="store_true",
                       help='answer DELETE .../claim with {"result":{},"setOrExpired":true}')
    group.add_argument("--tb-password", type=_password, default=None, metavar="PASSWORD",
                       help="the password of every demo account (sysadmin, tenant, customers "
                       "A-C), set on every start (default: a fresh random one per account, "
                       "printed at start: ThingsBoard's published demo passwords would let any "
                       "local user in as the tenant administrator)")


def refuse_thingsboard_options(args: argparse.Namespace) -> None:
    """The Particle cloud is chosen: a ThingsBoard password given would be silently unused."""
    from . import CliError

    if getattr(args, "tb_password", None) is not None:
        raise CliError("--tb-password applies to the thingsboard cloud's demo accounts")


def serve(args: argparse.Namespace, prefix: str, *, edges: bool = False) -> int:
    """Serve the ThingsBoard cloud (and ``args.devices`` claim buttons, if any); ``edges``:
    the command has the edge services' options (``fwsim up``), which must be off."""
    from . import CliError

    for attribute, flag in PARTICLE_ONLY:
        if getattr(args, attribute, None):
            raise CliError(f"{flag} applies to Particle devices, not to the thingsboard cloud")
    for attribute, flag, default in PARTICLE_ONLY_VALUES:
        if getattr(args, attribute, default) != default:
            raise CliError(f"{flag} applies to the Particle cloud, not to the thingsboard cloud"
                           + INSTEAD.get(flag, ""))
    if getattr(args, "profile", "p2") != "p2":
        raise CliError("--profile applies to Particle devices, not to the thingsboard cloud")
    from ..testbed.serving import edge_modules

    enabled = [module.NAME for module in edge_modules() if edges and module.enabled(args)]
    if enabled:
        raise CliError(f"edge services ({', '.join(enabled)}) need Particle devices; the "
                       "thingsboard cloud has claim buttons only")
    return asyncio.run(_serve(args, prefix))


async def _serve(args: argparse.Namespace, prefix: str) -> int:
    from cloud_sim.thingsboard.demo import TENANT_ADMIN, set_demo_passwords

    from ..claim_button import ButtonConfig
    from ..kernel.realtime import stop_on_signals
    from ..testbed import CloudSpec, ServeOptions, Testbed, TestbedSpec
    from ..testbed.clouds.thingsboard import (
        ReclaimBody,
        TbCloudSettings,
        ThingsBoardPlug,
        ThingsBoardSettings,
    )

    if args.seed is None:
        args.seed = secrets.randbits(62)
    db = THINGSBOARD_DB if args.db == PARTICLE_DB else args.db
    settings = TbCloudSettings(
        service=ThingsBoardSettings(
            allow_claiming_by_default=not args.no_claiming_by_default,
            reclaim_body=(ReclaimBody.DOCUMENTED if args.documented_reclaim_body
                          else ReclaimBody.EMPTY)),
        db=None if db == ":memory:" else db, epoch_ms=int(time.time() * 1000),
        buttons=getattr(args, "devices", 0),
        button=ButtonConfig(duration_ms=args.button_duration, qr_text=False,
                            press_on_boot=not args.no_boot_press),
        unpredictable=True)
    testbed = Testbed(TestbedSpec(seed=args.seed, access_points=(), trace_memory_limit=20_000,
                                  trace_path=getattr(args, "trace", None),
                                  cloud=CloudSpec("thingsboard", settings=settings)))
    plug = testbed.cloud
    assert isinstance(plug, ThingsBoardPlug)
    assert plug.demo is not None
    # ThingsBoard's published demo passwords would let anyone who reaches the port in: fresh
    # ones on every start (printed below), or --tb-password
    set_demo_passwords(plug.service, plug.demo, args.tb_password)

    names = {button.node: name for name, button in plug.buttons.items()}

    def show(record: TraceRecord) -> None:
        if record.layer == "button" and record.kind == "claim.secret":
            secret = record.fields.get("secret") or "(empty)"
            say(prefix, "button", f"{names.get(record.node, record.node)!r} secret {secret}  "
                f"valid {record.fields.get('duration_ms', 0) / 1000:g} s")

    testbed.world.trace.subscribe(show)
    stop = asyncio.Event()
    runner: asyncio.Future[None] | None = None
    served = None
    dashboard = None
    try:
        with stop_on_signals(stop):
            served = await testbed.serve_cloud(ServeOptions(
                host=args.host, http_port=args.http, device_port=args.mqtt, speed=args.speed,
                extra={"coap_port": args.coap,
                       "allowed_hosts": tuple(getattr(args, "allow_host", ()))}))
            driver = testbed.driver()
            runner = asyncio.ensure_future(driver.run())
            for label, value in served.lines:
                say(prefix, label, value)
            say(prefix, "admin", f"{served.http_url}/fwsim/devices/<name>/why  (POST .../press;"
                " tenant administrators)")
            from ..dashboard import mount_dashboard

            dashboard = mount_dashboard(served, testbed, token=args.admin_token)
            for label, value in dashboard.lines:
                say(prefix, label, value)
            say(prefix, "database", db)
            say(prefix, "seed", f"{args.seed}, speed {args.speed:g}x")
            for role, email, password in plug.demo.logins():
                say(prefix, "login", f"{role:<13} {email} / {password}")
            devices = plug.service.store.list_devices(plug.demo.tenant.id)
            for device in devices[:MAX_DEVICE_LINES]:
                kind = "  (simulated claim button)" if device.name in plug.buttons else ""
                say(prefix, "device", f"{device.name!r} token "
                    f"{plug.service.access_token_of(device)}{kind}")
            if len(devices) > MAX_DEVICE_LINES:
                say(prefix, "device", f"... and {len(devices) - MAX_DEVICE_LINES} more "
                    "(GET /api/tenant/devices as the tenant administrator)")
            driver.sync()
            plug.power_on()
            driver.wake()
            if plug.buttons:
                first = next(iter(plug.buttons))
                say(prefix, "try", f"{PASSWORD_ENV}={plug.demo.passwords[TENANT_ADMIN[0]]} "
                    f"fwsim tb press {first!r} --url {served.http_url}")
            say(prefix, "ready", "Ctrl-C to stop" if args.duration is None
                else f"stopping after {args.duration:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.duration)
    finally:
        if dashboard is not None:
            dashboard.close()
        if served is not None:
            await served.stop()
        if runner is not None:
            testbed.driver().stop()
            await runner
        testbed.close()
    print(f"{prefix}: stopped", file=sys.stderr, flush=True)
    return 0


# -- fwsim tb -----------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tb", help="the emulated ThingsBoard (claiming)",
                            description="The emulated ThingsBoard: ask a running server why a "
                            "claim failed, press a simulated button, run the claiming "
                            "scenarios. Serve it with `fwsim up --cloud thingsboard` or "
                            "`fwsim cloud serve --kind thingsboard`.")
    commands = parser.add_subparsers(dest="tb_command", metavar="SUBCOMMAND")
    commands.required = True
    for name, text in (("why", "show a device's claim state and history, with reasons"),
                       ("press", "press a simulated device's claim button")):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("device", help="device name")
        command.add_argument("--url", default=DEFAULT_URL, help=f"server (default {DEFAULT_URL})")
        command.add_argument("--user", default="tenant@thingsboard.org",
                             help="a tenant administrator (default tenant@thingsboard.org)")
        command.add_argument("--password", help="its password, as the server printed it at "
                             f"start (default: ${PASSWORD_ENV}; a command line is visible to "
                             "other local users, the environment is not)")
        command.add_argument("--json", action="store_true", help="print the raw JSON")
        command.set_defaults(handler=_why if name == "why" else _press)
    scenario = commands.add_parser("scenario", help="run ThingsBoard claiming scenarios")
    scenario.add_argument("name", nargs="?", help="scenario name (omit to list)")
    scenario.add_argument("--all", action="store_true", help="run every scenario")
    scenario.add_argument("--seed", type=seed_arg, default=0)
    scenario.add_argument("--trace", default=None, metavar="FILE", help="JSON-lines trace")
    scenario.set_defaults(handler=_scenario)
    from .tb_button import register as register_button

    register_button(commands)
    moved = commands.add_parser("serve", help="moved: fwsim up --cloud thingsboard",
                                description="Moved: serve the emulated ThingsBoard with `fwsim "
                                "up --cloud thingsboard` (with claim buttons) or `fwsim cloud "
                                "serve --kind thingsboard` (same port options).")
    moved.set_defaults(handler=_moved)


def _moved(args: argparse.Namespace) -> int:
    from . import CliError

    raise CliError("`fwsim tb serve` is now `fwsim up --cloud thingsboard` (with claim buttons) "
                   "or `fwsim cloud serve --kind thingsboard`")


def _request(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    from . import CliError

    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["X-Authorization"] = f"Bearer {token}"
    try:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text).get("message", text)
        except (ValueError, AttributeError):
            message = text
        raise CliError(f"{method} {url}: {exc.code} {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"cannot reach {url}: {exc}") from None
    return json.loads(text) if text else None


def _login(args: argparse.Namespace) -> str:
    from . import CliError

    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV)
    if not password:
        raise CliError(f"give the password of {args.user}: set {PASSWORD_ENV} (or --password) "
                       "to the one the server printed at start (its 'login' lines)")
    tokens = _request("POST", f"{args.url.rstrip('/')}/api/auth/login",
                      {"username": args.user, "password": password})
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


def _scenario(args: argparse.Namespace) -> int:
    from ..scenarios.thingsboard import TB_SCENARIOS, get_tb_scenario

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
        if result.skipped is not None:
            print(f"SKIP {name}: {result.skipped}\n")
            continue
        print(f"# scenario {name}, seed {args.seed}")
        for line in result.timeline:
            print(line)
        for check in result.checks:
            print(f"  [{'ok' if check.ok else 'FAILED'}] {check.description}")
        print(f"{'PASS' if result.passed else 'FAIL'} {name}: {result.verdict}\n")
        failed += not result.passed
    return 1 if failed else 0


__all__ = ["add_serve_arguments", "refuse_thingsboard_options", "register", "serve"]
