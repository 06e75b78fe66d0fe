"""SQLiteStore's transaction and read blocks (one context-manager object each):
what leaves them, what they roll back, and that every connection goes back to
the pool (or is closed when the store was closed meanwhile)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartpay import ConcurrencyError, StoreError
from cartpay._models import Cart
from cartpay.stores.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "units.db", timeout=0)
    try:
        yield opened
    finally:
        opened.close()


def _idle(store: SQLiteStore) -> int:
    return len(store._idle)


def test_a_driver_error_in_the_block_is_translated_and_rolled_back(store: SQLiteStore) -> None:
    with pytest.raises(ConcurrencyError) as caught, store.transaction() as tx:
        tx.insert_cart(Cart("cart_a", "usd"))
        raise sqlite3.OperationalError("database is locked")
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    with store.read() as reads:
        assert reads.get_cart("cart_a") is None
    assert _idle(store) == 1


def test_any_other_exception_leaves_as_it_is_and_rolls_back(store: SQLiteStore) -> None:
    with pytest.raises(KeyError), store.transaction() as tx:
        tx.insert_cart(Cart("cart_a", "usd"))
        raise KeyError("mine")
    with pytest.raises(KeyError), store.read() as reads:
        raise KeyError("mine")
    with store.transaction() as tx:
        assert tx.get_cart("cart_a") is None
        tx.insert_cart(Cart("cart_b", "usd"))
    with store.read() as reads:
        assert reads.get_cart("cart_b") == Cart("cart_b", "usd")
    assert _idle(store) == 1


def test_a_busy_write_lock_is_a_concurrency_error_and_the_connection_returns(
    store: SQLiteStore, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "units.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ConcurrencyError), store.transaction():
            pytest.fail("the block must not run without the write lock")
        with store.read() as reads:  # a reader does not wait for the writer
            assert reads.get_cart("cart_a") is None
        assert _idle(store) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with store.transaction() as tx:
        tx.insert_cart(Cart("cart_a", "usd"))


def test_a_store_closed_during_a_block_closes_its_connection_at_the_end(
    store: SQLiteStore,
) -> None:
    with store.transaction() as tx:
        tx.insert_cart(Cart("cart_a", "usd"))
        store.close()
    assert _idle(store) == 0
    with pytest.raises(StoreError, match="closed"), store.read():
        pass


def test_a_memory_database_holds_its_lock_for_the_block_only() -> None:
    with SQLiteStore(":memory:") as memory:
        with memory.transaction() as tx:
            tx.insert_cart(Cart("cart_a", "usd"))
        with pytest.raises(ValueError), memory.read():
            raise ValueError("released anyway")
        with memory.read() as reads:
            assert reads.get_cart("cart_a") == Cart("cart_a", "usd")
        assert memory._lock.acquire(blocking=False)
        memory._lock.release()
