"""What the SQL stores share: the migration steps of one schema-version check.

The SQLite and PostgreSQL stores must not import each other; both use this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._errors import SchemaVersionError


def migrations(
    *, timestamp: str, payment_from_body: str, cart_id_from_body: str
) -> tuple[tuple[str, ...], ...]:
    """The forward migrations of both SQL stores (``result[n]`` takes a database from
    version n to n + 1), in one dialect: ``timestamp`` is its column type for
    times, ``payment_from_body`` and ``cart_id_from_body`` its expressions reading
    ``payment`` and ``cart_id`` from a body."""
    return (
        # v1: the plain tables.
        (
            """CREATE TABLE carts (
                id TEXT PRIMARY KEY,
                version INTEGER NOT NULL,
                body TEXT NOT NULL
            )""",
            f"""CREATE TABLE orders (
                id TEXT PRIMARY KEY,
                version INTEGER NOT NULL,
                intent_id TEXT,
                status TEXT NOT NULL,
                created_at {timestamp},
                body TEXT NOT NULL
            )""",
            f"""CREATE TABLE intents (
                id TEXT PRIMARY KEY,
                version INTEGER NOT NULL,
                cart_id TEXT NOT NULL,
                status TEXT NOT NULL,
                order_id TEXT,
                created_at {timestamp} NOT NULL,
                body TEXT NOT NULL
            )""",
            f"""CREATE TABLE events (
                id TEXT PRIMARY KEY,
                type TEXT NOT NULL,
                action TEXT NOT NULL,
                recorded_at {timestamp} NOT NULL
            )""",
        ),
        # v2: the lookup indexes, and orders.payment backfilled from the body
        # (the converter omits defaults, so a missing key is "unpaid").
        (
            "CREATE INDEX orders_by_intent ON orders (intent_id, created_at, id)",
            """CREATE INDEX orders_unpaid ON orders (created_at, id)
                WHERE status IN ('incomplete', 'processing') AND intent_id IS NOT NULL""",
            """CREATE INDEX intents_unclaimed ON intents (status, created_at, id)
                WHERE order_id IS NULL""",
            "CREATE INDEX intents_by_cart ON intents (cart_id)",
            "ALTER TABLE orders ADD COLUMN payment TEXT NOT NULL DEFAULT 'unpaid'",
            f"UPDATE orders SET payment = coalesce({payment_from_body}, 'unpaid')",  # noqa: S608
        ),
        # v3: where scans that run in pieces go on (reconcile's progress).
        ("CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL)",),
        # v4: the orders made from a cart (a retried checkout finds its order;
        # orders_for_cart). An order's cart never changes: written on insert only.
        (
            "ALTER TABLE orders ADD COLUMN cart_id TEXT",
            f"UPDATE orders SET cart_id = {cart_id_from_body}",  # noqa: S608
            "CREATE INDEX orders_by_cart ON orders (cart_id, created_at, id)",
        ),
    )


__all__ = ["MAX_LIMIT", "SchemaVersionError", "apply_migrations", "migrations"]

#: SQLite's and PostgreSQL's LIMIT is a signed 64-bit integer; a larger limit
#: means "all rows" anyway.
MAX_LIMIT = 2**63 - 1


def apply_migrations(
    execute: Callable[..., Any],
    migrations: Sequence[Sequence[str]],
    *,
    version: int,
    where: str,
    placeholder: str,
) -> int:
    """Inside the caller's transaction: read the version ``where`` (the database or
    schema) is at, run the ``migrations`` after it through ``execute`` and record
    ``version``; returns the version found. Raises ``SchemaVersionError`` when
    ``where`` is newer than this cartpay."""
    execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = execute("SELECT max(version) FROM schema_version").fetchone()
    found = int(row[0]) if row and row[0] is not None else 0
    if found > version:
        raise SchemaVersionError(
            f"{where} is at schema version {found}; this cartpay knows "
            f"up to {version}: upgrade cartpay"
        )
    for steps in migrations[found:]:
        for step in steps:
            execute(step)
    if found < version:
        execute("DELETE FROM schema_version")
        execute(f"INSERT INTO schema_version (version) VALUES ({placeholder})", (version,))  # noqa: S608
    return found
