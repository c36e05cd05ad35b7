"""Host-side builders of control requests: the bytes to send and how to read the answer.

How this works: each function returns a ``Call[T]``: an ``EncodedRequest`` (type number and
payload bytes) plus a parser that turns the device's reply payload into a plain Python value
(``str``, ``bool``, a small dataclass, ...). Nothing here does I/O, so every transport client
(USB, BLE, serial, tests) can share it::

    call = requests.set_claim_code("MYCLAIMCODE")
    call.request      # EncodedRequest(type=200, payload=b'\\n\\x0bMYCLAIMCODE')
    call.result(transport_reply)   # None, or ControlRequestFailed(code) on a non-zero result

Payloads follow what particle-usb sends for the same request; where protobufjs writes an
explicitly set default value (``hidden: false``) Python's protobuf omits it, which the device
decodes identically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, NamedTuple, TypeVar

from google.protobuf.message import Message

from ._pb import cellular_pb2, config_pb2, network_pb2, storage_pb2, wifi_pb2
from .codec import decode_reply, encode_request, message_pair, request_class
from .errors import ControlRequestFailed
from .services import FirmwareModuleInfo, NetworkInterface
from .types import (
    CloudConnectionStatus,
    DeviceMode,
    RequestType,
    WifiCredentialsType,
    WifiSecurity,
)

T = TypeVar("T")
E = TypeVar("E", bound=IntEnum)


@dataclass(frozen=True)
class EncodedRequest:
    """A control request ready for a transport: its type number and payload bytes."""

    type: int
    payload: bytes = b""


class ControlReply(NamedTuple):
    """What a transport returns: the ``system_error_t`` result and the reply payload."""

    result: int
    data: bytes = b""


@dataclass(frozen=True)
class Call(Generic[T]):
    """An ``EncodedRequest`` plus the parser of its reply payload."""

    request: EncodedRequest
    parse: Callable[[bytes], T] = field(compare=False, repr=False)

    def result(self, reply: tuple[int, bytes]) -> T:
        """Parsed reply value; ``ControlRequestFailed`` if the result code is not 0."""
        result, data = reply
        if result != 0:
            raise ControlRequestFailed(result, self.request.type)
        return self.parse(bytes(data))


# -- plain values of replies ------------------------------------------------------------------


@dataclass(frozen=True)
class NcpFirmwareVersion:
    version: str
    module_version: int


@dataclass(frozen=True)
class ProtectedState:
    protected: bool
    overridden: bool


@dataclass(frozen=True)
class ServerAddress:
    address: str
    port: int


@dataclass(frozen=True)
class KnownNetwork:
    ssid: str
    security: WifiSecurity | int
    credentials_type: WifiCredentialsType | int


@dataclass(frozen=True)
class ScannedNetwork:
    ssid: str  # empty for hidden networks
    bssid: bytes
    security: WifiSecurity | int
    channel: int
    rssi: int

    @property
    def bssid_text(self) -> str:
        """``aa:bb:cc:dd:ee:ff`` as particle-usb shows it."""
        return mac_text(self.bssid)


@dataclass(frozen=True)
class CurrentNetwork:
    ssid: str
    bssid: bytes
    channel: int
    rssi: int

    @property
    def bssid_text(self) -> str:
        return mac_text(self.bssid)


@dataclass(frozen=True)
class CellularIdentity:
    iccid: str
    imei: str


def mac_text(address: bytes) -> str:
    """Lowercase, colon-separated hex, as particle-usb's ``convertBufferToMacAddress``."""
    return ":".join(f"{byte:02x}" for byte in address)


def _enum_or_int(enum: type[E], value: int) -> E | int:
    try:
        return enum(value)
    except ValueError:
        return value


# -- generic building blocks ------------------------------------------------------------------


def build(request_type: int, message: Message | None = None, **fields: Any) -> EncodedRequest:
    """Encode a request by type: ``build(RequestType.SET_CLAIM_CODE, code="X")``.

    ``message`` must be an instance of the type's request class; ``fields`` initialise a new
    one. Types without protobuf messages take a raw payload through ``raw()`` instead.
    """
    cls = request_class(request_type)
    if message is None:
        message = cls(**fields)
    elif fields:
        raise TypeError("pass either a message or fields, not both")
    elif not isinstance(message, cls):
        raise TypeError(
            f"request type {request_type} takes {cls.DESCRIPTOR.full_name}, "
            f"not {message.DESCRIPTOR.full_name}"
        )
    return EncodedRequest(int(request_type), encode_request(message))


def _ignore_reply(_data: bytes) -> None:
    return None


