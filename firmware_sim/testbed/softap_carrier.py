"""The ``softap`` carrier: a setup app provisioning a Gen2 Photon over its SoftAP, on the world
clock.

How this works
--------------
:class:`SoftApProvisioning` is what ``@particle/softap-setup`` (and the Particle app built on it)
does, sans-IO: every command is one client connection to the device's in-process SoftAP service
(``transports.softap.softap_for``), opened with ``SoftAp.open_tcp`` (``<name>\\n<len>\\n\\n<json>``,
the library's default) or ``SoftAp.open_http`` (GET, or a POST of the JSON as
``application/x-www-form-urlencoded``), and the reply is read when the device closes the
connection. The requests and replies are built and read with the project's SoftAP client code
(``transports.softap``: ``encode_request``, ``parse_reply``, ``encrypt_password``,
``load_public_key``, ``security_value``), so no socket and no real time is involved.

The steps of the ``Provisioning`` protocol, in softap-setup's calls:

* the first command after the SoftAP comes up is preceded by the library's throw-away
  ``device-id`` "warm-up"; the device key is fetched (``public-key``) once per SoftAP session;
* ``set_claim_code`` - ``set`` ``{"k":"cc","v":code}``;
* ``join_new_network`` - ``scan-ap`` (the network's ``sec`` and ``ch`` come from the scan, as the
  user picks it from the app's list), ``public-key``, ``configure-ap`` with the password
  RSA-encrypted with the device key (PKCS#1 v1.5, hex), ``connect-ap``; then, as the app waits
  for the device to come online, it looks every ``poll_s`` whether the device has joined that
  network: 0 once it has, ``TIMEOUT`` (-160) when it has not within ``join_timeout_s`` (a wrong
  password the SoftAP cannot check: the device only finds out when it joins);
* ``stop_listening`` - ``connect-ap`` (the only SoftAP command that ends listening mode);
* ``start_listening`` - ``NOT_SUPPORTED`` (-120): over SoftAP the phone cannot make a device
  listen (a person holds SETUP).

Results: a step answers the device's ``r`` when a command is refused (``set``: -1 or the claim
code's result; ``configure-ap``: -2 not in range, -3 bad SSID, -4 bad key length, or the
mbedTLS code of a failed decryption), ``INVALID_STATE`` (-210) when the device's SoftAP is not up
(the device is off or not in listening mode: the phone cannot reach the access point), ``IO``
(-220) when the device closed a connection without an answer, and ``BAD_DATA`` (-280) for a
reply it cannot read. Only the Photon profile has a SoftAP: building the carrier for another
device raises :class:`~firmware_sim.kernel.errors.ConfigurationError`.

The password's PKCS#1 v1.5 padding is random (as node-rsa's), but neither the ciphertext nor
anything derived from it enters the trace (the service records the body's size, a constant), so
the same seed still gives a byte-identical trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
from cryptography.hazmat.primitives.asymmetric import rsa

from control_requests.steps import Done
from transports.softap import (
    HttpSession,
    SoftAp,
    SoftApError,
    TcpSession,
    encode_request,
    encrypt_password,
    load_public_key,
    security_value,
    softap_for,
)
from transports.softap.client import parse_reply, request_body

from ..kernel.errors import ConfigurationError, ResultCode
from ..system.device import Device
from .adapters import surface_for

__all__ = ["SoftApPhoneOptions", "SoftApProvisioning", "softap_http_provisioning"]

#: softap-setup's address of the device (for the HTTP ``Host`` header)
DEVICE_HOST = "192.168.0.1"
#: a reply: the JSON object, or None with why there is none
Reply = Callable[[dict[str, Any] | None, int, str], None]


@dataclass(frozen=True)
class SoftApPhoneOptions:
    """Knobs of the SoftAP phone."""

    #: ``tcp`` (port 5609, softap-setup's default) or ``http`` (port 80)
    protocol: str = "tcp"
    #: how long ``join_new_network`` waits for the device to come online (join the network it
    #: configured, or reach the cloud)
    join_timeout_s: float = 60.0
    #: how often it looks whether the device is online
    poll_s: float = 1.0
    #: softap-setup sends a throw-away ``device-id`` before its first command
    warm_up: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in ("tcp", "http"):
            raise ConfigurationError(f"SoftAP protocol must be 'tcp' or 'http', not "
                                     f"{self.protocol!r}")
        if self.join_timeout_s < 0 or self.poll_s <= 0:
            raise ConfigurationError("join_timeout_s must be >= 0 and poll_s > 0")


class SoftApProvisioning:
    """Provisioning through the device's SoftAP, as a phone running softap-setup does."""

    def __init__(self, device: Device, options: SoftApPhoneOptions | None = None) -> None:
        self.device = device
        self.world = device.world
        self.options = options or SoftApPhoneOptions()
        self.softap: SoftAp = softap_for(surface_for(device))  # not a Photon: ConfigurationError
        self.tracer = self.world.trace.bind("phone", "softap_client")
        self._public_key: rsa.RSAPublicKey | None = None
        self._warmed_up = False
        self.softap.on_change(self._softap_changed)

    def _softap_changed(self, up: bool) -> None:
        # a new SoftAP session: the app connects to the access point again, from scratch
        self._public_key = None
        self._warmed_up = False

    # -- the Provisioning protocol -------------------------------------------------------------

    def set_claim_code(self, code: str, done: Done) -> None:
        self._session("set_claim_code", lambda: self._result(
            "set", {"k": "cc", "v": code}, done), done)

    def join_new_network(self, ssid: str, password: str, done: Done) -> None:
        def scanned(reply: dict[str, Any]) -> None:
            found = next((scan for scan in reply.get("scans", [])
                          if isinstance(scan, dict) and scan.get("ssid") == ssid), None)
            if found is not None:
                security, channel = int(found.get("sec", 0)), int(found.get("ch", 0))
            else:  # typed in by hand: the device looks for it itself (-2 when not in range)
                security = security_value("wpa2_aes") if password else 0
                channel = 0
            self._with_key(lambda key: configure(key, security, channel), done)

        def configure(key: rsa.RSAPublicKey, security: int, channel: int) -> None:
            config: dict[str, Any] = {"idx": 0, "ssid": ssid, "sec": security, "ch": channel}
            if password:
                config["pwd"] = encrypt_password(key, password)
            self._result("configure-ap", config, lambda result: (
                connect() if result == 0 else done(result)))

        def connect() -> None:
            self._result("connect-ap", {"idx": 0}, lambda result: (
                self._await_join(ssid, done) if result == 0 else done(result)))

        self._session("join_new_network", lambda: self._command(
            "scan-ap", None, self._needing_reply("scan-ap", scanned, done)), done)

    def start_listening(self, done: Done) -> None:
        self.tracer.emit("softap_phone.not_supported", step="start_listening",
                         reason="a SoftAP phone cannot make a device listen (hold SETUP)")
        done(int(ResultCode.NOT_SUPPORTED))

    def stop_listening(self, done: Done) -> None:
        self._session("stop_listening", lambda: self._result("connect-ap", {"idx": 0}, done),
                      done)

    # -- steps ---------------------------------------------------------------------------------

    def _session(self, step: str, then: Callable[[], None], done: Done) -> None:
        """Run ``then`` once the phone reaches the device's SoftAP (after the warm-up)."""
        if not self.softap.active:
            self.tracer.emit("softap_phone.unreachable", step=step,
                             reason="the device's SoftAP is not up (not in listening mode)")
            done(int(ResultCode.INVALID_STATE))
            return
        if self._warmed_up or not self.options.warm_up:
            then()
            return

        def warmed(reply: dict[str, Any] | None, failure: int, reason: str) -> None:
            self._warmed_up = True  # softap-setup ignores the warm-up's outcome
            then()

        self._command("device-id", None, warmed)

    def _with_key(self, then: Callable[[rsa.RSAPublicKey], None], done: Done) -> None:
        if self._public_key is not None:
            then(self._public_key)
            return

        def got(reply: dict[str, Any]) -> None:
            if reply.get("r") != 0:
                self._failed("public-key", "the device refused", int(reply.get("r", -1)), done)
                return
            try:
                key = load_public_key(bytes.fromhex(str(reply.get("b", ""))))
            except ValueError:
                key = None
            if key is None:
                self._failed("public-key", "not an RSA public key", int(ResultCode.BAD_DATA),
                             done)
                return
            self._public_key = key
            then(key)

        self._command("public-key", None, self._needing_reply("public-key", got, done))

    def _result(self, name: str, body: dict[str, Any], done: Done) -> None:
        """Send a command answered by ``{"r":n}``; ``done(n)``."""
        def answered(reply: dict[str, Any]) -> None:
            result = reply.get("r")
            if not isinstance(result, int):
                self._failed(name, f"no result in {reply!r}"[:120], int(ResultCode.BAD_DATA),
                             done)
                return
            if result != 0:
                self._failed(name, "the device refused", result, done)
                return
            done(0)

        self._command(name, body, self._needing_reply(name, answered, done))

    def _needing_reply(self, name: str, then: Callable[[dict[str, Any]], None],
                       done: Done) -> Reply:
        def reply(value: dict[str, Any] | None, failure: int, reason: str) -> None:
            if value is None:
                self._failed(name, reason, failure, done)
            else:
                then(value)

        return reply

    def _failed(self, name: str, reason: str, result: int, done: Done) -> None:
        self.tracer.emit("softap_phone.failed", command=name, reason=reason, result=result)
        done(result)

    def _await_join(self, ssid: str, done: Done) -> None:
        """Wait, as the setup app does after ``connect-ap``, for the device to come online: it
        joined ``ssid``, or it reached the cloud at all (over another network it knows, say:
        the app asks the cloud whether the device is online, not which network it used)."""
        started = self.world.now

        def joined() -> bool:
            if not self.device.running:
                return False
            network = self.device.network
            on_ssid = (network is not None and network.ready and network.current is not None
                       and network.current.ssid == ssid)
            return on_ssid or self.device.cloud.connected

        def look() -> None:
            waited = round(self.world.now - started, 6)
            if joined():
                network = self.device.network
                current = network.current.ssid if network.current is not None else ""
                self.tracer.emit("softap_phone.device_joined", ssid=ssid, after_s=waited,
                                 network=current, cloud=self.device.cloud.connected)
                done(0)
            elif waited >= self.options.join_timeout_s:
                self.tracer.emit("softap_phone.join_timeout", ssid=ssid, after_s=waited)
                done(int(ResultCode.TIMEOUT))
            else:
                self.world.call_later(self.options.poll_s, look, label="softap-phone-poll")

        self.world.call_later(self.options.poll_s, look, label="softap-phone-poll")

    # -- one command, one connection -----------------------------------------------------------

    def _command(self, name: str, body: dict[str, Any] | None, reply: Reply) -> None:
        payload = None if body is None else request_body(body)
        received = bytearray()
        finished: list[bool] = []

        def closed() -> None:
            if finished:
                return
            finished.append(True)
            # the reply is read after the device's close returns (no re-entry into the session)
            self.world.call_soon(lambda: self._read(name, bytes(received), http, reply),
                                 label="softap-phone-reply")

        http: h11.Connection | None = None
        session: TcpSession | HttpSession | None
        if self.options.protocol == "tcp":
            session = self.softap.open_tcp(received.extend, closed)
            data = encode_request(name, payload)
        else:
            http = h11.Connection(h11.CLIENT)
            session = self.softap.open_http(received.extend, closed)
            data = _http_request(http, name, payload)
        if session is None:  # the SoftAP went down between the steps
            reply(None, int(ResultCode.INVALID_STATE), "the device's SoftAP is not up")
            return
        session.data_received(data)

    def _read(self, name: str, raw: bytes, http: h11.Connection | None, reply: Reply) -> None:
        try:
            body = raw if http is None else _http_body(http, raw)
            value = parse_reply(body)
        except SoftApError as exc:
            reply(None, int(ResultCode.BAD_DATA), str(exc))
            return
        if value is None:
            reply(None, int(ResultCode.IO), "the device closed the connection without a reply")
            return
        reply(value, 0, "")


