"""Provisioning steps as control requests, callback style, for any carrier.

A setup app (or a factory tool) provisions a device with a handful of requests. Scenario code on
virtual time calls them with a ``done(result)`` callback; :class:`ProvisioningSteps` implements
the steps once, and each carrier (the in-process control channel, the USB host, the BLE phone)
only says how one encoded request travels, in :meth:`ProvisioningSteps.call`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from . import requests
from .requests import Call
from .services import Done


class ProvisioningSteps(ABC):
    @abstractmethod
    def call(self, call: Call[None], done: Done) -> None:
        """Send ``call``'s request; ``done(result)`` gets its ``system_error_t``."""

    def set_claim_code(self, code: str, done: Done) -> None:
        self.call(requests.set_claim_code(code), done)

    def join_new_network(self, ssid: str, password: str, done: Done) -> None:
        self.call(requests.join_new_network(ssid, password), done)

    def start_listening(self, done: Done) -> None:
        self.call(requests.start_listening(), done)

    def stop_listening(self, done: Done) -> None:
        self.call(requests.stop_listening(), done)


__all__ = ["Done", "ProvisioningSteps"]
