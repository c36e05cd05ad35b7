"""ThingsBoard's well-known demo accounts, so tutorials written for a demo install work.

``seed_demo`` creates (once; an existing database is left as it is) the system administrator
``sysadmin@thingsboard.org`` / ``sysadmin``, the tenant ``Tenant`` with its administrator
``tenant@thingsboard.org`` / ``tenant``, the customers ``Customer A``, ``Customer B`` and
``Customer C`` with the users ``customerA@thingsboard.org`` ... / ``customer``, and
``devices`` claim-ready devices ``Claim Button 1`` ... (unassigned, access-token credentials).
Those published passwords keep in-process worlds (scenarios, tests) replayable. A world served on
sockets must not keep them - anyone who can reach the port would log in as the tenant
administrator and read every device token: ``set_demo_passwords`` gives every demo account a
fresh password from the OS CSPRNG (or one given password) on each start, resetting an existing
database's, and ``DemoWorld.logins`` then lists this start's passwords.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field

from cloud_sim.accounts import hash_password

from .model import Authority, Customer, Device, Tenant
from .service import ThingsBoardService

SYSADMIN = ("sysadmin@thingsboard.org", "sysadmin")
TENANT_ADMIN = ("tenant@thingsboard.org", "tenant")
CUSTOMER_PASSWORD = "customer"
CUSTOMERS = (("Customer A", "customerA@thingsboard.org"),
             ("Customer B", "customerB@thingsboard.org"),
             ("Customer C", "customerC@thingsboard.org"))
TENANT_TITLE = "Tenant"
#: a fresh demo password: this many letters and digits from the OS CSPRNG (~95 bits; never a
#: leading "-" that a command line would take for an option)
FRESH_PASSWORD_LENGTH = 16
_ALPHANUMERIC = string.ascii_letters + string.digits

#: ``(role, email)`` of every demo account, in the order the serving commands print them
ACCOUNTS = (("sysadmin", SYSADMIN[0]), ("tenant admin", TENANT_ADMIN[0]),
            *((f"customer {title[-1]}", email) for title, email in CUSTOMERS))
#: ThingsBoard's published demo passwords (in-process worlds only)
PUBLISHED_PASSWORDS = {SYSADMIN[0]: SYSADMIN[1], TENANT_ADMIN[0]: TENANT_ADMIN[1],
                       **{email: CUSTOMER_PASSWORD for _, email in CUSTOMERS}}
DEVICE_PREFIX = "Claim Button"


@dataclass
class DemoWorld:
    tenant: Tenant
    customers: dict[str, Customer]
    devices: list[Device] = field(default_factory=list)
    #: each demo account's password by email (the published ones until ``set_demo_passwords``)
    passwords: dict[str, str] = field(default_factory=lambda: dict(PUBLISHED_PASSWORDS))

    def logins(self) -> list[tuple[str, str, str]]:
        """``(role, email, password)`` of every demo account."""
        return [(role, email, self.passwords[email]) for role, email in ACCOUNTS]


def device_name(index: int) -> str:
    return f"{DEVICE_PREFIX} {index}"


def seed_demo(service: ThingsBoardService, *, devices: int = 0) -> DemoWorld:
    store = service.store
    tenant = store.find_tenant(TENANT_TITLE)
    with store.transaction():
        if store.find_user(SYSADMIN[0]) is None:
            service.create_user(SYSADMIN[0], Authority.SYS_ADMIN, tenant_id=None,
                                password=SYSADMIN[1])
        if tenant is None:
            tenant = service.create_tenant(TENANT_TITLE)
        if store.find_user(TENANT_ADMIN[0]) is None:
            service.create_user(TENANT_ADMIN[0], Authority.TENANT_ADMIN, tenant_id=tenant.id,
                                password=TENANT_ADMIN[1])
        customers: dict[str, Customer] = {}
        for title, email in CUSTOMERS:
            customer = store.find_customer(tenant.id, title)
            if customer is None:
                customer = service.create_customer(tenant.id, title, email)
            customers[title] = customer
            if store.find_user(email) is None:
                service.create_user(email, Authority.CUSTOMER_USER, tenant_id=tenant.id,
                                    customer_id=customer.id, password=CUSTOMER_PASSWORD)
        demo = DemoWorld(tenant, customers)
        for index in range(1, devices + 1):
            name = device_name(index)
            device = store.find_device(tenant.id, name)
            if device is None:
                device = service.create_device(tenant.id, name, label="fwsim claim button")
            demo.devices.append(device)
    return demo


def set_demo_passwords(service: ThingsBoardService, demo: DemoWorld,
                       password: str | None = None) -> None:
    """Give every demo account ``password``, or each its own fresh one from the OS CSPRNG
    (``secrets``) when None, replacing whatever the store held (a persistent database keeps
    the previous start's, or the published ones); ``demo.passwords`` records them."""
    store = service.store
    with store.transaction():
        for _, email in ACCOUNTS:
            user = store.find_user(email)
            if user is None:  # seed_demo made every one of them
                raise LookupError(f"no demo account {email}: seed_demo first")
            chosen = password if password is not None else "".join(
                secrets.choice(_ALPHANUMERIC) for _ in range(FRESH_PASSWORD_LENGTH))
            user.password_hash = hash_password(chosen, service.rng)
            user.activate_token = None
            store.update_user(user)
            demo.passwords[email] = chosen
