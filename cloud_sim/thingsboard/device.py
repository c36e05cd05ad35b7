"""A claim-button device (an ESP32-class ThingsBoard device) as a firmware on the World clock.

How this works
--------------
On boot (``press_on_boot``) and on every button press the firmware makes a secret (random from
the World's seeded stream, a fixed one, or empty), shows it (a log line and a QR code: terminal
text, and PNG + SVG files when ``qr_dir`` is set, rendered by segno) and sends claim info
``{"secretKey": ..., "durationMs": ...}`` through its :class:`Uplink`:

* :class:`MqttUplink` (the default): the sans-IO :class:`~.mqtt.client.MqttDeviceClient`
  publishing on ``v1/devices/me/claim``; the connection is opened through a *connector*, so the
  same firmware talks to the emulated service in process or to any real MQTT host:port
  (:mod:`.uplinks`);
* :class:`ServiceUplink`: HTTP or CoAP to a service in the same World (after a latency);
* :mod:`.uplinks` has HTTP and CoAP over real sockets.

Every step is a trace record of the device's node (layer ``button``): ``device.boot``,
``button.pressed``, ``claim.secret``, ``claim.sent``, ``claim.acked`` / ``claim.failed``.
"""

from __future__ import annotations

import io
import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.trace import Tracer
from firmware_sim.kernel.world import World

from .mqtt.client import ClientState, MqttDeviceClient
from .mqtt.server import CLAIM_TOPIC
from .mqtt.stream import ByteStream
from .payloads import encode_claim_proto

if TYPE_CHECKING:
    from .service import ThingsBoardService

#: tb-mqtt-client's ``claim(secret_key, duration=30000)`` default (cloud.md B10)
DEFAULT_DURATION_MS = 30_000
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 12
DEVICE_PROFILE = "esp32-claim-button"

Done = Callable[[bool, str], None]
#: opens a byte stream and hands it over (at once in a World, later on real sockets), or
#: hands over None when the connection failed
Connector = Callable[[Callable[[ByteStream | None], None]], None]


class SecretMode(Enum):
    RANDOM = "random"
    FIXED = "fixed"
    EMPTY = "empty"


class Uplink(Protocol):
    """How the firmware sends claim info; ``done(ok, detail)`` when the server answered."""

    name: str

    def send_claim(self, payload: bytes, done: Done) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ButtonConfig:
    secret: SecretMode = SecretMode.RANDOM
    fixed_secret: str = ""
    duration_ms: int = DEFAULT_DURATION_MS
    press_on_boot: bool = True
    #: send the protobuf ``ClaimDevice`` payload (a device profile with protobuf payloads)
    protobuf: bool = False
    #: write ``<qr_dir>/<device name>.png`` and ``.svg`` on every new secret
    qr_dir: Path | None = None
    #: print the QR code as terminal text into the log record
    qr_text: bool = True

    def __post_init__(self) -> None:
        if self.secret is SecretMode.FIXED and not self.fixed_secret:
            raise ConfigurationError("a fixed secret needs fixed_secret")


def node_name(device_name: str) -> str:
    """The World node (and trace node) of a device: its name with whitespace as dashes."""
    return "-".join(device_name.split()) or "device"


def qr_payload(device_name: str, secret: str) -> str:
    """What the QR code holds: the two fields a person types into the claim widget."""
    return json.dumps({"deviceName": device_name, "secretKey": secret}, separators=(",", ":"))


def render_qr(content: str, *, png: Path | None = None, svg: Path | None = None) -> str:
    """The QR code as terminal text (and PNG/SVG files when paths are given)."""
    import segno

    code = segno.make(content, error="m")
    out = io.StringIO()
    code.terminal(out=out, compact=True, border=2)
    if png is not None:
        code.save(str(png), kind="png", scale=6, border=2)
    if svg is not None:
        code.save(str(svg), kind="svg", scale=6, border=2)
    return out.getvalue()


