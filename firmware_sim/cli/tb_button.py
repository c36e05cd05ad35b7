"""``fwsim tb button``: one simulated claim button against any ThingsBoard-style server.

How this works
--------------
A World on a real-time driver holds one :class:`~firmware_sim.claim_button.ClaimButtonDevice`
whose uplink reaches a real server: MQTT over a TCP connection (``transports.tcp``), or the
device HTTP / CoAP API (``transports.claim_uplinks``). The button boots (its first press), then
is pressed ``--presses - 1`` more times, ``--interval`` seconds apart; each press makes a secret
(random from the operating system's CSPRNG unless ``--seed`` is given, or ``--secret
fixed:VALUE`` / ``empty``), prints it and its QR code, sends ``{"secretKey", "durationMs"}`` and
waits for the server's answer (PUBACK, HTTP 200, CoAP 2.01). The exit status is 0 when every
claim message was accepted, 1 when one was not (the server's answer is printed), 2 on bad
arguments. Pointed at a real ThingsBoard (``--mqtt HOST:PORT --token DEVICE_TOKEN``), this is
the device half of its claiming tutorial; against ``fwsim up --cloud thingsboard`` it is another
button the service does not simulate itself.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from .common import positive_float, positive_int, seed_arg

if TYPE_CHECKING:
    from ..kernel.trace import TraceRecord

DEFAULT_MQTT = "127.0.0.1:1883"


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _secret(text: str) -> tuple[str, str]:
    mode, _, value = text.partition(":")
    if mode in ("random", "empty") and not value:
        return mode, ""
    if mode == "fixed" and value:
        return mode, value
    raise argparse.ArgumentTypeError(f"expected random, empty or fixed:VALUE, got {text!r}")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "a simulated claim button against any ThingsBoard-style server (MQTT, HTTP or CoAP)"
    parser = commands.add_parser("button", help=text, description=text[0].upper() + text[1:]
                                 + ": it sends claim info for the device whose access token "
                                 "is given and prints the secret a customer types to claim it.")
    parser.add_argument("--token", required=True, help="the device's access token")
    parser.add_argument("--name", default="Claim Button",
                        help="device name (shown in the QR code; the server knows the device "
                        "by its token)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mqtt", type=_host_port, metavar="HOST:PORT",
                       help=f"MQTT broker of the server (default {DEFAULT_MQTT})")
    where.add_argument("--http", metavar="URL",
                       help="device HTTP API base URL, e.g. http://127.0.0.1:8080")
    where.add_argument("--coap", type=_host_port, metavar="HOST:PORT",
                       help="device CoAP API, e.g. 127.0.0.1:5683")
    parser.add_argument("--secret", type=_secret, default=("random", ""),
                        metavar="random|empty|fixed:VALUE", help="the secret of each press")
    parser.add_argument("--duration-ms", type=positive_int, default=60_000, metavar="MS",
                        help="how long the server keeps the claim info (default 60000)")
    parser.add_argument("--presses", type=positive_int, default=1, metavar="N",
                        help="presses in all, the first at boot (default 1)")
    parser.add_argument("--interval", type=positive_float, default=5.0, metavar="SECONDS",
                        help="between presses (default 5)")
    parser.add_argument("--timeout", type=positive_float, default=15.0, metavar="SECONDS",
                        help="how long to wait for each answer (default 15)")
    parser.add_argument("--protobuf", action="store_true",
                        help="send the protobuf ClaimDevice payload (a protobuf device profile)")
    parser.add_argument("--qr-dir", type=Path, default=None, metavar="DIR",
                        help="also write DIR/<name>.png and .svg for every secret")
    parser.add_argument("--no-qr", action="store_true", help="do not print the QR code")
    parser.add_argument("--seed", type=seed_arg, default=None,
                        help="draw the secrets from this seed (default: unpredictable)")
    parser.set_defaults(handler=run_button)


def run_button(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from ..claim_button import ButtonConfig, ClaimButtonDevice, MqttUplink, SecretMode, Uplink
    from ..kernel import AsyncioDriver, World

    mode, fixed = args.secret
    config = ButtonConfig(secret=SecretMode(mode), fixed_secret=fixed,
                          duration_ms=args.duration_ms, protobuf=args.protobuf,
                          qr_dir=args.qr_dir, qr_text=not args.no_qr)
    world = World(secrets.randbits(62) if args.seed is None else args.seed)
    driver = AsyncioDriver(world)
    if args.http is not None:
        from transports.claim_uplinks import HttpUplink

        uplink: Uplink = HttpUplink(args.http, args.token, driver, timeout_s=args.timeout)
        target = args.http
    elif args.coap is not None:
        from transports.claim_uplinks import CoapUplink

        host, port = args.coap
        uplink = CoapUplink(host, port, args.token, driver, timeout_s=args.timeout)
        target = f"coap://{args.coap[0]}:{args.coap[1]}"
    else:
        from transports.tcp import tcp_connector

        host, port = args.mqtt or _host_port(DEFAULT_MQTT)
        uplink = MqttUplink(world, args.name, args.token,
                            tcp_connector(host, port, world, driver, timeout_s=args.timeout))
        target = f"mqtt://{host}:{port}"
    button = ClaimButtonDevice(world, args.name, uplink, config)
    answers: list[TraceRecord] = []

    def show(record: TraceRecord) -> None:
        if record.node != button.node:
            return
        f = record.fields
        if record.kind == "claim.secret":
            secret = f.get("secret") or "(empty: claim by device name)"
            print(f"{args.name}: secret {secret}  valid {args.duration_ms / 1000:g} s", flush=True)
            if not args.no_qr and button.qr_text:
                print(button.qr_text, flush=True)
            if f.get("png"):
                print(f"{args.name}: QR code {f['png']} and {f['svg']}", flush=True)
        elif record.kind in ("claim.acked", "claim.failed"):
            answers.append(record)
            verdict = "accepted" if record.kind == "claim.acked" else "NOT accepted"
            print(f"{args.name}: claim info {verdict} by {target} ({f.get('detail')})",
                  flush=True)
        elif record.kind in ("mqtt.refused", "mqtt.disconnected_by_server"):
            print(f"{args.name}: {record.kind.replace('_', ' ')} "
                  f"({f.get('reason', f.get('detail', ''))})", flush=True)

    world.trace.subscribe(show)
    runner = asyncio.ensure_future(driver.run())
    try:
        for press in range(args.presses):
            driver.sync()
            if press == 0:
                button.power_on()
            else:
                button.press_button()
            driver.wake()
            if not await _answered(answers, press + 1, args.timeout + 1):
                print(f"{args.name}: no answer from {target} within {args.timeout:g} s",
                      flush=True)
                return 1
            if press + 1 < args.presses:
                await asyncio.sleep(args.interval)
    finally:
        driver.sync()
        button.power_off()
        driver.stop()
        await runner
    return 0 if all(a.kind == "claim.acked" for a in answers) else 1


async def _answered(answers: list[TraceRecord], count: int, timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(answers) < count:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


__all__ = ["register", "run_button"]
