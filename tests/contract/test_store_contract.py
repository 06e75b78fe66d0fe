"""The Store contract (``cartpay.testing.StoreContract``), run against every store
adapter: the ``store`` fixture (``conftest.py``) yields an empty memory store,
SQLite file or PostgreSQL schema."""

from __future__ import annotations

from cartpay.testing import StoreContract


class TestStoreContract(StoreContract):
    """Every adapter cartpay ships, through the contract hosts run on theirs."""
