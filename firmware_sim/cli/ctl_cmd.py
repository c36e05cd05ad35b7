"""``fwsim ctl ...``: steer a running ``fwsim up`` (or ``fwsim cloud serve --admin``) from
outside, through its guarded ``/fwsim`` admin routes.

The server's URL and admin token come from ``--url`` / ``--token`` or ``$FWSIM_URL`` /
``$FWSIM_ADMIN_TOKEN`` (``fwsim up`` prints both). A device is named by its name (``dev1``) or its
id. Against ``fwsim cloud serve`` (a cloud without simulated devices) ``drop-session``,
``key-change``, ``state``, ``call`` and ``get`` work by device id; the device operations need
``fwsim up``. ``--json`` prints the server's decoded answer as one JSON document. Standard
library only (no extra needed).

Every argument must be text: one that is not (bytes that are not UTF-8 reach Python as lone
surrogates) is a one-line error before anything is sent, as is a token that cannot travel in an
HTTP header. A 401 says whether a token was sent (and refused) or none was.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..kernel.errors import FwSimError

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 15.0
#: ``call`` / ``get`` wait for the device (the cloud gives it 20 s of virtual time)
CALL_TIMEOUT_S = 60.0


class CtlError(FwSimError):
    """The server refused, or could not be reached: one line."""


def _add_common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--url``, ``--token``, ``--json``: on ``fwsim ctl`` itself with their defaults, and on
    every subcommand without (``argparse.SUPPRESS``), so that they may come before or after the
    subcommand (``fwsim ctl --url U devices`` and ``fwsim ctl devices --url U``)."""
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--url", default=default(os.environ.get("FWSIM_URL", DEFAULT_URL)),
                        help=f"the server's REST API (default $FWSIM_URL or {DEFAULT_URL})")
    parser.add_argument("--token", default=default(os.environ.get("FWSIM_ADMIN_TOKEN")),
                        help="the admin token printed at start (default $FWSIM_ADMIN_TOKEN)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print the answer as JSON")


def _loss(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid loss {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("loss must be between 0 and 1")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid milliseconds {text!r}") from None
    if not 0.0 <= value <= 60_000:
        raise argparse.ArgumentTypeError("latency must be between 0 and 60000 ms")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}") from None
    if not 0.0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "ctl", help="steer a running fwsim up / cloud serve (sessions, power, network...)",
        description="Steer the devices and the cloud of a running `fwsim up` (or `fwsim cloud "
        "serve --admin`) through its admin routes: URL and token from --url/--token or "
        "FWSIM_URL/FWSIM_ADMIN_TOKEN, as `fwsim up` prints them.")
    _add_common(parser, defaults=True)
    cmds = parser.add_subparsers(dest="ctl_command", metavar="SUBCOMMAND")
    cmds.required = True
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, defaults=False)

    def command(name: str, help_text: str, device: bool = True) -> argparse.ArgumentParser:
        cmd = cmds.add_parser(name, help=help_text, description=help_text, parents=[common])
        if device:
            cmd.add_argument("device", help="device name (dev1) or id")
        cmd.set_defaults(handler=_run)
        return cmd

    command("devices", "list the devices and their state", device=False)
    command("state", "a device's state: cloud connection, session counts, claim code, owner")
    drop = command("drop-session", "the cloud forgets the device's session (its next message "
                   "gets a RST, then a full handshake)")
    drop.add_argument("--reconnect", action="store_true",
                      help="then have the device reconnect now (a network cut and restore) "
                      "instead of at its next keepalive")
    command("key-change", "the cloud sends the device a key change message: it discards its "
            "session (log: Received a key change message; discarding session) and reconnects "
            "with a full handshake")
    cycle = command("power-cycle", "cut the device's power and restore it")
    cycle.add_argument("--off", type=_seconds, default=1.0, metavar="SECONDS",
                       help="how long the power stays off (default 1)")
    command("reset", "reset the device (System.reset())")
    listen = command("listening", "enter or leave listening mode")
    listen.add_argument("mode", choices=["on", "off"])
    network = command("network", "cut or restore the device's network")
    network.add_argument("mode", choices=["down", "up"])
    link = command("link", "set the loss and/or latency of the device's cloud link")
    link.add_argument("--loss", type=_loss, metavar="P", help="datagram loss, 0..1")
    link.add_argument("--latency", type=_milliseconds, metavar="MS", help="one-way latency")
    publish = command("publish", "publish an event as the device's application")
    publish.add_argument("name", help="event name")
    publish.add_argument("data", nargs="?", default="", help="event data")
    publish.add_argument("--public", action="store_true", help="a public event (default private)")
    claim = command("set-claim-code", "set a claim code as a phone would (SET_CLAIM_CODE control "
                    "request)")
    claim.add_argument("code")
    call = command("call", "call a function the device's firmware registered "
                   "(Particle.function), as its owner would; prints the return value")
    call.add_argument("function")
    call.add_argument("argument", nargs="?", default="", help="the function's argument")
    get = command("get", "read a variable the device's firmware registered (Particle.variable)")
    get.add_argument("variable")


