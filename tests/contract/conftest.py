"""The ``store`` fixture: every Store adapter, each test on an empty store.

``postgres`` runs on ``CARTPAY_TEST_POSTGRES_DSN`` in a fresh PostgreSQL schema
per test, dropped afterwards; without the DSN those tests are skipped (and CI,
which requires the ``postgres`` suite, fails on the skip).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartpay import Store
from cartpay.stores.memory import MemoryStore
from cartpay.stores.sqlite import SQLiteStore

DSN_VARIABLE = "CARTPAY_TEST_POSTGRES_DSN"


def _postgres_store() -> Iterator[Store]:
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"{DSN_VARIABLE} is not set; start a server with .ci/postgres-up")
    import psycopg

    from cartpay.stores.postgres import PostgresStore

    schema = f"contract_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(dsn, schema=schema, max_size=4)
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind: str = request.param
    if kind == "postgres":
        yield from _postgres_store()
        return
    opened: Store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "cartpay.db")
    try:
        yield opened
    finally:
        opened.close()
