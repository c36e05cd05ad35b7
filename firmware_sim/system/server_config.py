"""The device's cloud server settings in the DCT: validation at start-up, restoring defaults,
``spark/device/key/restore`` and the ServerMoved request.

How this works
--------------
Device OS ``system/src/server_config.cpp`` keeps the UDP server's public key (DER) in the DCT
field ``alt_server_public_key`` and its address in ``alt_server_address`` (the packed
``ServerAddress`` struct of ``hal/inc/ota_flash_hal.h``: ``u8 addr_type`` (0 IP, 1 domain,
0xFF invalid), ``u8 length``, 64 bytes of domain or a 4-byte IP, ``u16 port``, padding to 128).

* :meth:`ServerConfig.validate` is ``validateServerSettings``: the address type must be valid
  and the key must parse as a DER public key. ``Spark_Protocol_Init`` runs it at every start;
  on failure it logs ``Server settings are invalid, restoring defaults`` (ERROR), records
  ``SERVER_SETTINGS_CORRUPTED`` (10) in the key errors - published after every handshake of
  that boot as ``spark/device/key/error`` - and restores the defaults.
* :meth:`ServerConfig.restore_defaults` is ``restoreDefaultSettings``: ``Updating UDP server
  settings``, ``Address: "$id.udp.particle.io"; port: 5684`` (INFO), then both fields are
  erased and rewritten. fwsim's default key is a stand-in P-256 key (not Particle's: fwsim
  talks to its own cloud). A device created with an erased DCT gets the defaults silently, as
  from the factory.
* :func:`decode_server_moved` and :meth:`ServerConfig.validate_server_moved` are
  ``handleServerMovedRequest`` / ``validateServerMovedRequest``: the protobuf
  ``particle.cloud.ServerMovedPermanentlyRequest`` (1 ``server_addr``, 2 ``server_port``,
  3 ``server_pub_key``, 4 ``sign``) and an ECDSA-SHA256 signature over ``u32le key size | key |
  u32le address length | address | u16le port`` (port 0 means 5684), checked against the
  signing key the device trusts (``FirmwareOptions.server_moved_key``; Particle's key is built
  into Device OS, fwsim's cloud cannot sign with it, so by default no request validates).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..hal.dct import FIELDS, Dct
from ..hal.device_keys import der_length
from ..services.log import DeviceLog

LOG = "system"

DEFAULT_UDP_SERVER_ADDRESS = "$id.udp.particle.io"
DEFAULT_UDP_SERVER_PORT = 5684
#: fwsim's stand-in server key (a P-256 SubjectPublicKeyInfo; not Particle's key).
DEFAULT_SERVER_PUBLIC_KEY = bytes.fromhex(
    "3059301306072a8648ce3d020106082a8648ce3d0301070342000495d0fac3b48a392d21e3b2ca2217e1"
    "27813f8fa8f354def25026011febcf18984263de4bdc7abb861add5d014534e6277553d1256537da6ed53f"
    "c52c8b3f1f66")

ADDRESS_IP = 0
ADDRESS_DOMAIN = 1
ADDRESS_INVALID = 0xFF

_KEY = FIELDS["alt_server_public_key"]
_ADDRESS = FIELDS["alt_server_address"]
_DOMAIN_SIZE = 64

#: ``SYSTEM_ERROR_BAD_DATA``, ``SYSTEM_ERROR_NOT_SUPPORTED``
BAD_DATA = -280


@dataclass(frozen=True)
class ServerSettings:
    address: str
    port: int
    public_key: bytes


def encode_address(address: str, port: int) -> bytes:
    """``encodeServerAddressData``: a dotted IPv4 address is stored as 4 bytes, anything else
    as a domain name (at most 64 bytes)."""
    parts = address.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
        body = bytes([ADDRESS_IP, 4]) + bytes(int(p) for p in parts)
    else:
        raw = address.encode("utf-8")
        if not raw or len(raw) > _DOMAIN_SIZE:
            raise ValueError(f"server address of {len(raw)} bytes (1..{_DOMAIN_SIZE})")
        body = bytes([ADDRESS_DOMAIN, len(raw)]) + raw
    return (body.ljust(2 + _DOMAIN_SIZE, b"\x00") + struct.pack("<H", port)).ljust(
        _ADDRESS.size, b"\x00")


def decode_address(raw: bytes) -> tuple[int, str, int]:
    """``(addr_type, address, port)`` of a stored ``ServerAddress``."""
    addr_type, length = raw[0], raw[1]
    (port,) = struct.unpack_from("<H", raw, 2 + _DOMAIN_SIZE)
    if addr_type == ADDRESS_IP and length == 4:
        return addr_type, ".".join(str(b) for b in raw[2:6]), port
    if addr_type == ADDRESS_DOMAIN and 0 < length <= _DOMAIN_SIZE:
        return addr_type, raw[2:2 + length].decode("utf-8", "backslashreplace"), port
    return ADDRESS_INVALID, "", port


class ServerConfig:
    """The server settings of one device's DCT."""

    __slots__ = ("_dct", "_log")

    def __init__(self, dct: Dct, log: DeviceLog) -> None:
        self._dct = dct
        self._log = log

    def erased(self) -> bool:
        return (self._dct.read_field("alt_server_address")[0] == 0xFF
                and self._dct.read_field("alt_server_public_key")[0] == 0xFF)

    def settings(self) -> ServerSettings | None:
        """The stored settings, or None when they do not validate."""
        addr_type, address, port = decode_address(self._dct.read_field("alt_server_address"))
        if addr_type == ADDRESS_INVALID:
            return None
        raw = self._dct.read_field("alt_server_public_key")
        size = der_length(raw)
        if size is None or size > len(raw):
            return None
        try:
            load_der_public_key(raw[:size])
        except (ValueError, TypeError):
            return None
        return ServerSettings(address, port, raw[:size])

    def validate(self) -> bool:
        """``validateServerSettings``."""
        return self.settings() is not None

    def update(self, settings: ServerSettings, *, quiet: bool = False) -> None:
        """``updateServerSettings``: erase both fields, then write the key and the address."""
        if not quiet:
            self._log.info(LOG, "Updating UDP server settings")
            self._log.info(LOG, f'Address: "{settings.address}"; port: {settings.port}')
        address = encode_address(settings.address, settings.port)
        if len(settings.public_key) > _KEY.size:
            raise ValueError("server public key too large")
        self._dct.write(_ADDRESS.offset, b"\xff" * _ADDRESS.size)
        self._dct.write(_KEY.offset, b"\xff" * _KEY.size)
        self._dct.write(_KEY.offset, settings.public_key)
        self._dct.write(_ADDRESS.offset, address)

    def set_public_key(self, public_key: bytes) -> None:
        """Store the server's public key, keeping the address (what ``particle keys server``
        writes over USB; fwsim's testbed gives a device the key of the cloud it enrols with).
        Nothing is written when the key is already there."""
        if len(public_key) > _KEY.size:
            raise ValueError("server public key too large")
        current = self.settings()
        if current is not None and current.public_key == public_key:
            return
        self._dct.write(_KEY.offset, public_key.ljust(_KEY.size, b"\xff"))

    def public_key(self) -> bytes | None:
        """The stored server public key (DER), None when the settings do not validate."""
        settings = self.settings()
        return settings.public_key if settings is not None else None

    def restore_defaults(self, *, quiet: bool = False) -> None:
        """``restoreDefaultSettings``."""
        self.update(ServerSettings(DEFAULT_UDP_SERVER_ADDRESS, DEFAULT_UDP_SERVER_PORT,
                                   DEFAULT_SERVER_PUBLIC_KEY), quiet=quiet)

    @staticmethod
    def validate_server_moved(request: ServerMovedRequest, signing_key: bytes | None) -> int:
        """``validateServerMovedRequest``: 0, or BAD_DATA when the signature does not verify
        with ``signing_key`` (a DER public key; None: no key, nothing validates)."""
        if signing_key is None:
            return BAD_DATA
        try:
            key = load_der_public_key(signing_key)
        except (ValueError, TypeError):
            return BAD_DATA
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return BAD_DATA
        try:
            key.verify(request.signature, server_moved_digest_input(request),
                       ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return BAD_DATA
        return 0


@dataclass(frozen=True)
class ServerMovedRequest:
    address: str
    port: int
    public_key: bytes
    signature: bytes

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_UDP_SERVER_PORT


def server_moved_digest_input(request: ServerMovedRequest) -> bytes:
    """The bytes Device OS hashes (SHA-256) and verifies the signature over."""
    address = request.address.encode("utf-8")
    return (struct.pack("<I", len(request.public_key)) + request.public_key
            + struct.pack("<I", len(address)) + address
            + struct.pack("<H", request.effective_port))


def server_moved_digest(request: ServerMovedRequest) -> bytes:
    return hashlib.sha256(server_moved_digest_input(request)).digest()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def decode_server_moved(payload: bytes) -> ServerMovedRequest:
    """Parse ``ServerMovedPermanentlyRequest``; ``ValueError`` where nanopb fails (BAD_DATA)."""
    fields: dict[int, bytes | int] = {}
    size: int
    pos = 0
    while pos < len(payload):
        key, pos = _varint(payload, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("zero tag")
        if wire == 0:
            number_value, pos = _varint(payload, pos)
            fields[number] = number_value
        elif wire == 2:
            size, pos = _varint(payload, pos)
            if pos + size > len(payload):
                raise ValueError("end-of-stream")
            fields[number] = payload[pos:pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(payload):
                raise ValueError("end-of-stream")
        else:
            raise ValueError("invalid wire_type")
    address = fields.get(1, b"")
    port = fields.get(2, 0)
    public_key = fields.get(3, b"")
    sign = fields.get(4, b"")
    if not (isinstance(address, bytes) and isinstance(port, int)
            and isinstance(public_key, bytes) and isinstance(sign, bytes)):
        raise ValueError("wrong wire type")
    return ServerMovedRequest(address.split(b"\x00", 1)[0].decode("utf-8", "backslashreplace"),
                              port & 0xFFFFFFFF, public_key, sign)


def encode_server_moved(request: ServerMovedRequest) -> bytes:
    """The protobuf encoding a cloud sends (for tests and the emulated cloud)."""
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    def length_delimited(number: int, data: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(data)) + data

    out = length_delimited(1, request.address.encode("utf-8"))
    if request.port:
        out += varint(2 << 3) + varint(request.port)
    return out + length_delimited(3, request.public_key) + length_delimited(4, request.signature)


__all__ = ["DEFAULT_SERVER_PUBLIC_KEY", "DEFAULT_UDP_SERVER_ADDRESS", "DEFAULT_UDP_SERVER_PORT",
           "ServerConfig", "ServerMovedRequest", "ServerSettings", "decode_server_moved",
           "encode_server_moved", "server_moved_digest", "server_moved_digest_input"]
