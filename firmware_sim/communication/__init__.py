"""Device-cloud communication: wire codecs, persisted session, the protocol engine.

``wire`` is a pure codec module that the emulated cloud (``cloud_sim``) imports too.
"""

from .protocol import DeviceIdentity, DeviceProtocol, Phase, ProtocolError, ProtocolOptions
from .session import MAXIMUM_SESSION_USES, RestoreStatus, SessionData, SessionPersist

__all__ = [
    "MAXIMUM_SESSION_USES",
    "DeviceIdentity",
    "DeviceProtocol",
    "Phase",
    "ProtocolError",
    "ProtocolOptions",
    "RestoreStatus",
    "SessionData",
    "SessionPersist",
]
