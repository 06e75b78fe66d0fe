"""A store that is full, read-only, busy or unreachable raises a typed error with
``retryable`` set right, nothing of the transaction is written, and a retry
once the condition passes works."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cartpay import (
    Cart,
    CartPaymentIntent,
    ConcurrencyError,
    LineItem,
    StoreError,
)
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import FakeStripeGateway
from tests.stores.schema_v1 import FIXTURE


def _cart(cart_id: str, size: int = 1) -> Cart:
    items = tuple(LineItem(f"sku-{i}", "n" * 400, 100, 1) for i in range(size))
    return Cart(cart_id, "usd", items)


def _connections(store: SQLiteStore) -> list[sqlite3.Connection]:
    return list(store._all)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "cartpay.db", timeout=1)
    try:
        yield store
    finally:
        store.close()


def test_a_full_sqlite_database_is_a_retryable_store_error(sqlite_store: SQLiteStore) -> None:
    with sqlite_store.transaction() as tx:
        tx.insert_cart(_cart("cart_small"))
    (conn,) = _connections(sqlite_store)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
    with pytest.raises(StoreError) as caught, sqlite_store.transaction() as tx:
        tx.insert_cart(_cart("cart_big", size=200))
    assert (caught.value.reason, caught.value.retryable) == ("full", True)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    with sqlite_store.read() as tx:
        assert tx.get_cart("cart_big") is None  # nothing was half-written
    conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    with sqlite_store.transaction() as tx:
        tx.insert_cart(_cart("cart_big", size=200))
    with sqlite_store.read() as tx:
        found = tx.get_cart("cart_big")
    assert found is not None and len(found.items) == 200


def test_a_read_only_sqlite_database_is_a_retryable_store_error(
    sqlite_store: SQLiteStore,
) -> None:
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=FakeStripeGateway(), store=sqlite_store
    )
    (conn,) = _connections(sqlite_store)
    conn.execute("PRAGMA query_only = ON")  # as a read-only file or mount answers
    with pytest.raises(StoreError) as caught:
        payments.create_cart("usd")
    assert (caught.value.reason, caught.value.retryable) == ("read_only", True)
    conn.execute("PRAGMA query_only = OFF")
    cart = payments.create_cart("usd")
    assert payments.get_cart(cart.id) == cart


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"this is not a database" * 100), "not_a_database"),
        (lambda p: p.mkdir(), "cannot_open"),
    ],
    ids=["a text file", "a folder"],
)
def test_a_path_that_is_no_database_is_a_store_error(
    tmp_path: Path, make: Any, reason: str
) -> None:
    path = tmp_path / "shop.db"
    make(path)
    with pytest.raises(StoreError) as caught:
        SQLiteStore(path)
    assert (caught.value.reason, caught.value.retryable) == (reason, False)


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection holds the write lock (as a migrating process does)."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("ROLLBACK")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_opening_a_database_another_connection_holds_waits_within_the_timeout(
    tmp_path: Path,
) -> None:
    """Switching an old (rollback-journal) database to WAL fails at once while
    another connection holds the write lock: opening now waits like a write."""
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    thread = _hold_write_lock(path, 0.3)
    try:
        store = SQLiteStore(path, timeout=10)
    finally:
        thread.join()
    try:
        assert store.schema_version() >= 2
    finally:
        store.close()


def test_opening_a_database_held_past_the_timeout_is_a_concurrency_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    thread = _hold_write_lock(path, 1.0)
    try:
        started = time.monotonic()
        with pytest.raises(ConcurrencyError) as caught:
            SQLiteStore(path, timeout=0.2)
        assert time.monotonic() - started >= 0.2
        assert caught.value.retryable
    finally:
        thread.join()


# ------------------------------------------------------------------ PostgreSQL


@pytest.mark.postgres
def test_a_read_only_postgres_database_is_a_retryable_store_error(
    postgres_dsn: str, postgres_schema: str
) -> None:
    from cartpay.stores.postgres import PostgresStore

    class ReadOnlyStore(PostgresStore):
        """Every pooled session read-only, as on a standby."""

        read_only = True

        def _configure(self, conn: Any) -> None:
            super()._configure(conn)
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")

    store = ReadOnlyStore(postgres_dsn, schema=postgres_schema, max_size=1)
    try:
        with pytest.raises(StoreError) as caught, store.transaction() as tx:
            tx.insert_cart(_cart("cart_ro"))
        assert (caught.value.reason, caught.value.retryable) == ("read_only", True)
        with store.read() as tx:
            assert tx.get_cart("cart_ro") is None
    finally:
        store.close()


@pytest.mark.postgres
def test_an_unreachable_postgres_is_a_retryable_store_error(postgres_dsn: str) -> None:
    from cartpay.stores.postgres import PostgresStore

    with pytest.raises(StoreError) as caught:
        PostgresStore("postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    assert (caught.value.reason, caught.value.retryable) == ("unavailable", True)
