"""The phone side of the scenarios: what a setup app does to a device, step by step.

A :class:`Phone` runs a script of provisioning steps on the world's clock, one after the other,
each after a short "user think time". Steps go through a :class:`Provisioning` backend; the
default sends real control requests (the same handlers BLE and USB reach); the direct backend
calls the system layer and exists for tests of the layers below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..kernel.world import World
from ..system.device import Device
from ..system.network import WifiCredentials

Done = Callable[[int], None]


class Provisioning(Protocol):
    def set_claim_code(self, code: str, done: Done) -> None: ...
    def join_new_network(self, ssid: str, password: str, done: Done) -> None: ...
    def start_listening(self, done: Done) -> None: ...
    def stop_listening(self, done: Done) -> None: ...


class DirectProvisioning:
    """Calls the system layer directly (no control-request encoding)."""

    def __init__(self, device: Device) -> None:
        self.device = device

    def set_claim_code(self, code: str, done: Done) -> None:
        done(self.device.claim.set_claim_code(code.encode()))

    def join_new_network(self, ssid: str, password: str, done: Done) -> None:
        self.device.network.join_new_network(WifiCredentials(ssid, password), done)

    def start_listening(self, done: Done) -> None:
        self.device.listening.enter()
        done(0)

    def stop_listening(self, done: Done) -> None:
        self.device.listening.exit()
        done(0)


@dataclass
class Step:
    label: str
    action: Callable[[Done], None]


class Phone:
    """Runs provisioning steps sequentially; records each result in the trace."""

    def __init__(self, world: World, backend: Provisioning, name: str = "phone",
                 think_time_s: float = 1.5) -> None:
        self.world = world
        self.backend = backend
        self.tracer = world.trace.bind(name, "app")
        self.think_time_s = think_time_s
        self.results: list[tuple[str, int]] = []
        self._steps: list[Step] = []
        self.finished = False

    def set_claim_code(self, code: str) -> Phone:
        self._steps.append(Step("set_claim_code",
                                lambda done: self.backend.set_claim_code(code, done)))
        return self

    def join_new_network(self, ssid: str, password: str) -> Phone:
        self._steps.append(Step(f"join_new_network {ssid}",
                                lambda done: self.backend.join_new_network(ssid, password, done)))
        return self

    def start_listening(self) -> Phone:
        self._steps.append(Step("start_listening", self.backend.start_listening))
        return self

    def stop_listening(self) -> Phone:
        self._steps.append(Step("stop_listening", self.backend.stop_listening))
        return self

    def run(self, start_in_s: float = 0.0) -> None:
        self.world.scheduler.call_later(start_in_s, self._next, label="phone")

    def _next(self) -> None:
        if not self._steps:
            self.finished = True
            self.tracer.emit("phone.done", results=self.results)
            return
        step = self._steps.pop(0)
        self.tracer.emit("phone.step", step=step.label)

        def done(result: int) -> None:
            self.results.append((step.label, result))
            self.tracer.emit("phone.result", step=step.label, result=result)
            self.world.scheduler.call_later(self.think_time_s, self._next, label="phone")

        step.action(done)
