"""Issue 16: log lines a host can read (ids in the text and in ``extra``), payment
outcomes and webhook results at INFO, rejected deliveries at WARNING, no secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

import cartpay
from cartpay import CardDeclinedError, Cart, CartPaymentIntent, IntentOptions, WebhookSignatureError
from cartpay._logs import KEYS
from cartpay.testing import FakeStripeGateway

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

SECRET = "whsec_unit"  # the fake's webhook secret (tests/unit/conftest.py)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="cartpay")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, outcome: str | None = None) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("cartpay")
        and (outcome is None or getattr(r, "cartpay_outcome", None) == outcome)
    ]


def assert_no_secret(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for record in lines(caplog):
        text = record.getMessage() + json.dumps(
            {k: str(v) for k, v in vars(record).items()}, default=str
        )
        for secret in (SECRET, "_secret_", "sk_test", "sk_live", "v1=", *secrets):
            assert secret not in text, (secret, record.getMessage())


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("cartpay").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_paid_checkout_says_each_step_with_its_ids(
    payments: CartPaymentIntent,
    make_cart: Callable[..., Cart],
    logs: pytest.LogCaptureFixture,
) -> None:
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method="pm_card_visa")

    messages = [r.getMessage() for r in lines(logs)]
    assert f"cart {cart.id} created (usd)" in messages
    assert f"intent {handle.id} created for cart {cart.id}: 62.00 usd" in messages
    assert f"checked out cart {cart.id}: order {order.id} for 62.00" in messages
    (paid,) = lines(logs, "paid")
    assert paid.levelno == logging.INFO
    assert order.id in paid.getMessage() and handle.id in paid.getMessage()
    assert "paid" in paid.getMessage() and "62.00 usd captured" in paid.getMessage()
    assert (paid.cartpay_order_id, paid.cartpay_intent_id, paid.cartpay_cart_id) == (  # type: ignore[attr-defined]
        order.id,
        handle.id,
        cart.id,
    )
    for record in lines(logs):
        extra = {k for k in vars(record) if k.startswith("cartpay_")}
        assert extra <= set(KEYS), extra
    assert_no_secret(logs, handle.client_secret or "missing")


def test_authorized_declined_and_refunded_outcomes(
    payments: CartPaymentIntent,
    make_cart: Callable[..., Cart],
    logs: pytest.LogCaptureFixture,
) -> None:
    cart = make_cart(options=IntentOptions(capture_method="manual"))
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    with pytest.raises(CardDeclinedError):
        payments.confirm_payment(order.id, payment_method="pm_card_chargeDeclined")
    (declined,) = lines(logs, "declined")
    assert declined.levelno == logging.INFO
    assert f"order {order.id}: payment declined (card_declined)" in declined.getMessage()

    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    (authorized,) = lines(logs, "authorized")
    assert "62.00 usd authorized" in authorized.getMessage()
    payments.capture_order(order.id)
    payments.refund_order(order.id, 1000)
    (partly,) = lines(logs, "partially_refunded")
    assert "10.00 usd refunded" in partly.getMessage()
    assert any("refund re_" in r.getMessage() and r.cartpay_refund_id for r in lines(logs))  # type: ignore[attr-defined]
    assert_no_secret(logs)


def test_webhook_results_at_info_and_rejections_at_warning(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    make_cart: Callable[..., Cart],
    logs: pytest.LogCaptureFixture,
) -> None:
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    fake.confirm_intent(
        handle.id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    succeeded = [e for e in fake.events() if b"payment_intent.succeeded" in e[0]][-1]
    payments.handle_webhook(*succeeded)
    payments.handle_webhook(*succeeded)
    stranger = fake.create_intent(cartpay.IntentParams(500, "usd"), idempotency_key="someone-else")
    ignored = [e for e in fake.events() if stranger.id.encode() in e[0]][-1]
    payments.handle_webhook(*ignored)
    payload, header = succeeded
    with pytest.raises(WebhookSignatureError):
        payments.handle_webhook(payload, header.replace("v1=", "v1=0"))

    (applied,) = lines(logs, "applied")
    event_id = json.loads(payload)["id"]
    assert applied.levelno == logging.INFO
    assert applied.getMessage() == (
        f"webhook {event_id} payment_intent.succeeded: applied to order {order.id}"
    )
    assert (applied.cartpay_event_id, applied.cartpay_order_id, applied.cartpay_intent_id) == (  # type: ignore[attr-defined]
        event_id,
        order.id,
        handle.id,
    )
    (duplicate,) = lines(logs, "duplicate")
    assert duplicate.cartpay_event_id == event_id  # type: ignore[attr-defined]
    assert lines(logs, "ignored")[0].cartpay_intent_id == stranger.id  # type: ignore[attr-defined]
    (paid,) = lines(logs, "paid")
    assert f"via webhook {event_id}" in paid.getMessage()
    (rejected,) = lines(logs, "rejected")
    assert rejected.levelno == logging.WARNING
    assert rejected.getMessage().startswith("webhook rejected (signature): ")
    assert_no_secret(logs, header.split("v1=")[1], handle.client_secret or "missing")


def test_nothing_is_printed_without_the_hosts_logging_config(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart], capsys: pytest.CaptureFixture[str]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    payments.checkout(cart.id)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