def _raw_reply(data: bytes) -> bytes:
    return data


def _message_call(request_type: RequestType, parse: Callable[[Any], T], **fields: Any) -> Call[T]:
    def parse_reply(data: bytes) -> T:
        return parse(decode_reply(request_type, data))

    return Call(build(request_type, **fields), parse_reply)


def _empty_call(request_type: RequestType, **fields: Any) -> Call[None]:
    """A request whose reply carries nothing (empty reply message or no message)."""
    if message_pair(request_type) is None:
        return Call(EncodedRequest(int(request_type)), _ignore_reply)
    return Call(build(request_type, **fields), _ignore_reply)


def raw(request_type: int, payload: bytes = b"") -> Call[bytes]:
    """Any request with a raw payload (ECHO, APP_CUSTOM, unknown numbers); raw reply."""
    return Call(EncodedRequest(int(request_type), bytes(payload)), _raw_reply)


# -- one function per request -----------------------------------------------------------------


def echo(data: bytes) -> Call[bytes]:
    return raw(RequestType.ECHO, data)


def app_custom(payload: bytes) -> Call[bytes]:
    return raw(RequestType.APP_CUSTOM, payload)


def get_device_id() -> Call[str]:
    return _message_call(RequestType.DEVICE_ID, lambda r: str(r.id))


def get_serial_number() -> Call[str]:
    return _message_call(RequestType.SERIAL_NUMBER, lambda r: str(r.serial))


def get_system_version() -> Call[str]:
    return _message_call(RequestType.SYSTEM_VERSION, lambda r: str(r.version))


def get_ncp_firmware_version() -> Call[NcpFirmwareVersion]:
    return _message_call(
        RequestType.NCP_FIRMWARE_VERSION,
        lambda r: NcpFirmwareVersion(str(r.version), int(r.module_version)),
    )


def get_system_capabilities() -> Call[int]:
    """``SystemCapability`` bit flags."""
    return _message_call(RequestType.GET_SYSTEM_CAPABILITIES, lambda r: int(r.flags))


def set_feature(feature: int, enabled: bool) -> Call[None]:
    return _empty_call(RequestType.SET_FEATURE, feature=feature, enabled=enabled)


def get_feature(feature: int) -> Call[bool]:
    return _message_call(RequestType.GET_FEATURE, lambda r: bool(r.enabled), feature=feature)


def reset() -> Call[None]:
    return _empty_call(RequestType.RESET)


def factory_reset() -> Call[None]:
    return _empty_call(RequestType.FACTORY_RESET)


def enter_dfu_mode() -> Call[None]:
    return _empty_call(RequestType.DFU_MODE)


def enter_safe_mode() -> Call[None]:
    return _empty_call(RequestType.SAFE_MODE)


def start_listening() -> Call[None]:
    return _empty_call(RequestType.START_LISTENING)


def stop_listening() -> Call[None]:
    return _empty_call(RequestType.STOP_LISTENING)


def get_device_mode() -> Call[DeviceMode | int]:
    return _message_call(
        RequestType.GET_DEVICE_MODE, lambda r: _enum_or_int(DeviceMode, int(r.mode))
    )


def set_device_setup_done(done: bool = True) -> Call[None]:
    return _empty_call(RequestType.SET_DEVICE_SETUP_DONE, done=done)


def is_device_setup_done() -> Call[bool]:
    return _message_call(RequestType.IS_DEVICE_SETUP_DONE, lambda r: bool(r.done))


def set_startup_mode(mode: DeviceMode | int) -> Call[None]:
    return _empty_call(RequestType.SET_STARTUP_MODE, mode=int(mode))


def get_protected_state() -> Call[ProtectedState]:
    return _message_call(
        RequestType.GET_PROTECTED_STATE,
        lambda r: ProtectedState(bool(r.state), bool(r.overridden)),
    )


def set_claim_code(code: str) -> Call[None]:
    """Sent as given, without validation, like particle-usb's ``setClaimCode``."""
    return _empty_call(RequestType.SET_CLAIM_CODE, code=code)


def is_claimed() -> Call[bool]:
    return _message_call(RequestType.IS_CLAIMED, lambda r: bool(r.claimed))


def set_security_key(key_type: int, data: bytes) -> Call[None]:
    return _empty_call(RequestType.SET_SECURITY_KEY, type=key_type, data=data)


def get_security_key(key_type: int) -> Call[bytes]:
    return _message_call(RequestType.GET_SECURITY_KEY, lambda r: bytes(r.data), type=key_type)


