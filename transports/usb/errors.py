"""Exceptions of the USB host side; each names the particle-usb error it mirrors."""

from __future__ import annotations

from firmware_sim.kernel.errors import FwSimError, PeerProtocolError, TransportLost, UsageError

__all__ = [
    "UsbBridgeError",
    "UsbDeviceNotFound",
    "UsbError",
    "UsbMemoryError",
    "UsbProtocolError",
    "UsbRequestCancelled",
    "UsbRequestTimeout",
    "UsbStateError",
    "UsbTransferError",
]


class UsbError(FwSimError):
    """Root of the USB host errors."""


class UsbTransferError(UsbError, TransportLost):
    """A control transfer failed (STALL, device gone, transfer timeout) - particle-usb
    ``UsbError`` / ``UsbStallError``. ``status`` is the transfer status name."""

    def __init__(self, status: str, message: str) -> None:
        self.status = status
        super().__init__(f"{message}: {status}")


class UsbProtocolError(UsbError, PeerProtocolError):
    """A malformed or unexpected service reply (particle-usb ``ProtocolError``)."""


class UsbMemoryError(UsbError):
    """The device answered NO_MEMORY (particle-usb ``MemoryError``)."""


class UsbRequestCancelled(UsbError):
    """CHECK answered NOT_FOUND: the device dropped the request (particle-usb
    ``DeviceError('Request was cancelled')``)."""


class UsbRequestTimeout(UsbError, TimeoutError):
    """No result within the request timeout (particle-usb ``TimeoutError``)."""


class UsbStateError(UsbError, UsageError):
    """The host device object is not open, or is being closed (particle-usb ``StateError``)."""


class UsbDeviceNotFound(UsbError, UsageError):
    """No matching USB device (particle-usb ``NotFoundError``)."""


class UsbNotAllowed(UsbError):
    """The platform does not take control requests (particle-usb ``NotAllowedError('Control
    requests are not supported')``, the ``controlRequestsNotSupported`` quirk)."""


class UsbBridgeError(UsbError, TransportLost):
    """The TCP bridge connection failed or carried a malformed frame."""
