"""Issue 16: ``checkout`` is safe to retry, and the orders made from a cart are found."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cartpay import Cart, CartPaymentIntent, NotFoundError, ValidationError
from cartpay.testing import FakeStripeGateway

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins


def test_a_retried_checkout_returns_the_order_it_made(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    calls = fake.count()
    assert payments.checkout(cart.id) == order  # the double click
    assert payments.checkout(cart.id, keep_cart=True) == order  # whatever the flag
    assert fake.count() == calls  # no Stripe call for a retry
    assert payments.orders_for_cart(cart.id) == [order]
    with pytest.raises(NotFoundError):
        payments.get_cart(cart.id)  # the cart is still consumed


def test_a_retry_after_payment_returns_the_order_as_it_is_now(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    paid = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    again = payments.checkout(cart.id)
    assert again == paid and again.payment == "paid"


def test_a_cart_paid_in_the_browser_before_checkout_retries_to_its_order(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    fake.confirm_intent(
        handle.id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    for payload, header in fake.events():
        payments.handle_webhook(payload, header)
    order = payments.checkout(cart.id)
    assert order.payment == "paid"
    assert payments.checkout(cart.id) == order


def test_a_deleted_cart_that_made_no_order_is_still_not_found(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    payments.delete_cart(cart.id)
    with pytest.raises(NotFoundError) as caught:
        payments.checkout(cart.id)
    assert (caught.value.kind, caught.value.id) == ("cart", cart.id)
    assert payments.orders_for_cart(cart.id) == []
    with pytest.raises(NotFoundError):
        payments.checkout("cart_never_made")


def test_a_kept_cart_lists_every_order_and_a_retry_once_it_is_gone_gets_the_newest(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    first = payments.checkout(cart.id, keep_cart=True)
    assert payments.get_cart(cart.id).last_order_id == first.id
    payments.add_item(cart.id, sku="cap", name="Cap", unit_amount=900)
    payments.create_payment_intent(cart.id)
    second = payments.checkout(cart.id)  # consumes it
    assert [o.id for o in payments.orders_for_cart(cart.id)] == [first.id, second.id]
    assert payments.checkout(cart.id) == second


@pytest.mark.parametrize("bad", [None, 5, b"cart_1"])
def test_orders_for_cart_refuses_what_is_no_id(payments: CartPaymentIntent, bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        payments.orders_for_cart(bad)  # type: ignore[arg-type]
    assert caught.value.field == "cart_id"