def set_server_address(
    address: str, port: int = 0, protocol: int = config_pb2.UDP_PROTOCOL
) -> Call[None]:
    return _empty_call(
        RequestType.SET_SERVER_ADDRESS, protocol=protocol, address=address, port=port
    )


def get_server_address(protocol: int = config_pb2.UDP_PROTOCOL) -> Call[ServerAddress]:
    return _message_call(
        RequestType.GET_SERVER_ADDRESS,
        lambda r: ServerAddress(str(r.address), int(r.port)),
        protocol=protocol,
    )


def set_server_protocol(protocol: int) -> Call[None]:
    return _empty_call(RequestType.SET_SERVER_PROTOCOL, protocol=protocol)


def get_server_protocol() -> Call[int]:
    return _message_call(RequestType.GET_SERVER_PROTOCOL, lambda r: int(r.protocol))


def start_nyan_signal() -> Call[None]:
    return _empty_call(RequestType.START_NYAN_SIGNAL)


def stop_nyan_signal() -> Call[None]:
    return _empty_call(RequestType.STOP_NYAN_SIGNAL)


def set_softap_ssid(prefix: str, suffix: str = "") -> Call[None]:
    return _empty_call(RequestType.SET_SOFTAP_SSID, prefix=prefix, suffix=suffix)


def cloud_connection_status() -> Call[CloudConnectionStatus | int]:
    return _message_call(
        RequestType.CLOUD_GET_CONNECTION_STATUS,
        lambda r: _enum_or_int(CloudConnectionStatus, int(r.status)),
    )


def cloud_connect() -> Call[None]:
    return _empty_call(RequestType.CLOUD_CONNECT)


def cloud_disconnect() -> Call[None]:
    return _empty_call(RequestType.CLOUD_DISCONNECT)


def _network_fields(
    ssid: str,
    password: str | None,
    security: WifiSecurity | int | None,
    hidden: bool,
    bssid: bytes | None,
) -> dict[str, Any]:
    """The fields particle-usb's ``joinNewWifiNetwork`` / ``setWifiCredentials`` send.

    Without a password: the SSID and NO_SECURITY. With one: PASSWORD credentials, the
    security if given (particle-usb leaves it out otherwise) and the hidden flag.
    """
    fields: dict[str, Any] = {"ssid": ssid}
    if bssid:
        fields["bssid"] = bytes(bssid)
    if password is None:
        fields["security"] = int(WifiSecurity.NO_SECURITY)
        return fields
    if security is not None:
        fields["security"] = int(security)
    fields["credentials"] = wifi_pb2.Credentials(type=wifi_pb2.PASSWORD, password=password)
    fields["hidden"] = hidden
    return fields


def join_new_network(
    ssid: str,
    password: str | None = None,
    security: WifiSecurity | int | None = None,
    *,
    hidden: bool = False,
    bssid: bytes | None = None,
) -> Call[None]:
    fields = _network_fields(ssid, password, security, hidden, bssid)
    return _empty_call(RequestType.WIFI_JOIN_NEW_NETWORK, **fields)


def set_network_credentials(
    ssid: str,
    password: str | None = None,
    security: WifiSecurity | int | None = None,
    *,
    hidden: bool = False,
    bssid: bytes | None = None,
) -> Call[None]:
    fields = _network_fields(ssid, password, security, hidden, bssid)
    return _empty_call(RequestType.WIFI_SET_NETWORK_CREDENTIALS, **fields)


def join_known_network(ssid: str) -> Call[None]:
    return _empty_call(RequestType.WIFI_JOIN_KNOWN_NETWORK, ssid=ssid)


def get_known_networks() -> Call[list[KnownNetwork]]:
    def parse(reply: wifi_pb2.GetKnownNetworksReply) -> list[KnownNetwork]:
        return [
            KnownNetwork(
                str(n.ssid),
                _enum_or_int(WifiSecurity, int(n.security)),
                _enum_or_int(WifiCredentialsType, int(n.credentials_type)),
            )
            for n in reply.networks
        ]

    return _message_call(RequestType.WIFI_GET_KNOWN_NETWORKS, parse)


def remove_known_network(ssid: str) -> Call[None]:
    return _empty_call(RequestType.WIFI_REMOVE_KNOWN_NETWORK, ssid=ssid)


def clear_known_networks() -> Call[None]:
    return _empty_call(RequestType.WIFI_CLEAR_KNOWN_NETWORKS)


def get_current_network() -> Call[CurrentNetwork]:
    return _message_call(
        RequestType.WIFI_GET_CURRENT_NETWORK,
        lambda r: CurrentNetwork(str(r.ssid), bytes(r.bssid), int(r.channel), int(r.rssi)),
    )


