"""``Store.read()`` on the stores that have real snapshots (SQLite, PostgreSQL):
a read takes no lock a writer waits for, waits for no writer, and sees one
snapshot for all its reads. (MemoryStore reads under its one lock; the store
contract suite covers what it shares with the others.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from attrs import evolve

from cartpay import Store
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing.store_contract import full_cart, full_order

from .conftest import _postgres_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def snapshot_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        yield from _postgres_store()
        return
    opened = SQLiteStore(tmp_path / "cartpay.db", timeout=5)
    try:
        yield opened
    finally:
        opened.close()


def _in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_writer_commits_while_a_read_is_open_and_the_read_keeps_its_snapshot(
    snapshot_store: Store,
) -> None:
    cart = full_cart()
    with snapshot_store.transaction() as tx:
        tx.insert_cart(cart)
    changed = evolve(cart, pending=None, version=cart.version + 1)
    committed = threading.Event()

    def write() -> None:
        with snapshot_store.transaction() as tx:
            current = tx.get_cart(cart.id)  # PostgreSQL: FOR UPDATE, SQLite: write lock
            assert current == cart
            tx.update_cart(changed, expected_version=cart.version)
            tx.insert_order(full_order())
        committed.set()

    with snapshot_store.read() as reads:
        assert reads.get_cart(cart.id) == cart  # the snapshot starts here
        writer = _in_thread(write)
        assert committed.wait(timeout=5), "the writer waited for an open read"
        # Still the snapshot of its first read: the committed order is not in it.
        assert reads.get_order(full_order().id) is None
        assert reads.orders_for_intent("pi_1") == []
    writer.join(timeout=5)
    with snapshot_store.read() as reads:
        assert reads.get_cart(cart.id) == changed
        assert reads.get_order(full_order().id) == full_order()


def test_a_read_does_not_wait_for_an_open_writer(snapshot_store: Store) -> None:
    cart = full_cart()
    with snapshot_store.transaction() as tx:
        tx.insert_cart(cart)
    holding = threading.Event()
    release = threading.Event()

    def hold_the_write_lock() -> None:
        with snapshot_store.transaction() as tx:
            tx.get_cart(cart.id)  # locks the row (PostgreSQL) / holds the write lock
            tx.update_cart(
                evolve(cart, pending=None, version=cart.version + 1),
                expected_version=cart.version,
            )
            holding.set()
            release.wait(timeout=10)

    writer = _in_thread(hold_the_write_lock)
    try:
        assert holding.wait(timeout=5)
        done = threading.Event()
        seen: list[object] = []

        def read() -> None:
            with snapshot_store.read() as reads:
                seen.append(reads.get_cart(cart.id))
            done.set()

        _in_thread(read)
        assert done.wait(timeout=3), "the read waited for the writer"
        assert seen == [cart]  # the last committed state, not the open write
    finally:
        release.set()
        writer.join(timeout=10)
