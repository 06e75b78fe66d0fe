"""A read-only snapshot keeps its connection's prepared statements.

``PostgresStore.read()`` used to end with ``ROLLBACK``; psycopg forgets every
prepared statement of a connection on a ``ROLLBACK`` (and sends ``DEALLOCATE
ALL``), so each snapshot made the next transactions on that connection prepare
every statement again, one round trip each (benchmarks/bench_processes.py:
checkouts per second on one process went from about 32 to 56). White-box: one
pooled connection, its prepared statements counted by the server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cartpay.stores.postgres import AsyncPostgresStore, PostgresStore

pytestmark = pytest.mark.postgres

COUNT = "SELECT count(*) FROM pg_prepared_statements"


def test_a_snapshot_keeps_the_prepared_statements(postgres_dsn: str, postgres_schema: str) -> None:
    with PostgresStore(postgres_dsn, schema=postgres_schema, min_size=1, max_size=1) as store:
        with store.transaction() as tx:
            assert tx.get_cart("cart_none") is None  # prepares SELECT … FOR UPDATE
        with store.read() as tx:
            assert tx.get_order("ord_none") is None  # prepares the snapshot's SELECT
        pool: Any = store._pool  # (one connection: the one both used)
        with pool.connection() as conn:
            (prepared,) = conn.execute(COUNT).fetchone()
            assert prepared == 2, "the snapshot's end dropped the prepared statements"
            assert len(conn._prepared._names) == 2  # and psycopg still knows them


def test_an_async_snapshot_keeps_the_prepared_statements(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async def scenario() -> int:
        async with AsyncPostgresStore(
            postgres_dsn, schema=postgres_schema, min_size=1, max_size=1
        ) as store:
            async with store.transaction() as tx:
                assert await tx.get_cart("cart_none") is None
            async with store.read() as tx:
                assert await tx.get_order("ord_none") is None
            pool: Any = store._pool
            async with pool.connection() as conn:
                row = await (await conn.execute(COUNT)).fetchone()
                return int(row[0])

    assert asyncio.run(scenario()) == 2
