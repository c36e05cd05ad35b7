"""Provisioning by control requests: the phone's steps become encoded requests handed to the
device's dispatcher, exactly the bytes a BLE or USB client would send (without the transport
framing). The result of each step is the request's ``system_error_t``."""

from __future__ import annotations

from control_requests import requests
from control_requests.dispatcher import RequestHandle
from control_requests.requests import Call

from ..system.device import Device
from .phone import Done


class ControlRequestProvisioning:
    def __init__(self, device: Device, channel: str = "direct") -> None:
        self.device = device
        self.channel = channel

    def _send(self, call: Call[None], done: Done) -> None:
        request = call.request
        holder: list[RequestHandle] = []

        def completed(result: int, reply: bytes) -> None:
            done(result)
            if holder:
                holder[0].reply_delivered()

        holder.append(self.device.control.submit(self.channel, request.type, request.payload,
                                                 completed))

    def set_claim_code(self, code: str, done: Done) -> None:
        self._send(requests.set_claim_code(code), done)

    def join_new_network(self, ssid: str, password: str, done: Done) -> None:
        self._send(requests.join_new_network(ssid, password), done)

    def start_listening(self, done: Done) -> None:
        self._send(requests.start_listening(), done)

    def stop_listening(self, done: Done) -> None:
        self._send(requests.stop_listening(), done)
