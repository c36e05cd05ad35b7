"""The Gen2 Photon's SoftAP setup channel (device-os.md §6): HTTP and raw TCP, RSA-encrypted
Wi-Fi credentials, the claim code over SoftAP.

Sans-IO core: the command layer (``commands``, ``jsonreq``), the TCP framing (``tcp``), the HTTP
front on h11 (``http``), what a session needs of its SoftAP (``session``), the knobs
(``options``), the device key (``keys``) and the per-device service (``service``, over a
``transports.device_surface.SoftApDevice``); real sockets are in ``edge`` (an edge service of
``fwsim serve``); ``client`` is a host-side client for tests and tools. See ``docs/softap.md``.
"""

from __future__ import annotations

from .client import (
    DeviceInfo,
    ScanResult,
    SoftApClient,
    SoftApCommandError,
    SoftApError,
    encrypt_password,
    encrypt_private_key,
)
from .commands import COMMAND_NAMES, EnterpriseConfig, SoftApCommands
from .http import HttpSession
from .jsonreq import JsonRequestError, JsonType, parse_request
from .keys import (
    device_decrypt,
    ensure_device_key,
    generate_rsa_key,
    load_private_key,
    load_public_key,
    public_key_reply_hex,
)
from .options import SoftApOptions
from .security import SECURITY_NAMES, WicedSecurity, security_name, security_value
from .service import SoftAp, softap_for
from .session import Session, SessionHost
from .tcp import TcpHeader, TcpHeaderParser, TcpSession, encode_request

__all__ = [
    "COMMAND_NAMES",
    "SECURITY_NAMES",
    "DeviceInfo",
    "EnterpriseConfig",
    "HttpSession",
    "JsonRequestError",
    "JsonType",
    "ScanResult",
    "Session",
    "SessionHost",
    "SoftAp",
    "SoftApClient",
    "SoftApCommandError",
    "SoftApCommands",
    "SoftApError",
    "SoftApOptions",
    "TcpHeader",
    "TcpHeaderParser",
    "TcpSession",
    "WicedSecurity",
    "device_decrypt",
    "encode_request",
    "encrypt_password",
    "encrypt_private_key",
    "ensure_device_key",
    "generate_rsa_key",
    "load_private_key",
    "load_public_key",
    "parse_request",
    "public_key_reply_hex",
    "security_name",
    "security_value",
    "softap_for",
]