def scan_networks() -> Call[list[ScannedNetwork]]:
    def parse(reply: wifi_pb2.ScanNetworksReply) -> list[ScannedNetwork]:
        return [
            ScannedNetwork(
                str(n.ssid),
                bytes(n.bssid),
                _enum_or_int(WifiSecurity, int(n.security)),
                int(n.channel),
                int(n.rssi),
            )
            for n in reply.networks
        ]

    return _message_call(RequestType.WIFI_SCAN_NETWORKS, parse)


@dataclass(frozen=True)
class InterfaceEntry:
    """One entry of NETWORK_GET_INTERFACE_LIST: ``type`` is ``particle.ctrl.InterfaceType``."""

    index: int
    name: str
    type: int


def get_interface_list() -> Call[list[InterfaceEntry]]:
    def parse(reply: network_pb2.GetInterfaceListReply) -> list[InterfaceEntry]:
        return [InterfaceEntry(int(e.index), str(e.name), int(e.type)) for e in reply.interfaces]

    return _message_call(RequestType.NETWORK_GET_INTERFACE_LIST, parse)


def get_interface(index: int) -> Call[NetworkInterface]:
    """NETWORK_GET_INTERFACE: the interface at ``index`` (an unknown index fails with -1)."""
    def parse(reply: network_pb2.GetInterfaceReply) -> NetworkInterface:
        i = reply.interface
        return NetworkInterface(
            int(i.index), str(i.name), int(i.type), int(i.flags), int(i.ext_flags), int(i.mtu),
            bytes(i.hw_address),
            tuple((int(a.address.v4.address).to_bytes(4, "big"), int(a.prefix_length))
                  for a in i.ipv4_config.addresses),
            tuple((bytes(a.address.v6.address), int(a.prefix_length))
                  for a in i.ipv6_config.addresses))

    return _message_call(RequestType.NETWORK_GET_INTERFACE, parse, index=index)


def get_module_info() -> Call[list[FirmwareModuleInfo]]:
    """GET_MODULE_INFO: the firmware modules (the current ``modules`` list of the reply)."""
    def parse(reply: storage_pb2.GetModuleInfoReply) -> list[FirmwareModuleInfo]:
        return [FirmwareModuleInfo(
            int(m.type), int(m.index), int(m.version), int(m.size), int(m.max_size),
            int(m.checked_flags), int(m.passed_flags), bytes(m.hash),
            tuple((int(d.type), int(d.index), int(d.version)) for d in m.dependencies),
            int(m.store)) for m in reply.modules]

    return _message_call(RequestType.GET_MODULE_INFO, parse)


def get_iccid() -> Call[CellularIdentity]:
    def parse(reply: cellular_pb2.GetIccidReply) -> CellularIdentity:
        return CellularIdentity(str(reply.iccid), str(reply.imei))

    return _message_call(RequestType.CELLULAR_GET_ICCID, parse)


def diagnostic_info() -> Call[bytes]:
    """The raw diagnostic data (the request must be empty, as on the device)."""
    return raw(RequestType.DIAGNOSTIC_INFO)


__all__ = [
    "Call",
    "CellularIdentity",
    "ControlReply",
    "CurrentNetwork",
    "EncodedRequest",
    "InterfaceEntry",
    "KnownNetwork",
    "NcpFirmwareVersion",
    "ProtectedState",
    "ScannedNetwork",
    "ServerAddress",
    "app_custom",
    "build",
    "clear_known_networks",
    "cloud_connect",
    "cloud_connection_status",
    "cloud_disconnect",
    "diagnostic_info",
    "echo",
    "enter_dfu_mode",
    "enter_safe_mode",
    "factory_reset",
    "get_current_network",
    "get_device_id",
    "get_device_mode",
    "get_feature",
    "get_iccid",
    "get_interface",
    "get_interface_list",
    "get_known_networks",
    "get_module_info",
    "get_ncp_firmware_version",
    "get_protected_state",
    "get_security_key",
    "get_serial_number",
    "get_server_address",
    "get_server_protocol",
    "get_system_capabilities",
    "get_system_version",
    "is_claimed",
    "is_device_setup_done",
    "join_known_network",
    "join_new_network",
    "mac_text",
    "raw",
    "remove_known_network",
    "reset",
    "scan_networks",
    "set_claim_code",
    "set_device_setup_done",
    "set_feature",
    "set_network_credentials",
    "set_server_address",
    "set_server_protocol",
    "set_softap_ssid",
    "set_startup_mode",
    "start_listening",
    "start_nyan_signal",
    "stop_listening",
    "stop_nyan_signal",
]
