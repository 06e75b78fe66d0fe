"""PostgresStore: the Store port on PostgreSQL (psycopg 3 + psycopg_pool), for
several service instances sharing one database. Needs the ``postgres`` extra.

Contract (the same as :class:`~cartpay.stores.memory.MemoryStore`):

* ``transaction()`` is one database transaction on a pooled connection: it
  commits when the block exits normally and rolls back when it raises.
* Reads of a single record (``get_*``) are ``SELECT … FOR UPDATE``: the row stays
  locked until the transaction ends, so a read-check-write on one record runs as
  if alone, as it does in the memory and SQLite stores. Scans do not lock.
* ``read()`` is a ``REPEATABLE READ, READ ONLY`` transaction, always rolled
  back: one snapshot for all its reads, and no row locks.
* ``update_*`` and ``delete_cart`` are ``… WHERE id = %s AND version = %s``: no
  row changed raises ``ConcurrencyError``. ``insert_*`` is ``ON CONFLICT DO
  NOTHING``: an existing id raises ``ConcurrencyError``, and the transaction
  stays usable. Serialization failures and deadlocks become ``ConcurrencyError``
  (retryable): the transaction is rolled back and nothing of it is written.
  Nothing is retried here; the façade re-reads and retries.
* Every other failure of the driver or the pool is translated here into
  :class:`~cartpay.StoreError` (``retryable`` when the same call can pass later:
  the server unreachable or restarting, the disk full, a read-only standby).
  A lookup of an id no text column can hold (a NUL, a lone surrogate) finds
  nothing.

Each record is one row: its JSON body (``cartpay._converter.dumps``) plus the
columns the lookups use. The schema (the same as SQLite's) is versioned in
``schema_version``; opening applies the forward migrations (:data:`MIGRATIONS`)
in one transaction under ``pg_advisory_xact_lock``, so instances starting
together migrate once, and refuses a database newer than the code. ``schema``
puts the tables in that PostgreSQL schema (created if missing).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

try:
    import psycopg
    from psycopg import errors as pg_errors, sql
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "PostgresStore needs psycopg 3 and psycopg_pool: pip install 'cartpay[postgres]'"
    ) from exc

from typing_extensions import Self

from .._converter import dumps, loads
from .._errors import CartpayError, ConcurrencyError, StoreError, ValidationError
from .._models import Cart, IntentRecord, Order
from .._ports import ScanKey
from ._schema import MAX_LIMIT, SchemaVersionError, apply_migrations, migrations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "SchemaVersionError"]

#: Forward migrations: ``MIGRATIONS[n]`` takes a schema from version n to n + 1.
MIGRATIONS = migrations(
    timestamp="timestamptz",
    payment_from_body="body::jsonb ->> 'payment'",
    cart_id_from_body="body::jsonb ->> 'cart_id'",
)
SCHEMA_VERSION = len(MIGRATIONS)

# Errors after which the transaction is lost but a retry may succeed.
_RETRYABLE = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
)


def _lost_race(exc: psycopg.Error) -> ConcurrencyError:
    return ConcurrencyError(f"lost a race in the database ({exc.sqlstate}); try again")


#: SQLSTATE (or its two-character class) → (StoreError.reason, retryable).
_FAILURES: dict[str, tuple[str, bool]] = {
    "08": ("unavailable", True),  # connection exception
    "53100": ("full", True),  # disk_full
    "53": ("unavailable", True),  # insufficient resources (memory, connections)
    "57P01": ("unavailable", True),  # admin_shutdown
    "57P02": ("unavailable", True),  # crash_shutdown
    "57P03": ("unavailable", True),  # cannot_connect_now (starting up)
    "57014": ("unavailable", True),  # query_canceled (statement_timeout)
    "25006": ("read_only", True),  # read_only_sql_transaction (a standby)
    "22": ("unstorable", False),  # data exception
    "54": ("unstorable", False),  # program limit exceeded
}


def translate_error(exc: BaseException) -> CartpayError:
    """The cartpay error for a failure of psycopg or the pool (raised ``from exc``)."""
    if isinstance(exc, _RETRYABLE):
        return _lost_race(exc)
    if isinstance(exc, PoolTimeout):
        return StoreError(
            f"no database connection within the pool's timeout ({exc})",
            reason="unavailable",
            retryable=True,
        )
    if isinstance(exc, UnicodeEncodeError):
        return StoreError(
            "a value PostgreSQL cannot store (a lone surrogate)",
            reason="unstorable",
            retryable=False,
        )
    sqlstate = getattr(exc, "sqlstate", None) or ""
    reason, retryable = _FAILURES.get(sqlstate) or _FAILURES.get(sqlstate[:2]) or ("failed", False)
    if not sqlstate and isinstance(exc, psycopg.OperationalError):
        reason, retryable = "unavailable", True  # (libpq: no server answered)
    elif not sqlstate and isinstance(exc, psycopg.DataError):
        reason = "unstorable"  # (psycopg itself: a NUL in text)
    state = f" [{sqlstate}]" if sqlstate else ""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(f"PostgreSQL: {first_line}{state}", reason=reason, retryable=retryable)


_DRIVER_ERRORS = (psycopg.Error, PoolTimeout, UnicodeEncodeError)


def _storable(key: str) -> bool:
    """Whether a text column can hold ``key`` (no NUL, valid UTF-8)."""
    if "\x00" in key:
        return False
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (PostgreSQL would use the session zone)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def migrate(conn: psycopg.Connection[Any], schema: str) -> int:
    """Bring ``schema`` to :data:`SCHEMA_VERSION` in one transaction, serialised with
    other instances by an advisory lock; returns the version it found. Raises
    ``SchemaVersionError`` for a newer schema. ``conn`` is in autocommit mode."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cartpay.schema:{schema}",))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        found = apply_migrations(
            conn.execute,
            MIGRATIONS,
            version=SCHEMA_VERSION,
            where=f"schema {schema!r}",
            placeholder="%s",
        )
    return found


