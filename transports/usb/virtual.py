"""An in-process USB host on the world clock: the fast, deterministic way to drive a device's
USB control requests from tests, scenarios and benchmarks.

How this works
--------------
:class:`WorldHostIo` is the bus: a control transfer runs on the device's :class:`UsbDevicePort`
at the current virtual instant and its outcome reaches the host ``latency_s`` later in a
scheduler entry (a transfer the device never completes is reported TIMED_OUT after the host's
5 s transfer timeout, as particle-usb sets it). :class:`VirtualUsbHost` wraps a
:class:`~transports.usb.host.UsbHost` on that bus and offers three styles:

* callbacks on the world clock (``submit``): for scenarios that act at a given virtual time;
* blocking calls that run the world until the answer is in (``open``, ``request``, ``call``);
* ``client()``: a ``control_requests.ControlClient`` (async typed helpers) whose requests run
  the world the same way - so ``asyncio.run(host.client().set_claim_code(code))`` works without a
  real-time driver.

The blocking styles step the world themselves: do not call them from inside a scheduler entry,
nor while a real-time driver runs the same world.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from control_requests.client import ControlClient
from control_requests.requests import Call, ControlReply
from firmware_sim.kernel.errors import UsageError
from firmware_sim.kernel.scheduler import TimerHandle
from firmware_sim.kernel.world import World

from ..device_surface import UsbDevice
from .device_port import UsbDevicePort, attach_usb
from .errors import UsbError, UsbRequestTimeout, UsbTransferError
from .host import HostOptions, HostRequest, RequestDone, UsbHost
from .protocol import SetupPacket
from .transfer import TransferResult, TransferStatus

__all__ = ["VirtualUsbClient", "VirtualUsbHost", "WorldHostIo"]

T = TypeVar("T")

#: particle-usb sets node-usb's per-transfer timeout to 5000 ms.
TRANSFER_TIMEOUT_S = 5.0


class WorldHostIo:
    """A USB bus between a host and one device port, on the world clock."""

    def __init__(self, world: World, port: UsbDevicePort, *, latency_s: float = 0.0,
                 transfer_timeout_s: float = TRANSFER_TIMEOUT_S) -> None:
        self.world = world
        self.port = port
        self.latency_s = latency_s
        self.transfer_timeout_s = transfer_timeout_s
        #: The enumeration this host opened (None: follow the device across reboots).
        self.epoch: int | None = None

    def control_transfer(self, setup: SetupPacket, data: bytes,
                         done: Callable[[TransferResult], None]) -> None:
        result = self.port.control_transfer(setup, data, epoch=self.epoch)
        delay = (self.transfer_timeout_s if result.status is TransferStatus.TIMED_OUT
                 else self.latency_s)
        self.world.call_later(delay, done, result, label="usb-transfer")

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        return self.world.call_later(delay_s, callback, label="usb-host")


class VirtualUsbHost:
    """A host computer with particle-usb, plugged into one simulated device."""

    def __init__(self, world: World, device: UsbDevice | UsbDevicePort,
                 options: HostOptions | None = None, *,
                 latency_s: float = 0.0) -> None:
        self.world = world
        self.port = device if isinstance(device, UsbDevicePort) else attach_usb(device)
        self.io = WorldHostIo(world, self.port, latency_s=latency_s)
        self.host = UsbHost(self.io, options,
                            tracer=world.trace.bind(f"{self.port.device.name}-host", "usb_host"))

    @property
    def options(self) -> HostOptions:
        return self.host.options

    # -- callbacks on the world clock -----------------------------------------------------------

    def open_async(self, done: Callable[[UsbError | None], None]) -> None:
        if not self.port.attached:
            done(UsbTransferError(TransferStatus.NO_DEVICE.value, "Unable to open USB device"))
            return
        self.io.epoch = self.port.epoch
        self.host.open(done)

    def submit(self, request_type: int, payload: bytes, done: RequestDone, *,
               timeout_s: float | None = None) -> HostRequest:
        return self.host.send_request(request_type, payload, done, timeout_s=timeout_s)

    # -- blocking (runs the world) --------------------------------------------------------------

    def open(self, timeout_s: float = 30.0) -> VirtualUsbHost:
        box: list[UsbError | None] = []
        self.open_async(box.append)
        self._run_until(lambda: bool(box), timeout_s, "open")
        if box[0] is not None:
            raise box[0]
        return self

    def close(self) -> None:
        box: list[bool] = []
        self.host.close(lambda: box.append(True))
        self._run_until(lambda: bool(box), self.options.request_timeout_s + 10, "close")

    def request(self, request_type: int, payload: bytes = b"", *,
                timeout_s: float | None = None) -> ControlReply:
        """Send one request and run the world until its reply; raises ``UsbError``."""
        box: list[ControlReply | UsbError] = []
        self.submit(request_type, payload, box.append, timeout_s=timeout_s)
        limit = self.options.request_timeout_s if timeout_s is None else timeout_s
        self._run_until(lambda: bool(box), limit + 10.0, "request")
        outcome = box[0]
        if isinstance(outcome, UsbError):
            raise outcome
        return outcome

    def call(self, call: Call[T]) -> T:
        return call.result(self.request(call.request.type, call.request.payload))

    def transfer(self, setup: SetupPacket, data: bytes = b"") -> TransferResult:
        """One raw control transfer (outside the request pipeline)."""
        box: list[TransferResult] = []
        self.io.control_transfer(setup, data, box.append)
        self._run_until(lambda: bool(box), TRANSFER_TIMEOUT_S + 1.0, "transfer")
        return box[0]

    def client(self) -> VirtualUsbClient:
        return VirtualUsbClient(self)

    def _run_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        if not self.world.run_until(predicate, timeout=timeout_s):
            raise UsbRequestTimeout(f"USB {what} did not finish within {timeout_s:g} virtual s")


class VirtualUsbClient(ControlClient):
    """``ControlClient`` over a :class:`VirtualUsbHost` (runs the world for each request)."""

    def __init__(self, host: VirtualUsbHost) -> None:
        if host.host.state.value == "closed":
            raise UsageError("open the VirtualUsbHost before asking for a client")
        self.usb = host

    async def send_request(self, request_type: int, payload: bytes) -> tuple[int, bytes]:
        reply = self.usb.request(request_type, payload)
        return reply.result, reply.data
