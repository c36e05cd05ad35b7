"""ThingsBoard's well-known demo accounts, so tutorials written for a demo install work.

``seed_demo`` creates (once; an existing database is left as it is) the system administrator
``sysadmin@thingsboard.org`` / ``sysadmin``, the tenant ``Tenant`` with its administrator
``tenant@thingsboard.org`` / ``tenant``, the customers ``Customer A``, ``Customer B`` and
``Customer C`` with the users ``customerA@thingsboard.org`` ... / ``customer``, and
``devices`` claim-ready devices ``Claim Button 1`` ... (unassigned, access-token credentials).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Authority, Customer, Device, Tenant
from .service import ThingsBoardService

SYSADMIN = ("sysadmin@thingsboard.org", "sysadmin")
TENANT_ADMIN = ("tenant@thingsboard.org", "tenant")
CUSTOMER_PASSWORD = "customer"
CUSTOMERS = (("Customer A", "customerA@thingsboard.org"),
             ("Customer B", "customerB@thingsboard.org"),
             ("Customer C", "customerC@thingsboard.org"))
TENANT_TITLE = "Tenant"
DEVICE_PREFIX = "Claim Button"


@dataclass
class DemoWorld:
    tenant: Tenant
    customers: dict[str, Customer]
    devices: list[Device] = field(default_factory=list)

    def logins(self) -> list[tuple[str, str, str]]:
        """``(role, email, password)`` of every demo account."""
        rows = [("sysadmin", *SYSADMIN), ("tenant admin", *TENANT_ADMIN)]
        rows += [(f"customer {title[-1]}", email, CUSTOMER_PASSWORD)
                 for title, email in CUSTOMERS]
        return rows


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
