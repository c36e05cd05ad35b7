"""The ThingsBoard service's persistent state in SQLite, with a versioned schema.

How this works
--------------
Like the Particle face's :mod:`cloud_sim.sqlite_store`, on the same base
(:mod:`cloud_sim.sqlite_db`): the schema version lives in SQLite's ``PRAGMA user_version``;
``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1`` and opening a store applies
the missing ones, each in its own transaction. A database written by a newer fwsim is refused.
``":memory:"`` keeps nothing (tests, in-process scenarios).

Persisted: tenants, customers, users, device profiles, devices, access-token credentials and
attributes. Not persisted, on purpose: the claim cache (in memory like ThingsBoard's Caffeine
cache, so a restart forgets device-side claim requests exactly as a real restart does) and the
claim history (bounded, in memory). Attribute values are stored as JSON text, so a boolean
stays a boolean (``claimingAllowed`` must be a *boolean* true, docs/thingsboard.md B3).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from firmware_sim.kernel.errors import UsageError

from ..sqlite_db import SqliteDatabase
from .model import (
    Attribute,
    Authority,
    Customer,
    Device,
    DeviceProfile,
    PayloadType,
    Tenant,
    User,
)

MIGRATIONS: list[str] = [
    # 0 -> 1: the initial schema
    """
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE customers (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        email TEXT,
        created_ms INTEGER NOT NULL,
        UNIQUE (tenant_id, title)
    );
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        tenant_id TEXT,
        customer_id TEXT,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        authority TEXT NOT NULL,
        password_hash TEXT NOT NULL DEFAULT '',
        first_name TEXT,
        last_name TEXT,
        created_ms INTEGER NOT NULL,
        activate_token TEXT
    );
    CREATE TABLE device_profiles (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        payload_type TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        UNIQUE (tenant_id, name)
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        customer_id TEXT,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        label TEXT,
        profile_id TEXT NOT NULL REFERENCES device_profiles(id),
        created_ms INTEGER NOT NULL,
        is_gateway INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 1,
        UNIQUE (tenant_id, name)
    );
    CREATE INDEX devices_customer ON devices(customer_id);
    CREATE TABLE device_credentials (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL UNIQUE REFERENCES devices(id) ON DELETE CASCADE,
        access_token TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE attributes (
        entity_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value_json TEXT NOT NULL,
        last_update_ms INTEGER NOT NULL,
        PRIMARY KEY (entity_id, scope, key)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class TbStore(SqliteDatabase):
    """State of one emulated ThingsBoard in SQLite (``path`` or ``":memory:"``)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        super().__init__(path, MIGRATIONS, what="ThingsBoard database")

    def _insert(self, sql: str, params: tuple[Any, ...], what: str) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise UsageError(f"{what} already exists") from exc

    # -- tenants and customers -----------------------------------------------------------------

    def add_tenant(self, tenant: Tenant) -> None:
        self._insert("INSERT INTO tenants VALUES (?, ?, ?)",
                     (tenant.id, tenant.title, tenant.created_ms), f"tenant {tenant.title!r}")

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = self._row("SELECT id, title, created_ms FROM tenants WHERE id = ?", (tenant_id,))
        return Tenant(*row) if row else None

    def find_tenant(self, title: str) -> Tenant | None:
        row = self._row("SELECT id, title, created_ms FROM tenants WHERE title = ?", (title,))
        return Tenant(*row) if row else None

    _CUSTOMER = "SELECT id, tenant_id, title, email, created_ms FROM customers"

    def add_customer(self, customer: Customer) -> None:
        self._insert("INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                     (customer.id, customer.tenant_id, customer.title, customer.email,
                      customer.created_ms), f"customer {customer.title!r}")

    def get_customer(self, customer_id: str) -> Customer | None:
        row = self._row(f"{self._CUSTOMER} WHERE id = ?", (customer_id,))
        return Customer(*row) if row else None

    def find_customer(self, tenant_id: str, title: str) -> Customer | None:
        row = self._row(f"{self._CUSTOMER} WHERE tenant_id = ? AND title = ?",
                        (tenant_id, title))
        return Customer(*row) if row else None

    # -- users ---------------------------------------------------------------------------------

    _USER = ("SELECT id, tenant_id, customer_id, email, authority, password_hash, first_name, "
             "last_name, created_ms, activate_token FROM users")

    @staticmethod
    def _user(row: Any) -> User:
        return User(row[0], row[1], row[2], row[3], Authority(row[4]), row[5], row[6], row[7],
                    row[8], row[9])

    def add_user(self, user: User) -> None:
        self._insert("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (user.id, user.tenant_id, user.customer_id, user.email,
                      user.authority.value, user.password_hash, user.first_name,
                      user.last_name, user.created_ms, user.activate_token),
                     f"user with email {user.email!r}")

    def update_user(self, user: User) -> None:
        self._db.execute("UPDATE users SET password_hash = ?, first_name = ?, last_name = ?, "
                         "activate_token = ? WHERE id = ?",
                         (user.password_hash, user.first_name, user.last_name,
                          user.activate_token, user.id))

    def get_user(self, user_id: str) -> User | None:
        row = self._row(f"{self._USER} WHERE id = ?", (user_id,))
        return self._user(row) if row else None

    def find_user(self, email: str) -> User | None:
        row = self._row(f"{self._USER} WHERE email = ?", (email,))
        return self._user(row) if row else None

    def find_user_by_activate_token(self, token: str) -> User | None:
        row = self._row(f"{self._USER} WHERE activate_token = ?", (token,))
        return self._user(row) if row else None

    # -- device profiles -----------------------------------------------------------------------

    _PROFILE = "SELECT id, tenant_id, name, payload_type, created_ms FROM device_profiles"

    @staticmethod
    def _profile(row: Any) -> DeviceProfile:
        return DeviceProfile(row[0], row[1], row[2], PayloadType(row[3]), row[4])

    def add_profile(self, profile: DeviceProfile) -> None:
        self._insert("INSERT INTO device_profiles VALUES (?, ?, ?, ?, ?)",
                     (profile.id, profile.tenant_id, profile.name, profile.payload_type.value,
                      profile.created_ms), f"device profile {profile.name!r}")

    def get_profile(self, profile_id: str) -> DeviceProfile | None:
        row = self._row(f"{self._PROFILE} WHERE id = ?", (profile_id,))
        return self._profile(row) if row else None

    def find_profile(self, tenant_id: str, name: str) -> DeviceProfile | None:
        row = self._row(f"{self._PROFILE} WHERE tenant_id = ? AND name = ?", (tenant_id, name))
        return self._profile(row) if row else None

    # -- devices and credentials ---------------------------------------------------------------

    _DEVICE = ("SELECT id, tenant_id, customer_id, name, type, label, profile_id, created_ms, "
               "is_gateway, version FROM devices")

    @staticmethod
    def _device(row: Any) -> Device:
        return Device(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                      bool(row[8]), row[9])

    def add_device(self, device: Device, token: str, credentials_id: str) -> None:
        with self.transaction():
            self._insert("INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (device.id, device.tenant_id, device.customer_id, device.name,
                          device.type, device.label, device.profile_id, device.created_ms,
                          int(device.is_gateway), device.version),
                         f"device with name {device.name!r}")
            self._insert("INSERT INTO device_credentials VALUES (?, ?, ?, ?)",
                         (credentials_id, device.id, token, device.created_ms),
                         "device credentials with this access token")

    def update_device(self, device: Device) -> None:
        device.version += 1
        self._db.execute("UPDATE devices SET customer_id = ?, label = ?, type = ?, version = ? "
                         "WHERE id = ?",
                         (device.customer_id, device.label, device.type, device.version,
                          device.id))

    def get_device(self, device_id: str) -> Device | None:
        row = self._row(f"{self._DEVICE} WHERE id = ?", (device_id,))
        return self._device(row) if row else None

    def find_device(self, tenant_id: str, name: str) -> Device | None:
        row = self._row(f"{self._DEVICE} WHERE tenant_id = ? AND name = ?", (tenant_id, name))
        return self._device(row) if row else None

    def find_devices_named(self, name: str) -> list[Device]:
        return [self._device(r) for r in
                self._rows(f"{self._DEVICE} WHERE name = ? ORDER BY created_ms, id", (name,))]

    def list_devices(self, tenant_id: str) -> list[Device]:
        return [self._device(r) for r in self._rows(
            f"{self._DEVICE} WHERE tenant_id = ? ORDER BY created_ms, name", (tenant_id,))]

    def device_by_token(self, token: str) -> Device | None:
        row = self._row(f"{self._DEVICE} WHERE id = (SELECT device_id FROM device_credentials "
                        "WHERE access_token = ?)", (token,))
        return self._device(row) if row else None

    def credentials_of(self, device_id: str) -> tuple[str, str, int] | None:
        """``(credentials id, access token, created ms)`` of a device."""
        row = self._row("SELECT id, access_token, created_ms FROM device_credentials "
                        "WHERE device_id = ?", (device_id,))
        return (row[0], row[1], row[2]) if row else None

    # -- attributes ----------------------------------------------------------------------------

    def save_attributes(self, entity_id: str, scope: str, values: dict[str, Any],
                        now_ms: int) -> None:
        with self.transaction():
            for key, value in values.items():
                self._db.execute(
                    "INSERT INTO attributes VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                    "(entity_id, scope, key) DO UPDATE SET value_json = excluded.value_json, "
                    "last_update_ms = excluded.last_update_ms",
                    (entity_id, scope, key, json.dumps(value, separators=(",", ":")), now_ms))

    def delete_attributes(self, entity_id: str, scope: str, keys: list[str]) -> int:
        with self.transaction():
            deleted = 0
            for key in keys:
                deleted += self._db.execute(
                    "DELETE FROM attributes WHERE entity_id = ? AND scope = ? AND key = ?",
                    (entity_id, scope, key)).rowcount
            return deleted

    def get_attribute(self, entity_id: str, scope: str, key: str) -> Attribute | None:
        row = self._row("SELECT key, value_json, last_update_ms FROM attributes "
                        "WHERE entity_id = ? AND scope = ? AND key = ?", (entity_id, scope, key))
        return Attribute(row[0], json.loads(row[1]), row[2]) if row else None

    def list_attributes(self, entity_id: str, scope: str) -> list[Attribute]:
        return [Attribute(r[0], json.loads(r[1]), r[2]) for r in self._rows(
            "SELECT key, value_json, last_update_ms FROM attributes WHERE entity_id = ? AND "
            "scope = ? ORDER BY key", (entity_id, scope))]
