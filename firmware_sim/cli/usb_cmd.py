"""``fwsim usb ...``: control requests over USB to a device behind ``fwsim serve --usb-bridge``.

Every subcommand connects to the bridge (``--bridge HOST:PORT``), opens the device the way
particle-usb does (descriptors, firmware version, RESET of stale requests) and sends its
request(s) with particle-usb's pipeline (docs/usb.md).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("usb", help="control requests over USB (through the USB bridge)",
                            description="Talk to a device served with 'fwsim serve "
                            "--usb-bridge PORT' the way particle-usb does.")
    cmds = parser.add_subparsers(dest="usb_command", metavar="SUBCOMMAND")
    cmds.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = cmds.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--bridge", required=True, metavar="HOST:PORT",
                         help="address of the USB bridge (fwsim serve --usb-bridge)")
        if name != "list":
            cmd.add_argument("--device", metavar="ID",
                             help="device id (default: the first device on the bridge)")
        return cmd

    command("list", "list the devices on the bridge").set_defaults(handler=_list)
    command("identify", "device id, firmware version, platform and mode").set_defaults(
        handler=_identify)
    request = command("request", "send one control request and print the result and reply")
    request.add_argument("type", help="request type: a number (0..65535) or a name "
                         "(e.g. GET_DEVICE_ID)")
    request.add_argument("--data", default="", metavar="HEX", help="payload as hex")
    request.set_defaults(handler=_request)
    claim = command("set-claim-code", "set the claim code (SET_CLAIM_CODE, 200)")
    claim.add_argument("code")
    claim.set_defaults(handler=_set_claim_code)
    command("is-claimed", "IS_CLAIMED (201)").set_defaults(handler=_is_claimed)
    command("start-listening", "enter listening mode (START_LISTENING, 70)").set_defaults(
        handler=_start_listening)
    command("stop-listening", "leave listening mode (STOP_LISTENING, 71)").set_defaults(
        handler=_stop_listening)
    join = command("join-network", "WIFI_JOIN_NEW_NETWORK (500)")
    join.add_argument("ssid")
    join.add_argument("--password", help="omit for an open network")
    join.set_defaults(handler=_join_network)
    command("reset", "reset the device (RESET, 40)").set_defaults(handler=_reset)


def _run(args: argparse.Namespace, body: Callable[[Any], Awaitable[None]]) -> int:
    from transports.usb import BridgeUsbClient

    async def main() -> None:
        client = await BridgeUsbClient.connect(args.bridge, args.device)
        try:
            await body(client)
        finally:
            await client.aclose()

    asyncio.run(main())
    return 0


def _list(args: argparse.Namespace) -> int:
    from transports.usb import UsbBridgeConnection, platform_for_usb_ids

    async def main() -> list[dict[str, Any]]:
        connection = await UsbBridgeConnection.connect(args.bridge)
        try:
            return await connection.list_devices()
        finally:
            await connection.close()

    devices = asyncio.run(main())
    if not devices:
        print("No devices found.")
    for device in devices:
        vid, pid = int(device.get("vendorId", 0)), int(device.get("productId", 0))
        found = platform_for_usb_ids(vid, pid)
        platform = found[0].name if found else "unknown"
        print(f"{str(device.get('serialNumber', '')).lower()}  {platform:<8}  "
              f"{vid:04x}:{pid:04x}  {device.get('name', '')}")
    return 0


def _identify(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        mode = await client.get_device_mode()
        usb = client.usb
        platform = usb.platform.name if usb.platform else "unknown"
        print(f"Your device id is {usb.device_id}")
        print(f"Your system firmware version is {usb.firmware_version}")
        print(f"Platform: {platform}")
        print(f"Mode: {getattr(mode, 'name', mode)}")

    return _run(args, body)


def _request(args: argparse.Namespace) -> int:
    from control_requests.types import parse_request_type
    from firmware_sim.kernel.errors import UsageError, result_name

    text = args.type.strip()
    request_type = int(text, 0) if text.isdigit() or text.lower().startswith("0x") else int(
        parse_request_type(text))
    try:
        payload = bytes.fromhex(args.data)
    except ValueError:
        raise UsageError(f"--data is not hex: {args.data!r}") from None

    async def body(client: Any) -> None:
        reply = await client.send_raw(request_type, payload)
        print(f"result {reply.result} ({result_name(reply.result)})")
        print(f"reply {reply.data.hex() or '(empty)'}")

    return _run(args, body)


def _set_claim_code(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.set_claim_code(args.code)
        print("Claim code set.")

    return _run(args, body)


def _is_claimed(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        print("claimed" if await client.is_claimed() else "not claimed")

    return _run(args, body)


def _start_listening(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.start_listening()
        print("Done.")

    return _run(args, body)


def _stop_listening(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.stop_listening()
        print("Done.")

    return _run(args, body)


def _join_network(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.join_new_network(args.ssid, args.password)
        print("Done.")

    return _run(args, body)


def _reset(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.reset()
        print("Done.")

    return _run(args, body)
