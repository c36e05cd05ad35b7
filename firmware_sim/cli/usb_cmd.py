"""``fwsim usb ...``: control requests over USB to a device behind ``fwsim serve --usb-bridge``.

Every subcommand connects to the bridge (``--bridge HOST:PORT``), opens the device the way
particle-usb does (descriptors, firmware version, RESET of stale requests) and sends its
request(s) with particle-usb's pipeline (docs/usb.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
        if name != "request":
            cmd.add_argument("--json", action="store_true",
                             help="print the decoded answer as JSON")
        if name != "list":
            cmd.add_argument("--device", metavar="ID",
                             help="device id (default: the first device on the bridge)")
        return cmd

    command("list", "list the devices on the bridge").set_defaults(handler=_list)
    command("identify", "device id, firmware version, platform and mode").set_defaults(
        handler=_identify)
    request = command("request", "send one control request and print the result and reply")
    request.add_argument("type", help="request type: a number (0..65535) or a name "
                         "(e.g. DEVICE_ID; `fwsim control list` lists them)")
    request.add_argument("--json", action="store_true",
                         help="print the result and the decoded reply as JSON")
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
    if args.json:
        rows = []
        for device in devices:
            vid, pid = int(device.get("vendorId", 0)), int(device.get("productId", 0))
            found = platform_for_usb_ids(vid, pid)
            rows.append({"id": str(device.get("serialNumber", "")).lower(),
                         "platform": found[0].name if found else None,
                         "vendor_id": vid, "product_id": pid, "name": device.get("name", "")})
        print(json.dumps({"devices": rows}, sort_keys=True))
        return 0
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
        if args.json:
            print(json.dumps({"device_id": usb.device_id, "firmware_version":
                              usb.firmware_version, "platform": platform,
                              "mode": getattr(mode, "name", str(mode))}, sort_keys=True))
            return
        print(f"Your device id is {usb.device_id}")
        print(f"Your system firmware version is {usb.firmware_version}")
        print(f"Platform: {platform}")
        print(f"Mode: {getattr(mode, 'name', mode)}")

    return _run(args, body)


def _request(args: argparse.Namespace) -> int:
    from firmware_sim.kernel.errors import UsageError, result_name

    text = args.type.strip()
    if text.isdigit() or text.lower().startswith("0x"):
        try:
            request_type = int(text, 0)
        except ValueError:
            raise UsageError(f"invalid request type {text!r}") from None
        if not 0 <= request_type <= 0xFFFF:
            raise UsageError(f"Invalid request type {request_type} (0..65535)")
    else:
        request_type = _request_type_by_name(text)
    try:
        payload = bytes.fromhex(args.data)
    except ValueError:
        raise UsageError(f"--data is not hex: {args.data!r}") from None

    async def body(client: Any) -> None:
        reply = await client.send_raw(request_type, payload)
        decoded = decode_reply(request_type, reply.data)
        if args.json:
            print(json.dumps({"type": request_type, "result": reply.result,
                              "result_name": result_name(reply.result),
                              "reply_hex": reply.data.hex(), "reply": decoded},
                             sort_keys=True))
            return
        print(f"result {reply.result} ({result_name(reply.result)})")
        print(f"reply {reply.data.hex() or '(empty)'}")
        if decoded:
            print(f"decoded {json.dumps(decoded, sort_keys=True)}")

    return _run(args, body)


def _request_type_by_name(text: str) -> int:
    """A request type by its name; a one-line error with the closest names otherwise."""
    import difflib

    from control_requests.types import RequestType, parse_request_type
    from firmware_sim.kernel.errors import UsageError

    try:
        return int(parse_request_type(text))
    except Exception:
        names = [t.name for t in RequestType]
        wanted = text.upper().replace("-", "_")
        close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
        close += [n for n in names if wanted.startswith("GET_") and n == wanted[4:]]
        hint = f" (did you mean {', '.join(dict.fromkeys(close))}?)" if close else ""
        raise UsageError(f"unknown control request type name: {text!r}{hint}; `fwsim "
                         "control list` lists them") from None


def decode_reply(request_type: int, data: bytes) -> dict[str, Any] | None:
    """The reply's protobuf message as a dict (``control_requests.codec``), None when fwsim
    has no message for the type or the bytes do not parse."""
    from google.protobuf.json_format import MessageToDict

    from control_requests import codec

    if codec.message_pair(request_type) is None:
        return None
    try:
        message = codec.decode_reply(request_type, data)
    except Exception:
        return None
    decoded: dict[str, Any] = MessageToDict(message, preserving_proto_field_name=True)
    return decoded


def _set_claim_code(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.set_claim_code(args.code)
        _say(args, "Claim code set.", {"ok": True, "request": "SET_CLAIM_CODE"})

    return _run(args, body)


def _is_claimed(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        claimed = await client.is_claimed()
        _say(args, "claimed" if claimed else "not claimed", {"claimed": claimed})

    return _run(args, body)


def _start_listening(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.start_listening()
        _say(args, "Done.", {"ok": True, "request": "START_LISTENING"})

    return _run(args, body)


def _stop_listening(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.stop_listening()
        _say(args, "Done.", {"ok": True, "request": "STOP_LISTENING"})

    return _run(args, body)


def _join_network(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.join_new_network(args.ssid, args.password)
        _say(args, "Done.", {"ok": True, "request": "WIFI_JOIN_NEW_NETWORK"})

    return _run(args, body)


def _reset(args: argparse.Namespace) -> int:
    async def body(client: Any) -> None:
        await client.reset()
        _say(args, "Done.", {"ok": True, "request": "RESET"})

    return _run(args, body)


def _say(args: argparse.Namespace, text: str, answer: dict[str, Any]) -> None:
    print(json.dumps(answer, sort_keys=True) if getattr(args, "json", False) else text)
