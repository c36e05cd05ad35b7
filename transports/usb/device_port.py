"""A simulated device as seen on the USB bus: descriptors, the control-request service, raw
'P' vendor requests.

How this works
--------------
:func:`attach_usb` gives a device one :class:`UsbDevicePort` for its lifetime. The port follows
the device through reboots with its boot and shutdown hooks: every boot is a new USB
enumeration (``epoch`` + 1) with a fresh :class:`UsbControlService` (request ids restart at 1);
while the device is off or rebooting it is detached and every transfer fails with NO_DEVICE.
In DFU mode (the device's DFU target in ``world.shared["dfu-targets"]`` turns active) the port
enumerates again - new ``epoch`` - as the bootloader's DFU device on the platform's DFU PID, and
every transfer goes to a :class:`~transports.usb.dfu.DfuClassDriver`; leaving DFU detaches it
until Device OS has booted. A host that opened the device before a reboot holds a stale
handle: transfers that name an older ``epoch`` fail with NO_DEVICE too, as libusb does after a
re-enumeration.

:meth:`UsbDevicePort.control_transfer` routes one control transfer:

* standard GET_DESCRIPTOR (device, configuration, string) - anything else standard STALLs;
* vendor ``bRequest`` 0x01-0x0F - the service (INIT/CHECK/SEND/RECV/RESET);
* vendor ``bRequest`` 0x50 ('P') - raw requests: device id in **uppercase** hex (wIndex 20)
  and the system version string (30) device-to-host; reset (40) and cloud disconnect (302)
  host-to-device;
* everything else STALLs.

With the profile quirk ``controlOutTransfersRequireDataStage`` (P2) a zero-length vendor OUT
transfer never completes: the host's transfer times out and nothing happens on the device.

The port reaches the device only through :class:`~transports.device_surface.UsbDevice`
(identity, USB ids and quirks, lifecycle hooks, reset, cloud disconnect, the control-request
dispatcher and its services); a ``firmware_sim`` ``Device`` fits it as it is.
"""

from __future__ import annotations

from typing import Any

from ..device_surface import UsbDevice
from .descriptors import GET_DESCRIPTOR, UsbDescriptors
from .dfu import DfuClassDriver, dfu_target_of
from .platforms import QUIRK_OUT_DATA_STAGE
from .protocol import MIN_WLENGTH, PARTICLE_BREQUEST, SetupPacket
from .service import UsbControlService, UsbServiceFaults, UsbServiceTiming
from .transfer import TransferResult, TransferStatus

__all__ = [
    "RAW_CLOUD_DISCONNECT",
    "RAW_DEVICE_ID",
    "RAW_RESET",
    "RAW_SYSTEM_VERSION",
    "UsbDevicePort",
    "attach_usb",
    "usb_port_of",
]

RAW_DEVICE_ID = 20
RAW_SYSTEM_VERSION = 30
RAW_RESET = 40
RAW_CLOUD_DISCONNECT = 302

#: Requests whose INIT (no payload) aborts the network/cloud connection attempt, with
#: (True) or without (False) clearing the "cloud wanted" flag (``cancelNetworkConnectionIfNeeded``).
_ABORTING_TYPES = {40: True, 41: True, 50: True, 60: True, 70: False}

#: ``world.shared`` key of the ports of a world's devices, by device name (a name is unique in
#: a world, so the device itself and an adapter around it share one port).
_REGISTRY = "usb-ports"


def _ports(device: UsbDevice) -> dict[str, UsbDevicePort]:
    ports: dict[str, UsbDevicePort] = device.world.shared.setdefault(_REGISTRY, {})
    return ports


def attach_usb(device: UsbDevice, *, timing: UsbServiceTiming | None = None,
               faults: UsbServiceFaults | None = None) -> UsbDevicePort:
    """The device's USB port, created on first use (idempotent)."""
    ports = _ports(device)
    port = ports.get(device.name)
    if port is None:
        port = ports[device.name] = UsbDevicePort(device, timing=timing, faults=faults)
    return port


