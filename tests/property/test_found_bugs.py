"""Bugs the state machine found, each as the shortest sequence it shrank to.

They are fixed; each stays as a plain regression test. A bug found and not yet
fixed goes here as a strict xfail, with a matching, counted tolerance in
``test_stateful.py`` so the search can go on.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cartpay import (
    CardDeclinedError,
    CartPaymentIntent,
    IllegalStateError,
    Order,
)
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway


@pytest.fixture
def fake() -> FakeStripeGateway:
    return FakeStripeGateway(webhook_secret="whsec_property")


@pytest.fixture
def payments(fake: FakeStripeGateway) -> CartPaymentIntent:
    return CartPaymentIntent(
        return_url="https://shop.test/return", gateway=fake, store=MemoryStore()
    )


def kept_cart_orders(payments: CartPaymentIntent, count: int) -> tuple[str, list[Order]]:
    """A 60 USD cart with its intent, checked out ``count`` times keeping the cart."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=30, quantity=2)
    payments.create_payment_intent(cart.id)
    return cart.id, [payments.checkout(cart.id, keep_cart=True) for _ in range(count)]


def test_fixed_a_kept_cart_no_longer_reprices_the_intent_an_order_is_paying(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    """Found: the customer authenticated order B's 60 USD, the kept cart then moved
    the intent to 80 USD, and 80 USD were taken for two 60 USD orders (both flagged,
    no order paid). An intent an order holds no longer follows the cart: the kept
    cart gets an intent of its own for its new total."""
    cart_id, (_, second) = kept_cart_orders(payments, 2)
    payments.confirm_payment(second.id, payment_method="pm_card_authenticationRequired")
    payments.add_item(cart_id, sku="mug", name="Mug", unit_amount=20)
    intent_id = second.intent_id or ""
    handle = payments.create_payment_intent(cart_id)
    assert handle.id != intent_id and handle.amount == 80
    assert fake.intent(intent_id).amount == 60
    fake.authenticate(intent_id, success=True)
    paid = payments.confirm_order(second.id)
    assert (paid.payment, paid.captured) == ("paid", 60)
    assert fake.intent(intent_id).amount_received == 60


def test_fixed_a_second_cancel_gets_a_new_idempotency_key(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    """Found: after Stripe refused a cancel (the intent had succeeded meanwhile), a
    second cancel with another reason reused the spent key: IdempotencyError. Keys
    now carry the order's version, so the refusal is reported again, typed."""
    _, (order,) = kept_cart_orders(payments, 1)
    payments.confirm_payment(order.id, payment_method="pm_card_authenticationRequired")
    fake.authenticate(order.intent_id or "", success=True)
    with pytest.raises(IllegalStateError):
        payments.cancel_order(order.id)
    with pytest.raises(IllegalStateError):
        payments.cancel_order(order.id, reason="requested_by_customer")


def test_fixed_a_cancelled_order_takes_no_payment(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    """Found: an order cancelled locally (its kept cart still holds the intent)
    absorbed the payment the customer then made on that intent. Now (issue 12)
    no cart follows an intent an order holds, so cancelling the order cancels
    the intent: the customer can no longer pay it, and nothing is orphaned."""
    _, (order,) = kept_cart_orders(payments, 1)
    cancelled = payments.cancel_order(order.id)
    assert cancelled.status == "cancelled"
    intent_id = order.intent_id or ""
    assert fake.intent(intent_id).status == "canceled"
    with pytest.raises(IllegalStateError):
        fake.confirm_intent(
            intent_id,
            payment_method="pm_card_visa",
            return_url="https://shop.test/return",
            idempotency_key="browser",
        )
    after = payments.confirm_order(order.id)
    assert (after.status, after.captured, after.transactions) == ("cancelled", 0, ())
    report = payments.reconcile(older_than=timedelta(0))
    assert report.orphaned == ()


def test_fixed_a_stale_failure_no_longer_loses_the_next_payment(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    """Found: an async payment failed, the customer paid again (processing), the
    first attempt's late ``payment_failed`` event then failed the new pending
    purchase, and its success could never complete it: paid at Stripe, unpaid here."""
    _, (order,) = kept_cart_orders(payments, 1)
    intent_id = order.intent_id or ""
    payments.confirm_payment(order.id, payment_method="pm_card_processing")
    fake.settle(intent_id, success=False)
    assert payments.confirm_order(order.id).payment == "failed"
    stale = next(
        (payload, header)
        for payload, header in fake.events()
        if json.loads(payload)["type"] == "payment_intent.payment_failed"
    )
    payments.confirm_payment(order.id, payment_method="pm_card_processing")
    assert payments.handle_webhook(*stale).action == "applied"
    fake.settle(intent_id, success=True)
    paid = payments.confirm_order(order.id)
    assert (paid.status, paid.payment, paid.captured) == ("complete", "paid", 60)


def test_fixed_the_model_lets_a_declined_order_wait_for_authentication(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    """Found by CI (a model error, not the library's): after a decline, a confirm
    whose card needs 3-D Secure returns the order, whose payment still names the
    last attempt that ended (``failed``) while the new one waits for the customer.
    The model now asks the gateway whether the confirm was declined (its intent
    is not back to ``requires_payment_method``), and a successful authentication
    pays the order."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=60)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    with pytest.raises(CardDeclinedError):
        payments.confirm_payment(order.id, payment_method="pm_card_chargeDeclined")
    waiting = payments.confirm_payment(order.id, payment_method="pm_card_authenticationRequired")
    failed = [t for t in waiting.transactions if t.status == "failed"]
    assert (waiting.status, waiting.payment, len(failed)) == ("incomplete", "failed", 1)
    assert fake.intent(order.intent_id or "").status == "requires_action"
    fake.authenticate(order.intent_id or "", success=True)
    assert payments.confirm_order(order.id).payment == "paid"