class ClaimButtonDevice:
    """A device with a claim button, on ``world``'s clock."""

    def __init__(self, world: World, name: str, uplink: Uplink,
                 config: ButtonConfig | None = None) -> None:
        self.world = world
        self.name = name
        self.node = node_name(name)
        self.uplink = uplink
        self.config = config or ButtonConfig()
        self.tracer: Tracer = world.trace.bind(self.node, "button")
        self._rng = world.rng_for(f"{name}:secret")
        self.secret: str | None = None
        self.qr_text = ""
        self.sent = 0
        self.acked = 0
        self.failed = 0
        self.powered = False
        world.add_node(self.node, self)

    def power_on(self) -> None:
        self.powered = True
        self.tracer.emit("device.boot", profile=DEVICE_PROFILE, uplink=self.uplink.name)
        if self.config.press_on_boot:
            self._new_claim("boot")

    def power_off(self) -> None:
        self.powered = False
        self.uplink.close()
        self.tracer.emit("device.off")

    def press_button(self) -> None:
        self.tracer.emit("button.pressed")
        if self.powered:
            self._new_claim("button")

    def _make_secret(self) -> str:
        mode = self.config.secret
        if mode is SecretMode.FIXED:
            return self.config.fixed_secret
        if mode is SecretMode.EMPTY:
            return ""
        return "".join(self._rng.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))

    def _new_claim(self, trigger: str) -> None:
        secret = self._make_secret()
        self.secret = secret
        fields: dict[str, Any] = {"trigger": trigger, "secret": secret,
                                  "duration_ms": self.config.duration_ms}
        qr_dir = self.config.qr_dir
        if self.config.qr_text or qr_dir is not None:
            png = svg = None
            if qr_dir is not None:
                qr_dir.mkdir(parents=True, exist_ok=True)
                stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.name)
                png, svg = qr_dir / f"{stem}.png", qr_dir / f"{stem}.svg"
                fields.update(png=str(png), svg=str(svg))
            self.qr_text = render_qr(qr_payload(self.name, secret), png=png, svg=svg)
        if not secret:
            fields["hint"] = (f"no secret: claim by device name within "
                              f"{self.config.duration_ms / 1000:g} s")
        self.tracer.emit("claim.secret", **fields)
        if self.config.protobuf:
            payload = encode_claim_proto(secret, self.config.duration_ms)
        else:
            payload = json.dumps({"secretKey": secret, "durationMs": self.config.duration_ms},
                                 separators=(",", ":")).encode()
        self.sent += 1
        self.tracer.emit("claim.sent", uplink=self.uplink.name, size=len(payload))
        self.uplink.send_claim(payload, self._answered)

    def _answered(self, ok: bool, detail: str) -> None:
        if ok:
            self.acked += 1
            self.tracer.emit("claim.acked", uplink=self.uplink.name, detail=detail)
        else:
            self.failed += 1
            self.tracer.emit("claim.failed", uplink=self.uplink.name, detail=detail)


class MqttUplink:
    """Claim info over MQTT 5 (``v1/devices/me/claim``), one connection kept open."""

    name = "mqtt"

    def __init__(self, world: World, device_name: str, token: str, connector: Connector, *,
                 keepalive_s: int = 60) -> None:
        self.world = world
        self.connector = connector
        self.client = MqttDeviceClient(world, world.trace.bind(node_name(device_name), "mqtt"),
                                       token=token, client_id=device_name[:64],
                                       keepalive_s=keepalive_s)
        self._queue: list[tuple[bytes, Done]] = []
        self.client.on_connected = self._flush
        self.client.on_closed = self._closed

    def send_claim(self, payload: bytes, done: Done) -> None:
        self._queue.append((payload, done))
        state = self.client.state
        if state is ClientState.CONNECTED:
            self._flush()
        elif state in (ClientState.IDLE, ClientState.CLOSED):
            self._open()

    def _open(self) -> None:
        if self.client.state is ClientState.CLOSED:
            old = self.client
            self.client = MqttDeviceClient(self.world, old.tracer, token=old.token,
                                           client_id=old.client_id,
                                           keepalive_s=old.keepalive_s)
            self.client.on_connected = self._flush
            self.client.on_closed = self._closed
        self.client.state = ClientState.CONNECTING
        self.connector(self._stream_ready)

    def _stream_ready(self, stream: ByteStream | None) -> None:
        if stream is None:
            self._closed("cannot connect")
            return
        self.client.start(stream)

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        for payload, done in queue:
            def ack(code: int, done: Done = done) -> None:
                done(code == 0, f"PUBACK reason {code}")
            self.client.publish(CLAIM_TOPIC, payload, ack)

    def _closed(self, reason: str) -> None:
        self.client.state = ClientState.CLOSED
        queue, self._queue = self._queue, []
        for _, done in queue:
            done(False, reason)

    def close(self) -> None:
        self.client.close("device off")


class ServiceUplink:
    """HTTP or CoAP claim info to a service in the same World, answered after ``latency_s``."""

    def __init__(self, service: ThingsBoardService, token: str, transport: str,
                 latency_s: float = 0.05) -> None:
        if transport not in ("http", "coap"):
            raise ConfigurationError(f"unknown transport {transport!r}: http or coap")
        self.name = transport
        self.service = service
        self.token = token
        self.latency_s = latency_s

    def send_claim(self, payload: bytes, done: Done) -> None:
        from .service import DeviceAck

        def arrive() -> None:
            ack = self.service.device_claim(self.token, payload, transport=self.name)
            answers = {DeviceAck.ACCEPTED: (True, "200" if self.name == "http" else "2.01"),
                       DeviceAck.UNAUTHORIZED: (False, "401" if self.name == "http" else "4.01"),
                       DeviceAck.MALFORMED: (False, "400" if self.name == "http" else "4.00")}
            ok, detail = answers[ack]
            self.service.world.call_later(self.latency_s, done, ok, detail,
                                          label="tb-uplink-answer")

        self.service.world.call_later(self.latency_s, arrive, label="tb-uplink-request")

    def close(self) -> None:
        pass
