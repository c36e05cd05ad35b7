"""The SoftAP setup commands of a Gen2 Photon: JSON in, JSON out (``hal/src/photon/softap.cpp``).

How this works
--------------
Both transports (raw TCP and HTTP) hand a command name and the request body here;
:meth:`SoftApCommands.execute` answers through a callback with the reply bytes, or ``None`` when
the device writes no response (a request body that fails to parse, or cannot be fetched because
it is larger than the device's heap allows). Replies are built byte for byte as the device
writes them (fixed key order, no spaces, ids and key hex upper-case, SSIDs not escaped):

===============  ==================================================================
``version``      ``{"v":2}``
``device-id``    ``{"id":"<24 HEX>","c":"1"|"0"}`` (``c``: ``HAL_IsDeviceClaimed``)
``scan-ap``      ``{"scans":[{"ssid":..,"rssi":..,"sec":..,"ch":..,"mdr":..},..]}`` after
                 ``scan_time_s``; ``sec`` is the WICED security value
``configure-ap`` ``{"r":n}``: decrypt ``pwd`` (and ``ek``), validate, store the credentials
``connect-ap``   ``{"r":0}``, then SoftAP and listening mode end and the device connects
``public-key``   ``{"b":"<hex of 294 DCT bytes>","r":0}``
``set``          ``{"r":0}`` for ``k:"cc"`` (``HAL_Set_Claim_Code``), ``{"r":-1}`` otherwise
===============  ==================================================================

``configure-ap`` result codes: a failed RSA decryption's mbedTLS code (see ``keys``) comes first;
then ``wlan_set_credentials``: -3 SSID empty or longer than 32 bytes, -2 a WPA/WPA2 network
that is not in range (Device OS sniffs the cipher with a scan because ``configure-ap`` carries no
cipher), -4 a WEP key outside 5..58 or a WPA passphrase outside 8..64 bytes, 1 an incomplete
enterprise configuration.

``set`` copies the key into a 3-byte buffer and the value into a 64-byte one with
``strncpy(dst, src, n); dst[n-1] = 0``, so a key keeps 2 characters and a value 63 (a longer
value is cut, not refused). ``SoftApOptions.strict_set_lengths`` answers -1 instead for a key
over 3 or a value over 64 characters.

``connect-ap`` on the device ignores its body (its index parsing is a "todo"): it always answers
0, leaves SoftAP, and the system then connects with whatever credentials it has - or, having
none, goes back to listening mode. ``SoftApOptions.connect_requires_configured_index`` makes
fwsim check ``idx`` instead (-1 when no credentials are known at that index).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from control_requests.services import VisibleNetwork
from control_requests.types import WifiSecurity
from firmware_sim.kernel.trace import Tracer
from firmware_sim.kernel.world import World

from ..device_surface import SoftApDevice
from . import security as sec
from .jsonreq import (
    JsonRequestError,
    JsonType,
    c_atoi,
    json_unescape,
    parse_request,
    raw_bytes,
)
from .keys import device_decrypt, device_hex_decode, public_key_reply_hex
from .options import SoftApOptions

Reply = Callable[[bytes | None], None]

COMMAND_NAMES = ("version", "device-id", "scan-ap", "configure-ap", "connect-ap", "public-key",
                 "set")
ANTENNA_COMMANDS = {"ant-internal": "internal", "ant-external": "external"}

# wlan_hal.h result codes
WLAN_SET_CREDENTIALS_CIPHER_REQUIRED = -2
WLAN_INVALID_SSID_LENGTH = -3
WLAN_INVALID_KEY_LENGTH = -4
EAP_CONFIG_INVALID = 1
SSID_NAME_SIZE = 32
WSEC_MIN_PSK_LEN = 8
WSEC_MAX_PSK_LEN = 64

_S = JsonType.STRING
_P = JsonType.PRIMITIVE
CONFIGURE_AP_KEYS = {"idx": _P, "ssid": _S, "pwd": _S, "ch": _P, "sec": _P, "eap": _P,
                     "oi": _S, "ii": _S, "crt": _S, "ek": _S, "key": _S, "ca": _S}
SET_KEYS = {"k": _S, "v": _S}
CONNECT_AP_KEYS = {"idx": _P}
SET_KEY_BUFFER = 3
SET_VALUE_BUFFER = 64


def result_reply(result: int) -> bytes:
    return b'{"r":%d}' % result


@dataclass(frozen=True)
class EnterpriseConfig:
    """What ``configure-ap`` stored for an enterprise network (the Photon keeps one)."""

    ssid: str
    eap_type: int
    outer_identity: str
    inner_identity: str
    client_certificate: str
    private_key: bytes
    ca_certificate: str
    password: bytes | None


def _aes_cbc_decrypt_hex(hex_text: bytes, key_iv: bytes) -> bytes:
    """``decrypt_private_key``: hex blocks, AES-128-CBC, padding bytes kept (as the device)."""
    data = device_hex_decode(hex_text, (len(hex_text) + 1) // 2)
    if len(data) % 16:
        data = data.ljust(len(data) + 16 - len(data) % 16, b"\x00")
    decryptor = Cipher(algorithms.AES(key_iv[:16]), modes.CBC(key_iv[16:32])).decryptor()
    return decryptor.update(data) + decryptor.finalize()


class CommandHost(Protocol):
    """What the commands use of their SoftAP (:class:`~.service.SoftAp`)."""

    @property
    def options(self) -> SoftApOptions: ...
    @property
    def tracer(self) -> Tracer: ...
    @property
    def world(self) -> World: ...
    @property
    def device(self) -> SoftApDevice: ...
    #: The device RSA key (None before the first boot).
    @property
    def key(self) -> rsa.RSAPrivateKey | None: ...
    #: ``configure-ap`` index -> SSID, for this SoftAP session.
    @property
    def slots(self) -> dict[int, str]: ...
    #: The enterprise configuration ``configure-ap`` stored last.
    enterprise: EnterpriseConfig | None

    def schedule_complete(self) -> None: ...
    def has_credentials_at(self, index: int) -> bool: ...


def _visible_networks(device: SoftApDevice) -> list[VisibleNetwork]:
    """What a scan finds now (hidden networks are not listed), strongest first."""
    return device.control.services.wifi_scan()


class SoftApCommands:
    """The seven commands, bound to one device's SoftAP."""

    def __init__(self, softap: CommandHost) -> None:
        self.softap = softap

    @staticmethod
    def knows(name: str) -> bool:
        return name in COMMAND_NAMES

    def reads_body(self, name: str) -> bool:
        """Whether the command fetches the request body before answering."""
        if name == "connect-ap":
            return self.softap.options.connect_requires_configured_index
        return name in ("configure-ap", "set")

    def execute(self, name: str, body: bytes | None, reply: Reply, *, conn: int,
                protocol: str) -> None:
        """Run ``name``; ``body`` None means the device could not fetch it (too large)."""
        softap = self.softap
        softap.tracer.emit("softap.command", conn=conn, protocol=protocol, name=name,
                           size=None if body is None else len(body))

        def answer(payload: bytes | None) -> None:
            softap.tracer.emit("softap.reply", conn=conn, name=name,
                               reply=None if payload is None else payload.decode(
                                   "utf-8", "replace")[:200])
            reply(payload)

        if name == "scan-ap":
            softap.world.call_later(softap.options.scan_time_s,
                                    lambda: answer(self._scan()), label="softap-scan")
            return
        if name == "version":
            answer(b'{"v":2}')
        elif name == "device-id":
            claimed = "1" if softap.device.control.services.is_claimed() else "0"
            answer(b'{"id":"%s","c":"%s"}' % (softap.device.device_id.upper().encode(),
                                               claimed.encode()))
        elif name == "public-key":
            answer(self._public_key())
        elif name == "connect-ap":
            answer(self._connect_ap(body))
        elif name in ("configure-ap", "set"):
            if body is None:
                softap.tracer.emit("softap.body_not_fetched", conn=conn, name=name,
                                   limit=softap.options.max_body_bytes)
                answer(None)
                return
            handler = self._configure_ap if name == "configure-ap" else self._set
            try:
                result = handler(body)
            except JsonRequestError as exc:
                softap.tracer.emit("softap.bad_json", conn=conn, name=name, error=str(exc))
                answer(None)
                return
            answer(result_reply(result))
        else:
            raise ValueError(f"unknown SoftAP command {name!r}")

    # -- commands --------------------------------------------------------------------------

    def _scan(self) -> bytes:
        parts: list[bytes] = []
        rate = self.softap.options.max_data_rate
        for network in _visible_networks(self.softap.device):
            ssid = network.ssid.encode("utf-8")[:SSID_NAME_SIZE]
            if not ssid:
                continue
            parts.append(b'{"ssid":"%s","rssi":%d,"sec":%d,"ch":%d,"mdr":%d}' % (
                ssid, network.rssi, sec.wiced_from_radio(WifiSecurity(network.security)),
                network.channel, rate))
        return b'{"scans":[' + b",".join(parts) + b"]}"

    def _public_key(self) -> bytes:
        if self.softap.key is None:
            return b'{"r":1}'
        return b'{"b":"%s","r":0}' % public_key_reply_hex(self.softap.device).encode()

    def _set(self, body: bytes) -> int:
        values = parse_request(body, SET_KEYS)
        key = raw_bytes(values.get("k", ""))
        value = raw_bytes(values.get("v", ""))
        tracer = self.softap.tracer
        if self.softap.options.strict_set_lengths and (
                len(key) > SET_KEY_BUFFER or len(value) > SET_VALUE_BUFFER):
            tracer.emit("softap.set_rejected", key=key.decode("latin-1"), value_length=len(value),
                        reason="key over 3 or value over 64 characters (strict)")
            return -1
        key = key.split(b"\x00")[0][:SET_KEY_BUFFER - 1]
        value = value.split(b"\x00")[0][:SET_VALUE_BUFFER - 1]
        if not key or not value or key != b"cc":
            tracer.emit("softap.set_rejected", key=key.decode("latin-1"), value_length=len(value),
                        reason="empty key or value" if not key or not value else "unknown key")
            return -1
        result = self.softap.device.control.services.set_claim_code(value)
        tracer.emit("softap.claim_code_set", code=value.decode("latin-1"), result=result)
        return result

    def _connect_ap(self, body: bytes | None) -> bytes | None:
        softap = self.softap
        if softap.options.connect_requires_configured_index:
            if body is None:
                return None
            try:
                values = parse_request(body, CONNECT_AP_KEYS)
            except JsonRequestError as exc:
                softap.tracer.emit("softap.bad_json", name="connect-ap", error=str(exc))
                return None
            index = c_atoi(values.get("idx", "0"))
            if not softap.has_credentials_at(index):
                softap.tracer.emit("softap.connect_rejected", idx=index,
                                   reason="no credentials at this index (strict)")
                return result_reply(-1)
        softap.schedule_complete()
        return result_reply(0)

    def _configure_ap(self, body: bytes) -> int:
        values = parse_request(body, CONFIGURE_AP_KEYS)
        softap = self.softap
        key = softap.key
        decrypt_result = 0
        password: bytes | None = None
        key_iv: bytes | None = None
        for name, raw in values.items():
            data = raw_bytes(raw)
            if name == "pwd":
                if len(data) // 2 and key is not None:
                    decrypted = device_decrypt(key, data, len(data))
                    decrypt_result = decrypted.result
                    password = decrypted.plaintext.split(b"\x00")[0] if decrypted.ok else b""
                else:
                    password = data
            elif name == "ek" and len(data) // 2 and key is not None:
                decrypted = device_decrypt(key, data, len(data))
                decrypt_result = decrypted.result
                key_iv = decrypted.plaintext.ljust(32, b"\x00") if decrypted.ok else None
        index = c_atoi(values.get("idx", "0"))
        ssid_bytes = raw_bytes(values.get("ssid", ""))
        security = c_atoi(values["sec"]) if "sec" in values else None
        channel = c_atoi(values.get("ch", "0"))
        eap_type = c_atoi(values.get("eap", "0"))
        tracer = softap.tracer
        if decrypt_result < 0:
            tracer.emit("softap.decrypt_failed", ssid=ssid_bytes.decode("utf-8", "replace"),
                        result=decrypt_result)
            return decrypt_result
        result, wiced = self._credential_security(ssid_bytes, security, password, eap_type)
        enterprise: EnterpriseConfig | None = None
        if result == 0 and eap_type != 0:
            enterprise = self._enterprise(values, ssid_bytes, eap_type, password, key_iv)
            if enterprise is None:
                result = EAP_CONFIG_INVALID
        if result != 0:
            tracer.emit("softap.credentials_rejected", ssid=ssid_bytes.decode("utf-8", "replace"),
                        result=result, security=security)
            return result
        ssid = ssid_bytes.decode("utf-8", "surrogateescape")
        stored_password = None if wiced == sec.WicedSecurity.OPEN or password is None else (
            password.decode("utf-8", "surrogateescape"))
        softap.device.store_wifi_credentials(ssid, stored_password, sec.radio_from_wiced(wiced))
        softap.slots[index] = ssid
        if enterprise is not None:
            softap.enterprise = enterprise
            tracer.emit("softap.enterprise_stored", ssid=ssid, eap=eap_type,
                        certificate_length=len(enterprise.client_certificate),
                        private_key_length=len(enterprise.private_key))
        tracer.emit("softap.credentials_stored", idx=index, ssid=ssid, security=wiced,
                    channel=channel, password_length=len(password or b""))
        return 0

    def _credential_security(self, ssid: bytes, security: int | None, password: bytes | None,
                             eap_type: int) -> tuple[int, int]:
        """``wlan_set_credentials_internal``'s checks; returns (result, wiced security)."""
        if not ssid or len(ssid) > SSID_NAME_SIZE:
            return WLAN_INVALID_SSID_LENGTH, 0
        kind = sec.security_kind(security)
        enterprise = kind.endswith("_enterprise") or eap_type != 0
        if kind == "unsec":
            wiced = int(sec.WicedSecurity.OPEN)
        elif kind == "wep":
            wiced = int(sec.WicedSecurity.WEP_PSK)
        else:
            # WPA/WPA2 (or not set) without a cipher: Device OS scans for the SSID and takes
            # the security the access point advertises.
            wanted = ssid.decode("utf-8", "surrogateescape")
            found = next((network for network in _visible_networks(self.softap.device)
                          if network.ssid == wanted), None)
            if found is None:  # out of range, or hidden (a scan does not list it)
                return WLAN_SET_CREDENTIALS_CIPHER_REQUIRED, 0
            wiced = sec.wiced_from_radio(WifiSecurity(found.security))
            if wiced == sec.WicedSecurity.UNKNOWN:
                return WLAN_SET_CREDENTIALS_CIPHER_REQUIRED, 0
            if enterprise and wiced != sec.WicedSecurity.OPEN:
                wiced |= sec.ENTERPRISE_ENABLED  # the simulated radio has no enterprise APs
        length = len(password) if password is not None else 0
        if wiced & sec.WEP_ENABLED and (password is None or not 5 <= length <= 58):
            return WLAN_INVALID_KEY_LENGTH, wiced
        if (wiced & (sec.WPA_SECURITY | sec.WPA2_SECURITY) and not wiced & sec.ENTERPRISE_ENABLED
                and (password is None or not WSEC_MIN_PSK_LEN <= length <= WSEC_MAX_PSK_LEN)):
            return WLAN_INVALID_KEY_LENGTH, wiced
        return 0, wiced

    def _enterprise(self, values: dict[str, str], ssid: bytes, eap_type: int,
                    password: bytes | None, key_iv: bytes | None) -> EnterpriseConfig | None:
        """The EAP part of ``configure-ap``; None when the configuration is not valid."""
        certificate = json_unescape(values.get("crt", "")) or ""
        ca = json_unescape(values.get("ca", "")) or ""
        private_key = b""
        if "key" in values and key_iv is not None:
            private_key = _aes_cbc_decrypt_hex(raw_bytes(values["key"]), key_iv)
        config = EnterpriseConfig(
            ssid=ssid.decode("utf-8", "surrogateescape"), eap_type=eap_type,
            outer_identity=values.get("oi", ""), inner_identity=values.get("ii", ""),
            client_certificate=certificate, private_key=private_key, ca_certificate=ca,
            password=password)
        if eap_type == sec.EAP_TLS:
            return config if certificate and private_key else None
        if eap_type == sec.EAP_PEAP:
            return config if config.inner_identity and password else None
        return None
