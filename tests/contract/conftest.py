"""The ``store`` fixture: every Store adapter, each test on an empty store.

``postgres`` runs on ``CARTPAY_TEST_POSTGRES_DSN`` in a fresh PostgreSQL schema
per test, dropped afterwards; without the DSN those tests are skipped (and CI,
which requires the ``postgres`` suite, fails on the skip).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from cartpay import Store
from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
from cartpay.stores.sqlite import AsyncSQLiteStore, SQLiteStore

from ..twins import BlockingStore, Twin

DSN_VARIABLE = "CARTPAY_TEST_POSTGRES_DSN"


def _postgres_store(
    twin: Twin = "sync", loop: asyncio.AbstractEventLoop | None = None
) -> Iterator[Store]:
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"{DSN_VARIABLE} is not set; start a server with .ci/postgres-up")
    import psycopg

    from cartpay.stores.postgres import AsyncPostgresStore, PostgresStore

    schema = f"contract_{uuid.uuid4().hex[:12]}"
    store: Store
    if twin == "sync" or loop is None:
        store = PostgresStore(dsn, schema=schema, max_size=4)
    else:
        store = cast(Store, BlockingStore(AsyncPostgresStore(dsn, schema=schema, max_size=4), loop))
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, twin: Twin, loop: asyncio.AbstractEventLoop
) -> Iterator[Store]:
    """The store under contract; for the async twin (modules marked ``twins``),
    its async counterpart behind blocking calls (tests/twins.py)."""
    kind: str = request.param
    if kind == "postgres":
        yield from _postgres_store(twin, loop)
        return
    opened: Store
    if twin == "async":
        opened = cast(
            Store,
            BlockingStore(
                AsyncMemoryStore()
                if kind == "memory"
                else AsyncSQLiteStore(tmp_path / "cartpay.db"),
                loop,
            ),
        )
    else:
        opened = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "cartpay.db")
    try:
        yield opened
    finally:
        opened.close()
