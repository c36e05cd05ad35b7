"""Plain records of the emulated cloud: users, products, customers, devices, claim codes.

Owners are :class:`Principal` values - a developer user or a product customer - because
Particle's ownership rules differ between the two (cloud.md A3-A5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class PrincipalKind(Enum):
    USER = "user"
    CUSTOMER = "customer"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str

    @classmethod
    def user(cls, user_id: str) -> Principal:
        return cls(PrincipalKind.USER, user_id)

    @classmethod
    def customer(cls, customer_id: str) -> Principal:
        return cls(PrincipalKind.CUSTOMER, customer_id)

    @property
    def is_customer(self) -> bool:
        return self.kind is PrincipalKind.CUSTOMER

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Principal:
        kind, _, ident = text.partition(":")
        return cls(PrincipalKind(kind), ident)


@dataclass
class User:
    id: str
    username: str  # an email address
    password_hash: str = ""


@dataclass
class Product:
    id: int
    slug: str
    name: str = ""
    #: user ids of the product team
    team: set[str] = field(default_factory=set)


@dataclass
class Customer:
    id: str
    email: str
    product_id: int
    password_hash: str = ""


@dataclass
class DeviceRecord:
    id: str  # 24 lowercase hex
    platform_id: int | None = None
    product_id: int | None = None
    owner: Principal | None = None
    name: str | None = None
    online: bool = False
    last_heard_us: int | None = None
    last_handshake_us: int | None = None
    system_version: int | None = None


@dataclass
class ClaimCode:
    code: str
    creator: Principal
    product_id: int | None
    created_us: int
    expires_us: int
    consumed_us: int | None = None
    consumed_by: str | None = None

    @property
    def consumed(self) -> bool:
        return self.consumed_us is not None