# -- HTTP ----------------------------------------------------------------------------------------


def _checked_text(what: str, value: str) -> str:
    """``value`` if it is text (encodes as UTF-8), else a one-line error naming ``what``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:  # the bytes given on the command line (Python keeps them as lone surrogates)
            shown = repr(value.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            shown = ascii(value)
        raise CtlError(f"{what} is not valid text: {shown} (bytes that are not UTF-8, or a "
                       "lone surrogate)") from None
    return value


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse, in one line, any argument that is not text and a token that cannot be sent."""
    for key, what in (("url", "--url"), ("token", "--token"), ("device", "device"),
                      ("function", "function"), ("argument", "argument"),
                      ("variable", "variable"), ("name", "event name"), ("data", "event data"),
                      ("code", "claim code")):
        value = getattr(args, key, None)
        if isinstance(value, str):
            _checked_text(what, value)
    token = getattr(args, "token", None)
    if token and not (token.isascii() and token.isprintable()):
        raise CtlError("--token must be printable ASCII (the admin token printed by `fwsim up`)")


def _request(args: argparse.Namespace, method: str, path: str,
             body: dict[str, Any] | None = None, *,
             timeout_s: float = TIMEOUT_S) -> tuple[int, Any]:
    base = str(args.url).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CtlError(f"invalid --url {args.url!r}: expected http://HOST:PORT")
    headers = {"Accept": "application/json"}
    if args.token:
        headers["X-Fwsim-Admin-Token"] = args.token
    data = None
    if method != "GET":
        data = json.dumps(body or {}).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise _unauthorized(token_sent=bool(args.token)) from None
        return exc.code, _decode(exc.read())
    except UnicodeError as exc:  # a URL the HTTP client cannot encode
        raise CtlError(f"invalid --url {args.url!r}: {exc}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CtlError(f"cannot reach {base}: {reason} (is `fwsim up` running? --url or "
                       "FWSIM_URL)") from None


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return raw.decode("utf-8", "replace")


def _unauthorized(*, token_sent: bool) -> CtlError:
    """A 401: a token was sent and refused, or none was sent."""
    if token_sent:
        return CtlError("401: the admin token given was refused: the server wants its admin "
                        "token, the one `fwsim up` printed (--token or FWSIM_ADMIN_TOKEN)")
    return CtlError("the server wants its admin token: --token or FWSIM_ADMIN_TOKEN (printed "
                    "by `fwsim up`); none was given")


def _check(status: int, body: Any) -> Any:
    if status >= 400:
        message = body.get("error_description") or body.get("error") if isinstance(
            body, dict) else body
        raise CtlError(f"{status}: {message}")
    return body


def _has_devices(args: argparse.Namespace) -> bool:
    """Does the server have simulated devices (``fwsim up``) or is it a bare cloud?"""
    status, body = _request(args, "GET", "/fwsim/devices")
    if status == 404 and isinstance(body, dict) and body.get("error") == "Not Found":
        status, body = _request(args, "GET", "/fwsim/sessions")
        if status == 404:
            raise CtlError("this server has no /fwsim admin namespace: start it with `fwsim up` "
                           "or `fwsim cloud serve --admin`")
        _check(status, body)
        return False
    _check(status, body)
    return True


def _quote(text: str) -> str:
    return urllib.parse.quote(_checked_text("argument", text), safe="")


# -- commands ------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    command = args.ctl_command
    _check_arguments(args)
    if not _has_devices(args):
        return _cloud_only(args)
    if command == "devices":
        body = _check(*_request(args, "GET", "/fwsim/devices"))
        return _print(args, body, _devices_text(body))
    device = _quote(args.device)
    path = f"/fwsim/devices/{device}"
    if command in ("call", "get"):
        device_id = _check(*_request(args, "GET", path))["device_id"]
        return _call_or_get(args, device_id, args.device)
    if command == "state":
        body = _check(*_request(args, "GET", path))
        return _print(args, body, _state_text(body))
    payload: dict[str, Any] = {}
    action = command
    if command == "drop-session":
        body = _check(*_request(args, "POST", f"{path}/drop-session"))
        if args.reconnect:
            _check(*_request(args, "POST", f"{path}/network", {"up": False}))
            _check(*_request(args, "POST", f"{path}/network", {"up": True}))
        text = (f"{body['device']}: session forgotten by the cloud; "
                + ("the device reconnects now" if args.reconnect else
                   "the device notices at its next message (keepalive, publish, reconnect)")
                if body.get("dropped") else f"{body['device']}: the cloud had no session")
        return _print(args, body, text)
    if command == "key-change":
        body = _check(*_request(args, "POST", f"{path}/key-change"))
        return _print(args, body, _key_change_text(body["device"], body.get("sent")))
    if command == "power-cycle":
        payload = {"off_s": args.off}
    elif command == "listening":
        payload = {"active": args.mode == "on"}
    elif command == "network":
        payload = {"up": args.mode == "up"}
    elif command == "link":
        if args.loss is None and args.latency is None:
            raise CtlError("give --loss and/or --latency")
        payload = {key: value for key, value in (("loss", args.loss),
                                                 ("latency_ms", args.latency))
                   if value is not None}
    elif command == "publish":
        payload = {"name": args.name, "data": args.data, "private": not args.public}
    elif command == "set-claim-code":
        action, payload = "claim-code", {"code": args.code}
    body = _check(*_request(args, "POST", f"{path}/{action}", payload))
    return _print(args, body, _action_text(command, body, payload))


def _call_or_get(args: argparse.Namespace, device_id: str, label: str) -> int:
    """``call`` / ``get``: the admin form of the public function and variable routes."""
    base = f"/fwsim/devices/{_quote(device_id)}"
    if args.ctl_command == "call":
        body = _check(*_request(args, "POST", f"{base}/functions/{_quote(args.function)}",
                                {"arg": args.argument}, timeout_s=CALL_TIMEOUT_S))
        return _print(args, body, f"{label}: {args.function} returned {body.get('return_value')}")
    body = _check(*_request(args, "GET", f"{base}/variables/{_quote(args.variable)}",
                            timeout_s=CALL_TIMEOUT_S))
    return _print(args, body, f"{label}: {args.variable} = {json.dumps(body.get('result'))}")


def _cloud_only(args: argparse.Namespace) -> int:
    """A cloud without simulated devices: sessions and ownership by device id."""
    command = args.ctl_command
    if command == "devices":  # the cloud's view: every device it knows, by id
        world = _check(*_request(args, "GET", "/fwsim/state"))
        known = [{"id": d.get("id"), "online": d.get("online"), "owner": d.get("owner"),
                  "product_id": d.get("product_id")} for d in world.get("devices", [])]
        body = {"ok": True, "simulated": False, "devices": known}
        lines = ["this server is a cloud without simulated devices (`fwsim cloud serve`); the "
                 "devices it knows:", f"{'id':<26}{'online':<8}owner"]
        lines += [f"{d['id']!s:<26}{('yes' if d['online'] else 'no'):<8}{d['owner'] or '-'}"
                  for d in known]
        return _print(args, body, "\n".join(lines))
    device_id = args.device.lower()
    if command in ("call", "get"):
        return _call_or_get(args, device_id, device_id)
    if command == "drop-session":
        body = _check(*_request(args, "POST", f"/fwsim/sessions/{_quote(device_id)}/forget"))
        text = (f"{device_id}: session forgotten by the cloud" if body.get("dropped")
                else f"{device_id}: the cloud had no session")
        if getattr(args, "reconnect", False):  # the device is in another process
            text += ("; --reconnect needs simulated devices (`fwsim up`): this device notices "
                     "at its next message")
        return _print(args, body, text)
    if command == "key-change":
        body = _check(*_request(args, "POST",
                                f"/fwsim/sessions/{_quote(device_id)}/key-change"))
        return _print(args, body, _key_change_text(device_id, body.get("sent")))
    if command == "state":
        sessions = _check(*_request(args, "GET", "/fwsim/sessions")).get("sessions", [])
        world = _check(*_request(args, "GET", "/fwsim/state"))
        record = next((d for d in world.get("devices", []) if d.get("id") == device_id), None)
        if record is None:
            raise CtlError(f"the cloud knows no device {device_id!r}")
        session = next((s for s in sessions if s.get("device_id") == device_id), None)
        body = {"ok": True, "device_id": device_id, "owner": record.get("owner"),
                "product_id": record.get("product_id"), "online": record.get("online"),
                "cloud_session": None if session is None else {
                    "full_handshakes": session.get("full_handshakes"),
                    "resumes": session.get("resumes")}}
        return _print(args, body, _state_text(body))
    raise CtlError(f"`fwsim ctl {command}` needs simulated devices: this server is a cloud "
                   "without them (`fwsim cloud serve`); use `fwsim up`")


# -- output --------------------------------------------------------------------------------------


def _print(args: argparse.Namespace, body: Any, text: str) -> int:
    if args.json:
        print(json.dumps(body, indent=2, sort_keys=True))
    else:
        print(text)
    ok = not isinstance(body, dict) or body.get("ok", True)
    return 0 if ok else 1


def _owner(body: dict[str, Any]) -> str | None:
    """The owner as people know it (username or e-mail), else the cloud's principal."""
    owner = body.get("owner_name") or body.get("owner")
    return None if owner is None else str(owner)


def _devices_text(body: Any) -> str:
    rows = body.get("devices", []) if isinstance(body, dict) else []
    if not rows:
        return "no devices"
    lines = [f"{'name':<8} {'id':<24} {'profile':<8} {'state':<12} {'cloud name':<12} "
             f"{'sessions':<14} {'claim code':<10} owner"]
    for row in rows:
        sessions = row.get("sessions", {})
        counts = f"full {sessions.get('full', 0)} res {sessions.get('resumed', 0)}"
        lines.append(f"{row.get('name', ''):<8} {row.get('device_id', ''):<24} "
                     f"{row.get('profile', ''):<8} {row.get('state', ''):<12} "
                     f"{row.get('cloud_name') or '-':<12} "
                     f"{counts:<14} "
                     f"{'pending' if row.get('claim_code_pending') else '-':<10} "
                     f"{_owner(row) or '-'}")
    return "\n".join(lines)


def _panic_text(panic: dict[str, Any]) -> str:
    """``hard_fault (code 1): setup() raised KeyError: 'x'; resets in 7.5 s``."""
    text = f"{panic.get('name')} (code {panic.get('code')})"
    why = panic.get("why")
    if isinstance(why, dict):
        text += f": {why.get('where')} raised {why.get('error')}"
    return text + f"; resets itself in {panic.get('resets_in_s')} s (virtual)"


def _state_text(body: dict[str, Any]) -> str:
    lines = []
    shown = dict(body)
    if "owner" in shown:
        shown["owner"] = _owner(body)
    for key in ("name", "device_id", "cloud_name", "profile", "firmware", "state", "panic",
                "boots_in_s", "boot_count", "last_reset_reason", "uptime_ms", "listening",
                "network", "cloud", "sessions", "last_session", "claim_code_pending",
                "claim_code", "claimed_flag", "owner", "product_id", "online", "cloud_session"):
        if key not in shown:
            continue
        value = shown[key]
        if key == "panic":
            if value is None:
                continue
            value = _panic_text(value)
        elif key == "boots_in_s":
            if value is None:
                continue
            value = f"{value} (virtual; a power cycle or reset is under way)"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        label = {"boots_in_s": "boots in s", "uptime_ms": "uptime ms"}.get(
            key, key.replace("_", " "))
        lines.append(f"{label:<19} {'-' if value is None else value}")
    return "\n".join(lines)


def _key_change_text(device: str, sent: Any) -> str:
    return (f"{device}: key change sent; the device discards its session and reconnects with a "
            "full handshake" if sent else
            f"{device}: not sent (the device has no session with the cloud)")


def _action_text(command: str, body: dict[str, Any], sent: dict[str, Any]) -> str:
    """One line about ``command`` done (``sent``: the body the request carried)."""
    device = body.get("device", "")
    if command == "set-claim-code":
        result = body.get("result")
        return (f"{device}: claim code set (result 0)" if result == 0
                else f"{device}: the device refused the claim code (result {result})")
    if command == "publish":
        return (f"{device}: published {body.get('event')}" if body.get("sent")
                else f"{device}: {body.get('event')} not sent (cloud not connected)")
    if command == "link":
        return f"{device}: link loss {body.get('loss')}, latency {body.get('latency_ms')} ms"
    if command == "listening":
        return f"{device}: listening mode {'on' if body.get('listening') else 'off'}"
    if command == "network":
        # the state is Device OS's: "on" is the radio on and not connected to an access point
        state = body.get("network")
        return (f"{device}: network {'restored' if sent.get('up') else 'cut'} (Wi-Fi {state}"
                f"{', no access point' if state == 'on' else ''})")
    if command == "power-cycle":
        return f"{device}: power cut for {body.get('off_s')} s"
    return f"{device}: {command} done"
