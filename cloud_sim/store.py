"""Storage of the emulated cloud's records.

:class:`CloudStore` is the interface every part of the cloud uses (the device endpoint, the claim
rules, the REST API). :class:`MemoryStore` keeps everything in dictionaries (fast, for scenarios
and benchmarks); :class:`cloud_sim.sqlite_store.SqliteStore` keeps it in SQLite (a file, or
``:memory:``). Both pass the same conformance tests (``tests/cloud/test_store.py``).

Records go in and come out as copies: changing a record a store returned changes nothing until
it is written back with the matching ``put``/``update`` method. ``transaction()`` groups writes
(SQLite commits once at the end; nested transactions join the outer one).

Device groups: a product's groups are :class:`DeviceGroup` records; a device's memberships are
its record's ``groups`` (written with ``put_device``). ``update_group`` (which may rename) and
``delete_group`` also rewrite the memberships of the product's devices, so that no device is
left in a group that no longer exists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Protocol, TypeVar

from firmware_sim.kernel.errors import UsageError

from .model import (
    ClaimCode,
    Customer,
    DeviceGroup,
    DeviceRecord,
    Email,
    OAuthClient,
    Principal,
    Product,
    Token,
    Transfer,
    User,
)

_T = TypeVar("_T")


class StoreInputError(UsageError):
    """A value a store cannot keep (text that is not Unicode, an integer beyond 64 bits); the
    REST API answers it 400. Inputs are validated at the edges first; this is the backstop."""


class CloudStore(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...
    # users
    def add_user(self, user: User) -> None: ...
    def get_user(self, user_id: str) -> User | None: ...
    def find_user(self, username: str) -> User | None: ...
    def update_user(self, user: User) -> None: ...
    def list_users(self) -> list[User]: ...
    # OAuth clients and tokens
    def add_client(self, client: OAuthClient) -> None: ...
    def get_client(self, client_id: str) -> OAuthClient | None: ...
    def list_clients(self) -> list[OAuthClient]: ...
    def add_token(self, token: Token) -> None: ...
    def get_token(self, token: str) -> Token | None: ...
    def delete_token(self, token: str) -> None: ...
    def tokens_of(self, principal: Principal) -> list[Token]: ...
    # products and customers
    def add_product(self, product: Product) -> None: ...
    def get_product(self, product_id: int) -> Product | None: ...
    def find_product(self, id_or_slug: str) -> Product | None: ...
    def update_product(self, product: Product) -> None: ...
    def list_products(self) -> list[Product]: ...
    def add_customer(self, customer: Customer) -> None: ...
    def get_customer(self, customer_id: str) -> Customer | None: ...
    def find_customer(self, product_id: int, email: str) -> Customer | None: ...
    def list_customers(self, product_id: int) -> list[Customer]: ...
    def update_customer(self, customer: Customer) -> None: ...
    def delete_customer(self, customer_id: str) -> None: ...
    # devices
    def get_device(self, device_id: str) -> DeviceRecord | None: ...
    def put_device(self, device: DeviceRecord) -> None: ...
    def touch_device(self, device_id: str, last_heard_us: int) -> None:
        """Set ``last_heard_us`` (a new record if the device is unknown): every datagram."""
    def list_devices(self) -> list[DeviceRecord]: ...
    def devices_owned_by(self, owner: Principal) -> list[DeviceRecord]: ...
    def devices_in_product(self, product_id: int) -> list[DeviceRecord]: ...
    # device groups
    def add_group(self, group: DeviceGroup) -> None: ...
    def get_group(self, product_id: int, name: str) -> DeviceGroup | None: ...
    def list_groups(self, product_id: int) -> list[DeviceGroup]:
        """The product's groups, by name."""
    def update_group(self, name: str, group: DeviceGroup) -> None:
        """Replace the product's group ``name`` with ``group`` (a new name renames it in its
        devices' memberships too)."""
    def delete_group(self, product_id: int, name: str) -> None:
        """Delete the group and take it out of every device of the product."""
    # claim codes
    def add_claim_code(self, claim: ClaimCode) -> None: ...
    def get_claim_code(self, code: str) -> ClaimCode | None: ...
    def update_claim_code(self, claim: ClaimCode) -> None: ...
    def list_claim_codes(self) -> list[ClaimCode]: ...
    def delete_claim_codes_of(self, creator: Principal) -> None: ...
    def delete_expired_claim_codes(self, now_us: int) -> int: ...
    # transfers and the outbox
    def add_transfer(self, transfer: Transfer) -> None: ...
    def get_transfer(self, transfer_id: str) -> Transfer | None: ...
    def update_transfer(self, transfer: Transfer) -> None: ...
    def list_transfers(self) -> list[Transfer]: ...
    def add_email(self, email: Email) -> Email: ...
    def list_emails(self) -> list[Email]: ...


