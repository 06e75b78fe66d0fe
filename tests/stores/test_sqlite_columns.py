"""SQLiteStore writes only the indexed columns that change; the lookup columns
must still agree with the body after any sequence of updates, whether the
record was read, inserted or updated earlier in the same transaction."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from attrs import evolve

from cartpay._converter import loads
from cartpay._models import IntentRecord, Order
from cartpay.stores.sqlite import SQLiteStore, timestamp
from cartpay.testing.store_contract import T0, full_order, intent


def columns_match_bodies(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        for intent_id, status, payment, created, body in conn.execute(
            "SELECT intent_id, status, payment, created_at, body FROM orders"
        ):
            order = loads(body, Order)
            expected_created = None if order.created_at is None else timestamp(order.created_at)
            assert (intent_id, status, payment, created) == (
                order.intent_id,
                order.status,
                order.payment,
                expected_created,
            )
        for cart_id, status, order_id, created, body in conn.execute(
            "SELECT cart_id, status, order_id, created_at, body FROM intents"
        ):
            record = loads(body, IntentRecord)
            assert (cart_id, status, order_id, created) == (
                record.cart_id,
                record.status,
                record.order_id,
                timestamp(record.created_at),
            )
    conn.close()


def test_lookup_columns_follow_every_update(tmp_path: Path) -> None:
    path = tmp_path / "cartpay.db"
    store = SQLiteStore(path)
    order = full_order(status="incomplete")
    record = intent(status="requires_payment_method")
    with store.transaction() as tx:  # inserted, then updated in the same transaction
        tx.insert_order(order)
        tx.insert_intent(record)
        order2 = evolve(order, status="processing", version=order.version + 1)
        tx.update_order(order2, expected_version=order.version)
    columns_match_bodies(path)

    with store.transaction() as tx:  # read, then updated twice
        assert tx.get_order(order.id) == order2
        assert tx.get_intent(record.id) == record
        order3 = evolve(order2, intent_id="pi_2", version=order2.version + 1)
        tx.update_order(order3, expected_version=order2.version)
        order4 = evolve(
            order3,
            status="complete",
            payment="paid",
            created_at=T0 + timedelta(hours=1),
            version=order3.version + 1,
        )
        tx.update_order(order4, expected_version=order3.version)
        record2 = evolve(record, status="succeeded", order_id=order.id, version=record.version + 1)
        tx.update_intent(record2, expected_version=record.version)
    columns_match_bodies(path)

    with store.transaction() as tx:  # updated without a read first: every column
        refunded = evolve(order4, payment="refunded", version=order4.version + 1)
        tx.update_order(refunded, expected_version=order4.version)
    columns_match_bodies(path)

    with store.transaction() as tx:  # read, then every indexed column of the intent
        assert tx.get_intent(record.id) == record2
        later = T0 + timedelta(days=1)
        moved = evolve(
            record2,
            cart_id="cart_2",
            created_at=later,
            status="canceled",
            order_id=None,
            version=record2.version + 1,
        )
        tx.update_intent(moved, expected_version=record2.version)
    columns_match_bodies(path)

    with store.transaction() as tx:  # the index lookups see the new columns
        assert [o.id for o in tx.orders_for_intent("pi_2")] == [order.id]
        assert tx.orders_for_intent("pi_1") == []
        assert tx.unpaid_orders_before(T0 + timedelta(days=2), limit=10) == []
    store.close()
