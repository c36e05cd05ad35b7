"""One device's MQTT session with the emulated ThingsBoard: sans-IO, on the service's World.

How this works
--------------
A :class:`MqttServerSession` is attached to one end of a kernel stream link
(:class:`~firmware_sim.kernel.stream.StreamEnd`): a client in the same World holds the other end,
or a TCP socket does (the testbed bridges sockets onto links with ``transports.tcp``). Packets
are framed, decoded and encoded by the shared codec (``firmware_sim.communication.mqtt``). It
reads whole packets, and:

1. waits for CONNECT (closing the connection after ``connect_timeout_s``). The protocol name and
   level decide the dialect: ``MQTT`` level 5 or 4 (3.1.1); anything else is refused with the
   3.1.1 CONNACK "unacceptable protocol version". The username is the device access token
   (ThingsBoard's access-token credentials); an unknown token gets CONNACK "not authorized" and
   the connection is closed.
2. once connected, keeps the keep-alive (closing after 1.5 x the client's keep-alive, or
   ``idle_timeout_s`` when the client asked for none) and answers:
   ``v1/devices/me/claim`` and, for gateways, ``v1/gateway/claim`` (PUBACK whenever the message
   was accepted, even when the rules refuse the registration: ThingsBoard acknowledges first
   and only logs why a registration failed); the ``getSessionLimits``
   RPC that tb-mqtt-client sends on connect; attribute requests (an empty answer); telemetry,
   attributes and other RPCs (acknowledged, not stored); SUBSCRIBE (granted at QoS <= 1);
   UNSUBSCRIBE; PINGREQ; QoS 2 (PUBREC/PUBCOMP, so no client waits forever).
3. closes on a malformed packet, a packet above ``max_payload_bytes`` (MQTT 5 clients first get
   a DISCONNECT with the reason - or, for a CONNECT, a CONNACK with it: 0x81 malformed, 0x95 too
   large), a second CONNECT, or a claim payload that cannot be parsed (unless
   ``send_ack_on_validation_exception``, ThingsBoard's device-profile option). Whatever the
   bytes, the codec answers a packet or ``MalformedPacket`` (a string field that is not UTF-8
   included), so no input escapes the session as an exception.

The client's end of stream closes the session and its end (the connection is gone both ways).
Every connection, refusal and close is a trace record (layer ``tb.mqtt``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import mqtt5

from firmware_sim.communication.mqtt import codec
from firmware_sim.communication.tb_device_api import CLAIM_TOPIC, GATEWAY_CLAIM_TOPIC
from firmware_sim.kernel.scheduler import TimerHandle
from firmware_sim.kernel.stream import StreamEnd

from .model import Device
from .service import DeviceAck

if TYPE_CHECKING:
    from .service import ThingsBoardService

RPC_REQUEST_PREFIX = "v1/devices/me/rpc/request/"
RPC_RESPONSE_PREFIX = "v1/devices/me/rpc/response/"
ATTRIBUTES_REQUEST_PREFIX = "v1/devices/me/attributes/request/"
ATTRIBUTES_RESPONSE_PREFIX = "v1/devices/me/attributes/response/"
ACKNOWLEDGED_TOPICS = ("v1/devices/me/telemetry", "v1/devices/me/attributes",
                       "v1/gateway/telemetry", "v1/gateway/attributes", "v1/gateway/connect",
                       "v1/gateway/disconnect", "v1/gateway/rpc")
NO_RATE_LIMIT = "0:0,"
#: a topic is an MQTT UTF-8 string: at most this many bytes
MAX_TOPIC_BYTES = 65_535
#: the DISCONNECT reasons that have a CONNACK twin, by value (a CONNECT refused at MQTT 5)
_CONNACK_REFUSALS = {
    int(mqtt5.DisconnectReasonCode.MALFORMED_PACKET): mqtt5.ConnAckReasonCode.MALFORMED_PACKET,
    int(mqtt5.DisconnectReasonCode.PACKET_TOO_LARGE): mqtt5.ConnAckReasonCode.PACKET_TOO_LARGE,
    int(mqtt5.DisconnectReasonCode.PROTOCOL_ERROR): mqtt5.ConnAckReasonCode.PROTOCOL_ERROR,
}


class MqttServerSession:
    def __init__(self, service: ThingsBoardService, stream: StreamEnd, *,
                 peer: str = "") -> None:
        self.service = service
        self.stream = stream
        self.peer = peer
        self.limits = service.settings.mqtt
        # the remaining length of the largest packet accepted: the payload limit plus room for
        # the topic and the headers
        self._reader = codec.FrameReader(self.limits.max_payload_bytes + 1024)
        self.level = 0
        self.device: Device | None = None
        self.client_id = ""
        self.closed = False
        self.close_reason = ""
        self._keepalive_s = 0.0
        self._tracer = service.world.trace.bind(service.name, "tb.mqtt")
        self._timer: TimerHandle | None = None
        self._pending_qos2: set[int] = set()
        self._arm(self.limits.connect_timeout_s, "connect_timeout")
        stream.on_data = self.data_received
        stream.on_eof = lambda: self._closed_by_peer("eof")
        stream.on_reset = lambda: self._closed_by_peer("reset")
        self.on_closed: list[Any] = []

    # -- timers --------------------------------------------------------------------------------

    def _arm(self, seconds: float, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.service.world.call_later(seconds, self._close, reason,
                                                    label="tb-mqtt-timeout")

    def _touch(self) -> None:
        if self.device is not None:
            keepalive = self._keepalive_s * 1.5 if self._keepalive_s else (
                self.limits.idle_timeout_s)
            self._arm(keepalive, "keepalive_timeout")

    # -- input ---------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            packets = self._reader.feed(data)
        except codec.PacketTooLarge:
            self._disconnect(mqtt5.DisconnectReasonCode.PACKET_TOO_LARGE, "packet_too_large")
            return
        except codec.MalformedPacket:
            self._disconnect(mqtt5.DisconnectReasonCode.MALFORMED_PACKET, "malformed_packet")
            return
        for raw in packets:
            if self.closed:
                return
            try:
                self._packet(raw)
            except codec.MalformedPacket:
                self._disconnect(mqtt5.DisconnectReasonCode.MALFORMED_PACKET,
                                 "malformed_packet")
                return

    def _packet(self, raw: bytes) -> None:
        if self.device is None:
            self._connect(raw)
            return
        self._touch()
        packet = codec.decode(raw, self.level)
        if isinstance(packet, mqtt5.PublishPacket):
            self._publish(packet)
        elif isinstance(packet, mqtt5.SubscribePacket):
            codes = [mqtt5.SubAckReasonCode(min(int(f.max_qos), 1))
                     for f in packet.topic_filters]
            self._send(codec.suback(self.level, packet.packet_id, codes))
        elif isinstance(packet, mqtt5.UnsubscribePacket):
            self._send(codec.unsuback(self.level, packet.packet_id, len(packet.patterns)))
        elif isinstance(packet, mqtt5.PingReqPacket):
            self._send(codec.pingresp())
        elif isinstance(packet, mqtt5.PubRelPacket):
            self._pending_qos2.discard(packet.packet_id)
            self._send(codec.pubcomp(self.level, packet.packet_id))
        elif isinstance(packet, mqtt5.PubAckPacket | mqtt5.PubRecPacket | mqtt5.PubCompPacket):
            pass  # acknowledgements of our QoS 0 answers are never expected; ignore
        elif isinstance(packet, mqtt5.DisconnectPacket):
            self._close("client_disconnect")
        else:
            self._disconnect(mqtt5.DisconnectReasonCode.PROTOCOL_ERROR, "protocol_error")

    def _connect(self, raw: bytes) -> None:
        name, level = codec.connect_protocol(raw)
        if name != "MQTT" or level not in (codec.PROTOCOL_V311, codec.PROTOCOL_V5):
            self.level = codec.PROTOCOL_V311
            self._send(codec.connack(codec.PROTOCOL_V311,
                                     mqtt5.ConnAckReasonCode.UNSUPPORTED_PROTOCOL_VERSION))
            self._tracer.emit("tb.mqtt.refused", peer=self.peer, reason="unsupported_protocol",
                              protocol=name[:20], level=level)
            self._close("unsupported_protocol")
            return
        self.level = level
        packet = codec.decode(raw, level)
        if not isinstance(packet, mqtt5.ConnectPacket):
            raise codec.MalformedPacket("the first packet must be CONNECT")
        device = self.service.authenticate_device(packet.username or "")
        if device is None:
            self._send(codec.connack(level, mqtt5.ConnAckReasonCode.NOT_AUTHORIZED))
            self._tracer.emit("tb.mqtt.refused", peer=self.peer, reason="unknown_token",
                              level=level)
            self._close("not_authorized")
            return
        self.device = device
        self.client_id = packet.client_id
        self._keepalive_s = float(packet.keep_alive)
        assigned = None
        if not packet.client_id and level == codec.PROTOCOL_V5:
            assigned = f"fwsim-{device.id[:8]}"
        # the limits are announced by the getSessionLimits RPC, not as CONNACK properties
        self._send(codec.connack(level, mqtt5.ConnAckReasonCode.SUCCESS,
                                 assigned_client_id=assigned))
        self._tracer.emit("tb.mqtt.connected", device=device.name, level=level,
                          client_id=packet.client_id[:64], keepalive=packet.keep_alive,
                          gateway=device.is_gateway)
        self._touch()

    def _publish(self, packet: mqtt5.PublishPacket) -> None:
        assert self.device is not None
        qos = int(packet.qos)
        packet_id = packet.packet_id or 0
        if qos == 2 and packet_id in self._pending_qos2:
            self._send(codec.pubrec(self.level, packet_id))  # a duplicate: already handled
            return
        topic = packet.topic
        code = mqtt5.PubAckReasonCode.SUCCESS
        claim = topic == CLAIM_TOPIC or (topic == GATEWAY_CLAIM_TOPIC and self.device.is_gateway)
        if claim:
            ack = (self.service.device_claim_from(self.device, packet.payload, transport="mqtt")
                   if topic == CLAIM_TOPIC
                   else self.service.gateway_claim(self.device, packet.payload, transport="mqtt"))
            if ack is DeviceAck.MALFORMED:
                if not self.service.settings.send_ack_on_validation_exception:
                    self._disconnect(mqtt5.DisconnectReasonCode.PAYLOAD_FORMAT_INVALID,
                                     "invalid_claim_payload")
                    return
                code = mqtt5.PubAckReasonCode.PAYLOAD_FORMAT_INVALID
        elif topic.startswith(RPC_REQUEST_PREFIX):
            self._rpc(topic[len(RPC_REQUEST_PREFIX):], packet.payload)
        elif topic.startswith(ATTRIBUTES_REQUEST_PREFIX):
            request_id = topic[len(ATTRIBUTES_REQUEST_PREFIX):]
            self._answer(ATTRIBUTES_RESPONSE_PREFIX + request_id, b"{}")
        elif not topic.startswith(ACKNOWLEDGED_TOPICS):
            code = mqtt5.PubAckReasonCode.TOPIC_NAME_INVALID
            self._tracer.emit("tb.mqtt.unknown_topic", device=self.device.name,
                              topic=topic[:120])
        if self.closed:
            return
        if qos == 1:
            self._send(codec.puback(self.level, packet_id, code))
        elif qos == 2:
            self._pending_qos2.add(packet_id)
            self._send(codec.pubrec(self.level, packet_id))

    def _rpc(self, request_id: str, payload: bytes) -> None:
        try:
            request = json.loads(payload)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return
        if not isinstance(request, dict) or request.get("method") != "getSessionLimits":
            return
        assert self.device is not None
        self._tracer.emit("tb.mqtt.rpc", device=self.device.name, method="getSessionLimits")
        self._answer(RPC_RESPONSE_PREFIX + request_id, json.dumps(self.session_limits()).encode())

    def _answer(self, topic: str, payload: bytes) -> None:
        """Publish an answer on ``topic``; none when the topic would be too long (a request
        topic near the 65,535-byte limit, whose answer prefix is one byte longer)."""
        if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
            assert self.device is not None
            self._tracer.emit("tb.mqtt.unanswered", device=self.device.name,
                              reason="answer_topic_too_long")
            return
        self._send(codec.publish(self.level, topic, payload))

    def session_limits(self) -> dict[str, Any]:
        """The answer to ``getSessionLimits``: no rate limits, the transport's size limits."""
        rate_limits = {"messages": NO_RATE_LIMIT, "telemetryMessages": NO_RATE_LIMIT,
                       "telemetryDataPoints": NO_RATE_LIMIT}
        limits: dict[str, Any] = {"maxPayloadSize": self.limits.max_payload_bytes,
                                  "maxInflightMessages": self.limits.max_inflight_messages,
                                  "rateLimits": rate_limits}
        if self.device is not None and self.device.is_gateway:
            limits["gatewayRateLimits"] = dict(rate_limits)
        return limits

    # -- output and closing --------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not self.stream.closed:
            self.stream.write(data)

    def _disconnect(self, code: mqtt5.DisconnectReasonCode, reason: str) -> None:
        if self.device is not None:
            packet = codec.disconnect(self.level, code)
            if packet is not None:
                self._send(packet)
        elif self.level == codec.PROTOCOL_V5 and int(code) in _CONNACK_REFUSALS:
            # a CONNECT that fails: an MQTT 5 server may answer CONNACK with the reason (a 3.1.1
            # one has no return code for it and just closes)
            self._send(codec.connack(self.level, _CONNACK_REFUSALS[int(code)]))
        self._close(reason)

    def _close(self, reason: str) -> None:
        if self.closed:
            return
        self._finish(reason)
        self.stream.close()

    def _closed_by_peer(self, how: str) -> None:
        if not self.closed:
            self._finish(f"peer_{how}")
        self.stream.close()  # after the client's FIN nothing more will be said (no-op on reset)

    def close(self) -> None:
        """Close from our side (server shutdown)."""
        self._close("server_stopped")

    def _finish(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._tracer.emit("tb.mqtt.closed", peer=self.peer, reason=reason,
                          device=self.device.name if self.device else None)
        for callback in self.on_closed:
            callback(self)


__all__ = ["ATTRIBUTES_REQUEST_PREFIX", "ATTRIBUTES_RESPONSE_PREFIX", "RPC_REQUEST_PREFIX",
           "RPC_RESPONSE_PREFIX", "MqttServerSession"]
