"""Figure 4: ``confirm_order`` and ``handle_webhook`` latency as the store grows
(1k → 100k → 1M stored orders; ``--quick``: 1k → 10k → 100k), on SQLite and,
when ``CARTPAY_TEST_POSTGRES_DSN`` is set, PostgreSQL.

One database per size, all built first: filler orders (each with its intent
record and one recorded event) are bulk-loaded through the store, 10k per
transaction, with the converter's ``dumps``; then the measured orders are made
through the façade with ``FakeStripeGateway`` (their intents paid at the fake,
not yet in the store). The calls are then interleaved across the sizes (one
call per size in turn), so machine noise hits every size alike: each measured
order is confirmed once (``confirm_order`` records its payment) and each
webhook delivery pays its own order. Medians of the per-call latencies.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from typing import Any

from _harness import Row, Target, median
from bench_webhooks import SECRET, sign, webhook_gateway

from cartpay import CartPaymentIntent
from cartpay._models import IntentRecord, LineItem, Order, Transaction
from cartpay._ports import Store
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import FakeStripeGateway

SECTION = "4. latency vs stored orders"
BATCH = 10_000
CARD = "pm_card_visa"


def fill(store: Store, count: int, *, start: int = 0) -> None:
    """Bulk-load ``count`` paid orders, their intent records and one event each."""
    created = datetime(2024, 1, 1, tzinfo=timezone.utc)
    items = (LineItem("tee", "T-shirt", 2500, 2), LineItem("mug", "Mug", 1200, 1))
    for first in range(start, start + count, BATCH):
        with store.transaction() as tx:
            for i in range(first, min(first + BATCH, start + count)):
                when = created + timedelta(seconds=i)
                intent_id, order_id = f"pi_fill{i:08d}", f"ord_fill{i:08d}"
                tx.insert_intent(
                    IntentRecord(
                        intent_id, f"cart_fill{i:08d}", "succeeded", 6200, "usd", when, order_id
                    )
                )
                tx.insert_order(
                    Order(
                        order_id,
                        f"cart_fill{i:08d}",
                        "usd",
                        6200,
                        items,
                        intent_id,
                        status="complete",
                        payment="paid",
                        transactions=(
                            Transaction(
                                f"txn_fill{i:08d}",
                                "purchase",
                                "complete",
                                6200,
                                "usd",
                                f"ch_fill{i:08d}",
                            ),
                        ),
                        created_at=when,
                    )
                )
                tx.record_event(f"evt_fill{i:08d}", "payment_intent.succeeded", "applied")


class Sized:
    """One database holding ``size`` orders, and the orders measured in it."""

    def __init__(self, label: str, size: int, store: Store, measured: int) -> None:
        self.label, self.size, self.store = label, size, store
        t0 = time.perf_counter()
        fill(store, size - 2 * measured)
        self.load_seconds = time.perf_counter() - t0
        self.gateway = FakeStripeGateway(webhook_secret=SECRET)
        self.payments = CartPaymentIntent(
            return_url="https://shop.test/return", gateway=self.gateway, store=store
        )
        self.to_confirm = [self._paid_at_fake() for _ in range(measured)]
        before = len(self.gateway.events())
        for _ in range(measured):
            self._paid_at_fake()
        events = [e for e in self._events()[before:] if e["type"] == "payment_intent.succeeded"]
        self.events = events  # signed when delivered: a signature is valid for 5 minutes
        self.webhooks = CartPaymentIntent(
            return_url="https://shop.test/return", gateway=webhook_gateway(), store=store
        )
        self.confirm_times: list[float] = []
        self.webhook_times: list[float] = []

    def _events(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(payload) for payload, _ in self.gateway.events()]

    def _paid_at_fake(self) -> str:
        payments = self.payments
        cart = payments.create_cart("usd")
        payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
        payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
        handle = payments.create_payment_intent(cart.id)
        order = payments.checkout(cart.id)
        # (the browser's confirm; the fake, like Stripe, wants a return URL for it)
        self.gateway.confirm_intent(
            handle.id,
            payment_method=CARD,
            return_url="https://shop.test/return",
            idempotency_key=f"bench:{uuid.uuid4().hex}",
        )
        return order.id

    def confirm(self, i: int) -> None:
        order_id = self.to_confirm[i]
        start = time.perf_counter()
        order = self.payments.confirm_order(order_id)
        self.confirm_times.append(time.perf_counter() - start)
        assert order.payment == "paid", order

    def webhook(self, i: int) -> None:
        ((payload, header),) = sign([self.events[i]], "d")
        start = time.perf_counter()
        result = self.webhooks.handle_webhook(payload, header)
        self.webhook_times.append(time.perf_counter() - start)
        assert result.action == "applied" and result.order_id, result


def _measure(kind: str, databases: list[Sized], measured: int) -> list[Row]:
    for i in range(measured):
        for db in databases if i % 2 == 0 else reversed(databases):
            db.confirm(i)
        for db in databases if i % 2 == 0 else reversed(databases):
            db.webhook(i)
    smallest, largest = databases[0], databases[-1]
    rows = []
    for what, times in (
        ("confirm_order", lambda d: d.confirm_times),
        ("handle_webhook", lambda d: d.webhook_times),
    ):
        pick: Callable[[Sized], list[float]] = times
        detail = ", ".join(f"{d.label} {median(pick(d)) * 1e6:,.0f} µs" for d in databases)
        rows.append(
            Row(
                SECTION,
                f"{what} {kind}: {largest.label} / {smallest.label} orders",
                round(median(pick(largest)) / median(pick(smallest)), 3),
                "×",
                Target("<=", 1.5),
                detail=f"median latency: {detail} ({measured} calls each)",
                extra={d.label: median(pick(d)) for d in databases},
                baseline=f"the same call on a store of {smallest.label} orders",
            )
        )
    loads = ", ".join(f"{d.label} in {d.load_seconds:.0f} s" for d in databases[1:])
    rows.append(
        Row(
            SECTION,
            f"bulk load {kind} (10k orders per transaction)",
            len(databases),
            "sizes",
            detail=loads,
        )
    )
    return rows


def sizes(quick: bool) -> list[tuple[str, int]]:
    if quick:
        return [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)]
    return [("1k", 1_000), ("100k", 100_000), ("1M", 1_000_000)]


def _postgres(dsn: str, quick: bool, measured: int) -> Iterator[Sized]:
    from cartpay.stores.postgres import PostgresStore

    run = uuid.uuid4().hex[:8]
    for label, size in sizes(quick):
        store = PostgresStore(dsn, schema=f"bench_{run}_{label.lower()}", max_size=2)
        yield Sized(label, size, store, measured)


def run(*, quick: bool) -> list[Row]:
    measured = 100 if quick else 400
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cartpay-bench-") as tmp, ExitStack() as stack:
        databases = []
        for label, size in sizes(quick):
            store = SQLiteStore(os.path.join(tmp, f"scale-{label}.sqlite3"))
            stack.callback(store.close)
            databases.append(Sized(label, size, store, measured))
        rows.extend(_measure("SQLite", databases, measured))
    dsn = os.environ.get("CARTPAY_TEST_POSTGRES_DSN")
    if dsn:
        databases = list(_postgres(dsn, quick, measured))
        try:
            rows.extend(_measure("PostgreSQL", databases, measured))
        finally:
            _drop_schemas(dsn, databases)
    else:
        rows.append(Row(SECTION, "PostgreSQL: skipped (CARTPAY_TEST_POSTGRES_DSN unset)", 0, ""))
    if quick:
        rows.append(Row(SECTION, "--quick: 100k stored orders stand in for 1M", 100_000, "orders"))
    return rows


def _drop_schemas(dsn: str, databases: list[Sized]) -> None:
    import psycopg

    for db in databases:
        db.store.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for db in databases:
            schema = db.store._schema  # type: ignore[attr-defined]
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
