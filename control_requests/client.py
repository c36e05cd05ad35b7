"""Transport-agnostic control-request client for host-side tools and tests.

How this works: a transport client (USB, BLE, serial, an in-process device) subclasses
``ControlClient`` and implements one coroutine, ``send_request(type, payload)``, returning the
device's ``(result, reply bytes)``. Everything else is shared: every typed helper builds its
request with ``control_requests.requests`` (pure encoding), sends it, and parses the reply into
a plain Python value, raising ``ControlRequestFailed`` (a ``DeviceOsError`` carrying the result
code) when the device answers with a non-zero result.

Synchronous callers use the same ``requests`` functions directly::

    call = requests.is_claimed()
    claimed = call.result(my_sync_transport.send(call.request.type, call.request.payload))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

from . import requests
from .codec import decode_reply, encode_request
from .errors import ControlRequestFailed
from .requests import (
    Call,
    CellularIdentity,
    ControlReply,
    CurrentNetwork,
    EncodedRequest,
    KnownNetwork,
    NcpFirmwareVersion,
    ProtectedState,
    ScannedNetwork,
    ServerAddress,
)
from .types import CloudConnectionStatus, DeviceMode, WifiSecurity

T = TypeVar("T")


class ControlClient(ABC):
    """Typed control requests over any transport; subclasses provide ``send_request``."""

    @abstractmethod
    async def send_request(self, request_type: int, payload: bytes) -> tuple[int, bytes]:
        """Send one request; return the device's ``(result code, reply payload)``."""

    async def call(self, call: Call[T]) -> T:
        """Send a prepared ``Call`` and return its parsed reply (or raise on failure)."""
        reply = await self.send_request(call.request.type, call.request.payload)
        return call.result(reply)

    async def send_raw(self, request_type: int, payload: bytes = b"") -> ControlReply:
        """Send anything (unknown types, malformed payloads); never raises on a result."""
        result, data = await self.send_request(int(request_type), bytes(payload))
        return ControlReply(int(result), bytes(data))

    # -- identity and system ------------------------------------------------------------------

    async def echo(self, data: bytes) -> bytes:
        return await self.call(requests.echo(data))

    async def get_device_id(self) -> str:
        return await self.call(requests.get_device_id())

    async def get_serial_number(self) -> str:
        return await self.call(requests.get_serial_number())

    async def get_system_version(self) -> str:
        return await self.call(requests.get_system_version())

    async def get_ncp_firmware_version(self) -> NcpFirmwareVersion:
        return await self.call(requests.get_ncp_firmware_version())

    async def get_system_capabilities(self) -> int:
        return await self.call(requests.get_system_capabilities())

    async def diagnostic_info(self) -> bytes:
        return await self.call(requests.diagnostic_info())

    async def reset(self) -> None:
        await self.call(requests.reset())

    async def factory_reset(self) -> None:
        await self.call(requests.factory_reset())

    async def enter_dfu_mode(self) -> None:
        await self.call(requests.enter_dfu_mode())

    async def enter_safe_mode(self) -> None:
        await self.call(requests.enter_safe_mode())

    # -- modes ----------------------------------------------------------------------------------

    async def start_listening(self) -> None:
        await self.call(requests.start_listening())

    async def stop_listening(self) -> None:
        await self.call(requests.stop_listening())

    async def get_device_mode(self) -> DeviceMode | int:
        return await self.call(requests.get_device_mode())

    async def set_device_setup_done(self, done: bool = True) -> None:
        await self.call(requests.set_device_setup_done(done))

    async def is_device_setup_done(self) -> bool:
        return await self.call(requests.is_device_setup_done())

    async def set_startup_mode(self, mode: DeviceMode | int) -> None:
        await self.call(requests.set_startup_mode(mode))

    async def get_protected_state(self) -> ProtectedState:
        return await self.call(requests.get_protected_state())

    async def start_nyan_signal(self) -> None:
        await self.call(requests.start_nyan_signal())

    async def stop_nyan_signal(self) -> None:
        await self.call(requests.stop_nyan_signal())

    # -- claiming and cloud settings ------------------------------------------------------------

    async def set_claim_code(self, code: str) -> None:
        await self.call(requests.set_claim_code(code))

    async def is_claimed(self) -> bool:
        return await self.call(requests.is_claimed())

    async def set_security_key(self, key_type: int, data: bytes) -> None:
        await self.call(requests.set_security_key(key_type, data))

    async def get_security_key(self, key_type: int) -> bytes:
        return await self.call(requests.get_security_key(key_type))

    async def set_server_address(self, address: str, port: int = 0) -> None:
        await self.call(requests.set_server_address(address, port))

    async def get_server_address(self) -> ServerAddress:
        return await self.call(requests.get_server_address())

    async def set_softap_ssid(self, prefix: str, suffix: str = "") -> None:
        await self.call(requests.set_softap_ssid(prefix, suffix))

    async def cloud_connection_status(self) -> CloudConnectionStatus | int:
        return await self.call(requests.cloud_connection_status())

    async def cloud_connect(self) -> None:
        await self.call(requests.cloud_connect())

    async def cloud_disconnect(self) -> None:
        await self.call(requests.cloud_disconnect())

    # -- Wi-Fi ----------------------------------------------------------------------------------

    async def join_new_network(
        self,
        ssid: str,
        password: str | None = None,
        security: WifiSecurity | int | None = None,
        *,
        hidden: bool = False,
        bssid: bytes | None = None,
    ) -> None:
        await self.call(
            requests.join_new_network(ssid, password, security, hidden=hidden, bssid=bssid)
        )

    async def set_network_credentials(
        self,
        ssid: str,
        password: str | None = None,
        security: WifiSecurity | int | None = None,
        *,
        hidden: bool = False,
        bssid: bytes | None = None,
    ) -> None:
        await self.call(
            requests.set_network_credentials(ssid, password, security, hidden=hidden, bssid=bssid)
        )

    async def join_known_network(self, ssid: str) -> None:
        await self.call(requests.join_known_network(ssid))

    async def get_known_networks(self) -> list[KnownNetwork]:
        return await self.call(requests.get_known_networks())

    async def remove_known_network(self, ssid: str) -> None:
        await self.call(requests.remove_known_network(ssid))

    async def clear_known_networks(self) -> None:
        await self.call(requests.clear_known_networks())

    async def get_current_network(self) -> CurrentNetwork:
        return await self.call(requests.get_current_network())

    async def scan_networks(self) -> list[ScannedNetwork]:
        return await self.call(requests.scan_networks())

    # -- cellular -------------------------------------------------------------------------------

    async def get_iccid(self) -> CellularIdentity:
        return await self.call(requests.get_iccid())


__all__ = [
    "Call",
    "ControlClient",
    "ControlReply",
    "ControlRequestFailed",
    "EncodedRequest",
    "decode_reply",
    "encode_request",
    "requests",
]
