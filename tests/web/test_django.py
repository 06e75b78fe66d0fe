"""cartpay.contrib.django through Django's own test Client: the CSRF-exempt webhook
view against locally signed and localstripe-signed deliveries, bad requests refused
with nothing written, the settings (a real StripeGateway on localstripe and a SQLite
store, from ``CARTPAY`` alone), the error middleware and ``cartpay_reconcile``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

if not settings.configured:  # one Django per process: this suite configures it
    settings.configure(
        DEBUG=False,
        SECRET_KEY="cartpay-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="tests.web.django_urls",
        INSTALLED_APPS=["cartpay.contrib.django"],
        MIDDLEWARE=[
            "django.middleware.csrf.CsrfViewMiddleware",
            "cartpay.contrib.django.middleware.CartpayErrorMiddleware",
        ],
        DATABASES={},
        CARTPAY={},
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings

from cartpay import CartPaymentIntent
from cartpay.contrib.django import get_payments
from cartpay.contrib.django.conf import max_webhook_bytes
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway, LocalStripe
from cartpay.testing.plugin import TEST_API_KEY, TEST_WEBHOOK_SECRET

from .conftest import deliver_on_localstripe
from .support import (
    BAD_REQUESTS,
    MAX_BODY,
    RETURN_URL,
    BadRequest,
    Delivery,
    assert_nothing_written,
    assert_paid,
    fake_delivery,
)

pytestmark = pytest.mark.django

HOOK = "/stripe/webhook/"

#: What ``CARTPAY["PAYMENTS"]`` builds in the tests that set it.
_current: list[CartPaymentIntent] = []


def current_payments() -> CartPaymentIntent:
    return _current[-1]


@pytest.fixture
def given() -> Iterator[list[CartPaymentIntent]]:
    """Tests append the façade the settings should give."""
    config = {"PAYMENTS": "tests.web.test_django.current_payments", "MAX_WEBHOOK_BYTES": MAX_BODY}
    with override_settings(CARTPAY=config):
        yield _current
    _current.clear()


def _post(client: Client, delivery: Delivery, **headers: str) -> object:
    return client.post(
        HOOK,
        data=delivery.body,
        content_type="application/json",
        headers={"Stripe-Signature": delivery.signature, **headers},
    )


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=lambda b: b.name)
def test_a_bad_request_is_refused_and_writes_nothing(
    bad: BadRequest, given: list[CartPaymentIntent]
) -> None:
    delivery = fake_delivery()
    given.append(delivery.payments)
    headers = bad.headers(delivery)
    content_type = headers.pop("Content-Type")
    answer = Client(enforce_csrf_checks=True).post(
        HOOK, data=bad.body(delivery), content_type=content_type, headers=headers
    )
    assert answer.status_code == bad.status, answer.content
    assert answer.json()["error"]["type"]
    assert_nothing_written(delivery)


def test_only_post_is_allowed(given: list[CartPaymentIntent]) -> None:
    given.append(fake_delivery().payments)
    assert Client().get(HOOK).status_code == 405


def test_a_signed_delivery_is_applied_once_without_a_csrf_token(
    given: list[CartPaymentIntent],
) -> None:
    delivery = fake_delivery()
    given.append(delivery.payments)
    client = Client(enforce_csrf_checks=True)  # Stripe sends no CSRF token
    first = _post(client, delivery)
    assert first.status_code == 200, first.content  # type: ignore[attr-defined]
    assert first.json() == {  # type: ignore[attr-defined]
        "event_id": delivery.event_id,
        "event_type": "payment_intent.succeeded",
        "action": "applied",
    }
    assert_paid(delivery)
    assert _post(client, delivery).json()["action"] == "duplicate"  # type: ignore[attr-defined]


def test_the_settings_build_a_stripe_gateway_and_a_sqlite_store(
    tmp_path: Path, localstripe_server: LocalStripe, stripe_gateway: StripeGateway
) -> None:
    """From ``CARTPAY`` alone, against localstripe: its signed delivery pays the order."""
    config = {
        "STRIPE_API_KEY": TEST_API_KEY,
        "WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "STRIPE_API_BASE": localstripe_server.url,
        "ATTACH_THEN_CONFIRM": True,
        "REDIRECTS": False,
        "STORE": str(tmp_path / "shop.sqlite3"),
    }
    with override_settings(CARTPAY=config):
        payments = get_payments()
        assert get_payments() is payments
        assert isinstance(payments.gateway, StripeGateway) and payments.gateway.attach_then_confirm
        assert TEST_API_KEY not in repr(payments) and TEST_WEBHOOK_SECRET not in repr(payments)
        delivery = deliver_on_localstripe(payments, payments.gateway, localstripe_server)
        answer = _post(Client(enforce_csrf_checks=True), delivery)
        assert answer.status_code == 200, answer.content  # type: ignore[attr-defined]
        assert_paid(delivery)
    assert (tmp_path / "shop.sqlite3").exists()


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({}, "STRIPE_API_KEY"),
        ({"STRIPE_API_KEY": TEST_API_KEY}, "WEBHOOK_SECRET"),
        ({"PAYMENTS": "tests.web.support.fake_delivery"}, "not a CartPaymentIntent"),
        ({"STRIPE_KEY": "sk_test_x"}, "unknown keys"),
        ({"MAX_WEBHOOK_BYTES": 0}, "MAX_WEBHOOK_BYTES"),
    ],
)
def test_bad_settings_are_named(config: dict[str, object], names: str) -> None:
    with override_settings(CARTPAY=config), pytest.raises(ImproperlyConfigured, match=names):
        max_webhook_bytes()
        get_payments()


def test_the_middleware_answers_the_documented_statuses(given: list[CartPaymentIntent]) -> None:
    payments = CartPaymentIntent(
        gateway=FakeStripeGateway(), store=MemoryStore(), return_url=RETURN_URL
    )
    given.append(payments)
    client = Client()
    cart = payments.create_cart("usd")
    bad = client.post(f"/carts/{cart.id}/items", data={"quantity": "0"})
    assert bad.status_code == 422
    assert (bad.json()["error"]["field"], bad.json()["error"]["rule"]) == ("quantity", "positive")
    missing = client.get("/orders/order_nope")
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "NotFoundError")
    assert client.post(f"/carts/{cart.id}/items", data={"quantity": "2"}).json() == {"total": 1000}


def test_the_reconcile_command_repairs_an_order_whose_webhook_never_came(
    given: list[CartPaymentIntent],
) -> None:
    fake = FakeStripeGateway(webhook_secret=TEST_WEBHOOK_SECRET)
    payments = CartPaymentIntent(gateway=fake, store=MemoryStore(), return_url=RETURN_URL)
    given.append(payments)
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500)
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    fake.confirm_intent(
        handle.id,
        payment_method="pm_card_visa",
        return_url=RETURN_URL,  # as Stripe.js sends it
        idempotency_key="browser",
    )
    out = io.StringIO()
    call_command("cartpay_reconcile", "--older-than", "0", stdout=out)
    assert "checked   1 order(s) older than 0 min" in out.getvalue()
    assert f"{order.id}: " in out.getvalue()
    assert payments.get_order(order.id).payment == "paid"
    with pytest.raises(CommandError, match="older_than"):
        call_command("cartpay_reconcile", "--older-than", "-1", stdout=io.StringIO())
