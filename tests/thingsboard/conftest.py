"""Fixtures of the ThingsBoard face's tests: a World with the service and the demo accounts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cloud_sim.thingsboard.demo import DemoWorld, seed_demo
from cloud_sim.thingsboard.model import Device, User
from cloud_sim.thingsboard.service import ThingsBoardService
from cloud_sim.thingsboard.settings import ThingsBoardSettings
from firmware_sim.kernel.world import World


@dataclass
class Tb:
    world: World
    service: ThingsBoardService
    demo: DemoWorld

    def user(self, email: str) -> User:
        user = self.service.store.find_user(email)
        assert user is not None
        return user

    @property
    def a(self) -> User:
        return self.user("customerA@thingsboard.org")

    @property
    def b(self) -> User:
        return self.user("customerB@thingsboard.org")

    @property
    def tenant_admin(self) -> User:
        return self.user("tenant@thingsboard.org")

    def device(self, name: str = "Dev 1", **kwargs: object) -> Device:
        return self.service.create_device(self.demo.tenant.id, name, **kwargs)  # type: ignore[arg-type]

    def fresh(self, device: Device) -> Device:
        found = self.service.store.get_device(device.id)
        assert found is not None
        return found

    def send(self, device: Device, payload: bytes | None) -> None:
        token = self.service.access_token_of(device)
        self.service.device_claim(token, payload, transport="mqtt")

    def last_reason(self, device: Device) -> str:
        return self.service.history(device)[-1].reason


def make_tb(**settings: object) -> Tb:
    world = World(7)
    service = ThingsBoardService(world, settings=ThingsBoardSettings(**settings))  # type: ignore[arg-type]
    return Tb(world, service, seed_demo(service))


@pytest.fixture
def tb() -> Tb:
    return make_tb()
