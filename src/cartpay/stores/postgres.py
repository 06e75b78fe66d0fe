"""PostgresStore: the Store port on PostgreSQL (psycopg 3 + psycopg_pool), for
several service instances sharing one database. Needs the ``postgres`` extra.

Contract (the same as :class:`~cartpay.stores.memory.MemoryStore`):

* ``transaction()`` is one database transaction on a pooled connection: it
  commits when the block exits normally and rolls back when it raises.
* Reads of a single record (``get_*``) are ``SELECT … FOR UPDATE``: the row stays
  locked until the transaction ends, so a read-check-write on one record runs as
  if alone, as it does in the memory and SQLite stores. Scans do not lock.
* ``read()`` is a ``REPEATABLE READ, READ ONLY`` transaction: one snapshot for
  all its reads, and no row locks. It writes nothing, so it ends with
  ``COMMIT``, not ``ROLLBACK``: psycopg forgets every prepared statement of the
  connection on a ``ROLLBACK`` (and sends ``DEALLOCATE ALL``), which made the
  next transactions on that connection prepare their statements again, one
  round trip each.
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

import inspect
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import datetime, timezone
from typing import Any, cast

try:
    import psycopg
    from psycopg import errors as pg_errors, sql
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "PostgresStore needs psycopg 3 and psycopg_pool: pip install 'cartpay[postgres]'"
    ) from exc

from typing_extensions import Self

from .._converter import dumps, loads
from .._effects import Flow, arun, run
from .._errors import CartpayError, ConcurrencyError, StoreError, ValidationError
from .._models import Cart, IntentRecord, Order
from .._ports import AsyncStoreReads, AsyncStoreTransaction, ScanKey, StoreTransaction
from ._schema import MAX_LIMIT, SchemaVersionError, apply_migrations, migrations

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AsyncPostgresStore",
    "PostgresStore",
    "SchemaVersionError",
]

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


class _Result:
    """What one statement returned: its rows (all of them: every query here
    returns few) and how many rows it changed."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount


