"""Provisioning by control requests: the phone's steps become encoded requests handed to the
device's dispatcher, exactly the bytes a BLE or USB client would send (without the transport
framing). The result of each step is the request's ``system_error_t``."""

from __future__ import annotations

from control_requests.dispatcher import RequestHandle
from control_requests.requests import Call
from control_requests.steps import Done, ProvisioningSteps

from ..system.device import Device


class ControlRequestProvisioning(ProvisioningSteps):
    def __init__(self, device: Device, channel: str = "direct") -> None:
        self.device = device
        self.channel = channel

    def call(self, call: Call[None], done: Done) -> None:
        request = call.request
        holder: list[RequestHandle] = []

        def completed(result: int, reply: bytes) -> None:
            done(result)
            if holder:
                holder[0].reply_delivered()

        holder.append(self.device.control.submit(self.channel, request.type, request.payload,
                                                 completed))
