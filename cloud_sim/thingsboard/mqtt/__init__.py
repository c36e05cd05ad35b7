"""MQTT for the ThingsBoard face: codec (mqtt5 + the 3.1.1 dialect), the server session, the
device client, and their asyncio socket adapters."""

from .client import ClientState, MqttDeviceClient
from .codec import FrameReader, MalformedPacket, PacketTooLarge
from .server import CLAIM_TOPIC, GATEWAY_CLAIM_TOPIC, MqttServerSession
from .stream import ByteStream

__all__ = [
    "CLAIM_TOPIC",
    "GATEWAY_CLAIM_TOPIC",
    "ByteStream",
    "ClientState",
    "FrameReader",
    "MalformedPacket",
    "MqttDeviceClient",
    "MqttServerSession",
    "PacketTooLarge",
]
