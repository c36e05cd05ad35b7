"""Provisioning over USB for the claim-code scenarios: a host computer with particle-usb.

``UsbProvisioning(device)`` has the shape of ``firmware_sim.scenarios.phone.Provisioning``
(``set_claim_code``, ``join_new_network``, ``start_listening``, ``stop_listening``, each with a
``done(result)`` callback on the world clock), so every catalog scenario can run with its steps
carried by the in-process USB bus::

    SCENARIOS["resume-bug"].run(seed, provisioning=UsbProvisioning)

The host opens the device (descriptors, version, RESET of stale requests) before its first
step. A request that fails on the USB level reports TIMEOUT (-160) for a request timeout and
IO (-220) otherwise.
"""

from __future__ import annotations

from control_requests.requests import Call, ControlReply
from control_requests.steps import Done, ProvisioningSteps
from firmware_sim.kernel.errors import ResultCode

from ..device_surface import UsbDevice
from .errors import UsbError, UsbRequestTimeout
from .host import HostOptions
from .virtual import VirtualUsbHost

__all__ = ["UsbProvisioning"]


def _result_of(outcome: ControlReply | UsbError) -> int:
    if isinstance(outcome, ControlReply):
        return outcome.result
    if isinstance(outcome, UsbRequestTimeout):
        return int(ResultCode.TIMEOUT)
    return int(ResultCode.IO)


class UsbProvisioning(ProvisioningSteps):
    def __init__(self, device: UsbDevice, options: HostOptions | None = None) -> None:
        self.device = device
        self.usb = VirtualUsbHost(device.world, device, options)
        self._state = "closed"
        self._waiting: list[tuple[Call[None], Done]] = []

    def call(self, call: Call[None], done: Done) -> None:
        if self._state == "open":
            self._submit(call, done)
            return
        self._waiting.append((call, done))
        if self._state == "closed":
            self._state = "opening"
            self.usb.open_async(self._opened)

    def _submit(self, call: Call[None], done: Done) -> None:
        try:
            self.usb.submit(call.request.type, call.request.payload,
                            lambda outcome: done(_result_of(outcome)))
        except UsbError as exc:
            done(_result_of(exc))

    def _opened(self, error: UsbError | None) -> None:
        waiting, self._waiting = self._waiting, []
        if error is not None:
            self._state = "closed"
            self.usb.world.trace.emit(self.device.name, "usb_host", "usb_host.open_failed",
                                      error=str(error))
            for _, done in waiting:
                done(_result_of(error))
            return
        self._state = "open"
        for call, done in waiting:
            self._submit(call, done)
