"""Plain records of the emulated cloud: accounts, tokens, products, device groups, devices, claim
codes, transfers and the simulated email outbox.

A product device's group memberships live on its record (``DeviceRecord.groups``, names of
the product's :class:`DeviceGroup` records); a store that renames or deletes a group rewrites
the memberships with it.

Owners are :class:`Principal` values - a developer user or a product customer - because
Particle's ownership rules differ between the two (cloud.md A3-A5). Every timestamp a store keeps
is in *cloud time*: Unix microseconds (``Cloud.unix_us``), so that a persistent store stays
meaningful across restarts of the emulator.
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

    @property
    def is_user(self) -> bool:
        return self.kind is PrincipalKind.USER

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
    created_us: int = 0


@dataclass
class Product:
    id: int
    slug: str
    name: str = ""
    #: user ids of the product team
    team: set[str] = field(default_factory=set)
    platform_id: int = 32


@dataclass
class Customer:
    id: str
    email: str
    product_id: int
    password_hash: str = ""
    created_us: int = 0


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
    notes: str | None = None
    #: the names of the product groups the device is in, in the order they were assigned
    #: (a tuple: records are copied shallowly)
    groups: tuple[str, ...] = ()


@dataclass
class DeviceGroup:
    """A device group of a product (Particle's "Device groups"): a name unique in the product,
    an optional description and an optional colour (``#rrggbb``)."""

    product_id: int
    name: str
    description: str | None = None
    color: str | None = None


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


@dataclass
class OAuthClient:
    """An OAuth client. ``product_id`` set: a product client (creates customers, customer
    tokens); ``owner`` is the user a ``client_credentials`` token without scope acts for."""

    id: str
    secret: str
    name: str = ""
    product_id: int | None = None
    owner: str | None = None


class TokenKind(Enum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass
class Token:
    token: str
    kind: TokenKind
    principal: Principal
    client_id: str
    created_us: int
    #: None: never expires (``expires_in=0``)
    expires_us: int | None
    scope: str = ""

    def expired(self, now_us: int) -> bool:
        return self.expires_us is not None and now_us >= self.expires_us


class TransferStatus(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    #: the device changed hands some other way before the owner answered
    VOID = "void"


@dataclass
class Transfer:
    id: str
    device_id: str
    requester: Principal
    owner: Principal
    status: TransferStatus
    created_us: int
    decided_us: int | None = None
    #: the secret carried by the links of the owner's email; answering needs it ("" - a
    #: transfer stored by an older fwsim - can never be answered)
    approval_token: str = ""


@dataclass
class Email:
    """A message in the simulated outbox (transfer requests and their outcome)."""

    id: int
    to: str
    subject: str
    body: str
    created_us: int
    kind: str = ""
    #: what the email is about (a transfer id)
    ref: str | None = None
