"""The Stripe requests each public method makes, pinned: they are part of the
contract (a careful hand-written integration makes no fewer), like the zero-call
no-op update. A change that adds a request fails here and must say why.

One shop's life on the fake, step by step; each step's requests are counted by
operation. ``confirm_order`` of a paid order makes one request unless the
charge's refunded amount moved (issue 18)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from cartpay import CartPaymentIntent, IntentOptions, Order
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway

RETURN_URL = "https://shop.test/checkout/done"


class Shop:
    def __init__(self) -> None:
        self.fake = FakeStripeGateway(webhook_secret="whsec_counts")
        self.payments = CartPaymentIntent(
            gateway=self.fake, store=MemoryStore(), return_url=RETURN_URL
        )

    def requests(self, step: Callable[[], object]) -> dict[str, int]:
        before = len(self.fake.requests)
        step()
        return dict(Counter(r.operation for r in self.fake.requests[before:]))

    def cart(self, options: IntentOptions | None = None) -> str:
        cart = self.payments.create_cart("usd")
        self.payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=1000)
        self.payments.create_payment_intent(cart.id, options=options)
        return cart.id

    def order(self, options: IntentOptions | None = None, *, paid: bool = True) -> Order:
        order = self.payments.checkout(self.cart(options))
        if paid:
            order = self.payments.confirm_payment(order.id, payment_method="pm_card_visa")
        return order


@pytest.fixture
def shop() -> Shop:
    return Shop()


def test_the_cart_steps(shop: Shop) -> None:
    p = shop.payments
    cart = p.create_cart("usd")
    assert shop.requests(lambda: p.add_item(cart.id, sku="a", name="A", unit_amount=1000)) == {}
    assert shop.requests(lambda: p.create_payment_intent(cart.id)) == {"create_intent": 1}
    # Again: the client secret is never stored, so it is read back.
    assert shop.requests(lambda: p.create_payment_intent(cart.id)) == {"retrieve_intent": 1}
    assert shop.requests(lambda: p.update_payment_intent(cart.id)) == {}
    adjust = lambda: p.add_adjustment(  # noqa: E731
        cart.id, kind="shipping", code="ship", label="Shipping", amount=500
    )
    assert shop.requests(adjust) == {}
    assert shop.requests(lambda: p.update_payment_intent(cart.id)) == {"update_intent": 1}
    assert shop.requests(lambda: p.checkout(cart.id)) == {}


def test_the_order_steps(shop: Shop) -> None:
    p = shop.payments
    order = shop.order(paid=False)
    assert shop.requests(lambda: p.intent_for_order(order.id)) == {"retrieve_intent": 1}
    pay = lambda: p.confirm_payment(order.id, payment_method="pm_card_visa")  # noqa: E731
    assert shop.requests(pay) == {"confirm_intent": 1}
    # A paid order whose charge refunded nothing new: the retrieve alone (its
    # expanded charge says what was refunded).
    assert shop.requests(lambda: p.confirm_order(order.id)) == {"retrieve_intent": 1}
    assert shop.requests(lambda: p.refund_order(order.id, 100)) == {"create_refund": 1}
    assert shop.requests(lambda: p.confirm_order(order.id)) == {"retrieve_intent": 1}
    # A refund made at the Dashboard moves the charge's figure: the list is read.
    shop.fake.refund_outside(order.intent_id or "", 200)
    assert shop.requests(lambda: p.confirm_order(order.id)) == {
        "retrieve_intent": 1,
        "list_refunds": 1,
    }
    assert p.get_order(order.id).refunded == 300
    assert shop.requests(lambda: p.get_order(order.id)) == {}


def test_webhooks_and_reconcile_make_no_request(shop: Shop) -> None:
    shop.order()
    deliveries = shop.fake.events()
    p = shop.payments
    assert shop.requests(lambda: [p.handle_webhook(*d) for d in deliveries]) == {}
    assert shop.requests(lambda: [p.handle_webhook(*d) for d in deliveries]) == {}  # duplicates
    assert shop.requests(p.reconcile) == {}  # nothing stuck: nothing to read


def test_capture_cancel_and_delete(shop: Shop) -> None:
    p = shop.payments
    authorized = shop.order(IntentOptions(capture_method="manual"))
    assert shop.requests(lambda: p.capture_order(authorized.id, amount=500)) == {
        "capture_intent": 1
    }
    unpaid = shop.order(paid=False)
    assert shop.requests(lambda: p.cancel_order(unpaid.id)) == {"cancel_intent": 1}
    cart_id = shop.cart()
    # An intent that looks unused is read first: the browser may have paid it.
    assert shop.requests(lambda: p.delete_cart(cart_id)) == {
        "retrieve_intent": 1,
        "cancel_intent": 1,
    }
