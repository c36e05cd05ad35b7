"""``fwsim ble scan`` and ``fwsim ble provision``: a phone's BLE setup from the command line.

Where the device is:

* ``--hci TRANSPORT``: through a bumble central on that HCI transport, typically the virtual
  controller of ``fwsim serve --ble bumble:tcp-server:127.0.0.1:PORT`` (``--hci
  tcp-client:127.0.0.1:PORT``); needs the ``[bumble]`` extra;
* ``--os-bluetooth``: through the host's own Bluetooth with bleak's platform backend (a real
  device; untested here);
* ``--in-process``: a simulated P2 in this process on the virtual air (no sockets), in
  listening mode, next to the access point ``HomeNet`` (password ``home-pass-1``); after
  provisioning, the device is run for ``--run-after`` more virtual seconds and its claim-code
  log lines are shown.

``provision`` prints each step: scan, connection, MTU, protocol version, handshake, and each
control request with its result. A failing step ends the command with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..kernel.errors import ConfigurationError, DeviceOsError, FwSimError
from .common import seed_arg

EXIT_FAILED = 1
#: The access point next to the --in-process device.
IN_PROCESS_SSID = "HomeNet"
IN_PROCESS_PASSWORD = "home-pass-1"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ble", help="BLE setup of a device (scan, provision)",
                            description="Act as a phone's BLE setup: find devices "
                            "advertising Particle's control service and provision one over "
                            "the encrypted control channel.")
    cmds = parser.add_subparsers(dest="ble_command", metavar="SUBCOMMAND")
    cmds.required = True
    scan = cmds.add_parser("scan", help="list devices in BLE setup",
                           description="Scan for devices advertising the control service.")
    _where(scan)
    scan.add_argument("--for", dest="duration", type=float, default=2.0, metavar="SECONDS",
                      help="how long to scan (default 2 s)")
    scan.set_defaults(handler=_scan)
    provision = cmds.add_parser(
        "provision", help="handshake, then Wi-Fi credentials and claim code",
        description="Connect to a device, run the EC-JPAKE handshake with its mobile secret, "
        "then send join_new_network, set_claim_code, is_claimed and stop_listening.")
    _where(provision)
    provision.add_argument("--secret", required=True,
                           help="the device's 15-character mobile secret")
    provision.add_argument("--name", help="the advertised name (P2-XXXXXX) to connect to")
    provision.add_argument("--address", help="the BLE address to connect to")
    provision.add_argument("--ssid", help="Wi-Fi network to join (join_new_network)")
    provision.add_argument("--password", default=None, help="Wi-Fi password")
    provision.add_argument("--claim-code", help="claim code to store (set_claim_code)")
    provision.add_argument("--setup-done", action="store_true",
                           help="also mark setup done (set_device_setup_done)")
    provision.add_argument("--no-stop-listening", action="store_true",
                           help="do not leave listening mode at the end")
    provision.add_argument("--scan-for", type=float, default=2.0, metavar="SECONDS",
                           help="how long to scan for the device (default 2 s)")
    provision.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                           help="handshake and request timeout (default 30 s)")
    provision.add_argument("--run-after", type=float, default=30.0, metavar="SECONDS",
                           help="--in-process: virtual seconds to run the device afterwards "
                           "(default 30)")
    provision.set_defaults(handler=_provision)


def _where(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--hci", metavar="TRANSPORT",
                       help="bumble HCI transport of the central, e.g. tcp-client:127.0.0.1:"
                       "19001 for `fwsim serve --ble bumble:tcp-server:127.0.0.1:19001`")
    group.add_argument("--os-bluetooth", action="store_true",
                       help="use the host's Bluetooth (bleak's platform backend)")
    group.add_argument("--in-process", action="store_true",
                       help="a simulated P2 in this process (virtual air, virtual time), "
                       "near the access point HomeNet / home-pass-1")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="--in-process: world seed (default 0)")
    parser.add_argument("--device-secret", metavar="SECRET",
                        help="--in-process: the simulated device's mobile secret (default: "
                        "--secret, or derived from the seed)")


@dataclass
class _Where:
    """The bleak backends to use and how to wait (virtual or wall-clock time)."""

    scanner: Any = None
    client: Any = None
    bridge: Any = None
    close: Callable[[], Awaitable[None]] | None = None
    world: Any = None
    device: Any = None
    cloud: Any = None
    notes: list[str] = field(default_factory=list)


def _in_process(args: argparse.Namespace) -> _Where:
    from transports.ble.bleak_backend import SimulatedBle
    from transports.ble.provisioning import attach_ble

    from ..system import AccessPoint
    from ..system.radio import WifiSecurity
    from ..testbed import CloudSpec, DeviceSpec, Testbed, TestbedSpec
    from ..testbed.adapters import surface_for

    secret = args.device_secret or getattr(args, "secret", None)
    try:
        testbed = Testbed(TestbedSpec(
            seed=args.seed, cloud=CloudSpec("particle"), trace_memory_limit=20_000,
            access_points=(AccessPoint(IN_PROCESS_SSID, IN_PROCESS_PASSWORD,
                                       security=WifiSecurity.WPA2_PSK),),
            devices=(DeviceSpec("dev", profile="p2", mobile_secret=secret),)))
    except FwSimError as exc:
        raise ConfigurationError(f"--in-process: {exc}") from None
    device = testbed.device
    attach_ble(surface_for(device))
    device.power_on()
    testbed.run_for(1.0)
    sim = SimulatedBle(testbed.world)
    return _Where(sim.scanner_backend, sim.client_backend, sim.bridge, sim.bridge.aclose,
                  testbed.world, device, testbed.cloud)


async def _open(args: argparse.Namespace) -> _Where:
    if args.in_process:
        return _in_process(args)
    if args.os_bluetooth:
        _check_bluez()
        return _Where()
    if not args.hci:
        raise ConfigurationError("say where the device is: --hci TRANSPORT (a device served "
                                 "by `fwsim serve --ble bumble:tcp-server:...`), "
                                 "--os-bluetooth or --in-process")
    try:
        from transports.ble.bumble_central import BumbleCentral
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(f"--hci needs bumble (install fwsim[bumble]): {exc}") from None
    try:
        central = await BumbleCentral.open(args.hci)
    except Exception as exc:
        raise ConfigurationError(f"cannot open HCI transport {args.hci!r}: {exc}") from None
    return _Where(central.scanner_backend, central.client_backend, None, central.close)


def _check_bluez() -> None:
    """``--os-bluetooth`` goes through bleak's BlueZ backend, which needs the D-Bus system bus
    (and bluetoothd behind it): say so in one line instead of failing deep inside bleak."""
    import os

    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    path = (address.split("unix:path=", 1)[1].split(",", 1)[0] if "unix:path=" in address
            else "/run/dbus/system_bus_socket")
    if not os.path.exists(path):
        raise ConfigurationError(
            f"--os-bluetooth needs BlueZ: no D-Bus system bus at {path} (start dbus and "
            "bluetoothd, or use --hci with `fwsim serve --ble ...`, or --in-process)")


def _run(coroutine: Awaitable[int]) -> int:
    async def main() -> int:
        return await coroutine

    return asyncio.run(main())


# -- scan --------------------------------------------------------------------------------------


def _scan(args: argparse.Namespace) -> int:
    return _run(_scan_async(args))


async def _scan_async(args: argparse.Namespace) -> int:
    from transports.ble.client import scan_for_devices

    where = await _open(args)
    try:
        found = await scan_for_devices(args.duration, backend=where.scanner, bridge=where.bridge)
    finally:
        if where.close is not None:
            await where.close()
    for entry in found:
        print(entry.describe())
    if not found:
        print("no device found", file=sys.stderr)
    return 0


# -- provision ---------------------------------------------------------------------------------


def _provision(args: argparse.Namespace) -> int:
    return _run(_provision_async(args))


def _say(text: str) -> None:
    print(text, flush=True)


async def _provision_async(args: argparse.Namespace) -> int:
    from transports.ble.client import ProvisioningClient, scan_for_devices

    where = await _open(args)
    try:
        _say(f"scanning for {args.scan_for:g} s")
        found = await scan_for_devices(args.scan_for, backend=where.scanner, bridge=where.bridge)
        target = _choose(found, args.name, args.address)
        _say(f"found {target.describe()}")
        client = ProvisioningClient.for_address(
            target.ble_device, args.secret, backend=where.client, bridge=where.bridge,
            handshake_timeout_s=args.timeout, request_timeout_s=args.timeout)
        client.on_step = _say
        status = 0
        try:
            await client.open()
            status = await _requests(client, args)
        finally:
            await client.close()
            _say("disconnected")
        if where.world is not None and status == 0:
            await _after(where, args.run_after)
        return status
    except FwSimError as exc:
        raise _one_line(exc) from None
    except Exception as exc:
        from bleak.exc import BleakError

        if isinstance(exc, BleakError | TimeoutError):
            raise _one_line(exc) from None
        raise
    finally:
        if where.close is not None:
            await where.close()


def _one_line(exc: BaseException) -> FwSimError:
    return ConfigurationError(f"BLE provisioning failed: {exc}") if not isinstance(
        exc, FwSimError) else exc


def _choose(found: list[Any], name: str | None, address: str | None) -> Any:
    candidates = [entry for entry in found
                  if (name is None or entry.name == name)
                  and (address is None or entry.address.upper() == address.upper())]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        wanted = name or address or "a device"
        seen = ", ".join(entry.name or entry.address for entry in found) or "nothing"
        raise ConfigurationError(f"{wanted} not found (seen: {seen})")
    names = ", ".join(entry.name or entry.address for entry in candidates)
    raise ConfigurationError(f"several devices found ({names}); choose one with --name")


async def _requests(client: Any, args: argparse.Namespace) -> int:
    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    if args.ssid:
        steps.append((f"join_new_network {args.ssid}",
                      lambda: client.join_new_network(args.ssid, args.password)))
    if args.claim_code:
        steps.append(("set_claim_code", lambda: client.set_claim_code(args.claim_code)))
        steps.append(("is_claimed", client.is_claimed))
    if args.setup_done:
        steps.append(("set_device_setup_done", lambda: client.set_device_setup_done(True)))
    if not args.no_stop_listening:
        steps.append(("stop_listening", client.stop_listening))
    for label, action in steps:
        try:
            value = await action()
        except DeviceOsError as exc:
            _say(f"{label}: failed: {exc}")
            return EXIT_FAILED
        _say(f"{label}: " + ("ok" if value is None else ("yes" if value is True else
                                                          "no" if value is False else
                                                          str(value))))
    return 0


async def _after(where: _Where, seconds: float) -> None:
    if seconds <= 0:
        return
    await where.bridge.sleep(seconds)
    device = where.device
    _say(f"device after {seconds:g} more virtual seconds: cloud "
         f"{'connected' if device.cloud_connected else 'not connected'}")
    for line in device.log_lines():
        if "claim" in line.lower():
            _say(f"  {line}")
    owner = where.cloud.owner_of(device.device_id)
    if owner is not None:
        _say(f"  cloud: owner {owner}")
