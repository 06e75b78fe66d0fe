"""Issue 14's flows against Stripe itself (test mode): skipped without
``STRIPE_TEST_SECRET_KEY`` (the ``stripe_live`` marker; CI does not require it).
Anyone with a test key runs ``STRIPE_TEST_SECRET_KEY=sk_test_… pytest -m stripe_live``.

Stripe's test payment methods: ``pm_card_visa`` succeeds,
``pm_card_threeDSecure2Required`` asks for 3-D Secure, and
``pm_card_authenticationRequired`` declines an off-session charge with
``authentication_required``. Connect refunds need a connected account: set
``STRIPE_TEST_CONNECTED_ACCOUNT`` (``acct_…``) to run that one.
"""

from __future__ import annotations

import os
import uuid

import pytest

from cartpay import (
    STRIPE_API_VERSION,
    WEBHOOK_EVENTS,
    AuthenticationRequiredError,
    CartPaymentIntent,
    IntentOptions,
    Order,
    ValidationError,
)
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore

pytestmark = pytest.mark.stripe_live

URL = "https://shop.example/checkout/done"


@pytest.fixture
def payments(stripe_live_gateway: StripeGateway) -> CartPaymentIntent:
    return CartPaymentIntent(gateway=stripe_live_gateway, store=MemoryStore(), return_url=URL)


def _order(
    payments: CartPaymentIntent, options: IntentOptions | None = None, *, currency: str = "usd",
    amount: int = 6200,
) -> Order:  # fmt: skip
    cart = payments.create_cart(currency, options=options)
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=amount)
    payments.create_payment_intent(cart.id)
    return payments.checkout(cart.id)


def test_stripes_defaults_with_a_return_url(payments: CartPaymentIntent) -> None:
    """No payment method types: automatic payment methods with redirects allowed."""
    order = payments.confirm_payment(_order(payments).id, payment_method="pm_card_visa")
    assert order.payment == "paid"


def test_stripes_defaults_without_one_are_refused_first(
    stripe_live_gateway: StripeGateway,
) -> None:
    bare = CartPaymentIntent(gateway=stripe_live_gateway, store=MemoryStore())
    with pytest.raises(ValidationError) as caught:
        bare.confirm_payment(_order(bare).id, payment_method="pm_card_visa")
    assert caught.value.field == "return_url"


def test_three_d_secure_gives_the_browser_a_redirect(payments: CartPaymentIntent) -> None:
    order = _order(payments)
    assert (
        payments.confirm_payment(order.id, payment_method="pm_card_threeDSecure2Required").payment
        == "unpaid"
    )
    handle = payments.intent_for_order(order.id)
    assert handle.status == "requires_action" and handle.client_secret
    assert handle.next_action is not None and handle.next_action.redirect_url


def test_off_session_authentication_required(
    payments: CartPaymentIntent, stripe_live_gateway: StripeGateway
) -> None:
    client = stripe_live_gateway._client
    customer = client.v1.customers.create()
    method = client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", {"customer": str(customer.id)}
    )
    options = IntentOptions(customer=str(customer.id), allowed_payment_method_types=("card",))
    order = _order(payments, options)
    with pytest.raises(AuthenticationRequiredError):
        payments.confirm_payment(order.id, payment_method=str(method.id), off_session=True)
    assert payments.get_order(order.id).payment == "failed"


def test_an_indonesian_cart_above_eight_digits(payments: CartPaymentIntent) -> None:
    order = _order(payments, currency="idr", amount=150_000_000)
    assert payments.confirm_payment(order.id, payment_method="pm_card_visa").payment == "paid"


def test_a_connect_refund_reverses_the_transfer(payments: CartPaymentIntent) -> None:
    account = os.environ.get("STRIPE_TEST_CONNECTED_ACCOUNT")
    if not account:
        pytest.skip("STRIPE_TEST_CONNECTED_ACCOUNT is not set")
    options = IntentOptions(
        transfer_destination=account, application_fee_amount=500, transfer_group="cartpay-live"
    )
    order = payments.confirm_payment(_order(payments, options).id, payment_method="pm_card_visa")
    after = payments.refund_order(
        order.id, 2000, reverse_transfer=True, refund_application_fee=True
    )
    assert after.refunded == 2000


def test_an_endpoint_with_cartpays_events_and_version(stripe_live_gateway: StripeGateway) -> None:
    from cartpay._cli_endpoint import endpoint_problems

    created = stripe_live_gateway.create_webhook_endpoint(
        f"https://shop.example/stripe/webhook/{uuid.uuid4().hex[:8]}",
        events=WEBHOOK_EVENTS,
        idempotency_key=f"cartpay-live-{uuid.uuid4().hex}",
    )
    try:
        assert created.secret and created.secret.startswith("whsec_")
        assert created.api_version == STRIPE_API_VERSION
        assert endpoint_problems(created) == []
    finally:
        stripe_live_gateway._client.v1.webhook_endpoints.delete(created.id)