def _http_request(conn: h11.Connection, name: str, payload: bytes | None) -> bytes:
    headers = [("Host", DEVICE_HOST), ("Connection", "close")]
    if payload is not None:
        headers += [("Content-Type", "application/x-www-form-urlencoded"),
                    ("Content-Length", str(len(payload)))]
    data = conn.send(h11.Request(method="POST" if payload is not None else "GET",
                                 target="/" + name, headers=headers)) or b""
    if payload is not None:
        data += conn.send(h11.Data(data=payload)) or b""
    return data + (conn.send(h11.EndOfMessage()) or b"")


def _http_body(conn: h11.Connection, raw: bytes) -> bytes:
    """The body of the response in ``raw`` (the whole connection's bytes, then EOF)."""
    try:
        conn.receive_data(raw)
        conn.receive_data(b"")
        body = bytearray()
        status = 0
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage
                                                      | h11.ConnectionClosed):
                break
    except h11.RemoteProtocolError as exc:
        raise SoftApError(f"bad HTTP reply: {exc}") from None
    if status == 0:
        return b""  # closed before any response: no reply
    if status != 200:
        raise SoftApError(f"HTTP {status}")
    return bytes(body)


def softap_http_provisioning(device: Device) -> SoftApProvisioning:
    """The ``softap-http`` carrier: the same phone over the device's HTTP server (port 80)."""
    return SoftApProvisioning(device, SoftApPhoneOptions(protocol="http"))
