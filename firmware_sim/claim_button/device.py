"""A claim-button device (an ESP32-class ThingsBoard device) as a firmware on the World clock.

How this works
--------------
On boot (``press_on_boot``) and on every button press the firmware makes a secret (random from
the World's seeded stream, a fixed one, or empty), shows it (a log line and a QR code: terminal
text, and PNG + SVG files when ``qr_dir`` is set, rendered by segno) and sends claim info
``{"secretKey": ..., "durationMs": ...}`` (or the protobuf ``ClaimDevice``; the formats are
``firmware_sim.communication.tb_device_api``) through its :class:`Uplink`, which answers
``done(ok, detail)`` once the server acknowledged (or refused, or could not be reached):

* :class:`~.uplink.MqttUplink` (the default): the sans-IO
  :class:`~.mqtt_client.MqttDeviceClient` publishing on ``v1/devices/me/claim`` over a byte
  stream opened by a *connector* - an in-world stream link to the emulated service (the
  testbed's ThingsBoard plug) or a TCP connection to any MQTT host:port
  (``transports.tcp.tcp_connector``: a real ThingsBoard too);
* HTTP or CoAP: into a service in the same World (the testbed plug's ``ServiceUplink``) or to a
  real server (``transports.claim_uplinks``).

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
from typing import Any, Protocol

from ..communication.tb_device_api import encode_claim_json, encode_claim_proto
from ..kernel.errors import ConfigurationError
from ..kernel.trace import Tracer
from ..kernel.world import World

#: tb-mqtt-client's ``claim(secret_key, duration=30000)`` default (``tb_device_mqtt.py``)
DEFAULT_DURATION_MS = 30_000
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 12
DEVICE_PROFILE = "esp32-claim-button"

#: ``done(ok, detail)``: the server's answer to one claim message (or why there was none)
Done = Callable[[bool, str], None]


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
            payload = encode_claim_json(secret, self.config.duration_ms)
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
