"""The Gen2 Photon's SoftAP setup channel (device-os.md §6): HTTP and raw TCP, RSA-encrypted
Wi-Fi credentials, the claim code over SoftAP.

Sans-IO core: the command layer (``commands``, ``jsonreq``), the TCP framing (``tcp``), the HTTP
front on h11 (``http``), the device key (``keys``) and the per-device service (``service``);
real sockets are in ``edge`` (an edge service of ``fwsim serve``); ``client`` is a host-side
client for tests and tools. See ``docs/softap.md``.
"""

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
from .security import SECURITY_NAMES, WicedSecurity, security_name, security_value
from .service import SoftAp, SoftApOptions, softap_for
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
