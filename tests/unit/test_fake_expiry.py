"""An authorization Stripe lets expire: the fake cancels the intent and emits
``payment_intent.canceled`` with the reason Stripe sets, so a host can test the
webhook path of an expired authorization."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from cartpay import CartPaymentIntent, IllegalStateError, IntentOptions, Order
from cartpay.testing import FakeStripeGateway


def test_an_expired_authorization_reaches_the_order_through_its_webhook(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert payments.get_order(order.id).payment == "authorized"
    assert order.intent_id is not None
    before = len(fake.events())

    snap = fake.expire_authorization(order.intent_id)

    assert (snap.status, snap.cancellation_reason, snap.amount_capturable) == (
        "canceled",
        "expired",
        0,
    )
    new = fake.events()[before:]
    assert len(new) == 1
    payload, header = new[0]
    event = json.loads(payload)
    assert event["type"] == "payment_intent.canceled"
    assert event["data"]["object"]["cancellation_reason"] == "expired"
    assert event["data"]["object"]["status"] == "canceled"
    result = payments.handle_webhook(payload, header)
    assert (result.action, result.order_id) == ("applied", order.id)
    expired = payments.get_order(order.id)
    assert expired.status == "cancelled"
    # The reason stays with the voided authorization (issue 14, point 4).
    assert [(t.kind, t.status, t.code) for t in expired.transactions] == [
        ("authorize", "cancelled", "expired")
    ]


def test_only_an_authorization_can_expire(
    fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    assert order.intent_id is not None
    with pytest.raises(IllegalStateError):
        fake.expire_authorization(order.intent_id)
    assert fake.intent(order.intent_id).status == "requires_payment_method"
