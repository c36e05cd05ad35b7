"""USB descriptors of a simulated device and the standard GET_DESCRIPTOR request.

The facts fwsim relies on (device-os.md §4): VID 0x2B04, the platform's CDC PID, and an
``iSerialNumber`` string that is the device id in uppercase hex (particle-usb lowercases it; the
udev ``ID_SERIAL_SHORT`` particle-cli reads is the same uppercase text). Everything else here -
``bcdDevice``, the product string, the exact interface layout (a CDC ACM function behind an
interface association) - is UNVERIFIED but shaped like a real composite CDC device, so that
generic USB tools parse it (docs/usb.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware_sim.kernel.errors import PeerProtocolError

__all__ = [
    "DT_CONFIGURATION",
    "DT_DEVICE",
    "DT_STRING",
    "GET_DESCRIPTOR",
    "LANGID_EN_US",
    "DeviceDescriptor",
    "UsbDescriptors",
    "decode_string_descriptor",
    "encode_string_descriptor",
]

GET_DESCRIPTOR = 6
DT_DEVICE = 1
DT_CONFIGURATION = 2
DT_STRING = 3
LANGID_EN_US = 0x0409

_DEVICE = struct.Struct("<BBHBBBBHHHBBBB")


@dataclass(frozen=True, slots=True)
class DeviceDescriptor:
    """The 18-byte device descriptor (field names as in the USB specification)."""

    bcdUSB: int  # USB field names, as in the USB specification
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    bMaxPacketSize0: int
    idVendor: int
    idProduct: int
    bcdDevice: int
    iManufacturer: int
    iProduct: int
    iSerialNumber: int
    bNumConfigurations: int

    def encode(self) -> bytes:
        return _DEVICE.pack(18, DT_DEVICE, self.bcdUSB, self.bDeviceClass, self.bDeviceSubClass,
                            self.bDeviceProtocol, self.bMaxPacketSize0, self.idVendor,
                            self.idProduct, self.bcdDevice, self.iManufacturer, self.iProduct,
                            self.iSerialNumber, self.bNumConfigurations)

    @classmethod
    def decode(cls, data: bytes) -> DeviceDescriptor:
        if len(data) < 18 or data[0] != 18 or data[1] != DT_DEVICE:
            raise PeerProtocolError(f"not a device descriptor: {bytes(data[:18]).hex()}")
        fields = _DEVICE.unpack(bytes(data[:18]))
        return cls(*fields[2:])


def encode_string_descriptor(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    if len(raw) + 2 > 255:
        raise ValueError("string descriptor longer than 255 bytes")
    return bytes([len(raw) + 2, DT_STRING]) + raw


def decode_string_descriptor(data: bytes) -> str:
    if len(data) < 2 or data[1] != DT_STRING:
        raise PeerProtocolError(f"not a string descriptor: {bytes(data[:8]).hex()}")
    length = min(data[0], len(data))
    return bytes(data[2:length]).decode("utf-16-le", errors="replace")


def _configuration() -> bytes:
    """CDC ACM (interfaces 0 and 1) behind an interface association, bus powered, 500 mA."""
    parts = [
        bytes([8, 0x0B, 0, 2, 0x02, 0x02, 0x01, 0]),  # interface association
        bytes([9, 0x04, 0, 0, 1, 0x02, 0x02, 0x01, 0]),  # CDC communication interface
        bytes([5, 0x24, 0x00, 0x10, 0x01]),  # CDC header, bcdCDC 1.10
        bytes([5, 0x24, 0x01, 0x00, 0x01]),  # call management
        bytes([4, 0x24, 0x02, 0x02]),  # abstract control management
        bytes([5, 0x24, 0x06, 0, 1]),  # union: master 0, slave 1
        bytes([7, 0x05, 0x82, 0x03, 8, 0, 0xFF]),  # notification endpoint (interrupt IN)
        bytes([9, 0x04, 1, 0, 2, 0x0A, 0x00, 0x00, 0]),  # CDC data interface
        bytes([7, 0x05, 0x01, 0x02, 64, 0, 0]),  # bulk OUT
        bytes([7, 0x05, 0x81, 0x02, 64, 0, 0]),  # bulk IN
    ]
    body = b"".join(parts)
    header = struct.pack("<BBHBBBBB", 9, DT_CONFIGURATION, 9 + len(body), 2, 1, 0, 0x80, 250)
    return header + body


class UsbDescriptors:
    """All descriptors of one device, answering GET_DESCRIPTOR."""

    def __init__(self, *, vendor_id: int, product_id: int, serial: str, product: str,
                 manufacturer: str = "Particle", bcd_device: int = 0x0250) -> None:
        self.device = DeviceDescriptor(
            bcdUSB=0x0200, bDeviceClass=0xEF, bDeviceSubClass=0x02, bDeviceProtocol=0x01,
            bMaxPacketSize0=64, idVendor=vendor_id, idProduct=product_id,
            bcdDevice=bcd_device, iManufacturer=1, iProduct=2, iSerialNumber=3,
            bNumConfigurations=1)
        self.strings = {1: manufacturer, 2: product, 3: serial}
        self.configuration = _configuration()

    def get(self, descriptor_type: int, index: int, langid: int) -> bytes | None:
        """The full descriptor, or None (the device STALLs)."""
        if descriptor_type == DT_DEVICE and index == 0:
            return self.device.encode()
        if descriptor_type == DT_CONFIGURATION and index == 0:
            return self.configuration
        if descriptor_type == DT_STRING:
            if index == 0:
                return bytes([4, DT_STRING]) + struct.pack("<H", LANGID_EN_US)
            text = self.strings.get(index)
            return None if text is None else encode_string_descriptor(text)
        return None
