"""Opening a database written by schema version 1 migrates it, losing nothing.

SQLite: the committed fixture ``fixtures/schema_v1.db`` (made by ``schema_v1.py``).
PostgreSQL: a schema created with the v1 DDL and rows in the v1 layout.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from attrs import evolve

from cartpay import Adjustment, Cart, CartPaymentIntent, IntentRecord, Order, Store
from cartpay.stores.sqlite import SCHEMA_VERSION, SchemaVersionError, SQLiteStore
from cartpay.testing import FakeStripeGateway
from tests.stores.schema_v1 import FIXTURE, T0, records, write_postgres

PAYMENTS = {
    "ord_v1_paid": "paid",
    "ord_v1_unpaid": "unpaid",
    "ord_v1_refunded": "partially_refunded",
}


def assert_nothing_lost(store: Store) -> None:
    data = records()
    with store.transaction() as tx:
        for cart in data.carts:
            assert tx.get_cart(cart.id) == cart
        for order in data.orders:
            assert tx.get_order(order.id) == order
        for intent in data.intents:
            assert tx.get_intent(intent.id) == intent
        for event_id, event_type, action in data.events:
            assert tx.record_event(event_id, event_type, action) is False
        # the lookups v2 indexes work on the migrated rows
        assert [o.id for o in tx.orders_for_intent("pi_v1_paid")] == [
            "ord_v1_refunded",
            "ord_v1_paid",
        ]
        assert [o.id for o in tx.unpaid_orders_before(T0, limit=10)] == ["ord_v1_unpaid"]
        # v4's cart_id column, backfilled from the bodies
        for order in data.orders:
            assert order in tx.orders_for_cart(order.cart_id)
        assert sum(len(tx.orders_for_cart(c)) for c in {o.cart_id for o in data.orders}) == len(
            data.orders
        )
        assert [
            i.id for i in tx.unclaimed_intents(["requires_payment_method", "processing"], limit=10)
        ] == [
            "pi_v1_live",
            "pi_v1_unpaid",
        ]


def assert_still_writable(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_cart(Cart("cart_v2", "usd", created_at=T0))
        order = tx.get_order("ord_v1_unpaid")
        assert order is not None
        tx.update_order(evolve(order, version=2, status="processing"), expected_version=1)
    with store.transaction() as tx:
        assert tx.get_cart("cart_v2") == Cart("cart_v2", "usd", created_at=T0)
        changed = tx.get_order("ord_v1_unpaid")
        assert isinstance(changed, Order) and changed.status == "processing"
        assert isinstance(tx.get_intent("pi_v1_live"), IntentRecord)


SHIPPING = Adjustment("shipping", "ship", "Shipping", 500)
DISCOUNT = Adjustment("discount", "SPRING", "Spring sale", 1000)


def assert_adjustments_fit(store: Store) -> None:
    """Issue 20 needs no schema step: the bodies of carts and orders written before
    adjustments existed read as carts and orders without any (their totals as
    they were), and the same rows take adjustments and give them back."""
    with store.transaction() as tx:
        cart = tx.get_cart("cart_v1_live")
        order = tx.get_order("ord_v1_unpaid")
        assert cart is not None and order is not None
        assert cart.adjustments == () and cart.total == cart.subtotal == 6500
        assert cart.sent is not None and cart.sent.adjustments == ()
        assert order.adjustments == () and (order.total, order.subtotal) == (6500, 6500)
        tx.update_cart(
            evolve(cart, version=cart.version + 1, adjustments=(SHIPPING, DISCOUNT)),
            expected_version=cart.version,
        )
        tx.insert_order(
            evolve(order, id="ord_v2_adjusted", total=6000, adjustments=(SHIPPING, DISCOUNT))
        )
    with store.transaction() as tx:
        cart = tx.get_cart("cart_v1_live")
        order = tx.get_order("ord_v2_adjusted")
        assert cart is not None and cart.adjustments == (SHIPPING, DISCOUNT)
        assert cart.total == 6000
        assert order is not None and order.adjustments == (SHIPPING, DISCOUNT)
        assert order.total == 6000 and order.subtotal == 6500


# ------------------------------------------------------------------ SQLite


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "cartpay.db"
    shutil.copyfile(FIXTURE, path)
    return path


def _sqlite_payments(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT id, payment FROM orders").fetchall())


def test_the_fixture_is_at_version_1(v1_copy: Path) -> None:
    with sqlite3.connect(v1_copy) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        columns = [row[1] for row in conn.execute("PRAGMA table_info(orders)")]
    assert "payment" not in columns


def test_sqlite_v1_migrates_to_the_latest_version_with_nothing_lost(v1_copy: Path) -> None:
    store = SQLiteStore(v1_copy)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 4
        assert_nothing_lost(store)
        assert_still_writable(store)
        assert_adjustments_fit(store)
    finally:
        store.close()
    # backfilled from the bodies (and the order written with adjustments since)
    assert _sqlite_payments(v1_copy) == PAYMENTS | {"ord_v2_adjusted": "unpaid"}
    with sqlite3.connect(v1_copy) as conn:
        indexes = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT body FROM orders"
                " WHERE intent_id = 'x' ORDER BY created_at"
            )
        )
    assert {"orders_by_intent", "orders_unpaid", "intents_unclaimed", "intents_by_cart"} <= indexes
    assert "orders_by_intent" in plan


def test_sqlite_old_cart_takes_adjustments_and_checks_out(v1_copy: Path) -> None:
    """A cart an older cartpay wrote gets a shipping line and a discount, an intent
    of its new total and an order listing them, on the migrated file."""
    store = SQLiteStore(v1_copy)
    try:
        payments = CartPaymentIntent(gateway=FakeStripeGateway(), store=store)
        payments.add_item("cart_v1_empty", sku="mug", name="Mug", unit_amount=4000)
        payments.add_adjustment(
            "cart_v1_empty", kind="shipping", code="ship", label="S", amount=500
        )
        payments.add_adjustment("cart_v1_empty", kind="discount", code="D", label="D", amount=1000)
        assert payments.create_payment_intent("cart_v1_empty").amount == 3500
        order = payments.checkout("cart_v1_empty")
    finally:
        store.close()
    store = SQLiteStore(v1_copy)
    try:
        read = CartPaymentIntent(gateway=FakeStripeGateway(), store=store).get_order(order.id)
        assert read == order and read.total == 3500
        assert [a.code for a in read.adjustments] == ["ship", "D"]
    finally:
        store.close()


def test_sqlite_reopening_a_migrated_database_changes_nothing(v1_copy: Path) -> None:
    SQLiteStore(v1_copy).close()
    store = SQLiteStore(v1_copy)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert_nothing_lost(store)
    finally:
        store.close()


def test_sqlite_refuses_a_database_from_a_newer_cartpay(v1_copy: Path) -> None:
    SQLiteStore(v1_copy).close()
    with sqlite3.connect(v1_copy) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionError, match="upgrade cartpay"):
        SQLiteStore(v1_copy)


def test_sqlite_memory_database_starts_at_the_latest_version() -> None:
    store = SQLiteStore(":memory:")
    try:
        assert store.schema_version() == SCHEMA_VERSION
        with store.transaction() as tx:
            tx.insert_cart(Cart("cart_1", "usd"))
        with store.transaction() as tx:
            assert tx.get_cart("cart_1") == Cart("cart_1", "usd")
    finally:
        store.close()


# -------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_postgres_v1_migrates_to_the_latest_version_with_nothing_lost(
    postgres_dsn: str, postgres_schema: str
) -> None:
    import psycopg

    from cartpay.stores.postgres import SCHEMA_VERSION as PG_VERSION, PostgresStore

    write_postgres(postgres_dsn, postgres_schema)
    store = PostgresStore(postgres_dsn, schema=postgres_schema)
    try:
        assert store.schema_version() == PG_VERSION == 4
        assert_nothing_lost(store)
        assert_still_writable(store)
        assert_adjustments_fit(store)
    finally:
        store.close()
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute(
            f'SELECT id, payment FROM "{postgres_schema}".orders'  # noqa: S608
        ).fetchall()
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (postgres_schema,)
            )
        }
    assert dict(rows) == PAYMENTS | {"ord_v2_adjusted": "unpaid"}
    assert {"orders_by_intent", "orders_unpaid", "intents_unclaimed", "intents_by_cart"} <= indexes


@pytest.mark.postgres
def test_postgres_instances_opening_together_migrate_once(
    postgres_dsn: str, postgres_schema: str
) -> None:
    from cartpay.stores.postgres import PostgresStore

    write_postgres(postgres_dsn, postgres_schema)
    opened: list[PostgresStore] = []
    failures: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(PostgresStore(postgres_dsn, schema=postgres_schema, max_size=1))
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert failures == [] and len(opened) == 4
        assert_nothing_lost(opened[0])
        assert all(store.schema_version() == 4 for store in opened)
    finally:
        for store in opened:
            store.close()


@pytest.mark.postgres
def test_postgres_refuses_a_schema_from_a_newer_cartpay(
    postgres_dsn: str, postgres_schema: str
) -> None:
    import psycopg

    from cartpay.stores.postgres import PostgresStore, SchemaVersionError as PgSchemaVersionError

    PostgresStore(postgres_dsn, schema=postgres_schema).close()
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(f'UPDATE "{postgres_schema}".schema_version SET version = 99')  # noqa: S608
    with pytest.raises(PgSchemaVersionError, match="upgrade cartpay"):
        PostgresStore(postgres_dsn, schema=postgres_schema)