class _Statements:
    """The StoreTransaction of one database transaction, written once for both
    stores: each method is a flow (:mod:`cartpay._effects`) that yields its
    statements to ``_run`` (a sync connection's, or an async one's coroutine);
    :func:`_driven` makes the port's methods from them."""

    def __init__(self, conn: Any, *, lock: bool = True) -> None:
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

    def _run(self, query: str, params: Sequence[Any]) -> Any:
        raise NotImplementedError  # (each store runs statements its own way)

    def check_committable(self) -> None:
        """Before COMMIT: a statement that failed aborted the whole transaction."""
        if self.failed is not None:
            raise ConcurrencyError("the database aborted this transaction; try again") from (
                self.failed
            )

    def _failed(self, exc: BaseException) -> CartpayError:
        self.failed = exc if isinstance(exc, Exception) else None
        return translate_error(exc)

    def _body(self, query: str, key: str) -> Flow[str | None]:
        if not _storable(key):
            return None  # no row can have that id
        found: _Result = yield self._run(query, (key,))
        return None if not found.rows else str(found.rows[0][0])

    def _bodies(self, query: str, params: Sequence[Any]) -> Flow[list[str]]:
        found: _Result = yield self._run(query, params)
        return [str(body) for (body,) in found.rows]

    def _changed(self, cursor: _Result, kind: str, key: str, version: int) -> None:
        if cursor.rowcount != 1:
            raise ConcurrencyError(f"{kind} {key} is gone or no longer at version {version}")

    def _inserted(self, cursor: _Result, kind: str, key: str) -> None:
        if cursor.rowcount != 1:
            raise ConcurrencyError(f"{kind} {key} already exists")

    # carts
    def _get_cart(self, cart_id: str) -> Flow[Cart | None]:
        if cart_id not in self._carts:
            body = yield from self._body(self._get["carts"], cart_id)
            self._carts[cart_id] = None if body is None else loads(body, Cart)
        return self._carts[cart_id]

    def _insert_cart(self, cart: Cart) -> Flow[None]:
        cursor = yield self._run(
            "INSERT INTO carts (id, version, body) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (cart.id, cart.version, dumps(cart)),
        )
        self._inserted(cursor, "cart", cart.id)
        self._carts[cart.id] = cart

    def _update_cart(self, cart: Cart, *, expected_version: int) -> Flow[None]:
        cursor = yield self._run(
            "UPDATE carts SET version = %s, body = %s WHERE id = %s AND version = %s",
            (cart.version, dumps(cart), cart.id, expected_version),
        )
        self._changed(cursor, "cart", cart.id, expected_version)
        self._carts[cart.id] = cart

    def _delete_cart(self, cart_id: str, *, expected_version: int) -> Flow[None]:
        cursor = yield self._run(
            "DELETE FROM carts WHERE id = %s AND version = %s", (cart_id, expected_version)
        )
        self._changed(cursor, "cart", cart_id, expected_version)
        self._carts[cart_id] = None

    # orders
    def _get_order(self, order_id: str) -> Flow[Order | None]:
        if order_id not in self._orders:
            body = yield from self._body(self._get["orders"], order_id)
            self._orders[order_id] = None if body is None else loads(body, Order)
        return self._orders[order_id]

    def _orders_for_intent(self, intent_id: str) -> Flow[list[Order]]:
        if not _storable(intent_id):
            return []
        bodies = yield from self._bodies(
            "SELECT body FROM orders WHERE intent_id = %s ORDER BY created_at NULLS FIRST, id",
            (intent_id,),
        )
        return [loads(body, Order) for body in bodies]

    def _orders_for_cart(self, cart_id: str) -> Flow[list[Order]]:
        if not _storable(cart_id):
            return []
        bodies = yield from self._bodies(
            "SELECT body FROM orders WHERE cart_id = %s ORDER BY created_at NULLS FIRST, id",
            (cart_id,),
        )
        return [loads(body, Order) for body in bodies]

    def _insert_order(self, order: Order) -> Flow[None]:
        cursor = yield self._run(
            """INSERT INTO orders
                 (id, version, cart_id, intent_id, status, payment, created_at, body)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (order.id, order.version, order.cart_id, *_order_columns(order)),
        )
        self._inserted(cursor, "order", order.id)
        self._orders[order.id] = order

    def _update_order(self, order: Order, *, expected_version: int) -> Flow[None]:
        cursor = yield self._run(
            """UPDATE orders SET version = %s, intent_id = %s, status = %s, payment = %s,
                   created_at = %s, body = %s
               WHERE id = %s AND version = %s""",
            (order.version, *_order_columns(order), order.id, expected_version),
        )
        self._changed(cursor, "order", order.id, expected_version)
        self._orders[order.id] = order

    # intents
    def _get_intent(self, intent_id: str) -> Flow[IntentRecord | None]:
        if intent_id not in self._intents:
            body = yield from self._body(self._get["intents"], intent_id)
            self._intents[intent_id] = None if body is None else loads(body, IntentRecord)
        return self._intents[intent_id]

    def _insert_intent(self, intent: IntentRecord) -> Flow[None]:
        cursor = yield self._run(
            """INSERT INTO intents (id, version, cart_id, status, order_id, created_at, body)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (intent.id, intent.version, *_intent_columns(intent)),
        )
        self._inserted(cursor, "intent", intent.id)
        self._intents[intent.id] = intent

    def _update_intent(self, intent: IntentRecord, *, expected_version: int) -> Flow[None]:
        cursor = yield self._run(
            """UPDATE intents SET version = %s, cart_id = %s, status = %s, order_id = %s,
                   created_at = %s, body = %s
               WHERE id = %s AND version = %s""",
            (intent.version, *_intent_columns(intent), intent.id, expected_version),
        )
        self._changed(cursor, "intent", intent.id, expected_version)
        self._intents[intent.id] = intent

    # scans
    def _unpaid_orders_before(
        self, cutoff: datetime, *, limit: int, after: ScanKey | None = None
    ) -> Flow[list[Order]]:
        start = (_EPOCH, "") if after is None else (_utc(after[0]), after[1])
        bodies = yield from self._bodies(
            """SELECT body FROM orders
               WHERE status IN ('incomplete', 'processing') AND intent_id IS NOT NULL
                 AND created_at < %s AND (created_at, id) > (%s, %s)
               ORDER BY created_at, id LIMIT %s""",
            (_utc(cutoff), *start, min(limit, MAX_LIMIT)),
        )
        return [loads(body, Order) for body in bodies]

    def _unclaimed_intents(
        self, statuses: Sequence[str], *, limit: int, after: ScanKey | None = None
    ) -> Flow[list[IntentRecord]]:
        start = (_EPOCH, "") if after is None else (_utc(after[0]), after[1])
        bodies = yield from self._bodies(
            """SELECT body FROM intents
               WHERE status = ANY(%s) AND order_id IS NULL AND (created_at, id) > (%s, %s)
               ORDER BY created_at, id LIMIT %s""",
            (list(statuses), *start, min(limit, MAX_LIMIT)),
        )
        return [loads(body, IntentRecord) for body in bodies]

    # cursors
    def _get_cursor(self, name: str) -> Flow[str | None]:
        found = yield self._run("SELECT value FROM cursors WHERE name = %s", (name,))
        return None if not found.rows else str(found.rows[0][0])

    def _set_cursor(self, name: str, value: str | None) -> Flow[None]:
        if value is None:
            yield self._run("DELETE FROM cursors WHERE name = %s", (name,))
        else:
            yield self._run(
                """INSERT INTO cursors (name, value) VALUES (%s, %s)
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value""",
                (name, value),
            )

    # events
    def _has_event(self, event_id: str) -> Flow[bool]:
        if not _storable(event_id):
            return False
        found = yield self._run("SELECT 1 FROM events WHERE id = %s", (event_id,))
        return bool(found.rows)

    def _record_event(self, event_id: str, event_type: str, action: str) -> Flow[bool]:
        cursor = yield self._run(
            """INSERT INTO events (id, type, action, recorded_at) VALUES (%s, %s, %s, now())
               ON CONFLICT (id) DO NOTHING""",
            (event_id, event_type, action),
        )
        return bool(cursor.rowcount == 1)


