"""MQTT 3.1.1 and 5 on the wire (pure: no I/O, no World), shared by devices and clouds.

``codec`` frames, decodes and encodes packets (``mqtt5`` for MQTT 5; 3.1.1 as its dialect).
The emulated ThingsBoard (``cloud_sim.thingsboard``) imports this package, like it imports
``communication.wire`` for the Particle protocol.
"""

from . import codec
from .codec import (
    PROTOCOL_V5,
    PROTOCOL_V311,
    FrameReader,
    MalformedPacket,
    PacketTooLarge,
    decode,
    encode_remaining_length,
)

__all__ = [
    "PROTOCOL_V5",
    "PROTOCOL_V311",
    "FrameReader",
    "MalformedPacket",
    "PacketTooLarge",
    "codec",
    "decode",
    "encode_remaining_length",
]