def usb_port_of(device: UsbDevice) -> UsbDevicePort | None:
    return _ports(device).get(device.name)


class UsbDevicePort:
    def __init__(self, device: UsbDevice, *, timing: UsbServiceTiming | None = None,
                 faults: UsbServiceFaults | None = None) -> None:
        self.device = device
        self.world = device.world
        self.tracer = device.world.trace.bind(device.name, "usb")
        profile = device.profile
        self.vendor_id: int = profile.usb_vid
        self.product_id: int = profile.usb_pid
        self.quirks: frozenset[str] = frozenset(profile.quirks)
        self.descriptors = UsbDescriptors(vendor_id=self.vendor_id, product_id=self.product_id,
                                          serial=device.device_id.upper(),
                                          product=profile.series)
        self.timing = timing or UsbServiceTiming()
        self.faults = faults or UsbServiceFaults()
        self.epoch = 0
        self.service: UsbControlService | None = None
        #: the DFU class driver while the device is in DFU mode
        self.dfu: DfuClassDriver | None = None
        device.boot_hooks.append(self._booted)
        device.shutdown_hooks.append(self._shut_down)
        self._dfu_target = dfu_target_of(self.world, device.name)
        if self._dfu_target is not None:
            self._dfu_target.on_change(self._dfu_changed)
        if device.running:
            self._booted(device)
        elif self._dfu_target is not None and self._dfu_target.active:
            self._dfu_changed(True)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self.service is not None or self.dfu is not None

    @property
    def in_dfu_mode(self) -> bool:
        return self.dfu is not None

    def _dfu_changed(self, active: bool) -> None:
        if self.dfu is not None:
            self.dfu.close()
            self.dfu = None
            self.tracer.emit("usb.detached", epoch=self.epoch)
        if active and self._dfu_target is not None:
            self._enumerate_dfu()

    def _enumerate_dfu(self) -> None:
        target = self._dfu_target
        assert target is not None
        self.epoch += 1
        self.dfu = DfuClassDriver(target, self.world.scheduler, self.tracer.child("dfu"),
                                  reenumerate=self._reenumerate_dfu)
        self.tracer.emit("usb.attached", epoch=self.epoch, vid=target.usb_vid,
                         pid=target.dfu_pid, mode="dfu")

    def _reenumerate_dfu(self) -> None:
        if self.dfu is not None:
            self.dfu.close()
            self._enumerate_dfu()

    def _booted(self, _device: object) -> None:
        if self.service is not None:
            self.service.shutdown()
        self.epoch += 1
        self.service = UsbControlService(
            dispatcher=lambda: self.device.control, scheduler=self.world.scheduler,
            tracer=self.tracer, on_init=self._request_started, timing=self.timing,
            faults=self.faults)
        self.tracer.emit("usb.attached", epoch=self.epoch, vid=self.vendor_id,
                         pid=self.product_id)

    def _shut_down(self, _device: object) -> None:
        if self.service is not None:
            self.service.shutdown()
            self.service = None
            self.tracer.emit("usb.detached", epoch=self.epoch)

    def describe(self) -> dict[str, Any]:
        """What a host enumerating the bus learns (used by the TCP bridge's LIST)."""
        if self.dfu is not None:
            strings = self.dfu.strings()
            descriptor = self.dfu.device_descriptor
            product, quirks = strings[2], []
        else:
            descriptor, product = self.descriptors.device, self.descriptors.strings[2]
            quirks = sorted(self.quirks)
        return {
            "name": self.device.name,
            "serialNumber": self.device.device_id.upper(),
            "vendorId": descriptor.idVendor,
            "productId": descriptor.idProduct,
            "deviceDescriptor": descriptor.encode().hex(),
            "manufacturer": self.descriptors.strings[1],
            "product": product,
            "epoch": self.epoch,
            "busNumber": 1,
            "deviceAddress": (self.epoch - 1) % 126 + 2,
            "quirks": quirks,
            "dfu": self.dfu is not None,
        }

    # -- transfers ------------------------------------------------------------------------------

    def control_transfer(self, setup: SetupPacket, data: bytes = b"", *,
                         epoch: int | None = None) -> TransferResult:
        """Run one control transfer at the current virtual instant."""
        if self.dfu is not None and (epoch is None or epoch == self.epoch):
            if not setup.is_in and len(data) != setup.wLength:
                return self._stall(setup, f"OUT data stage of {len(data)} bytes")
            return self.dfu.control_transfer(setup, data)
        service = self.service
        if service is None or (epoch is not None and epoch != self.epoch):
            return TransferResult(TransferStatus.NO_DEVICE)
        if not setup.is_in and len(data) != setup.wLength:
            self.tracer.emit("usb.stall", setup=setup.describe(),
                             reason=f"OUT data stage of {len(data)} bytes")
            return TransferResult.stall()
        kind = setup.request_kind
        if kind == 0:
            return self._standard(setup)
        if kind != 2 or setup.recipient != 0:
            return self._stall(setup, "not a vendor request to the device")
        if (not setup.is_in and setup.wLength == 0
                and QUIRK_OUT_DATA_STAGE in self.quirks):
            self.tracer.emit("usb.out_without_data_stage", setup=setup.describe())
            return TransferResult(TransferStatus.TIMED_OUT)
        if 0x01 <= setup.bRequest <= 0x0F:
            return service.handle(setup, data)
        if setup.bRequest == PARTICLE_BREQUEST:
            return self._raw(setup)
        return self._stall(setup, "unknown vendor request")

    def _stall(self, setup: SetupPacket, reason: str) -> TransferResult:
        self.tracer.emit("usb.stall", setup=setup.describe(), reason=reason)
        return TransferResult.stall()

    def _standard(self, setup: SetupPacket) -> TransferResult:
        if setup.bRequest != GET_DESCRIPTOR or not setup.is_in or setup.recipient != 0:
            return self._stall(setup, "standard request not modelled")
        descriptor_type, index = setup.wValue >> 8, setup.wValue & 0xFF
        descriptor = self.descriptors.get(descriptor_type, index, setup.wIndex)
        if descriptor is None:
            return self._stall(setup, f"no descriptor type {descriptor_type} index {index}")
        return TransferResult.completed(descriptor[:setup.wLength])

    def _raw(self, setup: SetupPacket) -> TransferResult:
        device = self.device
        if setup.is_in:
            if setup.wLength == 0 or setup.wLength > MIN_WLENGTH:
                return self._stall(setup, "raw request: no data stage or more than 64 bytes")
            if setup.wIndex == RAW_DEVICE_ID:
                text = device.device_id.upper().encode()
            elif setup.wIndex == RAW_SYSTEM_VERSION:
                text = device.profile.system_version.encode()
            else:
                return self._stall(setup, f"unknown raw request {setup.wIndex}")
            if setup.wLength < len(text):
                return self._stall(setup, "raw request: wLength too short")
            self.tracer.emit("usb.raw", request=setup.wIndex)
            return TransferResult.completed(text)
        if setup.wIndex == RAW_RESET:
            self.tracer.emit("usb.raw", request=RAW_RESET)
            device.reset("user")
            # The device resets inside the setup callback: the host never sees a status stage.
            return TransferResult(TransferStatus.NO_DEVICE)
        if setup.wIndex == RAW_CLOUD_DISCONNECT:
            self.tracer.emit("usb.raw", request=RAW_CLOUD_DISCONNECT)
            device.cloud_disconnect()
            return TransferResult.completed()
        return self._stall(setup, f"unknown raw request {setup.wIndex}")

    def _request_started(self, request_type: int) -> None:
        """``cancelNetworkConnectionIfNeeded`` (not on a protected device)."""
        clear_flag = _ABORTING_TYPES.get(request_type)
        if clear_flag is None:
            return
        services = self.device.control.services
        protected, _overridden = services.protected_state()
        if protected:
            return
        self.tracer.emit("usb.abort_connection", type=request_type, disconnect=clear_flag)
        if clear_flag:
            self.device.cloud_disconnect()
        else:
            services.abort_connection()
