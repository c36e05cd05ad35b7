"""DFU mode on USB: the bootloader's DFU 1.1 class driver with the DfuSe extensions.

How this works
--------------
A device in DFU mode runs its bootloader, not Device OS: it enumerates on the platform's DFU
product id (P2 0xD020, Photon 0xD006, ...) with one interface whose alternate settings are the
memories (alt 0 the internal flash, alt 1 the DCT), described by strings such as
``@DCT Flash   /0x00000000/1*016Ke``. This module is Device OS's
``bootloader/src/rtl872x/usbd_dfu.cpp`` as a sans-IO state machine (:class:`DfuClassDriver`):

* class requests to interface 0 (bmRequestType 0x21 / 0xA1): DFU_DETACH 0, DFU_DNLOAD 1,
  DFU_UPLOAD 2, DFU_GETSTATUS 3, DFU_CLRSTATUS 4, DFU_GETSTATE 5, DFU_ABORT 6 (USB Device
  Firmware Upgrade Specification 1.1, section 3);
* DfuSe (ST's AN3156, ``bcdDFUVersion`` 0x011A): a DNLOAD with ``wValue`` 0 is a command -
  0x21 SET_ADDRESS_POINTER (+ u32 LE address), 0x41 ERASE (+ address; a 1-byte mass erase is
  refused with errTARGET), 0x00 GET_COMMAND, 0x92 READ_UNPROTECT (refused), Particle's 0xFA
  ENTER_SAFE_MODE and 0xFB CLEAR_SECURITY_MODE_OVERRIDE; a DNLOAD with ``wValue`` >= 2 writes
  at ``(wValue - 2) * 4096 + address``; UPLOAD mirrors it (UPLOAD of block 0 lists the
  commands);
* a DNLOAD only records the block (dfuDNLOAD_SYNC); the following GETSTATUS answers dfuDNBUSY
  and the write or command happens once that status has been delivered (``dataIn``), so the
  next GETSTATUS shows dfuDNLOAD_IDLE or dfuERROR. A zero-length DNLOAD starts manifestation:
  GETSTATUS answers dfuMANIFEST and, 500 ms later (``USBD_DFU_POLL_TIMEOUT``), the device
  detaches and boots Device OS - the DfuSe "leave" (``dfu-util ... :leave``);
* a request with no transition in the current state, or a failed memory operation, sets
  dfuERROR with its status code and STALLs; DFU_CLRSTATUS returns to dfuIDLE;
* standard requests: GET_DESCRIPTOR (device, configuration, strings, the DFU functional
  descriptor 0x21), GET_INTERFACE, SET_INTERFACE (alternate settings 0..n-1).

A device with Device Protection refuses uploads and downloads with errVENDOR and the string
"Device is in protected mode", and its alternate settings read ``...Kb`` (not writable).

The device's side is a :class:`DfuTarget` (``firmware_sim.system.dfu.DeviceDfu`` fits it),
found by device name in ``world.shared["dfu-targets"]``; the transport never imports the
system layer. UNVERIFIED (docs/usb.md): the product string in DFU mode, Windows' WCID
requests (0xEE, not answered here).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from firmware_sim.kernel.scheduler import Scheduler, TimerHandle
from firmware_sim.kernel.trace import Tracer
from firmware_sim.kernel.world import World

from .descriptors import (
    DT_CONFIGURATION,
    DT_DEVICE,
    DT_STRING,
    GET_DESCRIPTOR,
    LANGID_EN_US,
    DeviceDescriptor,
    encode_string_descriptor,
)
from .protocol import SetupPacket
from .transfer import TransferResult

__all__ = [
    "DFU_FUNCTIONAL",
    "DFU_TARGETS",
    "DFU_TRANSFER_SIZE",
    "DfuClassDriver",
    "DfuMemoryLike",
    "DfuRequest",
    "DfuState",
    "DfuStatus",
    "DfuTarget",
    "DfuseCommand",
    "dfu_configuration",
    "dfu_target_of",
]

#: ``world.shared`` key of the devices' DFU targets (by device name)
DFU_TARGETS = "dfu-targets"
#: ``USBD_DFU_TRANSFER_SIZE``: ``wTransferSize`` and the block size of DfuSe addressing
DFU_TRANSFER_SIZE = 4096
#: ``USBD_DFU_POLL_TIMEOUT``: after manifestation the device detaches this much later
MANIFEST_DETACH_S = 0.5
DFU_FUNCTIONAL = 0x21
GET_INTERFACE = 10
SET_INTERFACE = 11
BCD_DEVICE = 0x0252
PROTECTED_MODE_ERROR = "Device is in protected mode"


class DfuRequest(IntEnum):
    DETACH = 0
    DNLOAD = 1
    UPLOAD = 2
    GETSTATUS = 3
    CLRSTATUS = 4
    GETSTATE = 5
    ABORT = 6


class DfuStatus(IntEnum):
    OK = 0x00
    errTARGET = 0x01
    errFILE = 0x02
    errWRITE = 0x03
    errERASE = 0x04
    errCHECK_ERASED = 0x05
    errPROG = 0x06
    errVERIFY = 0x07
    errADDRESS = 0x08
    errNOTDONE = 0x09
    errFIRMWARE = 0x0A
    errVENDOR = 0x0B
    errUSBR = 0x0C
    errPOR = 0x0D
    errUNKNOWN = 0x0E
    errSTALLEDPKT = 0x0F


class DfuState(IntEnum):
    appIDLE = 0
    appDETACH = 1
    dfuIDLE = 2
    dfuDNLOAD_SYNC = 3
    dfuDNBUSY = 4
    dfuDNLOAD_IDLE = 5
    dfuMANIFEST_SYNC = 6
    dfuMANIFEST = 7
    dfuMANIFEST_WAIT_RESET = 8
    dfuUPLOAD_IDLE = 9
    dfuERROR = 10


class DfuseCommand(IntEnum):
    GET_COMMAND = 0x00
    SET_ADDRESS_POINTER = 0x21
    ERASE = 0x41
    READ_UNPROTECT = 0x92
    ENTER_SAFE_MODE = 0xFA  # Particle's extension
    CLEAR_SECURITY_MODE_OVERRIDE = 0xFB  # ditto


class DfuMemoryLike(Protocol):
    def read(self, address: int, size: int) -> bytes | None: ...

    def write(self, address: int, data: bytes) -> int: ...

    def erase(self, address: int) -> int: ...


class DfuTarget(Protocol):
    """What the DFU class driver uses of a device in DFU mode."""

    @property
    def active(self) -> bool: ...
    @property
    def dfu_pid(self) -> int: ...
    @property
    def usb_vid(self) -> int: ...
    @property
    def series(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def protected(self) -> bool: ...
    @property
    def memories(self) -> Sequence[DfuMemoryLike]: ...

    def alt_name(self, alt: int) -> str: ...

    def on_change(self, listener: Callable[[bool], None]) -> Callable[[], None]: ...

    def leave(self) -> None: ...


def dfu_target_of(world: World, name: str) -> DfuTarget | None:
    """The DFU target registered for the device called ``name`` (None if it has none)."""
    targets = world.shared.get(DFU_TARGETS)
    if not isinstance(targets, dict):
        return None
    target: DfuTarget | None = targets.get(name)
    return target


def dfu_configuration(alt_count: int) -> bytes:
    """Configuration descriptor: one interface (class 0xFE application specific, subclass 1
    DFU, protocol 2 DFU mode) with ``alt_count`` alternate settings (``iInterface`` 4 + alt),
    then the DFU functional descriptor (bmAttributes 0x0B: will detach, upload, download;
    wDetachTimeout 255 ms; wTransferSize 4096; bcdDFUVersion 0x011A, DfuSe)."""
    interfaces = b"".join(bytes([9, 0x04, 0, alt, 0, 0xFE, 0x01, 0x02, 4 + alt])
                          for alt in range(alt_count))
    functional = struct.pack("<BBBHHH", 9, DFU_FUNCTIONAL, 0x0B, 0x00FF, DFU_TRANSFER_SIZE,
                             0x011A)
    body = interfaces + functional
    header = struct.pack("<BBHBBBBB", 9, DT_CONFIGURATION, 9 + len(body), 1, 1, 0, 0x80, 250)
    return header + body


@dataclass
class _Pending:
    block: int
    data: bytes


class DfuClassDriver:
    """One enumeration of a device in DFU mode."""

    def __init__(self, target: DfuTarget, scheduler: Scheduler, tracer: Tracer, *,
                 reenumerate: Callable[[], None] = lambda: None) -> None:
        self.target = target
        self._reenumerate = reenumerate
        self._scheduler = scheduler
        self._tracer = tracer
        self.alt = 0
        self.state = DfuState.dfuIDLE
        self.status = DfuStatus.OK
        self.address = 0
        self._pending = _Pending(0, b"")
        self._error_string = 0
        self._leave_timer: TimerHandle | None = None
        self.device_descriptor = DeviceDescriptor(
            bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0,
            bMaxPacketSize0=64, idVendor=target.usb_vid, idProduct=target.dfu_pid,
            bcdDevice=BCD_DEVICE, iManufacturer=1, iProduct=2, iSerialNumber=3,
            bNumConfigurations=1)

    # -- descriptors ---------------------------------------------------------------------------

    @property
    def alt_count(self) -> int:
        return len(self.target.memories)

    def strings(self) -> dict[int, str]:
        strings = {1: "Particle", 2: f"{self.target.series} DFU Mode",
                   3: self.target.device_id.upper()}
        for alt in range(self.alt_count):
            strings[4 + alt] = self.target.alt_name(alt)
        strings[4 + self.alt_count] = PROTECTED_MODE_ERROR
        return strings

    def descriptor(self, descriptor_type: int, index: int) -> bytes | None:
        if descriptor_type == DT_DEVICE and index == 0:
            return self.device_descriptor.encode()
        if descriptor_type == DT_CONFIGURATION and index == 0:
            return dfu_configuration(self.alt_count)
        if descriptor_type == DFU_FUNCTIONAL:
            return dfu_configuration(self.alt_count)[-9:]
        if descriptor_type == DT_STRING:
            if index == 0:
                return bytes([4, DT_STRING]) + struct.pack("<H", LANGID_EN_US)
            text = self.strings().get(index)
            return None if text is None else encode_string_descriptor(text)
        return None

    # -- transfers -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._leave_timer is not None:
            self._leave_timer.cancel()
            self._leave_timer = None

    def control_transfer(self, setup: SetupPacket, data: bytes) -> TransferResult:
        kind = setup.request_kind
        if kind == 0:
            return self._standard(setup, data)
        if kind == 1 and setup.recipient == 1:
            return self._class(setup, data)
        return self._stall(setup, "not a standard or DFU class request")

    def _stall(self, setup: SetupPacket, reason: str) -> TransferResult:
        self._tracer.emit("dfu.stall", setup=setup.describe(), reason=reason)
        return TransferResult.stall()

    def _standard(self, setup: SetupPacket, data: bytes) -> TransferResult:
        if setup.bRequest == GET_DESCRIPTOR and setup.is_in:
            found = self.descriptor(setup.wValue >> 8, setup.wValue & 0xFF)
            if found is None:
                return self._stall(setup, "no such descriptor")
            return TransferResult.completed(found[:setup.wLength])
        if setup.bRequest == GET_INTERFACE and setup.is_in and setup.recipient == 1:
            return TransferResult.completed(bytes([self.alt])[:setup.wLength])
        if setup.bRequest == SET_INTERFACE and not setup.is_in and setup.recipient == 1:
            if setup.wValue >= self.alt_count:
                return self._stall(setup, f"no alternate setting {setup.wValue}")
            self.alt = setup.wValue
            self._tracer.emit("dfu.set_interface", alt=self.alt)
            return TransferResult.completed()
        return self._stall(setup, "standard request not modelled")

    def _class(self, setup: SetupPacket, data: bytes) -> TransferResult:
        try:
            request = DfuRequest(setup.bRequest)
        except ValueError:
            return self._error(DfuStatus.errSTALLEDPKT, setup, "unknown DFU request")
        handler = {
            DfuRequest.DETACH: self._detach, DfuRequest.DNLOAD: self._dnload,
            DfuRequest.UPLOAD: self._upload, DfuRequest.GETSTATUS: self._getstatus,
            DfuRequest.CLRSTATUS: self._clrstatus, DfuRequest.GETSTATE: self._getstate,
            DfuRequest.ABORT: self._abort,
        }[request]
        return handler(setup, data)

    # -- state helpers -------------------------------------------------------------------------

    def _set_state(self, state: DfuState) -> None:
        self.state = state
        if state is not DfuState.dfuERROR:
            self._error_string = 0

    def _set_error(self, status: DfuStatus, description: str | None = None) -> None:
        self.status = status
        self._set_state(DfuState.dfuERROR)
        self._error_string = 4 + self.alt_count if description else 0
        self._tracer.emit("dfu.error", status=status.name)

    def _error(self, status: DfuStatus, setup: SetupPacket, reason: str) -> TransferResult:
        """``setError(status)`` with the control pipe stalled."""
        self._set_error(status)
        return self._stall(setup, reason)

    def _status_bytes(self) -> bytes:
        # bStatus, bwPollTimeout (3 bytes, 0: no wait), bState, iString
        return bytes([self.status, 0, 0, 0, self.state, self._error_string])

    def _reset_request(self) -> None:
        self._pending = _Pending(0, b"")

    # -- the requests --------------------------------------------------------------------------

    _ACCEPTING = (DfuState.dfuIDLE, DfuState.dfuDNLOAD_SYNC, DfuState.dfuDNLOAD_IDLE,
                  DfuState.dfuMANIFEST_SYNC, DfuState.dfuUPLOAD_IDLE)

    def _detach(self, setup: SetupPacket, data: bytes) -> TransferResult:
        if self.state not in self._ACCEPTING:
            return self._error(DfuStatus.errUNKNOWN, setup, "DETACH in this state")
        self._set_state(DfuState.dfuIDLE)
        self._tracer.emit("dfu.detach")
        self._reenumerate()  # bitWillDetach: a detach-attach sequence on the bus
        return TransferResult.completed()

    def _dnload(self, setup: SetupPacket, data: bytes) -> TransferResult:
        if setup.is_in or self.state not in (DfuState.dfuIDLE, DfuState.dfuDNLOAD_IDLE):
            return self._error(DfuStatus.errUNKNOWN, setup, "DNLOAD in this state")
        self._pending = _Pending(setup.wValue, bytes(data))
        if setup.wLength > 0:
            self._set_state(DfuState.dfuDNLOAD_SYNC)
        else:
            self._set_state(DfuState.dfuMANIFEST_SYNC)
        return TransferResult.completed()

    def _upload(self, setup: SetupPacket, data: bytes) -> TransferResult:
        if not setup.is_in or self.state not in (DfuState.dfuIDLE, DfuState.dfuUPLOAD_IDLE):
            return self._error(DfuStatus.errUNKNOWN, setup, "UPLOAD in this state")
        self._reset_request()
        if setup.wValue == 0:
            commands = bytes([DfuseCommand.GET_COMMAND, DfuseCommand.SET_ADDRESS_POINTER,
                              DfuseCommand.ERASE, DfuseCommand.ENTER_SAFE_MODE,
                              DfuseCommand.CLEAR_SECURITY_MODE_OVERRIDE])
            self._set_state(DfuState.dfuIDLE)
            return TransferResult.completed(commands[:setup.wLength])
        if setup.wValue == 1:
            return self._error(DfuStatus.errUNKNOWN, setup, "UPLOAD of block 1")
        self._set_state(DfuState.dfuUPLOAD_IDLE)
        if self.target.protected:
            self._set_error(DfuStatus.errVENDOR, PROTECTED_MODE_ERROR)
            return TransferResult.completed()
        address = (setup.wValue - 2) * DFU_TRANSFER_SIZE + self.address
        content = self.target.memories[self.alt].read(address, setup.wLength)
        if content is None:
            return self._error(DfuStatus.errUNKNOWN, setup, f"cannot read at 0x{address:x}")
        return TransferResult.completed(content)

    def _getstatus(self, setup: SetupPacket, data: bytes) -> TransferResult:
        state = self.state
        after: Callable[[], None] | None = None
        if state is DfuState.dfuDNLOAD_SYNC:
            if self._pending.data:
                self._set_state(DfuState.dfuDNBUSY)
                if self.target.protected and not self._allowed_when_protected():
                    self._set_error(DfuStatus.errVENDOR, PROTECTED_MODE_ERROR)
                else:
                    after = self._perform
            else:
                self._set_state(DfuState.dfuDNLOAD_IDLE)
        elif state is DfuState.dfuMANIFEST_SYNC:
            self._set_state(DfuState.dfuMANIFEST)
            self.status = DfuStatus.OK
            after = self._manifested
        elif state is DfuState.dfuMANIFEST:
            self._set_state(DfuState.dfuMANIFEST_WAIT_RESET)
        elif state in (DfuState.dfuDNBUSY, DfuState.dfuMANIFEST_WAIT_RESET):
            return self._error(DfuStatus.errUNKNOWN, setup, "GETSTATUS in this state")
        reply = TransferResult.completed(self._status_bytes()[:setup.wLength])
        if after is not None:
            after()  # ``dataIn``: once the status has been delivered
        return reply

    def _allowed_when_protected(self) -> bool:
        pending = self._pending
        return pending.block == 0 and pending.data[:1] in (
            bytes([DfuseCommand.ENTER_SAFE_MODE]),
            bytes([DfuseCommand.CLEAR_SECURITY_MODE_OVERRIDE]))

    def _perform(self) -> None:
        """The DNLOAD recorded before: a DfuSe command (block 0) or a write (block >= 2)."""
        block, payload = self._pending.block, self._pending.data
        memory = self.target.memories[self.alt]
        if block == 0:
            self._command(payload, memory)
        elif block > 1:
            address = (block - 2) * DFU_TRANSFER_SIZE + self.address
            if memory.write(address, payload) != 0:
                self._set_error(DfuStatus.errUNKNOWN)
            else:
                self._tracer.emit("dfu.write", alt=self.alt, address=address, size=len(payload))
                self._set_state(DfuState.dfuDNLOAD_IDLE)
                self.status = DfuStatus.OK
        else:
            self._set_error(DfuStatus.errTARGET)
            self._reset_request()

    def _command(self, payload: bytes, memory: DfuMemoryLike) -> None:
        command = payload[0]
        if command == DfuseCommand.GET_COMMAND:
            return  # Device OS leaves the state as it is
        if command == DfuseCommand.SET_ADDRESS_POINTER:
            if len(payload) != 5:
                self._set_error(DfuStatus.errUNKNOWN)
                return
            (self.address,) = struct.unpack_from("<I", payload, 1)
            self._tracer.emit("dfu.set_address", address=self.address)
            self._set_state(DfuState.dfuDNLOAD_IDLE)
            self.status = DfuStatus.OK
        elif command == DfuseCommand.ERASE:
            if len(payload) == 1:
                self._set_error(DfuStatus.errTARGET)  # mass erase is not supported
            elif len(payload) != 5:
                self._set_error(DfuStatus.errUNKNOWN)
            elif self.target.protected:
                self._set_error(DfuStatus.errVENDOR, PROTECTED_MODE_ERROR)
            elif memory.erase(struct.unpack_from("<I", payload, 1)[0]) != 0:
                self._set_error(DfuStatus.errUNKNOWN)
            else:
                self._set_state(DfuState.dfuDNLOAD_IDLE)
                self.status = DfuStatus.OK
        elif command == DfuseCommand.ENTER_SAFE_MODE:
            self._set_state(DfuState.dfuMANIFEST_SYNC)
            self.status = DfuStatus.OK
        elif command == DfuseCommand.CLEAR_SECURITY_MODE_OVERRIDE:
            self._set_state(DfuState.dfuDNLOAD_IDLE)
            self.status = DfuStatus.OK
        elif command == DfuseCommand.READ_UNPROTECT:
            self._set_error(DfuStatus.errUNKNOWN)
        else:
            self._set_error(DfuStatus.errSTALLEDPKT)

    def _manifested(self) -> None:
        """Reported dfuMANIFEST: wait for reset, then detach and boot (``Finish_Update``)."""
        self._set_state(DfuState.dfuMANIFEST_WAIT_RESET)
        if self._leave_timer is None:
            self._tracer.emit("dfu.manifest")
            self._leave_timer = self._scheduler.call_later(MANIFEST_DETACH_S, self._leave,
                                                           label="dfu-leave")

    def _leave(self) -> None:
        self._leave_timer = None
        if self.target.active:
            self.target.leave()

    def _clrstatus(self, setup: SetupPacket, data: bytes) -> TransferResult:
        if self.state is not DfuState.dfuERROR:
            return self._error(DfuStatus.errUNKNOWN, setup, "CLRSTATUS outside dfuERROR")
        self._set_state(DfuState.dfuIDLE)
        self.status = DfuStatus.OK
        return TransferResult.completed()

    def _getstate(self, setup: SetupPacket, data: bytes) -> TransferResult:
        if self.state in (DfuState.dfuDNBUSY, DfuState.dfuMANIFEST,
                          DfuState.dfuMANIFEST_WAIT_RESET):
            return self._error(DfuStatus.errUNKNOWN, setup, "GETSTATE in this state")
        return TransferResult.completed(bytes([self.state])[:setup.wLength])

    def _abort(self, setup: SetupPacket, data: bytes) -> TransferResult:
        if self.state not in self._ACCEPTING:
            return self._error(DfuStatus.errUNKNOWN, setup, "ABORT in this state")
        self._set_state(DfuState.dfuIDLE)
        self.status = DfuStatus.OK
        self._reset_request()
        return TransferResult.completed()
