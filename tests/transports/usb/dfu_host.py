"""A DFU host for the tests, written from the USB DFU 1.1 class specification and ST's DfuSe
extensions (AN3156) - the requests ``dfu-util`` makes, over any control-transfer function.

``DfuHost(control)`` takes ``control(setup, data) -> TransferResult`` (an awaitable: the USB
bridge connection's ``control``). It reads the descriptors (alternate settings and their
names, the functional descriptor's ``wTransferSize``), selects an alternate setting, brings the
device to dfuIDLE (DFU_CLRSTATUS after an error, DFU_ABORT otherwise), sets the DfuSe address
pointer, downloads and uploads blocks (``wValue`` = 2 + block index), polls DFU_GETSTATUS
through dfuDNBUSY, and leaves DFU mode the DfuSe way (address pointer, then a zero-length
DNLOAD, then GETSTATUS answering dfuMANIFEST) - what ``dfu-util -a 1 -s 1762:leave -D
code.bin`` does.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from transports.usb.descriptors import DeviceDescriptor, decode_string_descriptor
from transports.usb.protocol import SetupPacket
from transports.usb.transfer import TransferResult

Control = Callable[[SetupPacket, bytes], Awaitable[TransferResult]]

# DFU 1.1, table 3.2: bRequest values
DETACH, DNLOAD, UPLOAD, GETSTATUS, CLRSTATUS, GETSTATE, ABORT = range(7)
# DFU 1.1, section 6.1.2: bState
DFU_IDLE, DNLOAD_SYNC, DNBUSY, DNLOAD_IDLE = 2, 3, 4, 5
MANIFEST_SYNC, MANIFEST, MANIFEST_WAIT_RESET, UPLOAD_IDLE, DFU_ERROR = 6, 7, 8, 9, 10
# AN3156: DfuSe commands (DNLOAD with wValue 0)
SET_ADDRESS_POINTER, ERASE = 0x21, 0x41

OUT = 0x21  # host to device, class, interface
IN = 0xA1  # device to host, class, interface


class DfuError(Exception):
    pass


@dataclass(frozen=True)
class DfuStatus:
    status: int
    poll_timeout_ms: int
    state: int
    string_index: int


@dataclass(frozen=True)
class DfuDevice:
    descriptor: DeviceDescriptor
    alt_names: dict[int, str]
    attributes: int
    transfer_size: int
    dfu_version: int
    serial: str
    product: str


class DfuHost:
    def __init__(self, control: Control, interface: int = 0) -> None:
        self._control = control
        self.interface = interface
        self.transfer_size = 1024

    async def _transfer(self, setup: SetupPacket, data: bytes = b"") -> TransferResult:
        result = await self._control(setup, data)
        if not result.ok:
            raise DfuError(f"{setup.describe()}: {result.status.value}")
        return result

    async def _string(self, index: int) -> str:
        result = await self._transfer(SetupPacket(0x80, 6, 0x0300 | index, 0x0409, 255))
        return decode_string_descriptor(result.data)

    async def describe(self) -> DfuDevice:
        device = DeviceDescriptor.decode(
            (await self._transfer(SetupPacket(0x80, 6, 0x0100, 0, 18))).data)
        head = (await self._transfer(SetupPacket(0x80, 6, 0x0200, 0, 9))).data
        (total,) = struct.unpack_from("<H", head, 2)
        config = (await self._transfer(SetupPacket(0x80, 6, 0x0200, 0, total))).data
        names: dict[int, str] = {}
        attributes = transfer = version = 0
        pos = 9
        while pos < len(config):
            length, kind = config[pos], config[pos + 1]
            if kind == 0x04 and config[pos + 5:pos + 8] == bytes([0xFE, 0x01, 0x02]):
                names[config[pos + 3]] = await self._string(config[pos + 8])
            elif kind == 0x21:
                attributes = config[pos + 2]
                _detach, transfer, version = struct.unpack_from("<HHH", config, pos + 3)
            pos += length
        self.transfer_size = transfer or self.transfer_size
        return DfuDevice(device, names, attributes, transfer, version,
                         await self._string(device.iSerialNumber),
                         await self._string(device.iProduct))

    async def set_alt(self, alt: int) -> None:
        await self._transfer(SetupPacket(0x01, 11, alt, self.interface, 0))

    async def get_status(self) -> DfuStatus:
        data = (await self._transfer(SetupPacket(IN, GETSTATUS, 0, self.interface, 6))).data
        if len(data) != 6:
            raise DfuError(f"GETSTATUS returned {len(data)} bytes")
        return DfuStatus(data[0], int.from_bytes(data[1:4], "little"), data[4], data[5])

    async def get_state(self) -> int:
        return (await self._transfer(SetupPacket(IN, GETSTATE, 0, self.interface, 1))).data[0]

    async def clear_status(self) -> None:
        await self._transfer(SetupPacket(OUT, CLRSTATUS, 0, self.interface, 0))

    async def abort(self) -> None:
        await self._transfer(SetupPacket(OUT, ABORT, 0, self.interface, 0))

    async def ensure_idle(self) -> None:
        status = await self.get_status()
        if status.state == DFU_ERROR:
            await self.clear_status()
        elif status.state != DFU_IDLE:
            await self.abort()
        if (await self.get_status()).state != DFU_IDLE:
            raise DfuError("the device does not return to dfuIDLE")

    async def _dnload(self, block: int, data: bytes) -> None:
        await self._transfer(SetupPacket(OUT, DNLOAD, block, self.interface, len(data)), data)

    async def _wait_while_busy(self) -> DfuStatus:
        status = await self.get_status()  # dfuDNBUSY: the block is being written
        while status.state == DNBUSY:
            status = await self.get_status()
        return status

    async def set_address(self, address: int) -> None:
        await self._dnload(0, bytes([SET_ADDRESS_POINTER]) + struct.pack("<I", address))
        status = await self._wait_while_busy()
        if status.state != DNLOAD_IDLE:
            raise DfuError(f"SET_ADDRESS_POINTER: status {status}")

    async def download(self, alt: int, address: int, data: bytes) -> None:
        await self.set_alt(alt)
        await self.ensure_idle()
        await self.set_address(address)
        for index in range(0, len(data), self.transfer_size):
            await self._dnload(2 + index // self.transfer_size,
                               data[index:index + self.transfer_size])
            status = await self._wait_while_busy()
            if status.state != DNLOAD_IDLE or status.status != 0:
                raise DfuError(f"download at 0x{address + index:x}: status {status}")

    async def upload(self, alt: int, address: int, length: int) -> bytes:
        await self.set_alt(alt)
        await self.ensure_idle()
        await self.set_address(address)
        await self.abort()  # back to dfuIDLE before UPLOAD (AN3156)
        out = b""
        block = 2
        while len(out) < length:
            size = min(self.transfer_size, length - len(out))
            out += (await self._transfer(SetupPacket(IN, UPLOAD, block, self.interface,
                                                     size))).data
            block += 1
        return out

    async def leave(self, address: int) -> DfuStatus:
        """DfuSe leave: address pointer, a zero-length DNLOAD, GETSTATUS (dfuMANIFEST)."""
        await self.ensure_idle()
        await self.set_address(address)
        await self._dnload(2, b"")
        return await self.get_status()
