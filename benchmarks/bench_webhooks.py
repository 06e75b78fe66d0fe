"""Figure 3: webhooks per second end to end (``handle_webhook`` over SQLite: verify,
dedupe, apply, commit) vs ``stripe.Webhook.construct_event`` alone on the same
payloads, headers and secret.

The orders are built with ``FakeStripeGateway``; their ``payment_intent.succeeded``
events are re-signed every round under fresh event ids, so every delivery is
applied (none is a duplicate). Two cases (see :func:`scenario`): the orders are
already paid (the target), or each delivery is the one that pays its order.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
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

Delivery = tuple[bytes, str]


def build_orders(
    gateway: FakeStripeGateway, store: Store, count: int, *, pay: bool = False
) -> list[dict[str, Any]]:
    """``count`` checked-out orders whose intents succeeded at the fake; returns their
    ``payment_intent.succeeded`` events (as dicts). ``pay=True`` also records the
    payment in the store (``confirm_payment``), else only the webhook will."""
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=gateway, store=store
    )
    for i in range(count):
        cart = payments.create_cart("usd")
        payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
        payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
        handle = payments.create_payment_intent(cart.id)
        order = payments.checkout(cart.id)
        if pay:
            payments.confirm_payment(order.id, payment_method=CARD)
        else:
            gateway.confirm_intent(handle.id, payment_method=CARD, idempotency_key=f"bench:{i}")
    events = [json.loads(payload) for payload, _ in gateway.events()]
    return [e for e in events if e["type"] == "payment_intent.succeeded"]


def sign(events: list[dict[str, Any]], suffix: str, secret: str = SECRET) -> list[Delivery]:
    """The events under new ids (``<id>_<suffix>``), signed now with ``secret``."""
    out = []
    for event in events:
        payload = json.dumps({**event, "id": f"{event['id']}_{suffix}"}, separators=(",", ":"))
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


class _Pairs:
    """Both sides of an interleaved pair get the same deliveries; each pair new ones."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.made = 0
        self.served = 0
        self.current: list[Delivery] = []

    def next(self) -> list[Delivery]:
        if self.served % 2 == 0:
            self.made += 1
            self.current = sign(self.events, f"r{self.made}")
        self.served += 1
        return self.current


def scenario(tmp: str, *, paid: bool, orders: int, rounds: int) -> Row:
    """``paid``: the orders were paid through the façade, so each delivery (under a
    new event id) is verified, deduplicated, applied (nothing changes) and
    committed with its event record. Else each delivery pays its order: it
    writes the intent and the order too (every round starts from a copy of the
    unpaid database)."""
    template = os.path.join(tmp, f"template-{paid}.sqlite3")
    store = SQLiteStore(template)
    events = build_orders(FakeStripeGateway(webhook_secret=SECRET), store, orders, pay=paid)
    store.close()
    gateway = webhook_gateway()
    pairs = _Pairs(events)
    shared = SQLiteStore(template) if paid else None

    def ours() -> float:
        deliveries = pairs.next()
        path = os.path.join(tmp, f"round{pairs.made}.sqlite3")
        if shared is None:
            copy_database(template, path)
        db = shared or SQLiteStore(path)
        payments = CartPaymentIntent(
            return_url="https://shop.test/return", gateway=gateway, store=db
        )
        results: list[Any] = []

        def handle_all() -> None:
            for payload, header in deliveries:
                results.append(payments.handle_webhook(payload, header))

        seconds = timed(handle_all)
        if shared is None:
            db.close()
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        applied = sum(1 for r in results if r.action == "applied" and r.order_id)
        assert applied == len(deliveries), f"only {applied} of {len(deliveries)} applied"
        return seconds / len(deliveries)

    def theirs() -> float:
        deliveries = pairs.next()
        construct: Callable[..., Any] = stripe.Webhook.construct_event

        def construct_all() -> None:
            for payload, header in deliveries:
                construct(payload, header, SECRET)

        return timed(construct_all) / len(deliveries)

    started = time.perf_counter()
    paired = interleave(ours, theirs, rounds=rounds, warmup=1)
    elapsed = time.perf_counter() - started
    if shared is not None:
        shared.close()
    ours_rate, theirs_rate = 1 / median(paired.a), 1 / median(paired.b)
    what = (
        "re-delivered to paid orders (the target)"
        if paid
        else "each delivery pays its order (3 rows written)"
    )
    return Row(
        SECTION,
        f"handle_webhook / construct_event, events/s: {what}",
        round(1 / paired.ratio, 3),
        "×",
        Target(">=", 1.0) if paid else None,
        detail=(
            f"median: handle_webhook {ours_rate:,.0f}/s "
            f"({median(paired.a) * 1e6:.0f} µs), construct_event {theirs_rate:,.0f}/s "
            f"({median(paired.b) * 1e6:.0f} µs); {rounds} interleaved rounds of "
            f"{len(events)} payment_intent.succeeded deliveries, SQLite ({elapsed:.0f} s)"
        ),
        extra={"ours_per_s": ours_rate, "theirs_per_s": theirs_rate, "orders": len(events)},
    )


def run(*, quick: bool) -> list[Row]:
    orders, rounds = (1000, 8) if quick else (2000, 16)
    with tempfile.TemporaryDirectory(prefix="cartpay-bench-") as tmp:
        return [
            scenario(tmp, paid=True, orders=orders, rounds=rounds),
            scenario(tmp, paid=False, orders=orders, rounds=rounds),
        ]
