"""The claim-button device alone: secrets, QR output, payloads, and its MQTT uplink on a
stream link whose far end the test plays (no cloud)."""

from __future__ import annotations

from pathlib import Path

import mqtt5
import pytest

from firmware_sim.claim_button import (
    ButtonConfig,
    ClaimButtonDevice,
    Done,
    MqttUplink,
    SecretMode,
)
from firmware_sim.communication.mqtt import FrameReader
from firmware_sim.communication.tb_device_api import ClaimDeviceProto
from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.stream import StreamEnd, StreamLink
from firmware_sim.kernel.world import World


class RecordingUplink:
    """Answers every claim message with ``answer`` after 0.1 s."""

    name = "test"

    def __init__(self, world: World, answer: tuple[bool, str] = (True, "ok")) -> None:
        self.world = world
        self.answer = answer
        self.payloads: list[bytes] = []
        self.closed = False

    def send_claim(self, payload: bytes, done: Done) -> None:
        self.payloads.append(payload)
        self.world.call_later(0.1, done, *self.answer)

    def close(self) -> None:
        self.closed = True


def test_secret_modes_and_qr_files(tmp_path: Path) -> None:
    world = World(3)
    uplink = RecordingUplink(world)
    button = ClaimButtonDevice(world, "QR Dev", uplink,
                               ButtonConfig(qr_dir=tmp_path, duration_ms=5000))
    button.power_on()
    world.run_for(1)
    assert button.secret and len(button.secret) == 12 and button.acked == 1
    assert uplink.payloads == [b'{"secretKey":"%s","durationMs":5000}' % button.secret.encode()]
    assert (tmp_path / "QR_Dev.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "QR_Dev.svg").read_bytes()
    assert button.qr_text.count("\n") > 10
    fixed = ButtonConfig(secret=SecretMode.FIXED, fixed_secret="abc")
    with pytest.raises(ConfigurationError):
        ButtonConfig(secret=SecretMode.FIXED)
    assert fixed.fixed_secret == "abc"


def test_empty_secret_protobuf_payload_and_a_refusal() -> None:
    world = World(4)
    uplink = RecordingUplink(world, (False, "4.01"))
    button = ClaimButtonDevice(world, "Proto", uplink, ButtonConfig(
        secret=SecretMode.EMPTY, protobuf=True, qr_text=False, duration_ms=7000))
    button.power_on()
    world.run_for(1)
    message = ClaimDeviceProto()
    message.ParseFromString(uplink.payloads[0])
    assert (message.secretKey, message.durationMs) == ("", 7000)  # type: ignore[attr-defined]
    assert button.failed == 1 and button.acked == 0
    failed = world.trace.first("claim.failed", node="Proto")
    assert failed is not None and failed.get("detail") == "4.01"
    assert "no secret" in str(world.trace.first("claim.secret", node="Proto").get("hint"))  # type: ignore[union-attr]


def test_presses_while_off_send_nothing_and_power_off_closes_the_uplink() -> None:
    world = World(5)
    uplink = RecordingUplink(world)
    button = ClaimButtonDevice(world, "Off", uplink, ButtonConfig(press_on_boot=False,
                                                                   qr_text=False))
    button.press_button()
    button.power_on()
    assert uplink.payloads == []
    button.press_button()
    button.power_off()
    world.run_for(1)
    assert len(uplink.payloads) == 1 and uplink.closed


class FakeBroker:
    """The far end of the button's stream link, played by the test."""

    def __init__(self, end: StreamEnd, *, connack: bool = True) -> None:
        self.end = end
        self.connack = connack
        self.reader = FrameReader(1 << 16)
        self.packets: list[mqtt5.Packet] = []
        end.on_data = self._data

    def _data(self, data: bytes) -> None:
        for raw in self.reader.feed(data):
            packet, _ = mqtt5.read(memoryview(raw))
            self.packets.append(packet)
            if isinstance(packet, mqtt5.ConnectPacket) and self.connack:
                self.end.write(mqtt5.ConnAckPacket().write())
            elif isinstance(packet, mqtt5.PublishPacket) and packet.packet_id:
                self.end.write(mqtt5.PubAckPacket(packet.packet_id).write())


def test_mqtt_uplink_connects_publishes_and_reports_the_puback() -> None:
    world = World(6)
    brokers: list[FakeBroker] = []

    def connector(ready):  # type: ignore[no-untyped-def]
        link = StreamLink(world, f"broker-{len(brokers) + 1}", latency_s=0.01)
        brokers.append(FakeBroker(link.b))
        ready(link.a)

    uplink = MqttUplink(world, "Dev 1", "TOKEN", connector)
    button = ClaimButtonDevice(world, "Dev 1", uplink, ButtonConfig(qr_text=False))
    button.power_on()
    world.run_for(1)
    assert button.acked == 1
    connect, publish = brokers[0].packets[:2]
    assert isinstance(connect, mqtt5.ConnectPacket) and connect.username == "TOKEN"
    assert isinstance(publish, mqtt5.PublishPacket) and publish.topic == "v1/devices/me/claim"
    brokers[0].end.close()  # the server goes away: the client answers the FIN
    world.run_for(1)
    assert brokers[0].end.link.a.closed
    button.press_button()  # a new connection for the next message
    world.run_for(1)
    assert len(brokers) == 2 and button.acked == 2


def test_mqtt_uplink_answers_queued_messages_when_it_cannot_connect() -> None:
    world = World(7)
    uplink = MqttUplink(world, "Lost", "T", lambda ready: ready(None))
    button = ClaimButtonDevice(world, "Lost", uplink, ButtonConfig(qr_text=False))
    button.power_on()
    world.run_for(1)
    assert button.failed == 1
    failed = world.trace.first("claim.failed", node="Lost")
    assert failed is not None and failed.get("detail") == "cannot connect"


def test_no_connack_in_time_fails_the_claim() -> None:
    world = World(8)

    def connector(ready):  # type: ignore[no-untyped-def]
        link = StreamLink(world, "silent")
        FakeBroker(link.b, connack=False)
        ready(link.a)

    button = ClaimButtonDevice(world, "Slow", MqttUplink(world, "Slow", "T", connector),
                               ButtonConfig(qr_text=False))
    button.power_on()
    world.run_for(11)
    failed = world.trace.first("claim.failed", node="Slow")
    assert failed is not None and failed.get("detail") == "no CONNACK in time"