_PORT_METHODS = (
    "get_cart",
    "insert_cart",
    "update_cart",
    "delete_cart",
    "get_order",
    "orders_for_intent",
    "orders_for_cart",
    "insert_order",
    "update_order",
    "get_intent",
    "insert_intent",
    "update_intent",
    "unpaid_orders_before",
    "unclaimed_intents",
    "get_cursor",
    "set_cursor",
    "has_event",
    "record_event",
)


def _driven(cls: type[_Statements]) -> type[_Statements]:
    """Give ``cls`` the port's methods: each runs its flow with the sync driver
    (a sync ``_run``) or the async one (a coroutine ``_run``)."""
    is_async = inspect.iscoroutinefunction(cls._run)
    for name in _PORT_METHODS:
        flow = getattr(cls, f"_{name}")
        if is_async:

            async def method(self: _Statements, *args: Any, _flow: Any = flow, **kw: Any) -> Any:
                return await arun(_flow(self, *args, **kw))

        else:

            def method(self: _Statements, *args: Any, _flow: Any = flow, **kw: Any) -> Any:  # type: ignore[misc]
                return run(_flow(self, *args, **kw))

        method.__name__ = name
        setattr(cls, name, method)
    return cls


@_driven
class _PostgresTransaction(_Statements):
    """The sync store's transaction: statements on a ``psycopg.Connection``."""

    def _run(self, query: str, params: Sequence[Any]) -> _Result:
        try:
            cursor = self._conn.execute(query, params, prepare=True)
            return _Result(cursor.fetchall() if cursor.description else [], cursor.rowcount)
        except _DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc


