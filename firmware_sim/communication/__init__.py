"""Device-cloud communication: wire codecs, the CoAP message layer, the persisted session, the
protocol engine.

``wire``, ``coap_exchange`` and ``event_names`` are pure modules that the emulated cloud
(``cloud_sim``) imports too; so are ``mqtt`` (the MQTT 3.1.1/5 codec) and ``tb_device_api``
(ThingsBoard's claim topics and payloads), shared by the claim button and the emulated ThingsBoard.
"""

from .coap_exchange import CoapExchange, Confirmable, MessageIds, RetransmitPolicy
from .protocol import DeviceIdentity, DeviceProtocol, Phase, ProtocolOptions, ProtocolResult
from .session import MAXIMUM_SESSION_USES, RestoreStatus, SessionData, SessionPersist

__all__ = [
    "MAXIMUM_SESSION_USES",
    "CoapExchange",
    "Confirmable",
    "DeviceIdentity",
    "DeviceProtocol",
    "MessageIds",
    "Phase",
    "ProtocolOptions",
    "ProtocolResult",
    "RestoreStatus",
    "RetransmitPolicy",
    "SessionData",
    "SessionPersist",
]
