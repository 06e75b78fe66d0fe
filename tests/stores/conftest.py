"""Fixtures for the store tests: real SQLite files, real PostgreSQL schemas, and
the spawned processes that race on them.

* ``sqlite_spec`` – a fresh database file under ``tmp_path``.
* ``postgres_spec`` – a fresh schema on ``CARTPAY_TEST_POSTGRES_DSN``, dropped
  after the test; skipped (with the reason) when the DSN is unset.
* ``workers`` – 8 processes started with ``spawn``, shared by the session.
* ``gateway_server`` – a manager process that holds shared ``FakeStripeGateway``
  instances; ``shared_gateway`` gives each test a new one, through its proxy.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from multiprocessing.context import SpawnContext
from multiprocessing.pool import Pool
from pathlib import Path

import pytest

from cartpay.testing import FakeStripeGateway
from tests.stores.store_workers import GatewayServer, StoreSpec, shared_gateway

DSN_VARIABLE = "CARTPAY_TEST_POSTGRES_DSN"
WORKERS = 8


@pytest.fixture
def sqlite_spec(tmp_path: Path) -> StoreSpec:
    return StoreSpec("sqlite", str(tmp_path / "cartpay.db"))


@pytest.fixture
def postgres_dsn() -> str:
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"{DSN_VARIABLE} is not set; start a server with .ci/postgres-up")
    return dsn


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name no other test uses; the schema is dropped afterwards."""
    import psycopg

    schema = f"stores_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def postgres_spec(postgres_dsn: str, postgres_schema: str) -> StoreSpec:
    return StoreSpec("postgres", postgres_dsn, postgres_schema)


@pytest.fixture(scope="session")
def spawn() -> SpawnContext:
    return multiprocessing.get_context("spawn")


@pytest.fixture(scope="session")
def workers(spawn: SpawnContext) -> Iterator[Pool]:
    pool = spawn.Pool(WORKERS)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


@pytest.fixture(scope="session")
def gateway_server(spawn: SpawnContext) -> Iterator[GatewayServer]:
    server = GatewayServer(ctx=spawn)
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def gateway(gateway_server: GatewayServer) -> FakeStripeGateway:
    """A FakeStripeGateway every process of the test shares (a manager proxy)."""
    return shared_gateway(gateway_server)