def renamed_membership(groups: tuple[str, ...], name: str, new_name: str | None
                       ) -> tuple[str, ...]:
    """``groups`` with ``name`` renamed to ``new_name`` (``None``: removed), each name once."""
    kept: list[str] = []
    for group in groups:
        renamed = new_name if group == name else group
        if renamed is not None and renamed not in kept:
            kept.append(renamed)
    return tuple(kept)


def _copy(value: _T) -> _T:
    return copy.copy(value)


class MemoryStore:
    """A :class:`CloudStore` in memory."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.tokens: dict[str, Token] = {}
        self.products: dict[int, Product] = {}
        self.customers: dict[str, Customer] = {}
        self.devices: dict[str, DeviceRecord] = {}
        self.groups: dict[tuple[int, str], DeviceGroup] = {}
        self.claim_codes: dict[str, ClaimCode] = {}
        self.transfers: dict[str, Transfer] = {}
        self.emails: list[Email] = []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass

    # users
    def add_user(self, user: User) -> None:
        self.users[user.id] = _copy(user)

    def get_user(self, user_id: str) -> User | None:
        user = self.users.get(user_id)
        return _copy(user) if user else None

    def find_user(self, username: str) -> User | None:
        wanted = username.lower()
        return next((_copy(u) for u in self.users.values() if u.username.lower() == wanted),
                    None)

    def update_user(self, user: User) -> None:
        self.users[user.id] = _copy(user)

    def list_users(self) -> list[User]:
        return [_copy(u) for u in self.users.values()]

    # OAuth clients and tokens
    def add_client(self, client: OAuthClient) -> None:
        self.clients[client.id] = _copy(client)

    def get_client(self, client_id: str) -> OAuthClient | None:
        client = self.clients.get(client_id)
        return _copy(client) if client else None

    def list_clients(self) -> list[OAuthClient]:
        return [_copy(c) for c in self.clients.values()]

    def add_token(self, token: Token) -> None:
        self.tokens[token.token] = _copy(token)

    def get_token(self, token: str) -> Token | None:
        found = self.tokens.get(token)
        return _copy(found) if found else None

    def delete_token(self, token: str) -> None:
        self.tokens.pop(token, None)

    def tokens_of(self, principal: Principal) -> list[Token]:
        return [_copy(t) for t in self.tokens.values() if t.principal == principal]

    # products and customers
    def add_product(self, product: Product) -> None:
        self.products[product.id] = replace(product, team=set(product.team))

    def get_product(self, product_id: int) -> Product | None:
        product = self.products.get(product_id)
        return replace(product, team=set(product.team)) if product else None

    def find_product(self, id_or_slug: str) -> Product | None:
        if id_or_slug.isascii() and id_or_slug.isdigit() and len(id_or_slug) <= 18:
            product = self.get_product(int(id_or_slug))
            if product is not None:
                return product
        return next((self.get_product(p.id) for p in self.products.values()
                     if p.slug == id_or_slug), None)

    def update_product(self, product: Product) -> None:
        self.add_product(product)

    def list_products(self) -> list[Product]:
        return [replace(p, team=set(p.team)) for p in sorted(self.products.values(),
                                                              key=lambda p: p.id)]

    def add_customer(self, customer: Customer) -> None:
        self.customers[customer.id] = _copy(customer)

    def get_customer(self, customer_id: str) -> Customer | None:
        customer = self.customers.get(customer_id)
        return _copy(customer) if customer else None

    def find_customer(self, product_id: int, email: str) -> Customer | None:
        wanted = email.lower()
        return next((_copy(c) for c in self.customers.values()
                     if c.product_id == product_id and c.email.lower() == wanted), None)

    def list_customers(self, product_id: int) -> list[Customer]:
        return [_copy(c) for c in self.customers.values() if c.product_id == product_id]

    def update_customer(self, customer: Customer) -> None:
        self.customers[customer.id] = _copy(customer)

    def delete_customer(self, customer_id: str) -> None:
        self.customers.pop(customer_id, None)

    # devices
    def get_device(self, device_id: str) -> DeviceRecord | None:
        device = self.devices.get(device_id)
        return _copy(device) if device else None

    def put_device(self, device: DeviceRecord) -> None:
        self.devices[device.id] = _copy(device)

    def touch_device(self, device_id: str, last_heard_us: int) -> None:
        device = self.devices.get(device_id)
        if device is None:
            self.devices[device_id] = DeviceRecord(device_id, last_heard_us=last_heard_us)
        else:
            device.last_heard_us = last_heard_us  # the store's own copy: no one else holds it

    def list_devices(self) -> list[DeviceRecord]:
        return [_copy(d) for d in sorted(self.devices.values(), key=lambda d: d.id)]

    def devices_owned_by(self, owner: Principal) -> list[DeviceRecord]:
        return [d for d in self.list_devices() if d.owner == owner]

    def devices_in_product(self, product_id: int) -> list[DeviceRecord]:
        return [d for d in self.list_devices() if d.product_id == product_id]

    # device groups
    def add_group(self, group: DeviceGroup) -> None:
        self.groups[(group.product_id, group.name)] = _copy(group)

    def get_group(self, product_id: int, name: str) -> DeviceGroup | None:
        group = self.groups.get((product_id, name))
        return _copy(group) if group else None

    def list_groups(self, product_id: int) -> list[DeviceGroup]:
        return [_copy(g) for key, g in sorted(self.groups.items()) if key[0] == product_id]

    def update_group(self, name: str, group: DeviceGroup) -> None:
        self.groups.pop((group.product_id, name), None)
        self.groups[(group.product_id, group.name)] = _copy(group)
        if group.name != name:
            self._rewrite_memberships(group.product_id, name, group.name)

    def delete_group(self, product_id: int, name: str) -> None:
        self.groups.pop((product_id, name), None)
        self._rewrite_memberships(product_id, name, None)

    def _rewrite_memberships(self, product_id: int, name: str, new_name: str | None) -> None:
        for device in self.devices.values():
            if device.product_id == product_id and name in device.groups:
                device.groups = renamed_membership(device.groups, name, new_name)

    # claim codes
    def add_claim_code(self, claim: ClaimCode) -> None:
        self.claim_codes[claim.code] = _copy(claim)

    def get_claim_code(self, code: str) -> ClaimCode | None:
        claim = self.claim_codes.get(code)
        return _copy(claim) if claim else None

    def update_claim_code(self, claim: ClaimCode) -> None:
        self.claim_codes[claim.code] = _copy(claim)

    def list_claim_codes(self) -> list[ClaimCode]:
        return [_copy(c) for c in self.claim_codes.values()]

    def delete_claim_codes_of(self, creator: Principal) -> None:
        for code in [c.code for c in self.claim_codes.values() if c.creator == creator]:
            del self.claim_codes[code]

    def delete_expired_claim_codes(self, now_us: int) -> int:
        doomed = [c.code for c in self.claim_codes.values()
                  if c.expires_us < now_us and not c.consumed]
        for code in doomed:
            del self.claim_codes[code]
        return len(doomed)

    # transfers and the outbox
    def add_transfer(self, transfer: Transfer) -> None:
        self.transfers[transfer.id] = _copy(transfer)

    def get_transfer(self, transfer_id: str) -> Transfer | None:
        transfer = self.transfers.get(transfer_id)
        return _copy(transfer) if transfer else None

    def update_transfer(self, transfer: Transfer) -> None:
        self.transfers[transfer.id] = _copy(transfer)

    def list_transfers(self) -> list[Transfer]:
        return [_copy(t) for t in self.transfers.values()]

    def add_email(self, email: Email) -> Email:
        stored = replace(email, id=len(self.emails) + 1)
        self.emails.append(stored)
        return _copy(stored)

    def list_emails(self) -> list[Email]:
        return [_copy(e) for e in self.emails]
