"""Databases as schema version 1 wrote them, for the migration tests.

``records()`` is what the v1 fixture holds; ``write_sqlite`` and
``write_postgres`` write it with the v1 DDL (``MIGRATIONS[0]``) and the v1 row
layout (no ``orders.payment`` column, no lookup indexes). The committed fixture
``fixtures/schema_v1.db`` was made by running this file::

    python tests/stores/schema_v1.py
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from attrs import frozen

from cartpay import (
    Cart,
    IntentOptions,
    IntentParams,
    IntentRecord,
    LineItem,
    Order,
    PendingOperation,
    Transaction,
)
from cartpay._converter import dumps

FIXTURE = Path(__file__).parent / "fixtures" / "schema_v1.db"
T0 = datetime(2024, 3, 1, 9, 30, 0, 250000, tzinfo=timezone.utc)
ITEMS = (LineItem("tee-m", "T-shirt M", 2500, 2), LineItem("cap", "Cap", 1500, 1))
OPTIONS = IntentOptions(
    capture_method="manual",
    customer="cus_v1",
    description="v1 order",
    metadata={"shop": "north"},
    receipt_email="v1@example.com",
)


@frozen
class Records:
    carts: tuple[Cart, ...]
    orders: tuple[Order, ...]
    intents: tuple[IntentRecord, ...]
    events: tuple[tuple[str, str, str], ...]


def records() -> Records:
    params = IntentParams(6500, "usd", OPTIONS)
    return Records(
        carts=(
            Cart("cart_v1_empty", "eur", created_at=T0),
            Cart(
                "cart_v1_live",
                "usd",
                ITEMS,
                payment_intent_id="pi_v1_live",
                created_at=T0,
                version=5,
                generation=1,
                options=OPTIONS,
                sent=params,
                pending=PendingOperation(
                    "update", "cartpay:cart:cart_v1_live:g1:update:v4", T0 + timedelta(minutes=2)
                ),
            ),
        ),
        orders=(
            Order(
                "ord_v1_paid",
                "cart_v1_a",
                "usd",
                6500,
                ITEMS,
                "pi_v1_paid",
                status="complete",
                payment="paid",
                transactions=(
                    Transaction("txn_v1", "purchase", "complete", 6500, "usd", "pi_v1_paid"),
                ),
                created_at=T0 - timedelta(hours=2),
                version=3,
            ),
            Order(
                "ord_v1_unpaid",
                "cart_v1_b",
                "usd",
                6500,
                ITEMS,
                "pi_v1_unpaid",
                created_at=T0 - timedelta(hours=1),
                version=1,
            ),
            Order(
                "ord_v1_refunded",
                "cart_v1_c",
                "usd",
                6500,
                ITEMS,
                "pi_v1_paid",
                status="complete",
                payment="partially_refunded",
                transactions=(
                    Transaction("txn_v1_a", "authorize", "complete", 6500, "usd", "pi_v1_paid"),
                    Transaction("txn_v1_r", "refund", "complete", 500, "usd", "re_v1", code=None),
                ),
                created_at=None,
                flag="intent_used",
                pending=PendingOperation("refund", "k_v1", T0, amount=100, reason="duplicate"),
            ),
        ),
        intents=(
            IntentRecord("pi_v1_live", "cart_v1_live", "requires_payment_method", 6500, "usd", T0),
            IntentRecord(
                "pi_v1_paid",
                "cart_v1_a",
                "succeeded",
                6500,
                "usd",
                T0 - timedelta(hours=3),
                order_id="ord_v1_paid",
                version=2,
            ),
            IntentRecord("pi_v1_unpaid", "cart_v1_b", "processing", 6500, "usd", T0, version=1),
        ),
        events=(("evt_v1_1", "payment_intent.succeeded", "applied"),),
    )


def _stamp(value: datetime | None) -> str | None:
    return (
        None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )


def _rows(data: Records, stamp: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The v1 rows of each table; ``stamp`` turns a datetime into the column value."""
    return {
        "carts": [(c.id, c.version, dumps(c)) for c in data.carts],
        "orders": [
            (o.id, o.version, o.intent_id, o.status, stamp(o.created_at), dumps(o))
            for o in data.orders
        ],
        "intents": [
            (i.id, i.version, i.cart_id, i.status, i.order_id, stamp(i.created_at), dumps(i))
            for i in data.intents
        ],
        "events": [(*event, stamp(T0)) for event in data.events],
    }


def write_sqlite(path: Path) -> None:
    """A SQLite database at schema version 1 holding ``records()``."""
    from cartpay.stores.sqlite import MIGRATIONS

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for step in MIGRATIONS[0]:
            conn.execute(step)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        for table, rows in _rows(records(), _stamp).items():
            marks = ", ".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
        conn.execute("COMMIT")
    finally:
        conn.close()


def write_postgres(dsn: str, schema: str) -> None:
    """A PostgreSQL schema at version 1 holding ``records()``."""
    import psycopg
    from psycopg import sql

    from cartpay.stores.postgres import MIGRATIONS

    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        for step in MIGRATIONS[0]:
            conn.execute(step)
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        with conn.cursor() as cursor:
            for table, rows in _rows(records(), lambda value: value).items():
                query = sql.SQL("INSERT INTO {} VALUES ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join(sql.Placeholder() * len(rows[0]))
                )
                cursor.executemany(query, rows)


if __name__ == "__main__":
    FIXTURE.unlink(missing_ok=True)
    write_sqlite(FIXTURE)
    print(f"wrote {FIXTURE}")
