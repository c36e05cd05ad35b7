"""Particle's USB control-request transport: device model, particle-usb style host, bridge.

* ``protocol`` / ``descriptors`` / ``platforms``: setup packets, service replies, USB ids;
* ``service``: the device's control-request service (INIT/CHECK/SEND/RECV/RESET);
* ``device_port``: ``attach_usb(device)`` - a device on the USB bus (descriptors, raw 'P'
  requests, re-enumeration on reboot);
* ``host``: the particle-usb request pipeline, over any ``HostIo``;
* ``virtual``: an in-process host on the world clock (``VirtualUsbHost``);
* ``bridge_protocol`` / ``bridge_server`` / ``bridge_client`` / ``edge``: the loopback TCP
  bridge (``fwsim serve --usb-bridge PORT``) used by ``js/`` (particle-usb, particle-cli) and
  by ``fwsim usb``.

See docs/usb.md.
"""

from __future__ import annotations

from .bridge_client import AsyncioHostIo, BridgeUsbClient, UsbBridgeConnection, parse_address
from .bridge_server import UsbBridgeServer
from .descriptors import DeviceDescriptor, UsbDescriptors
from .device_port import UsbDevicePort, attach_usb, usb_port_of
from .errors import (
    UsbBridgeError,
    UsbDeviceNotFound,
    UsbError,
    UsbMemoryError,
    UsbNotAllowed,
    UsbProtocolError,
    UsbRequestCancelled,
    UsbRequestTimeout,
    UsbStateError,
    UsbTransferError,
)
from .host import DEFAULT_CHECK_INTERVALS_MS, HostIo, HostOptions, HostRequest, UsbHost
from .platforms import PARTICLE_VID, PLATFORMS, UsbPlatform, platform_for_usb_ids
from .protocol import (
    MAX_CONTROL_TRANSFER_DATA_SIZE,
    MAX_PAYLOAD_SIZE,
    MAX_POOLED_PAYLOAD_SIZE,
    MIN_WLENGTH,
    PARTICLE_BREQUEST,
    USB_REQUEST_MAX_ACTIVE_COUNT,
    BmRequestType,
    FieldFlag,
    ServiceReply,
    ServiceStatus,
    ServiceType,
    SetupPacket,
)
from .service import RequestState, UsbControlService, UsbServiceFaults, UsbServiceTiming
from .transfer import TransferResult, TransferStatus
from .virtual import VirtualUsbClient, VirtualUsbHost, WorldHostIo

__all__ = [
    "DEFAULT_CHECK_INTERVALS_MS",
    "MAX_CONTROL_TRANSFER_DATA_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MAX_POOLED_PAYLOAD_SIZE",
    "MIN_WLENGTH",
    "PARTICLE_BREQUEST",
    "PARTICLE_VID",
    "PLATFORMS",
    "USB_REQUEST_MAX_ACTIVE_COUNT",
    "AsyncioHostIo",
    "BmRequestType",
    "BridgeUsbClient",
    "DeviceDescriptor",
    "FieldFlag",
    "HostIo",
    "HostOptions",
    "HostRequest",
    "RequestState",
    "ServiceReply",
    "ServiceStatus",
    "ServiceType",
    "SetupPacket",
    "TransferResult",
    "TransferStatus",
    "UsbBridgeConnection",
    "UsbBridgeError",
    "UsbBridgeServer",
    "UsbControlService",
    "UsbDescriptors",
    "UsbDeviceNotFound",
    "UsbDevicePort",
    "UsbError",
    "UsbHost",
    "UsbMemoryError",
    "UsbNotAllowed",
    "UsbPlatform",
    "UsbProtocolError",
    "UsbRequestCancelled",
    "UsbRequestTimeout",
    "UsbServiceFaults",
    "UsbServiceTiming",
    "UsbStateError",
    "UsbTransferError",
    "VirtualUsbClient",
    "VirtualUsbHost",
    "WorldHostIo",
    "attach_usb",
    "parse_address",
    "platform_for_usb_ids",
    "usb_port_of",
]
