"""Inputs no database can hold get the same typed error on every store (memory,
SQLite, PostgreSQL), before any gateway call, and nothing is written
(``docs/limits.md``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from cartpay import (
    CartPaymentIntent,
    IntentOptions,
    ReconcileReport,
    Store,
    ValidationError,
    WebhookPayloadError,
)
from cartpay.testing import FakeStripeGateway

Call = Callable[[CartPaymentIntent, str], object]

CART_CALLS: list[tuple[str, Call]] = [
    ("get_cart", lambda p, i: p.get_cart(i)),
    ("add_item", lambda p, i: p.add_item(i, sku="x", name="X", unit_amount=100)),
    ("set_quantity", lambda p, i: p.set_quantity(i, "x", 2)),
    ("delete_cart", lambda p, i: p.delete_cart(i)),
    ("create_payment_intent", lambda p, i: p.create_payment_intent(i)),
    ("update_payment_intent", lambda p, i: p.update_payment_intent(i)),
    ("checkout", lambda p, i: p.checkout(i)),
]
ORDER_CALLS: list[tuple[str, Call]] = [
    ("get_order", lambda p, i: p.get_order(i)),
    ("confirm_payment", lambda p, i: p.confirm_payment(i, payment_method="pm_card_visa")),
    ("confirm_order", lambda p, i: p.confirm_order(i)),
    ("capture_order", lambda p, i: p.capture_order(i)),
    ("cancel_order", lambda p, i: p.cancel_order(i)),
    ("refund_order", lambda p, i: p.refund_order(i, 100)),
]
BAD_IDS = [("\ud83d", "encodable"), ("\x00", "no_nul")]


@pytest.fixture
def fake() -> FakeStripeGateway:
    return FakeStripeGateway(webhook_secret="whsec_bounds")


@pytest.fixture
def payments(fake: FakeStripeGateway, store: Store) -> CartPaymentIntent:
    return CartPaymentIntent(return_url="https://shop.test/return", gateway=fake, store=store)


def _paid_order(payments: CartPaymentIntent) -> str:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    return order.id


def test_an_id_no_store_can_hold_is_a_validation_error_from_all_13_calls(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    """A lone surrogate (SQLite, PostgreSQL) or a NUL (PostgreSQL) in a cart or
    order id raised the driver's own error; now every store says the same."""
    order_id = _paid_order(payments)
    cart_id = payments.create_cart("usd").id
    requests = len(fake.requests)
    for calls, field, valid in (
        (CART_CALLS, "cart_id", cart_id),
        (ORDER_CALLS, "order_id", order_id),
    ):
        for name, call in calls:
            for bad, rule in BAD_IDS:
                with pytest.raises(ValidationError) as caught:
                    call(payments, valid + bad)
                assert (caught.value.field, caught.value.rule) == (field, rule), name
    assert len(fake.requests) == requests
    assert payments.get_order(order_id).payment == "paid"
    assert payments.get_cart(cart_id).version == 0


def test_reconcile_accepts_any_positive_limit(payments: CartPaymentIntent, store: Store) -> None:
    """2**63 is beyond SQLite's and PostgreSQL's integers; a limit that large
    means "all rows", as it does in memory."""
    order_id = _paid_order(payments)
    for limit in (2**63 - 1, 2**63, 2**80):
        report = payments.reconcile(limit=limit)
        assert report == ReconcileReport((), (), (), ())
        with store.read() as tx:
            assert tx.unclaimed_intents(["requires_payment_method"], limit=limit) == []
            assert tx.unpaid_orders_before(datetime.now(timezone.utc), limit=limit) == []
    assert payments.get_order(order_id).payment == "paid"


def test_options_with_a_lone_surrogate_leave_no_claim(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    """They passed validation and failed mid-call (encoding the Stripe request)."""
    cart = payments.create_cart("usd")
    cart = payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500)
    with pytest.raises(ValidationError) as caught:
        payments.create_payment_intent(cart.id, options=IntentOptions(description="Tee \ud83d"))
    assert (caught.value.field, caught.value.rule) == ("description", "encodable")
    after = payments.get_cart(cart.id)
    assert (after.pending, after.payment_intent_id, after.version) == (None, None, cart.version)
    assert fake.requests == []


@pytest.mark.parametrize("event_id", ["evt_\ud83d", "evt_\x00"], ids=["lone surrogate", "NUL"])
def test_a_webhook_id_no_store_can_hold_is_refused_and_nothing_is_recorded(
    payments: CartPaymentIntent, fake: FakeStripeGateway, store: Store, event_id: str
) -> None:
    body = {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "livemode": False,
        "created": int(time.time()),
        "data": {"object": {"id": "pi_x", "object": "payment_intent", "status": "succeeded"}},
    }
    payload, header = fake.sign(json.dumps(body).encode())
    with pytest.raises(WebhookPayloadError):
        payments.handle_webhook(payload, header)
    with store.read() as tx:
        assert not tx.has_event(event_id)