@_driven
class _AsyncPostgresTransaction(_Statements):
    """The async store's transaction: statements on a ``psycopg.AsyncConnection``."""

    async def _run(self, query: str, params: Sequence[Any]) -> _Result:
        try:
            cursor = await self._conn.execute(query, params, prepare=True)
            rows = await cursor.fetchall() if cursor.description else []
            return _Result(rows, cursor.rowcount)
        except _DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc


#: How a read-only snapshot ends: nothing to undo, and a ``ROLLBACK`` would make
#: psycopg drop the connection's prepared statements (``DEALLOCATE ALL``). On a
#: transaction a failed statement aborted, PostgreSQL answers it with a rollback.
_END_READ = "COMMIT"

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


def _migrated(conninfo: str, min_size: int, max_size: int, schema: str | None) -> str:
    """Check a store's settings (before any connection) and migrate its schema with
    one short connection; the schema's name."""
    _check_pool_sizes(min_size, max_size)
    if schema is not None and (not isinstance(schema, str) or not schema.strip()):
        raise ValidationError("schema", "non_empty", "must be a schema name (or None)")
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            migrate(conn, schema or "public")
    except _DRIVER_ERRORS as exc:
        raise translate_error(exc) from exc
    return schema or "public"


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
        self._schema = _migrated(conninfo, min_size, max_size, schema)
        try:
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
    def transaction(self) -> Iterator[StoreTransaction]:
        """One database transaction: commits when the block exits normally, rolls
        back when it raises. A transaction the database aborted (a lost race the
        block caught) is rolled back and raises ``ConcurrencyError``."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                tx = _PostgresTransaction(conn)
                yield cast("StoreTransaction", tx)
                tx.check_committable()
        except _DRIVER_ERRORS as exc:  # raised by COMMIT, or getting a connection
            raise translate_error(exc) from exc

    @contextmanager
    def read(self) -> Iterator[StoreTransaction]:
        """A read-only snapshot (``REPEATABLE READ, READ ONLY``): no row is locked,
        so it never waits for a writer, nor a writer for it; it writes nothing (it
        ends with ``COMMIT``, which keeps the connection's prepared statements)."""
        try:
            with self._pool.connection() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try:
                    yield cast("StoreTransaction", _PostgresTransaction(conn, lock=False))
                finally:
                    conn.execute(_END_READ)
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


class AsyncPostgresStore:
    """The AsyncStore port on PostgreSQL through psycopg's ``AsyncConnectionPool``:
    :class:`PostgresStore`'s statements, locks, snapshots and errors (the same
    code, :class:`_Statements`), awaited. The settings are PostgresStore's.
    Opening migrates the schema with one short sync connection, before the loop
    is involved; the pool opens on first use. Use it from one event loop.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        schema: str | None = None,
    ) -> None:
        self._schema = _migrated(conninfo, min_size, max_size, schema)
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
            name=f"cartpay.async.{self._schema}",
        )
        self._opened = False

    def __repr__(self) -> str:
        return f"AsyncPostgresStore(schema={self._schema!r})"

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))

    async def _connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        if not self._opened:
            self._opened = True
            await self._pool.open()
        return self._pool.connection()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncStoreTransaction]:
        """As :meth:`PostgresStore.transaction`, awaited."""
        try:
            async with await self._connection() as conn, conn.transaction():
                tx = _AsyncPostgresTransaction(conn)
                yield cast("AsyncStoreTransaction", tx)
                tx.check_committable()
        except _DRIVER_ERRORS as exc:  # raised by COMMIT, or getting a connection
            raise translate_error(exc) from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncStoreReads]:
        """As :meth:`PostgresStore.read`, awaited."""
        try:
            async with await self._connection() as conn:
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try:
                    yield cast("AsyncStoreReads", _AsyncPostgresTransaction(conn, lock=False))
                finally:
                    await conn.execute(_END_READ)
        except _DRIVER_ERRORS as exc:
            raise translate_error(exc) from exc

    async def __aenter__(self) -> Self:
        """``async with AsyncPostgresStore(...) as store:`` closes the store when
        the block ends."""
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pool and its connections."""
        await self._pool.close()
