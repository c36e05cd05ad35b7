"""Fixtures of the cloud tests: a cloud on virtual time, its REST API called in process, and a
seeded world (a product with a team member, two customers, a product device owned by A)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cloud_sim import Cloud
from cloud_sim.http import create_app
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.sqlite_store import SqliteStore
from cloud_sim.store import CloudStore, MemoryStore
from firmware_sim.kernel import World
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.testbed.served import open_served_cloud

DEVICE = "e00fce68aabbccddeeff0011"
OTHER_DEVICE = "e00fce68aabbccddeeff0022"
FREE_DEVICE = "e00fce68aabbccddeeff0033"
PRODUCT_ID = 4242
SLUG = "acme"
CLIENT = ("acme-client", "acme-secret")

SEED: dict[str, Any] = {
    "users": [{"username": "dev@acme.io", "password": "dev-pw"},
              {"username": "other@dev.io", "password": "other-pw"},
              {"username": "third@dev.io", "password": "third-pw"}],
    "products": [{"id": PRODUCT_ID, "slug": SLUG, "team": ["dev@acme.io"],
                  "client": {"id": CLIENT[0], "secret": CLIENT[1]}},
                 {"id": 7, "slug": "seven", "team": ["other@dev.io"]}],
    "customers": [{"product": SLUG, "email": "a@cust.io", "password": "a-pw"},
                  {"product": SLUG, "email": "b@cust.io", "password": "b-pw"},
                  {"product": "seven", "email": "c@cust.io", "password": "c-pw"}],
    "devices": [{"id": DEVICE, "product": SLUG, "owner": "customer:a@cust.io",
                 "platform_id": 32},
                {"id": OTHER_DEVICE, "owner": "user:other@dev.io", "platform_id": 32,
                 "online": True},
                {"id": FREE_DEVICE, "platform_id": 12, "online": True}],
}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> Iterator[CloudStore]:
    made: CloudStore = MemoryStore() if request.param == "memory" else SqliteStore(":memory:")
    yield made
    made.close()


@pytest.fixture
def cloud(store: CloudStore) -> Cloud:
    return Cloud(World(1), store=store)


@pytest.fixture
def api(cloud: Cloud) -> Iterator[AsgiApiClient]:
    with AsgiApiClient(create_app(cloud)) as client:
        yield client


@dataclass
class Tokens:
    dev: str
    other: str
    third: str
    a: str
    b: str
    c: str


@pytest.fixture
def tokens(api: AsgiApiClient) -> Tokens:
    status, body = api.request("POST", "/fwsim/seed", json=SEED)
    assert status == 200, body
    users, customers = body["users"], body["customers"]
    return Tokens(users["dev@acme.io"]["access_token"], users["other@dev.io"]["access_token"],
                  users["third@dev.io"]["access_token"],
                  customers["a@cust.io"]["access_token"],
                  customers["b@cust.io"]["access_token"],
                  customers["c@cust.io"]["access_token"])


def open_cloud(db: str, *, seed: int, epoch: int) -> Cloud:
    """A cloud as the serving commands open it (SQLite, wall-clock epoch, CSPRNG secrets)."""
    return open_served_cloud(db, seed=seed, epoch=epoch)


class Lamp(Firmware):
    """A device firmware with one function and one variable (the call and read tests)."""

    def setup(self, particle: Particle) -> None:
        particle.function("brightness", lambda argument: len(argument))
        particle.variable("label", "kitchen")
