"""Figure 3: webhooks per second end to end (``handle_webhook``: verify, parse,
dedupe, apply, commit) ÷ ``stripe.Webhook.construct_event`` alone (the baseline:
it verifies the signature and builds the SDK's event object) on the same
payloads, headers and secret, interleaved round by round.

The orders are built with ``FakeStripeGateway``; their ``payment_intent.succeeded``
events are sent as Stripe sends them: pretty-printed JSON (two-space indent) with
``"id"`` as the first key, signed afresh for every pair of rounds. Three cases
(see :func:`_scenarios`):

* ``first``: each delivery is the one that pays its order (it writes the event,
  the intent and the order; every round starts from unpaid orders) — target ≥ 2.0;
* ``again``: the same event (same id) delivered again after it was applied,
  answered ``duplicate`` — target ≥ 5.0;
* ``new id``: an event under a new id for an order already paid (verified,
  deduplicated, applied with nothing to change, recorded) — shown.

On SQLite always; on PostgreSQL too when ``CARTPAY_TEST_POSTGRES_DSN`` is set
(shown, no target).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Generator
from typing import Any

import stripe
from _harness import Row, Target, interleave, median, timed

from cartpay import CartPaymentIntent
from cartpay._ports import PaymentGateway, Store
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import FakeStripeGateway

SECTION = "3. webhooks"
SECRET = "whsec_cartpay_bench"
CARD = "pm_card_visa"
BASELINE = "stripe.Webhook.construct_event"
RETURN = "https://shop.test/return"

Delivery = tuple[bytes, str]
Events = list[dict[str, Any]]


def build_orders(
    gateway: FakeStripeGateway, store: Store, count: int, *, pay: bool = False
) -> Events:
    """``count`` checked-out orders whose intents succeeded at the fake; returns their
    ``payment_intent.succeeded`` events (as dicts). ``pay=True`` also records the
    payment in the store (``confirm_payment``), else only the webhook will."""
    payments = CartPaymentIntent(return_url=RETURN, gateway=gateway, store=store)
    first = len(gateway.events())
    for i in range(count):
        cart = payments.create_cart("usd")
        payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
        payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
        handle = payments.create_payment_intent(cart.id)
        order = payments.checkout(cart.id)
        if pay:
            payments.confirm_payment(order.id, payment_method=CARD)
        else:
            key = f"bench:{uuid.uuid4().hex}:{i}"
            gateway.confirm_intent(
                handle.id, payment_method=CARD, return_url=RETURN, idempotency_key=key
            )
    events = [json.loads(payload) for payload, _ in gateway.events()[first:]]
    return [e for e in events if e["type"] == "payment_intent.succeeded"]


def sign(events: Events, suffix: str | None = None, secret: str = SECRET) -> list[Delivery]:
    """The events as Stripe sends them (pretty-printed; ``"id"``, ``"object"``, then the
    other keys in alphabetical order, so ``"type"`` is last), under new ids
    (``<id>_<suffix>``) when ``suffix`` is given, signed now with ``secret``."""
    out = []
    for event in events:
        event_id = event["id"] if suffix is None else f"{event['id']}_{suffix}"
        rest = {k: event[k] for k in sorted(event) if k not in ("id", "object")}
        payload = json.dumps({"id": event_id, "object": event["object"], **rest}, indent=2)
        header = stripe.WebhookSignature.generate_signature_header(payload, secret)
        out.append((payload.encode(), header))
    return out


def webhook_gateway() -> PaymentGateway:
    """A StripeGateway that only verifies (no request is made by these deliveries)."""
    return StripeGateway(stripe.StripeClient("sk_test_cartpay_bench"), webhook_secret=SECRET)


def copy_database(source: str, target: str) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def remove_database(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


class _Pairs:
    """Both sides of an interleaved pair get the same deliveries, signed when the
    pair starts; ``batches(n)`` gives the events of pair ``n`` (0: the warm-up)."""

    def __init__(self, batches: Callable[[int], Events], suffix: bool) -> None:
        self.batches = batches
        self.suffix = suffix
        self.made = -1
        self.served = 0
        self.current: list[Delivery] = []

    def next(self) -> list[Delivery]:
        if self.served % 2 == 0:
            self.made += 1
            self.current = sign(self.batches(self.made), f"r{self.made}" if self.suffix else None)
        self.served += 1
        return self.current


class Case:
    """One figure: how a round's store is opened and closed, what every delivery
    must be answered, the target."""

    def __init__(
        self,
        figure: str,
        pairs: _Pairs,
        open_store: Callable[[int], Store],
        close_store: Callable[[Store], None],
        expect: str,
        target: Target | None,
    ) -> None:
        self.figure, self.pairs, self.expect, self.target = figure, pairs, expect, target
        self.open_store, self.close_store = open_store, close_store


def measure(engine: str, case: Case, rounds: int, orders: int) -> Row:
    gateway = webhook_gateway()
    pairs = case.pairs

    def ours() -> float:
        deliveries = pairs.next()
        db = case.open_store(pairs.made)
        payments = CartPaymentIntent(return_url=RETURN, gateway=gateway, store=db)
        handle = payments.handle_webhook
        results: list[Any] = []
        append = results.append

        def handle_all() -> None:
            for payload, header in deliveries:
                append(handle(payload, header))

        seconds = timed(handle_all)
        case.close_store(db)
        wrong = [r for r in results if r.action != case.expect]
        assert not wrong, f"{len(wrong)} of {len(deliveries)} not {case.expect}: {wrong[0]}"
        if case.expect == "applied":
            assert all(r.order_id for r in results), "an applied delivery reached no order"
        return seconds / len(deliveries)

    def theirs() -> float:
        deliveries = pairs.next()
        construct = stripe.Webhook.construct_event

        def construct_all() -> None:
            for payload, header in deliveries:
                construct(payload, header, SECRET)

        return timed(construct_all) / len(deliveries)

    started = time.perf_counter()
    paired = interleave(ours, theirs, rounds=rounds, warmup=1)
    elapsed = time.perf_counter() - started
    ours_rate, theirs_rate = 1 / median(paired.a), 1 / median(paired.b)
    per_round = sorted(y / x for x, y in zip(paired.a, paired.b, strict=True))
    return Row(
        SECTION,
        f"{engine}: {case.figure} ÷ {BASELINE}, events/s",
        round(1 / paired.ratio, 3),
        "×",
        case.target,
        detail=(
            f"median: handle_webhook {ours_rate:,.0f}/s ({median(paired.a) * 1e6:.0f} µs), "
            f"{BASELINE} {theirs_rate:,.0f}/s ({median(paired.b) * 1e6:.0f} µs); "
            f"rounds' ratios {per_round[0]:.2f}–{per_round[-1]:.2f}; {rounds} interleaved "
            f"rounds of {orders} payment_intent.succeeded deliveries ({elapsed:.0f} s)"
        ),
        extra={
            "baseline": BASELINE,
            "engine": engine,
            "ours_per_s": ours_rate,
            "theirs_per_s": theirs_rate,
            "orders": orders,
            "round_ratios": per_round,
        },
        baseline="stripe.Webhook.construct_event on the same payloads, headers and secret",
    )


FIRST = "first delivery (pays its order)"
AGAIN = "re-delivery (same event id: duplicate)"
NEW_ID = "new event id, order already paid"


def _apply(store: Store, events: Events) -> None:
    """Deliver ``events`` once (each pays its order)."""
    payments = CartPaymentIntent(return_url=RETURN, gateway=webhook_gateway(), store=store)
    for payload, header in sign(events):
        assert payments.handle_webhook(payload, header).action == "applied"


def _sqlite_cases(tmp: str, orders: int) -> Generator[Case, None, None]:
    unpaid = os.path.join(tmp, "unpaid.sqlite3")
    store = SQLiteStore(unpaid)
    events = build_orders(FakeStripeGateway(webhook_secret=SECRET), store, orders)
    store.close()
    paths: dict[int, str] = {}

    def fresh(n: int) -> Store:
        paths[n] = os.path.join(tmp, f"round{n}.sqlite3")
        copy_database(unpaid, paths[n])
        return SQLiteStore(paths[n])

    def drop(db: Store) -> None:
        db.close()
        for path in paths.values():
            remove_database(path)
        paths.clear()

    yield Case(FIRST, _Pairs(lambda n: events, False), fresh, drop, "applied", Target(">=", 2.0))
    applied = os.path.join(tmp, "applied.sqlite3")
    copy_database(unpaid, applied)
    shared = SQLiteStore(applied)
    _apply(shared, events)
    keep: Callable[[Store], None] = lambda db: None  # noqa: E731
    try:
        pairs = _Pairs(lambda n: events, False)
        yield Case(AGAIN, pairs, lambda n: shared, keep, "duplicate", Target(">=", 5.0))
        yield Case(NEW_ID, _Pairs(lambda n: events, True), lambda n: shared, keep, "applied", None)
    finally:
        shared.close()


def _postgres_cases(dsn: str, orders: int, rounds: int) -> Generator[Case, None, None]:
    from cartpay.stores.postgres import PostgresStore

    schema = f"bench_webhooks_{os.getpid()}"
    store = PostgresStore(dsn, schema=schema)
    try:
        gateway = FakeStripeGateway(webhook_secret=SECRET)
        # Every round of the first-delivery case pays orders of its own.
        batches = [build_orders(gateway, store, orders) for _ in range(rounds + 1)]
        keep: Callable[[Store], None] = lambda db: None  # noqa: E731
        first = _Pairs(lambda n: batches[n], False)
        yield Case(FIRST, first, lambda n: store, keep, "applied", None)
        applied = batches[-1]
        yield Case(
            AGAIN, _Pairs(lambda n: applied, False), lambda n: store, keep, "duplicate", None
        )
        yield Case(NEW_ID, _Pairs(lambda n: applied, True), lambda n: store, keep, "applied", None)
    finally:
        store.close()
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run(*, quick: bool) -> list[Row]:
    orders, rounds = (500, 8) if quick else (1000, 16)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cartpay-bench-") as tmp:
        for case in _sqlite_cases(tmp, orders):
            rows.append(measure("SQLite", case, rounds, orders))
    dsn = os.environ.get("CARTPAY_TEST_POSTGRES_DSN")
    if dsn:
        pg_orders, pg_rounds = (200, 6) if quick else (400, 10)
        with contextlib.closing(_postgres_cases(dsn, pg_orders, pg_rounds)) as cases:
            for case in cases:
                rows.append(measure("PostgreSQL", case, pg_rounds, pg_orders))
    else:
        rows.append(Row(SECTION, "PostgreSQL: skipped (CARTPAY_TEST_POSTGRES_DSN unset)", 0, ""))
    return rows
