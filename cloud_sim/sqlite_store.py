"""A :class:`~cloud_sim.store.CloudStore` in SQLite, with a versioned schema.

How this works
--------------
The schema and transactions are :mod:`cloud_sim.sqlite_db`'s: the schema version lives in
SQLite's ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes a database from version ``i`` to
``i + 1``; opening a store applies every missing migration in order, each in its own
transaction, so an old emulator database is upgraded in place and keeps its users, tokens,
products, devices, owners and claim codes. A database written by a newer fwsim (a version above
``SCHEMA_VERSION``) is refused with a :class:`ConfigurationError` rather than guessed at. Writes
commit on their own unless they run inside ``transaction()`` (one ``BEGIN IMMEDIATE``/
``COMMIT``, rolled back if the block raises). A file database uses WAL journaling.

Every authenticated request reads its access token and its user (or customer), so those rows
are kept in read caches by key: filled by a read outside a transaction (committed rows only),
dropped by this store's own writes of the same key (a revoked or deleted token, a changed
password), emptied after a rollback, and bounded (``CACHE_ROWS``). Expiry is a field of the
token, checked at each use. The caches assume what a served cloud is: the database's only
writer - another process changing the same file while it runs is not seen for these rows.
Every read still returns a fresh row object.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

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
    TokenKind,
    Transfer,
    TransferStatus,
    User,
)
from .sqlite_db import SqliteDatabase
from .store import StoreInputError, renamed_membership

MIGRATIONS: list[str] = [
    # 0 -> 1: the initial schema
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL DEFAULT '',
        created_us INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE oauth_clients (
        id TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        product_id INTEGER,
        owner TEXT
    );
    CREATE TABLE tokens (
        token TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        principal TEXT NOT NULL,
        client_id TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        expires_us INTEGER,
        scope TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX tokens_principal ON tokens(principal);
    CREATE TABLE products (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        platform_id INTEGER NOT NULL DEFAULT 32
    );
    CREATE TABLE product_team (
        product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        PRIMARY KEY (product_id, user_id)
    );
    CREATE TABLE customers (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        product_id INTEGER NOT NULL,
        password_hash TEXT NOT NULL DEFAULT '',
        created_us INTEGER NOT NULL DEFAULT 0,
        UNIQUE (product_id, email)
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        platform_id INTEGER,
        product_id INTEGER,
        owner TEXT,
        name TEXT,
        online INTEGER NOT NULL DEFAULT 0,
        last_heard_us INTEGER,
        last_handshake_us INTEGER,
        system_version INTEGER
    );
    CREATE INDEX devices_owner ON devices(owner);
    CREATE INDEX devices_product ON devices(product_id);
    CREATE TABLE claim_codes (
        code TEXT PRIMARY KEY,
        creator TEXT NOT NULL,
        product_id INTEGER,
        created_us INTEGER NOT NULL,
        expires_us INTEGER NOT NULL,
        consumed_us INTEGER,
        consumed_by TEXT
    );
    CREATE INDEX claim_codes_creator ON claim_codes(creator);
    """,
    # 1 -> 2: device notes, transfers and the simulated email outbox
    """
    ALTER TABLE devices ADD COLUMN notes TEXT;
    CREATE TABLE transfers (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        requester TEXT NOT NULL,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        decided_us INTEGER
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        kind TEXT NOT NULL DEFAULT '',
        ref TEXT
    );
    """,
    # 2 -> 3: the secret of a transfer's email links
    """
    ALTER TABLE transfers ADD COLUMN approval_token TEXT NOT NULL DEFAULT '';
    """,
    # 3 -> 4: product device groups; a device's memberships (a JSON array of group names,
    # NULL for none: the column every device row of an older database gets)
    """
    CREATE TABLE device_groups (
        product_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        color TEXT,
        PRIMARY KEY (product_id, name)
    );
    ALTER TABLE devices ADD COLUMN group_names TEXT;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _principal(text: str | None) -> Principal | None:
    return Principal.parse(text) if text else None


def _text(principal: Principal | None) -> str | None:
    return str(principal) if principal is not None else None


def _group_names(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _group_text(groups: tuple[str, ...]) -> str | None:
    return json.dumps(list(groups)) if groups else None


#: rows kept per read cache at most (a full cache starts over)
CACHE_ROWS = 4096
_MISSING = object()


class SqliteStore(SqliteDatabase):
    """A :class:`CloudStore` in an SQLite database (``path`` or ``":memory:"``)."""

    def __init__(self, path: str | Path = ":memory:", *,
                 migrate_to: int = SCHEMA_VERSION) -> None:
        # read caches of the rows every authenticated request reads (module header)
        self._token_rows: dict[str, Any] = {}
        self._user_rows: dict[str, Any] = {}
        self._customer_rows: dict[str, Any] = {}
        super().__init__(path, MIGRATIONS, what="cloud database", migrate_to=migrate_to)

    # -- read caches ---------------------------------------------------------------------------

    def _cached_row(self, cache: dict[str, Any], key: str, sql: str) -> Any:
        row = cache.get(key, _MISSING)
        if row is _MISSING:
            row = self._row(sql, (key,))
            if row is not None and not self._depth:  # committed rows only
                if len(cache) >= CACHE_ROWS:
                    cache.clear()
                cache[key] = row
        return row

    def on_rollback(self) -> None:
        for cache in (self._token_rows, self._user_rows, self._customer_rows):
            cache.clear()

    def _execute(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except (UnicodeEncodeError, OverflowError) as exc:
            # text SQLite cannot store (a lone surrogate) or an integer beyond 64 bits
            raise StoreInputError(f"value not storable: {type(exc).__name__}") from None

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._execute(sql, params)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._execute(sql, params).fetchall())

    def _row(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._execute(sql, params).fetchone()

    # -- users ---------------------------------------------------------------------------------

    _USER = "SELECT id, username, password_hash, created_us FROM users"

    @staticmethod
    def _user(row: Any) -> User:
        return User(row[0], row[1], row[2], row[3])

    def add_user(self, user: User) -> None:
        self._user_rows.pop(user.id, None)
        self._write("INSERT INTO users VALUES (?, ?, ?, ?)",
                    (user.id, user.username, user.password_hash, user.created_us))

    def get_user(self, user_id: str) -> User | None:
        row = self._cached_row(self._user_rows, user_id, f"{self._USER} WHERE id = ?")
        return self._user(row) if row else None

    def find_user(self, username: str) -> User | None:
        row = self._row(f"{self._USER} WHERE username = ?", (username,))
        return self._user(row) if row else None

    def update_user(self, user: User) -> None:
        self._user_rows.pop(user.id, None)
        self._write("UPDATE users SET username = ?, password_hash = ? WHERE id = ?",
                    (user.username, user.password_hash, user.id))

    def list_users(self) -> list[User]:
        return [self._user(r) for r in self._rows(f"{self._USER} ORDER BY created_us, id")]

    # -- OAuth clients and tokens --------------------------------------------------------------

    _CLIENT = "SELECT id, secret, name, product_id, owner FROM oauth_clients"

    def add_client(self, client: OAuthClient) -> None:
        self._write("INSERT OR REPLACE INTO oauth_clients VALUES (?, ?, ?, ?, ?)",
                    (client.id, client.secret, client.name, client.product_id, client.owner))

    def get_client(self, client_id: str) -> OAuthClient | None:
        row = self._row(f"{self._CLIENT} WHERE id = ?", (client_id,))
        return OAuthClient(*row) if row else None

    def list_clients(self) -> list[OAuthClient]:
        return [OAuthClient(*r) for r in self._rows(f"{self._CLIENT} ORDER BY id")]

    _TOKEN = ("SELECT token, kind, principal, client_id, created_us, expires_us, scope "
              "FROM tokens")

    @staticmethod
    def _token(row: Any) -> Token:
        return Token(row[0], TokenKind(row[1]), Principal.parse(row[2]), row[3], row[4], row[5],
                     row[6])

    def add_token(self, token: Token) -> None:
        self._token_rows.pop(token.token, None)
        self._write("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (token.token, token.kind.value, str(token.principal), token.client_id,
                     token.created_us, token.expires_us, token.scope))

    def get_token(self, token: str) -> Token | None:
        row = self._cached_row(self._token_rows, token, f"{self._TOKEN} WHERE token = ?")
        return self._token(row) if row else None

    def delete_token(self, token: str) -> None:
        self._token_rows.pop(token, None)
        self._write("DELETE FROM tokens WHERE token = ?", (token,))

    def tokens_of(self, principal: Principal) -> list[Token]:
        return [self._token(r) for r in
                self._rows(f"{self._TOKEN} WHERE principal = ? ORDER BY created_us",
                           (str(principal),))]

    # -- products and customers ----------------------------------------------------------------

    def _product(self, row: Any) -> Product:
        team = {r[0] for r in self._rows(
            "SELECT user_id FROM product_team WHERE product_id = ?", (row[0],))}
        return Product(row[0], row[1], row[2], team, row[3])

    def add_product(self, product: Product) -> None:
        with self.transaction():
            self._write("INSERT INTO products VALUES (?, ?, ?, ?)",
                        (product.id, product.slug, product.name, product.platform_id))
            for user_id in sorted(product.team):
                self._write("INSERT INTO product_team VALUES (?, ?)", (product.id, user_id))

    def get_product(self, product_id: int) -> Product | None:
        if not -2**63 <= product_id < 2**63:
            return None
        row = self._row("SELECT id, slug, name, platform_id FROM products WHERE id = ?",
                        (product_id,))
        return self._product(row) if row else None

    def find_product(self, id_or_slug: str) -> Product | None:
        if id_or_slug.isascii() and id_or_slug.isdigit() and len(id_or_slug) <= 18:
            product = self.get_product(int(id_or_slug))
            if product is not None:
                return product
        row = self._row("SELECT id, slug, name, platform_id FROM products WHERE slug = ?",
                        (id_or_slug,))
        return self._product(row) if row else None

    def update_product(self, product: Product) -> None:
        with self.transaction():
            self._write("UPDATE products SET slug = ?, name = ?, platform_id = ? WHERE id = ?",
                        (product.slug, product.name, product.platform_id, product.id))
            self._write("DELETE FROM product_team WHERE product_id = ?", (product.id,))
            for user_id in sorted(product.team):
                self._write("INSERT INTO product_team VALUES (?, ?)", (product.id, user_id))

    def list_products(self) -> list[Product]:
        return [self._product(r) for r in
                self._rows("SELECT id, slug, name, platform_id FROM products ORDER BY id")]

    _CUSTOMER = "SELECT id, email, product_id, password_hash, created_us FROM customers"

    def add_customer(self, customer: Customer) -> None:
        self._customer_rows.pop(customer.id, None)
        self._write("INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                    (customer.id, customer.email, customer.product_id, customer.password_hash,
                     customer.created_us))

    def get_customer(self, customer_id: str) -> Customer | None:
        row = self._cached_row(self._customer_rows, customer_id,
                               f"{self._CUSTOMER} WHERE id = ?")
        return Customer(*row) if row else None

    def find_customer(self, product_id: int, email: str) -> Customer | None:
        row = self._row(f"{self._CUSTOMER} WHERE product_id = ? AND email = ?",
                        (product_id, email))
        return Customer(*row) if row else None

    def list_customers(self, product_id: int) -> list[Customer]:
        return [Customer(*r) for r in self._rows(
            f"{self._CUSTOMER} WHERE product_id = ? ORDER BY created_us, id", (product_id,))]

    def update_customer(self, customer: Customer) -> None:
        self._customer_rows.pop(customer.id, None)
        self._write("UPDATE customers SET email = ?, password_hash = ? WHERE id = ?",
                    (customer.email, customer.password_hash, customer.id))

    def delete_customer(self, customer_id: str) -> None:
        self._customer_rows.pop(customer_id, None)
        self._write("DELETE FROM customers WHERE id = ?", (customer_id,))

    # -- devices -------------------------------------------------------------------------------

    _DEVICE = ("SELECT id, platform_id, product_id, owner, name, online, last_heard_us, "
               "last_handshake_us, system_version, notes, group_names FROM devices")

    @staticmethod
    def _device(row: Any) -> DeviceRecord:
        return DeviceRecord(row[0], row[1], row[2], _principal(row[3]), row[4], bool(row[5]),
                            row[6], row[7], row[8], row[9], _group_names(row[10]))

    def get_device(self, device_id: str) -> DeviceRecord | None:
        row = self._row(f"{self._DEVICE} WHERE id = ?", (device_id,))
        return self._device(row) if row else None

    def put_device(self, device: DeviceRecord) -> None:
        # an upsert that updates the row in place: INSERT OR REPLACE deletes and re-inserts it,
        # rewriting every index entry (a served claim's transaction 122 -> 80 us CPU)
        self._write("INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET platform_id = excluded.platform_id, "
                    "product_id = excluded.product_id, owner = excluded.owner, "
                    "name = excluded.name, online = excluded.online, "
                    "last_heard_us = excluded.last_heard_us, "
                    "last_handshake_us = excluded.last_handshake_us, "
                    "system_version = excluded.system_version, notes = excluded.notes, "
                    "group_names = excluded.group_names",
                    (device.id, device.platform_id, device.product_id, _text(device.owner),
                     device.name, int(device.online), device.last_heard_us,
                     device.last_handshake_us, device.system_version, device.notes,
                     _group_text(device.groups)))

    def touch_device(self, device_id: str, last_heard_us: int) -> None:
        self._write("INSERT INTO devices (id, online, last_heard_us) VALUES (?, 0, ?) "
                    "ON CONFLICT(id) DO UPDATE SET last_heard_us = excluded.last_heard_us",
                    (device_id, last_heard_us))

    def list_devices(self) -> list[DeviceRecord]:
        return [self._device(r) for r in self._rows(f"{self._DEVICE} ORDER BY id")]

    def devices_owned_by(self, owner: Principal) -> list[DeviceRecord]:
        return [self._device(r) for r in
                self._rows(f"{self._DEVICE} WHERE owner = ? ORDER BY id", (str(owner),))]

    def devices_in_product(self, product_id: int) -> list[DeviceRecord]:
        return [self._device(r) for r in
                self._rows(f"{self._DEVICE} WHERE product_id = ? ORDER BY id", (product_id,))]

    # -- device groups -------------------------------------------------------------------------

    _GROUP = "SELECT product_id, name, description, color FROM device_groups"

    def add_group(self, group: DeviceGroup) -> None:
        self._write("INSERT INTO device_groups VALUES (?, ?, ?, ?)",
                    (group.product_id, group.name, group.description, group.color))

    def get_group(self, product_id: int, name: str) -> DeviceGroup | None:
        if not -2**63 <= product_id < 2**63:
            return None
        row = self._row(f"{self._GROUP} WHERE product_id = ? AND name = ?", (product_id, name))
        return DeviceGroup(*row) if row else None

    def list_groups(self, product_id: int) -> list[DeviceGroup]:
        if not -2**63 <= product_id < 2**63:
            return []
        return [DeviceGroup(*r) for r in self._rows(
            f"{self._GROUP} WHERE product_id = ? ORDER BY name", (product_id,))]

    def update_group(self, name: str, group: DeviceGroup) -> None:
        with self.transaction():
            self._write("DELETE FROM device_groups WHERE product_id = ? AND name = ?",
                        (group.product_id, name))
            self.add_group(group)
            if group.name != name:
                self._rewrite_memberships(group.product_id, name, group.name)

    def delete_group(self, product_id: int, name: str) -> None:
        with self.transaction():
            self._write("DELETE FROM device_groups WHERE product_id = ? AND name = ?",
                        (product_id, name))
            self._rewrite_memberships(product_id, name, None)

    def _rewrite_memberships(self, product_id: int, name: str, new_name: str | None) -> None:
        for device_id, text in self._rows("SELECT id, group_names FROM devices WHERE "
                                          "product_id = ? AND group_names IS NOT NULL",
                                          (product_id,)):
            groups = _group_names(text)
            if name in groups:
                self._write("UPDATE devices SET group_names = ? WHERE id = ?",
                            (_group_text(renamed_membership(groups, name, new_name)),
                             device_id))

    # -- claim codes ---------------------------------------------------------------------------

    _CLAIM = ("SELECT code, creator, product_id, created_us, expires_us, consumed_us, "
              "consumed_by FROM claim_codes")

    @staticmethod
    def _claim(row: Any) -> ClaimCode:
        return ClaimCode(row[0], Principal.parse(row[1]), row[2], row[3], row[4], row[5], row[6])

    def add_claim_code(self, claim: ClaimCode) -> None:
        self._write("INSERT INTO claim_codes VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (claim.code, str(claim.creator), claim.product_id, claim.created_us,
                     claim.expires_us, claim.consumed_us, claim.consumed_by))

    def get_claim_code(self, code: str) -> ClaimCode | None:
        row = self._row(f"{self._CLAIM} WHERE code = ?", (code,))
        return self._claim(row) if row else None

    def update_claim_code(self, claim: ClaimCode) -> None:
        self._write("UPDATE claim_codes SET creator = ?, product_id = ?, created_us = ?, "
                    "expires_us = ?, consumed_us = ?, consumed_by = ? WHERE code = ?",
                    (str(claim.creator), claim.product_id, claim.created_us, claim.expires_us,
                     claim.consumed_us, claim.consumed_by, claim.code))

    def list_claim_codes(self) -> list[ClaimCode]:
        return [self._claim(r) for r in self._rows(f"{self._CLAIM} ORDER BY created_us, code")]

    def delete_claim_codes_of(self, creator: Principal) -> None:
        self._write("DELETE FROM claim_codes WHERE creator = ?", (str(creator),))

    def delete_expired_claim_codes(self, now_us: int) -> int:
        cursor = self._write("DELETE FROM claim_codes WHERE expires_us < ? AND consumed_us IS "
                             "NULL", (now_us,))
        return cursor.rowcount

    # -- transfers and the outbox --------------------------------------------------------------

    _TRANSFER = ("SELECT id, device_id, requester, owner, status, created_us, decided_us, "
                 "approval_token FROM transfers")

    @staticmethod
    def _transfer(row: Any) -> Transfer:
        return Transfer(row[0], row[1], Principal.parse(row[2]), Principal.parse(row[3]),
                        TransferStatus(row[4]), row[5], row[6], row[7])

    def add_transfer(self, transfer: Transfer) -> None:
        self._write("INSERT INTO transfers (id, device_id, requester, owner, status, created_us, "
                    "decided_us, approval_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (transfer.id, transfer.device_id, str(transfer.requester),
                     str(transfer.owner), transfer.status.value, transfer.created_us,
                     transfer.decided_us, transfer.approval_token))

    def get_transfer(self, transfer_id: str) -> Transfer | None:
        row = self._row(f"{self._TRANSFER} WHERE id = ?", (transfer_id,))
        return self._transfer(row) if row else None

    def update_transfer(self, transfer: Transfer) -> None:
        self._write("UPDATE transfers SET status = ?, decided_us = ? WHERE id = ?",
                    (transfer.status.value, transfer.decided_us, transfer.id))

    def list_transfers(self) -> list[Transfer]:
        return [self._transfer(r) for r in self._rows(f"{self._TRANSFER} ORDER BY created_us")]

    def add_email(self, email: Email) -> Email:
        cursor = self._write("INSERT INTO outbox (recipient, subject, body, created_us, kind, "
                             "ref) VALUES (?, ?, ?, ?, ?, ?)",
                             (email.to, email.subject, email.body, email.created_us, email.kind,
                              email.ref))
        return replace(email, id=int(cursor.lastrowid or 0))

    def list_emails(self) -> list[Email]:
        return [Email(*r) for r in self._rows(
            "SELECT id, recipient, subject, body, created_us, kind, ref FROM outbox ORDER BY id")]