#: One record by id, per table: in a read snapshot, and locked in a transaction.
_GET = {
    "carts": "SELECT body FROM carts WHERE id = %s",
    "orders": "SELECT body FROM orders WHERE id = %s",
    "intents": "SELECT body FROM intents WHERE id = %s",
}
_GET_FOR_UPDATE = {table: f"{query} FOR UPDATE" for table, query in _GET.items()}


class _PostgresTransaction:
    """The StoreTransaction of one database transaction."""

    def __init__(self, conn: psycopg.Connection[Any], *, lock: bool = True) -> None:
        self._conn = conn
        # get_* lock the row (FOR UPDATE) in a transaction, not in a read snapshot.
        self._get = _GET_FOR_UPDATE if lock else _GET
        self.failed: Exception | None = None
        # Records read FOR UPDATE (locked until the transaction ends), read in a
        # REPEATABLE READ snapshot, or written here, by id: a second read of the
        # same record costs no round trip.
        self._carts: dict[str, Cart | None] = {}
        self._orders: dict[str, Order | None] = {}
        self._intents: dict[str, IntentRecord | None] = {}

    def _run(self, query: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(query, params, prepare=True)
        except _DRIVER_ERRORS as exc:
            self.failed = exc
            raise translate_error(exc) from exc

    def _body(self, query: str, key: str) -> str | None:
        if not _storable(key):
            return None  # no row can have that id
        row = self._run(query, (key,)).fetchone()
        return None if row is None else str(row[0])

    def _bodies(self, query: str, params: Sequence[Any]) -> list[str]:
        return [str(body) for (body,) in self._run(query, params).fetchall()]

    def _changed(self, cursor: psycopg.Cursor[Any], kind: str, key: str, version: int) -> None:
        if cursor.rowcount != 1:
            raise ConcurrencyError(f"{kind} {key} is gone or no longer at version {version}")

    def _inserted(self, cursor: psycopg.Cursor[Any], kind: str, key: str) -> None:
        if cursor.rowcount != 1:
            raise ConcurrencyError(f"{kind} {key} already exists")

    # carts
    def get_cart(self, cart_id: str) -> Cart | None:
        if cart_id not in self._carts:
            body = self._body(self._get["carts"], cart_id)
            self._carts[cart_id] = None if body is None else loads(body, Cart)
        return self._carts[cart_id]

    def insert_cart(self, cart: Cart) -> None:
        cursor = self._run(
            "INSERT INTO carts (id, version, body) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (cart.id, cart.version, dumps(cart)),
        )
        self._inserted(cursor, "cart", cart.id)
        self._carts[cart.id] = cart

    def update_cart(self, cart: Cart, *, expected_version: int) -> None:
        cursor = self._run(
            "UPDATE carts SET version = %s, body = %s WHERE id = %s AND version = %s",
            (cart.version, dumps(cart), cart.id, expected_version),
        )
        self._changed(cursor, "cart", cart.id, expected_version)
        self._carts[cart.id] = cart

    def delete_cart(self, cart_id: str, *, expected_version: int) -> None:
        cursor = self._run(
            "DELETE FROM carts WHERE id = %s AND version = %s", (cart_id, expected_version)
        )
        self._changed(cursor, "cart", cart_id, expected_version)
        self._carts[cart_id] = None

    # orders
    def get_order(self, order_id: str) -> Order | None:
        if order_id not in self._orders:
            body = self._body(self._get["orders"], order_id)
            self._orders[order_id] = None if body is None else loads(body, Order)
        return self._orders[order_id]

    def orders_for_intent(self, intent_id: str) -> list[Order]:
        if not _storable(intent_id):
            return []
        bodies = self._bodies(
            "SELECT body FROM orders WHERE intent_id = %s ORDER BY created_at NULLS FIRST, id",
            (intent_id,),
        )
        return [loads(body, Order) for body in bodies]

    def orders_for_cart(self, cart_id: str) -> list[Order]:
        if not _storable(cart_id):
            return []
        bodies = self._bodies(
            "SELECT body FROM orders WHERE cart_id = %s ORDER BY created_at NULLS FIRST, id",
            (cart_id,),
        )
        return [loads(body, Order) for body in bodies]

    def insert_order(self, order: Order) -> None:
        cursor = self._run(
            """INSERT INTO orders
                 (id, version, cart_id, intent_id, status, payment, created_at, body)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (order.id, order.version, order.cart_id, *_order_columns(order)),
        )
        self._inserted(cursor, "order", order.id)
        self._orders[order.id] = order

    def update_order(self, order: Order, *, expected_version: int) -> None:
        cursor = self._run(
            """UPDATE orders SET version = %s, intent_id = %s, status = %s, payment = %s,
                   created_at = %s, body = %s
               WHERE id = %s AND version = %s""",
            (order.version, *_order_columns(order), order.id, expected_version),
        )
        self._changed(cursor, "order", order.id, expected_version)
        self._orders[order.id] = order

    # intents
    def get_intent(self, intent_id: str) -> IntentRecord | None:
        if intent_id not in self._intents:
            body = self._body(self._get["intents"], intent_id)
            self._intents[intent_id] = None if body is None else loads(body, IntentRecord)
        return self._intents[intent_id]

    def insert_intent(self, intent: IntentRecord) -> None:
        cursor = self._run(
            """INSERT INTO intents (id, version, cart_id, status, order_id, created_at, body)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (intent.id, intent.version, *_intent_columns(intent)),
        )
        self._inserted(cursor, "intent", intent.id)
        self._intents[intent.id] = intent

    def update_intent(self, intent: IntentRecord, *, expected_version: int) -> None:
        cursor = self._run(
            """UPDATE intents SET version = %s, cart_id = %s, status = %s, order_id = %s,
                   created_at = %s, body = %s
               WHERE id = %s AND version = %s""",
            (intent.version, *_intent_columns(intent), intent.id, expected_version),
        )
        self._changed(cursor, "intent", intent.id, expected_version)
        self._intents[intent.id] = intent

    # scans
    def unpaid_orders_before(
        self, cutoff: datetime, *, limit: int, after: ScanKey | None = None
    ) -> list[Order]:
        start = (_EPOCH, "") if after is None else (_utc(after[0]), after[1])
        bodies = self._bodies(
            """SELECT body FROM orders
               WHERE status IN ('incomplete', 'processing') AND intent_id IS NOT NULL
                 AND created_at < %s AND (created_at, id) > (%s, %s)
               ORDER BY created_at, id LIMIT %s""",
            (_utc(cutoff), *start, min(limit, MAX_LIMIT)),
        )
        return [loads(body, Order) for body in bodies]

    def unclaimed_intents(
        self, statuses: Sequence[str], *, limit: int, after: ScanKey | None = None
    ) -> list[IntentRecord]:
        start = (_EPOCH, "") if after is None else (_utc(after[0]), after[1])
        bodies = self._bodies(
            """SELECT body FROM intents
               WHERE status = ANY(%s) AND order_id IS NULL AND (created_at, id) > (%s, %s)
               ORDER BY created_at, id LIMIT %s""",
            (list(statuses), *start, min(limit, MAX_LIMIT)),
        )
        return [loads(body, IntentRecord) for body in bodies]

    # cursors
    def get_cursor(self, name: str) -> str | None:
        row = self._run("SELECT value FROM cursors WHERE name = %s", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_cursor(self, name: str, value: str | None) -> None:
        if value is None:
            self._run("DELETE FROM cursors WHERE name = %s", (name,))
        else:
            self._run(
                """INSERT INTO cursors (name, value) VALUES (%s, %s)
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value""",
                (name, value),
            )

    # events
    def has_event(self, event_id: str) -> bool:
        if not _storable(event_id):
            return False
        return self._run("SELECT 1 FROM events WHERE id = %s", (event_id,)).fetchone() is not None

    def record_event(self, event_id: str, event_type: str, action: str) -> bool:
        cursor = self._run(
            """INSERT INTO events (id, type, action, recorded_at) VALUES (%s, %s, %s, now())
               ON CONFLICT (id) DO NOTHING""",
            (event_id, event_type, action),
        )
        return cursor.rowcount == 1


#: Before every row a scan can return (timestamps here are all after it).
_EPOCH = datetime(1, 1, 1, tzinfo=timezone.utc)


def _order_columns(order: Order) -> tuple[str | None, str, str, datetime | None, str]:
    created = None if order.created_at is None else _utc(order.created_at)
    return order.intent_id, order.status, order.payment, created, dumps(order)


def _intent_columns(intent: IntentRecord) -> tuple[str, str, str | None, datetime, str]:
    return intent.cart_id, intent.status, intent.order_id, _utc(intent.created_at), dumps(intent)


def _check_pool_sizes(min_size: int, max_size: int) -> None:
    for name, value in (("min_size", min_size), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(name, "integer", "must be an int")
    if min_size < 0:
        raise ValidationError("min_size", "non_negative", "must be 0 or more")
    if max_size < max(min_size, 1):
        raise ValidationError("max_size", "at_least_min_size", "must be 1 or more and >= min_size")


class PostgresStore:
    """The Store port on PostgreSQL through a connection pool. Thread- and process-safe.

    ``conninfo`` is a libpq connection string or URL; ``min_size``/``max_size``
    bound the pool; ``schema`` (default ``public``) holds the tables. Opening
    migrates the schema forward and raises ``SchemaVersionError`` for a schema
    newer than this code. Wrong settings raise ``ValidationError`` before any
    connection is made.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        schema: str | None = None,
    ) -> None:
        _check_pool_sizes(min_size, max_size)
        if schema is not None and (not isinstance(schema, str) or not schema.strip()):
            raise ValidationError("schema", "non_empty", "must be a schema name (or None)")
        self._schema = schema or "public"
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                migrate(conn, self._schema)
            self._pool = ConnectionPool(
                conninfo,
                min_size=min_size,
                max_size=max_size,
                kwargs={"autocommit": True},
                configure=self._configure,
                open=True,
                name=f"cartpay.{self._schema}",
            )
        except _DRIVER_ERRORS as exc:
            raise translate_error(exc) from exc

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self._schema!r})"

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        """One database transaction: commits when the block exits normally, rolls
        back when it raises. A transaction the database aborted (a lost race the
        block caught) is rolled back and raises ``ConcurrencyError``."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                tx = _PostgresTransaction(conn)
                yield tx
                if tx.failed is not None:
                    raise ConcurrencyError(
                        "the database aborted this transaction; try again"
                    ) from tx.failed
        except _DRIVER_ERRORS as exc:  # raised by COMMIT, or getting a connection
            raise translate_error(exc) from exc

    @contextmanager
    def read(self) -> Iterator[_PostgresTransaction]:
        """A read-only snapshot (``REPEATABLE READ, READ ONLY``): no row is locked,
        so it never waits for a writer, nor a writer for it; always rolled back."""
        try:
            with self._pool.connection() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try:
                    yield _PostgresTransaction(conn, lock=False)
                finally:
                    conn.execute("ROLLBACK")
        except _DRIVER_ERRORS as exc:
            raise translate_error(exc) from exc

    def schema_version(self) -> int:
        """The schema version the database is at."""
        try:
            with self._pool.connection() as conn:
                row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        except _DRIVER_ERRORS as exc:
            raise translate_error(exc) from exc
        assert row is not None
        return int(row[0])

    def __enter__(self) -> Self:
        """``with PostgresStore(...) as store:`` closes the store when the block ends."""
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool and its connections."""
        self._pool.close()
