"""The claim-button device's MQTT 5 client: sans-IO, timers on the device's World.

How this works
--------------
:class:`MqttDeviceClient` writes CONNECT (username = access token) as soon as it is started on a
byte stream - one end of the kernel's :class:`~firmware_sim.kernel.stream.StreamLink`, whether
the other end is the emulated service in the same World or a TCP socket
(``transports.tcp``) - waits for CONNACK (``connect_timeout_s``), then publishes at QoS 1
and reports each PUBACK (with its reason code) to the callback given to :meth:`publish`. While
connected it sends PINGREQ every ``keepalive_s``. Packets are encoded and decoded by ``mqtt5``.
Anything the server sends that is not a valid MQTT 5 packet closes the connection; so does a
reset, or the server's end of stream (the client then closes its own end too). It speaks to the
emulated service or to any real ThingsBoard (MQTT 5 is supported there since 3.5).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import mqtt5

from ..communication.mqtt.codec import PROTOCOL_V5, FrameReader, MalformedPacket, decode
from ..kernel.scheduler import TimerHandle
from ..kernel.stream import StreamEnd
from ..kernel.trace import Tracer
from ..kernel.world import World

AckCallback = Callable[[int], None]


class ClientState(Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class MqttDeviceClient:
    def __init__(self, world: World, tracer: Tracer, *, token: str, client_id: str,
                 keepalive_s: int = 60, connect_timeout_s: float = 10.0,
                 max_packet_bytes: int = 1 << 20) -> None:
        self.world = world
        self.tracer = tracer
        self.token = token
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.connect_timeout_s = connect_timeout_s
        self.state = ClientState.IDLE
        self.stream: StreamEnd | None = None
        self._reader = FrameReader(max_packet_bytes)
        self._next_id = 0
        self._acks: dict[int, AckCallback] = {}
        self._timer: TimerHandle | None = None
        self.on_connected: Callable[[], None] | None = None
        self.on_closed: Callable[[str], None] | None = None
        self.connack_code: int | None = None

    def start(self, stream: StreamEnd) -> None:
        self.stream = stream
        self.state = ClientState.CONNECTING
        stream.on_data = self._data
        stream.on_eof = self._end_of_stream
        stream.on_reset = lambda: self._finish("connection reset")
        stream.write(mqtt5.ConnectPacket(self.client_id, username=self.token, clean_start=True,
                                         keep_alive=self.keepalive_s).write())
        self._arm(self.connect_timeout_s, self._connect_timeout)

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.world.call_later(seconds, callback, label="tb-device-mqtt")

    def _connect_timeout(self) -> None:
        self.close("no CONNACK in time")

    def _ping(self) -> None:
        if self.state is ClientState.CONNECTED and self.stream is not None:
            self.stream.write(mqtt5.PingReqPacket().write())
            self._arm(self.keepalive_s, self._ping)

    def publish(self, topic: str, payload: bytes, on_ack: AckCallback | None = None) -> int:
        """Publish at QoS 1; ``on_ack(reason_code)`` runs when the PUBACK arrives."""
        if self.state is not ClientState.CONNECTED or self.stream is None:
            raise ConnectionError("the MQTT client is not connected")
        self._next_id = self._next_id % 65535 + 1
        packet_id = self._next_id
        if on_ack is not None:
            self._acks[packet_id] = on_ack
        self.stream.write(mqtt5.PublishPacket(topic, payload, qos=mqtt5.QoS.AT_LEAST_ONCE,
                                              packet_id=packet_id).write())
        return packet_id

    def _data(self, data: bytes) -> None:
        try:
            for raw in self._reader.feed(data):
                self._packet(decode(raw, PROTOCOL_V5))
        except MalformedPacket as exc:
            self.close(f"malformed packet from the server: {exc}")

    def _packet(self, packet: mqtt5.Packet) -> None:
        if isinstance(packet, mqtt5.ConnAckPacket) and self.state is ClientState.CONNECTING:
            self.connack_code = int(packet.reason_code)
            if packet.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
                self.tracer.emit("mqtt.refused", code=int(packet.reason_code),
                                 reason=packet.reason_code.name)
                self.close(f"CONNACK {packet.reason_code.name}")
                return
            self.state = ClientState.CONNECTED
            self.tracer.emit("mqtt.connected")
            if self.keepalive_s:
                self._arm(self.keepalive_s, self._ping)
            elif self._timer is not None:
                self._timer.cancel()
            if self.on_connected is not None:
                self.on_connected()
        elif isinstance(packet, mqtt5.PubAckPacket):
            callback = self._acks.pop(packet.packet_id, None)
            if callback is not None:
                callback(int(packet.reason_code))
        elif isinstance(packet, mqtt5.DisconnectPacket):
            self.tracer.emit("mqtt.disconnected_by_server", reason=packet.reason_code.name)
            self.close(f"DISCONNECT {packet.reason_code.name}")
        # PINGRESP, SUBACK, PUBLISH (RPC answers): nothing to do for a claim button

    def close(self, reason: str = "closed") -> None:
        if self.state is ClientState.CLOSED:
            return
        if self.state is ClientState.CONNECTED and self.stream is not None:
            self.stream.write(mqtt5.DisconnectPacket().write())
        if self.stream is not None:
            self.stream.close()
        self._finish(reason)

    def _end_of_stream(self) -> None:
        self._finish("server closed the connection")
        if self.stream is not None:
            self.stream.close()  # answer the server's FIN: nothing more will be said

    def _finish(self, reason: str) -> None:
        if self.state is ClientState.CLOSED:
            return
        self.state = ClientState.CLOSED
        if self._timer is not None:
            self._timer.cancel()
        self._acks.clear()
        self.tracer.emit("mqtt.closed", reason=reason)
        if self.on_closed is not None:
            self.on_closed(reason)
