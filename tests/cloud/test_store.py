"""The two stores behave alike; SQLite persists across restarts and migrates old schemas."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from cloud_sim import Principal
from cloud_sim.model import (
    ClaimCode,
    Customer,
    DeviceRecord,
    Email,
    OAuthClient,
    Product,
    Token,
    TokenKind,
    Transfer,
    TransferStatus,
    User,
)
from cloud_sim.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from cloud_sim.store import CloudStore
from firmware_sim.kernel import ConfigurationError

from .conftest import open_cloud

ALICE = Principal.customer("c1")


def test_users_clients_tokens(store: CloudStore) -> None:
    store.add_user(User("u1", "Dev@Example.com", "hash", 5))
    assert store.find_user("dev@example.COM") == User("u1", "Dev@Example.com", "hash", 5)
    user = store.get_user("u1")
    assert user is not None
    user.password_hash = "other"
    assert store.get_user("u1") == User("u1", "Dev@Example.com", "hash", 5)  # a copy
    store.update_user(user)
    assert [u.password_hash for u in store.list_users()] == ["other"]
    store.add_client(OAuthClient("c", "s", "n", 4, "u1"))
    assert store.get_client("c") == OAuthClient("c", "s", "n", 4, "u1")
    token = Token("t" * 40, TokenKind.ACCESS, Principal.user("u1"), "c", 1, None, "")
    store.add_token(token)
    store.add_token(Token("r" * 40, TokenKind.REFRESH, Principal.user("u1"), "c", 1, 9, ""))
    assert store.get_token("t" * 40) == token
    assert len(store.tokens_of(Principal.user("u1"))) == 2
    store.delete_token("t" * 40)
    assert store.get_token("t" * 40) is None


def test_products_and_customers(store: CloudStore) -> None:
    store.add_product(Product(4242, "acme", "Acme", {"u1", "u2"}, 32))
    assert store.find_product("4242") == store.find_product("acme")
    assert store.find_product("4243") is None and store.find_product("9" * 40) is None
    product = store.get_product(4242)
    assert product is not None and product.team == {"u1", "u2"}
    product.team.discard("u2")
    store.update_product(product)
    assert [p.team for p in store.list_products()] == [{"u1"}]
    store.add_customer(Customer("c1", "A@x.io", 4242, "h", 1))
    store.add_customer(Customer("c2", "b@x.io", 4242, "", 2))
    assert store.find_customer(4242, "a@x.io") is not None
    assert store.find_customer(7, "a@x.io") is None
    assert [c.id for c in store.list_customers(4242)] == ["c1", "c2"]
    store.delete_customer("c1")
    assert store.get_customer("c1") is None


def test_devices_claim_codes_transfers_outbox(store: CloudStore) -> None:
    store.put_device(DeviceRecord("b" * 24, 32, 4242, ALICE, "n", True, 1, 2, 6200, "x"))
    store.put_device(DeviceRecord("a" * 24))
    assert [d.id for d in store.list_devices()] == ["a" * 24, "b" * 24]
    assert store.get_device("b" * 24) == DeviceRecord("b" * 24, 32, 4242, ALICE, "n", True, 1,
                                                      2, 6200, "x")
    assert [d.id for d in store.devices_owned_by(ALICE)] == ["b" * 24]
    assert [d.id for d in store.devices_in_product(4242)] == ["b" * 24]
    code = ClaimCode("C" * 63, ALICE, 4242, 10, 20)
    store.add_claim_code(code)
    store.add_claim_code(ClaimCode("D" * 63, ALICE, None, 10, 30, 15, "a" * 24))
    code.consumed_us = 12
    assert store.get_claim_code("C" * 63) == ClaimCode("C" * 63, ALICE, 4242, 10, 20)
    store.update_claim_code(code)
    assert store.get_claim_code("C" * 63) == code
    store.add_claim_code(ClaimCode("E" * 63, ALICE, None, 10, 20))
    assert store.delete_expired_claim_codes(25) == 1  # only the unused, expired one
    store.delete_claim_codes_of(ALICE)
    assert store.list_claim_codes() == []
    transfer = Transfer("t1", "b" * 24, Principal.user("u"), ALICE, TransferStatus.PENDING, 3)
    store.add_transfer(transfer)
    transfer.status = TransferStatus.DENIED
    store.update_transfer(transfer)
    assert store.get_transfer("t1") == transfer and store.list_transfers() == [transfer]
    first = store.add_email(Email(0, "a@x.io", "s", "b", 1, "k", "t1"))
    second = store.add_email(Email(0, "b@x.io", "s", "b", 2))
    assert (first.id, second.id) == (1, 2)
    assert store.list_emails() == [first, second]


def test_transactions_roll_back(store: CloudStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.put_device(DeviceRecord("a" * 24))
        with store.transaction():
            store.put_device(DeviceRecord("b" * 24))
        raise RuntimeError("boom")
    if isinstance(store, SqliteStore):
        assert store.list_devices() == []
    # the store is usable afterwards; an inner block's exception caught by the outer block
    # does not roll back (no savepoints): the outermost block commits everything
    with store.transaction():
        with pytest.raises(KeyError), store.transaction():
            store.put_device(DeviceRecord("c" * 24))
            raise KeyError("inner")
        store.put_device(DeviceRecord("d" * 24))
    ids = {d.id for d in store.list_devices()}
    assert {"c" * 24, "d" * 24} <= ids  # (the memory store never rolls back: "a", "b" too)


def test_a_restart_keeps_accounts_devices_owners_and_live_claim_codes(tmp_path: Path) -> None:
    db = str(tmp_path / "cloud.db")
    cloud = open_cloud(db, seed=1, epoch=1_800_000_000)
    user = cloud.create_user("dev@x.io", "pw")
    product = cloud.create_product(4242, "acme", team={user.id})
    customer = cloud.create_customer(product.id, "a@x.io", "pw")
    token = cloud.issue_tokens(Principal.user(user.id), "particle").access.token
    cloud.store.put_device(DeviceRecord("a" * 24, 32, 4242, Principal.customer(customer.id),
                                        online=True))
    live = cloud.create_claim_code(Principal.customer(customer.id), 4242, ttl_s=7200).code
    stale = cloud.create_claim_code(Principal.customer(customer.id), 4242, ttl_s=60).code
    cloud.store.close()
    # an hour later
    again = open_cloud(db, seed=1, epoch=1_800_003_600)
    store = again.store
    assert store.find_user("dev@x.io") is not None
    assert store.get_token(token) is not None
    found = store.find_product("acme")
    assert found is not None and found.team == {user.id}
    assert store.find_customer(4242, "a@x.io") is not None
    device = store.get_device("a" * 24)
    assert device is not None and device.owner == Principal.customer(customer.id)
    assert not device.online  # no device has a session with a cloud that just started
    assert store.get_claim_code(live) is not None and store.get_claim_code(stale) is None
    store.close()


def test_migrations_upgrade_an_old_database(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old = SqliteStore(db, migrate_to=1)
    assert old.schema_version == 1
    old.add_user(User("u1", "dev@x.io", "h", 1))
    old._db.execute("INSERT INTO devices (id, owner, online) VALUES (?, ?, 0)",
                    ("a" * 24, "user:u1"))
    old.close()
    store = SqliteStore(db)
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert store.get_user("u1") is not None
    device = store.get_device("a" * 24)
    assert device is not None and device.owner == Principal.user("u1") and device.notes is None
    store.add_transfer(Transfer("t", "a" * 24, Principal.user("u2"), Principal.user("u1"),
                                TransferStatus.PENDING, 1))
    store.close()


def test_a_newer_or_foreign_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    connection = sqlite3.connect(db)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(ConfigurationError, match="newer than this fwsim"):
        SqliteStore(db)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigurationError, match="cannot open cloud database"):
        SqliteStore(junk)


def test_checkpoints_run_off_the_committing_connection(tmp_path: Path) -> None:
    """The WAL is copied back by the background checkpointer (the committing connection's
    automatic checkpoint is off), so it stays bounded while writes go on, and every commit is
    in the file after close() and a reopen."""
    db = tmp_path / "cloud.db"
    store = SqliteStore(db)
    assert store.checkpointer is not None
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 20_000
    wal = Path(f"{db}-wal")
    largest = 0
    for batch in range(30):
        with store.transaction():
            for n in range(100):
                store.put_device(DeviceRecord(f"e00f{batch:04x}{n:016x}", platform_id=32))
        largest = max(largest, wal.stat().st_size)
        if batch % 10 == 9:  # give the thread a round
            done = store.checkpointer.checkpoints
            deadline = time.monotonic() + 5
            while store.checkpointer.checkpoints < done + 2 and time.monotonic() < deadline:
                time.sleep(0.01)
    assert store.checkpointer.checkpoints >= 2
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    # without checkpoints the WAL would hold every page written (~3 x 3,000 rows' pages)
    assert largest < 3 * pages * 4096 + 4096
    thread = store.checkpointer._thread
    store.close()
    assert not thread.is_alive()
    reopened = SqliteStore(db)
    assert len(reopened.list_devices()) == 3000
    reopened.close()


def test_a_memory_database_has_no_checkpointer() -> None:
    store = SqliteStore(":memory:")
    assert store.checkpointer is None
    store.close()
