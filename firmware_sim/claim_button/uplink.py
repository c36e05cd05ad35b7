"""How a claim button sends its claim info over MQTT: one connection, opened on demand.

How this works
--------------
:class:`MqttUplink` keeps one :class:`~.mqtt_client.MqttDeviceClient`. A claim message is queued;
if the client is not connected the uplink asks its *connector* for a byte stream (an end of a
kernel stream link: in the same World, or bridged to a TCP socket by ``transports.tcp``) and
starts a fresh client on it; on CONNACK the queue is published at QoS 1 on
``v1/devices/me/claim`` and each PUBACK answers its message (reason code 0 = accepted). A
connection that fails or closes answers every queued message with the reason, so the device
never waits forever.
"""

from __future__ import annotations

from collections.abc import Callable

from ..communication.tb_device_api import CLAIM_TOPIC
from ..kernel.stream import StreamEnd
from ..kernel.world import World
from .device import Done, node_name
from .mqtt_client import ClientState, MqttDeviceClient

#: opens a byte stream and hands it over (at once in a World, later on real sockets), or
#: hands over None when the connection failed
Connector = Callable[[Callable[[StreamEnd | None], None]], None]


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

    def _stream_ready(self, stream: StreamEnd | None) -> None:
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


__all__ = ["Connector", "MqttUplink"]
