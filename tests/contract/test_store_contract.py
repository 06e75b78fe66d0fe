"""The Store contract (``cartpay.testing.StoreContract``), run against every store
adapter: the ``store`` fixture (``conftest.py``) yields an empty memory store,
SQLite file or PostgreSQL schema, and each case runs on both twins (MemoryStore
and AsyncMemoryStore, SQLiteStore and AsyncSQLiteStore, PostgresStore and
AsyncPostgresStore)."""

from __future__ import annotations

import pytest

from cartpay.testing import StoreContract

pytestmark = pytest.mark.twins


class TestStoreContract(StoreContract):
    """Every adapter cartpay ships, through the contract hosts run on theirs."""
