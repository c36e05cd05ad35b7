"""Edge service: simulated devices as BLE peripherals on bumble controllers (``fwsim serve``).

How this works
--------------
An edge service (``transports.edge_api``); needs the ``[bumble]`` extra.

* ``--ble bumble:tcp-server:127.0.0.1:PORT`` (repeatable): fwsim runs a bumble ``LocalLink``
  with one virtual controller per BLE-capable device, each driven by a bumble host that serves
  the device's GATT table and advertising, and serves one more virtual controller on each
  given transport. A central in another process attaches its host to it
  (``fwsim ble scan --hci tcp-client:127.0.0.1:PORT``, ``bumble-scan
  tcp-client:127.0.0.1:PORT``). Any bumble transport spec works after ``bumble:``.
* ``--ble-hci TRANSPORT``: the first device's bumble host opens ``TRANSPORT`` instead, e.g.
  ``tcp-client:127.0.0.1:19001`` to ``python -m bumble.apps.controllers
  tcp-server:127.0.0.1:19001 tcp-server:127.0.0.1:19002``, or ``android-netsim`` to put the
  device on the Android emulator's virtual radio (docs/ble.md; untested).

The world runs under the serve command's real-time driver; bumble events reach it through a
:class:`~.bridge.RealtimeBridge` over the edge context (its ``sync``/``wake``).
``--ble-advertise always`` keeps the control service advertised outside listening mode (as an
application calling ``BLE.advertise()`` would).
"""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING

from firmware_sim.kernel.errors import ConfigurationError

from ..edge_api import EdgeContext, EdgeHandle
from .bridge import RealtimeBridge
from .peripheral import AdvertisingPolicy, BlePeripheral

if TYPE_CHECKING:
    from bumble.transport.common import Transport

__all__ = ["NAME", "add_arguments", "enabled", "start"]

NAME = "ble"
_PREFIX = "bumble:"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("BLE (needs the [bumble] extra)")
    group.add_argument("--ble", action="append", metavar="bumble:TRANSPORT", type=_ble_arg,
                       help="serve a bumble virtual controller on TRANSPORT that shares a "
                       "virtual radio with the device, e.g. bumble:tcp-server:127.0.0.1:19001 "
                       "(a central then uses tcp-client:127.0.0.1:19001; repeatable)")
    group.add_argument("--ble-hci", metavar="TRANSPORT",
                       help="attach the device's BLE host to this bumble HCI transport "
                       "instead, e.g. tcp-client:127.0.0.1:19001 or android-netsim")
    group.add_argument("--ble-advertise", choices=[p.value for p in AdvertisingPolicy],
                       default=AdvertisingPolicy.LISTENING.value,
                       help="when the control service is advertised (default: listening, as "
                       "Device OS)")


def _ble_arg(text: str) -> str:
    try:
        _specs([text])
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def enabled(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "ble", None) or getattr(args, "ble_hci", None))


def _specs(values: list[str]) -> list[str]:
    specs = []
    for value in values:
        if not value.startswith(_PREFIX) or len(value) == len(_PREFIX):
            raise ConfigurationError(
                f"invalid --ble {value!r}: expected bumble:TRANSPORT, e.g. "
                "bumble:tcp-server:127.0.0.1:19001")
        specs.append(value[len(_PREFIX):])
    return specs


def _central_hint(spec: str) -> str:
    if spec.startswith("tcp-server:"):
        return f" (centrals: tcp-client:{spec[len('tcp-server:'):]})"
    return ""


async def start(ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle:
    specs = _specs(args.ble or [])
    try:
        from bumble.link import LocalLink

        from .bumble_peripheral import (
            BumblePeripheral,
            hci_device,
            local_device,
            serve_controllers,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(f"--ble needs bumble (install fwsim[bumble]): {exc}") from None
    devices = [device for device in ctx.devices if device.profile.has_ble]
    if not devices:
        raise ConfigurationError("--ble: no device with BLE (the photon profile has none)")
    bridge = RealtimeBridge(ctx)
    adapters: list[BumblePeripheral] = []
    peripherals: list[BlePeripheral] = []
    transports: list[Transport] = []
    lines: list[str] = []

    async def stop() -> None:
        for adapter in adapters:
            with contextlib.suppress(Exception):
                await adapter.stop()
        for peripheral in peripherals:
            peripheral.detach()
        for transport in transports:
            with contextlib.suppress(Exception):
                await transport.close()

    try:
        if args.ble_hci:
            device = devices[0]
            peripheral = BlePeripheral(device, advertising=args.ble_advertise)
            peripherals.append(peripheral)
            host, transport = await hci_device(args.ble_hci, name=device.name,
                                               address=peripheral.address)
            transports.append(transport)
            adapters.append(BumblePeripheral(peripheral, host, bridge))
            lines.append(f"BLE: {peripheral.name} ({peripheral.address}) on HCI "
                         f"{args.ble_hci}")
        if specs:
            link = LocalLink()  # type: ignore[no-untyped-call]
            for device in devices:
                peripheral = BlePeripheral(device, advertising=args.ble_advertise)
                peripherals.append(peripheral)
                host = local_device(link, name=device.name, address=peripheral.address)
                adapters.append(BumblePeripheral(peripheral, host, bridge))
                lines.append(f"BLE: {peripheral.name} ({peripheral.address}) advertising "
                             f"{args.ble_advertise}")
            transports.extend(await serve_controllers(link, specs))
            lines.extend(f"BLE: virtual controller on {spec}{_central_hint(spec)}"
                         for spec in specs)
        ctx.sync()
        for adapter in adapters:
            await adapter.start()
        ctx.wake()
    except Exception as exc:
        await stop()
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"BLE edge service: {exc}") from exc
    return EdgeHandle(lines, stop)
