"""Storage of the emulated cloud's records.

:class:`CloudStore` is the interface every part of the cloud uses (the device endpoint, the claim
rules, the REST API); :class:`MemoryStore` keeps everything in dictionaries. A persistent
implementation only has to provide the same methods.
"""

from __future__ import annotations

from typing import Protocol

from .model import ClaimCode, Customer, DeviceRecord, Principal, Product, User


class CloudStore(Protocol):
    # users
    def add_user(self, user: User) -> None: ...
    def get_user(self, user_id: str) -> User | None: ...
    def find_user(self, username: str) -> User | None: ...
    # products and customers
    def add_product(self, product: Product) -> None: ...
    def get_product(self, product_id: int) -> Product | None: ...
    def find_product(self, id_or_slug: str) -> Product | None: ...
    def update_product(self, product: Product) -> None: ...
    def add_customer(self, customer: Customer) -> None: ...
    def get_customer(self, customer_id: str) -> Customer | None: ...
    def find_customer(self, product_id: int, email: str) -> Customer | None: ...
    def list_customers(self, product_id: int) -> list[Customer]: ...
    def update_customer(self, customer: Customer) -> None: ...
    def delete_customer(self, customer_id: str) -> None: ...
    # devices
    def get_device(self, device_id: str) -> DeviceRecord | None: ...
    def put_device(self, device: DeviceRecord) -> None: ...
    def list_devices(self) -> list[DeviceRecord]: ...
    def devices_owned_by(self, owner: Principal) -> list[DeviceRecord]: ...
    # claim codes
    def add_claim_code(self, claim: ClaimCode) -> None: ...
    def get_claim_code(self, code: str) -> ClaimCode | None: ...
    def update_claim_code(self, claim: ClaimCode) -> None: ...
    def list_claim_codes(self) -> list[ClaimCode]: ...
    def delete_claim_codes_of(self, creator: Principal) -> None: ...


class MemoryStore:
    """A :class:`CloudStore` in memory."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.products: dict[int, Product] = {}
        self.customers: dict[str, Customer] = {}
        self.devices: dict[str, DeviceRecord] = {}
        self.claim_codes: dict[str, ClaimCode] = {}

    # users
    def add_user(self, user: User) -> None:
        self.users[user.id] = user

    def get_user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def find_user(self, username: str) -> User | None:
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    # products and customers
    def add_product(self, product: Product) -> None:
        self.products[product.id] = product

    def get_product(self, product_id: int) -> Product | None:
        return self.products.get(product_id)

    def find_product(self, id_or_slug: str) -> Product | None:
        if id_or_slug.isdigit():
            product = self.products.get(int(id_or_slug))
            if product is not None:
                return product
        return next((p for p in self.products.values() if p.slug == id_or_slug), None)

    def update_product(self, product: Product) -> None:
        self.products[product.id] = product

    def add_customer(self, customer: Customer) -> None:
        self.customers[customer.id] = customer

    def get_customer(self, customer_id: str) -> Customer | None:
        return self.customers.get(customer_id)

    def find_customer(self, product_id: int, email: str) -> Customer | None:
        wanted = email.lower()
        return next((c for c in self.customers.values()
                     if c.product_id == product_id and c.email.lower() == wanted), None)

    def list_customers(self, product_id: int) -> list[Customer]:
        return [c for c in self.customers.values() if c.product_id == product_id]

    def update_customer(self, customer: Customer) -> None:
        self.customers[customer.id] = customer

    def delete_customer(self, customer_id: str) -> None:
        self.customers.pop(customer_id, None)

    # devices
    def get_device(self, device_id: str) -> DeviceRecord | None:
        return self.devices.get(device_id)

    def put_device(self, device: DeviceRecord) -> None:
        self.devices[device.id] = device

    def list_devices(self) -> list[DeviceRecord]:
        return sorted(self.devices.values(), key=lambda d: d.id)

    def devices_owned_by(self, owner: Principal) -> list[DeviceRecord]:
        return [d for d in self.list_devices() if d.owner == owner]

    # claim codes
    def add_claim_code(self, claim: ClaimCode) -> None:
        self.claim_codes[claim.code] = claim

    def get_claim_code(self, code: str) -> ClaimCode | None:
        return self.claim_codes.get(code)

    def update_claim_code(self, claim: ClaimCode) -> None:
        self.claim_codes[claim.code] = claim

    def list_claim_codes(self) -> list[ClaimCode]:
        return list(self.claim_codes.values())

    def delete_claim_codes_of(self, creator: Principal) -> None:
        for code in [c.code for c in self.claim_codes.values() if c.creator == creator]:
            del self.claim_codes[code]
