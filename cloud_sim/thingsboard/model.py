"""Entities of the emulated ThingsBoard service and their JSON shapes.

Ids are UUID strings like ThingsBoard's; an unassigned device carries ThingsBoard's
``NULL_UUID`` as its customer id on the wire (``customer_id is None`` here). The ``*_json``
helpers render the entity JSON that ThingsBoard's REST API returns (``{"id": {"entityType",
"id"}, "createdTime", ...}``), which tb-rest-client deserializes into its models.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: ``EntityId.NULL_UUID`` of ThingsBoard
NULL_UUID = "13814000-1dd2-11b2-8080-808080808080"

#: SERVER_SCOPE attribute names (``ClaimDevicesServiceImpl``)
CLAIM_ATTRIBUTE_NAME = "claimingAllowed"
CLAIM_DATA_ATTRIBUTE_NAME = "claimingData"

SERVER_SCOPE = "SERVER_SCOPE"
SHARED_SCOPE = "SHARED_SCOPE"
CLIENT_SCOPE = "CLIENT_SCOPE"
SCOPES = (SERVER_SCOPE, SHARED_SCOPE, CLIENT_SCOPE)


class Authority(Enum):
    SYS_ADMIN = "SYS_ADMIN"
    TENANT_ADMIN = "TENANT_ADMIN"
    CUSTOMER_USER = "CUSTOMER_USER"


class ClaimResponse(Enum):
    """``ClaimResponse`` of ThingsBoard."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CLAIMED = "CLAIMED"


class PayloadType(Enum):
    """Device profile transport payload type."""

    JSON = "JSON"
    PROTOBUF = "PROTOBUF"


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (a seeded stream: replayable ids)."""
    return str(uuid.UUID(bytes=rng.randbytes(16), version=4))


@dataclass(slots=True)
class Tenant:
    id: str
    title: str
    created_ms: int


@dataclass(slots=True)
class Customer:
    id: str
    tenant_id: str
    title: str
    email: str | None
    created_ms: int


@dataclass(slots=True)
class User:
    id: str
    tenant_id: str | None
    customer_id: str | None
    email: str
    authority: Authority
    password_hash: str
    first_name: str | None
    last_name: str | None
    created_ms: int
    #: one-time activation token of a user created without a password (``activationLink``)
    activate_token: str | None = None


@dataclass(slots=True)
class DeviceProfile:
    id: str
    tenant_id: str
    name: str
    payload_type: PayloadType
    created_ms: int


@dataclass(slots=True)
class Device:
    id: str
    tenant_id: str
    customer_id: str | None
    name: str
    type: str
    label: str | None
    profile_id: str
    created_ms: int
    is_gateway: bool = False
    version: int = 1


@dataclass(frozen=True, slots=True)
class Attribute:
    key: str
    value: Any
    last_update_ms: int


@dataclass(frozen=True, slots=True)
class ClaimData:
    """``ClaimData{secretKey, expirationTime}``: what is cached or kept in ``claimingData``."""

    secret_key: str | None
    expiration_time_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"secretKey": self.secret_key, "expirationTime": self.expiration_time_ms}


def entity_id(entity_type: str, value: str | None) -> dict[str, str] | None:
    return None if value is None else {"entityType": entity_type, "id": value}


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {"id": entity_id("TENANT", tenant.id), "createdTime": tenant.created_ms,
            "title": tenant.title, "name": tenant.title, "additionalInfo": None}


def customer_json(customer: Customer) -> dict[str, Any]:
    return {"id": entity_id("CUSTOMER", customer.id), "createdTime": customer.created_ms,
            "title": customer.title, "name": customer.title, "email": customer.email,
            "tenantId": entity_id("TENANT", customer.tenant_id), "additionalInfo": None,
            "country": None, "state": None, "city": None, "address": None, "address2": None,
            "zip": None, "phone": None, "version": 1}


def user_json(user: User) -> dict[str, Any]:
    return {"id": entity_id("USER", user.id), "createdTime": user.created_ms,
            "tenantId": entity_id("TENANT", user.tenant_id or NULL_UUID),
            "customerId": entity_id("CUSTOMER", user.customer_id or NULL_UUID),
            "email": user.email, "name": user.email, "authority": user.authority.value,
            "firstName": user.first_name, "lastName": user.last_name, "phone": None,
            "additionalInfo": {}, "version": 1}


def device_json(device: Device) -> dict[str, Any]:
    return {"id": entity_id("DEVICE", device.id), "createdTime": device.created_ms,
            "tenantId": entity_id("TENANT", device.tenant_id),
            "customerId": entity_id("CUSTOMER", device.customer_id or NULL_UUID),
            "name": device.name, "type": device.type, "label": device.label,
            "deviceProfileId": entity_id("DEVICE_PROFILE", device.profile_id),
            "additionalInfo": {"gateway": True} if device.is_gateway else None,
            "deviceData": {"configuration": {"type": "DEFAULT"},
                           "transportConfiguration": {"type": "DEFAULT"}},
            "firmwareId": None, "softwareId": None, "externalId": None,
            "version": device.version}


def credentials_json(device: Device, token: str, credentials_id: str,
                     created_ms: int) -> dict[str, Any]:
    return {"id": entity_id("DEVICE_CREDENTIALS", credentials_id), "createdTime": created_ms,
            "deviceId": entity_id("DEVICE", device.id), "credentialsType": "ACCESS_TOKEN",
            "credentialsId": token, "credentialsValue": None, "version": 1}
