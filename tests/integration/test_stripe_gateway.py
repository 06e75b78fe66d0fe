"""StripeGateway with the real stripe SDK against a real localstripe process:
what goes over the wire (idempotency keys, parameters), what reaches the logs,
how errors come back, and webhook signatures from real deliveries."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import urllib.parse

import pytest
import stripe

from cartpay import (
    AuthenticationError,
    CardDeclinedError,
    CartPaymentIntent,
    GatewayUnavailableError,
    InvalidRequestError,
    NotFoundError,
    WebhookSignatureError,
)
from cartpay._models import IntentOptions, IntentParams
from cartpay.gateways.stripe import StripeGateway, create_params, update_params
from cartpay.stores.memory import MemoryStore
from cartpay.testing import LocalStripe
from cartpay.testing.plugin import TEST_API_KEY, TEST_WEBHOOK_SECRET

from .conftest import RecordingHTTPClient, WebhookReceiver, recorded_gateway_for

pytestmark = pytest.mark.localstripe

PARAMS = IntentParams(1000, "usd", IntentOptions(metadata={"cart": "c1"}))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------ the wire


def test_every_post_carries_the_callers_key(
    recorded_gateway: StripeGateway, recorder: RecordingHTTPClient
) -> None:
    gw = recorded_gateway
    intent = gw.create_intent(PARAMS, idempotency_key="k-create")
    gw.update_intent(intent.id, {"amount": 1500}, idempotency_key="k-update")
    gw.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k-confirm")
    gw.create_refund(intent.id, amount=300, reason=None, idempotency_key="k-refund")
    manual = gw.create_intent(
        IntentParams(1000, "usd", IntentOptions(capture_method="manual")), idempotency_key="k-m"
    )
    gw.confirm_intent(manual.id, payment_method="pm_card_visa", idempotency_key="k-m-confirm")
    gw.capture_intent(manual.id, amount=None, idempotency_key="k-m-capture")
    other = gw.create_intent(PARAMS, idempotency_key="k-other")
    gw.cancel_intent(other.id, reason=None, idempotency_key="k-other-cancel")
    gw.retrieve_intent(intent.id)
    gw.list_refunds(intent.id)

    keys = [r.idempotency_key for r in recorder.posts()]
    assert keys == [
        "k-create",
        "k-update",
        "k-confirm:attach",
        "k-confirm:confirm",
        "k-refund",
        "k-m",
        "k-m-confirm:attach",
        "k-m-confirm:confirm",
        "k-m-capture",
        "k-other",
        "k-other-cancel",
    ]
    assert all(r.idempotency_key is None for r in recorder.recorded if r.method == "GET")


def test_an_sdk_retry_resends_the_same_key(stripe_gateway: StripeGateway, stripe_url: str) -> None:
    flaky = RecordingHTTPClient(fail_first=1)
    gw = recorded_gateway_for(stripe_url, flaky, attach_then_confirm=True, retries=1)
    intent = gw.create_intent(PARAMS, idempotency_key="k-retried")
    attempts = flaky.posts()
    assert len(attempts) == 2  # the dropped one and the retry
    assert {a.idempotency_key for a in attempts} == {"k-retried"}
    assert attempts[0].body == attempts[1].body
    assert stripe_gateway.retrieve_intent(intent.id).amount == 1000


def test_list_refunds_reads_every_page(
    recorded_gateway: StripeGateway, recorder: RecordingHTTPClient
) -> None:
    gw = recorded_gateway
    intent = gw.create_intent(IntentParams(20_000, "usd"), idempotency_key="k-create")
    gw.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k-confirm")
    made = [
        gw.create_refund(intent.id, amount=1, reason=None, idempotency_key=f"k-refund-{i}").id
        for i in range(101)
    ]
    recorder.recorded.clear()

    listed = gw.list_refunds(intent.id)

    assert sorted(r.id for r in listed) == sorted(made)
    assert {r.payment_intent_id for r in listed} == {intent.id}
    pages = [r.url.partition("?")[2] for r in recorder.recorded]
    assert len(pages) == 2, pages
    first, second = (urllib.parse.parse_qs(page) for page in pages)
    assert first == {"payment_intent": [intent.id], "limit": ["100"]}
    assert second["starting_after"] == [listed[99].id]


def test_requests_are_those_client_v1_sends(
    recorded_gateway: StripeGateway, recorder: RecordingHTTPClient, stripe_url: str
) -> None:
    """The gateway's ``raw_request`` calls send the method, path and body that
    ``client.v1.payment_intents`` / ``client.v1.refunds`` send for the same calls."""
    ids = re.compile(r"\b(pi|re|ch)_[A-Za-z0-9]+")

    def sent() -> list[tuple[str, str, str]]:
        return [
            (r.method, ids.sub(r"\1_*", r.url), ids.sub(r"\1_*", r.body)) for r in recorder.recorded
        ]

    gw = recorded_gateway
    intent = gw.create_intent(PARAMS, idempotency_key="k")
    gw.update_intent(intent.id, {"amount": 1500}, idempotency_key="k")
    gw.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k")
    gw.retrieve_intent(intent.id)
    gw.create_refund(intent.id, amount=300, reason=None, idempotency_key="k")
    gw.list_refunds(intent.id)
    ours = sent()

    recorder.recorded.clear()
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": stripe_url}, http_client=recorder
    )
    intents = client.v1.payment_intents
    theirs = intents.create(params={"amount": 1000, "currency": "usd", "metadata": {"cart": "c1"}})
    intents.update(theirs.id, params={"amount": 1500})
    intents.update(theirs.id, params={"payment_method": "pm_card_visa"})
    intents.confirm(theirs.id)
    intents.retrieve(theirs.id, params={"expand": ["latest_charge"]})  # (capture_before)
    client.v1.refunds.create(params={"payment_intent": theirs.id, "amount": 300})
    client.v1.refunds.list(params={"payment_intent": theirs.id, "limit": 100})

    assert len(ours) == 7
    assert ours == sent()


def test_a_facade_retry_after_an_unknown_outcome_reuses_the_key(
    stripe_gateway: StripeGateway, stripe_url: str
) -> None:
    flaky = RecordingHTTPClient(fail_first=1)
    gw = recorded_gateway_for(stripe_url, flaky, attach_then_confirm=True, retries=0)
    payments = CartPaymentIntent(gateway=gw, store=MemoryStore())
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500)
    with pytest.raises(GatewayUnavailableError) as caught:
        payments.create_payment_intent(cart.id)
    assert caught.value.retryable
    handle = payments.create_payment_intent(cart.id)  # the caller retries
    first, second = flaky.posts()
    assert first.idempotency_key == second.idempotency_key
    assert first.idempotency_key is not None and first.idempotency_key.startswith("cartpay:cart:")
    assert first.form == second.form
    assert payments.get_cart(cart.id).payment_intent_id == handle.id


def test_no_request_carries_payment_method_types(
    recorded_gateway: StripeGateway, recorder: RecordingHTTPClient
) -> None:
    intent = recorded_gateway.create_intent(PARAMS, idempotency_key="k1")
    recorded_gateway.update_intent(intent.id, {"metadata": {"x": "1"}}, idempotency_key="k2")
    recorded_gateway.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k3")
    bodies = [r.body for r in recorder.recorded]
    assert bodies and not any("payment_method_types" in b for b in bodies)
    create = recorder.posts()[0].form
    assert create == {"amount": ["1000"], "currency": ["usd"], "metadata[cart]": ["c1"]}


def test_only_the_options_that_are_set_are_sent() -> None:
    assert create_params(IntentParams(1000, "usd")) == {"amount": 1000, "currency": "usd"}
    options = IntentOptions(
        capture_method="manual",
        automatic_payment_methods=True,
        allow_redirects="never",
        excluded_payment_method_types=("klarna",),
        customer="cus_1",
        description="Order 1",
        statement_descriptor_suffix="ORDER 1",
        setup_future_usage="off_session",
        receipt_email="a@example.com",
        metadata={"cart": "c1"},
        application_fee_amount=100,
        transfer_destination="acct_1",
    )
    sent = create_params(IntentParams(1000, "usd", options))
    assert sent["automatic_payment_methods"] == {"enabled": True, "allow_redirects": "never"}
    assert sent["transfer_data"] == {"destination": "acct_1"}
    assert sent["excluded_payment_method_types"] == ["klarna"]
    assert "payment_method_types" not in sent
    assert "transfer_destination" not in sent and "allow_redirects" not in sent
    assert update_params({"metadata": {}}) == {}
    assert update_params({"excluded_payment_method_types": []}) == {
        "excluded_payment_method_types": ""
    }


# ------------------------------------------------------------------- secrets


def test_no_secret_reaches_a_log_record(
    stripe_gateway: StripeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payments = CartPaymentIntent(gateway=stripe_gateway, store=MemoryStore())
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
    handle = payments.create_payment_intent(cart.id)
    payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
    payments.update_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    payments.confirm_order(order.id)
    order = payments.refund_order(order.id, amount=500)
    assert order.payment == "partially_refunded"

    secret = handle.client_secret
    assert secret and "_secret_" in secret
    logged = [
        f"{r.name} {r.getMessage()} {r.__dict__!r}" for r in caplog.records
    ]  # message, args and extras
    assert any(r.name == "cartpay.gateways.stripe" for r in caplog.records)
    assert any(r.name == "stripe" for r in caplog.records)  # the SDK logged bodies too
    for text in logged:
        assert secret not in text
        assert TEST_API_KEY not in text
        assert TEST_WEBHOOK_SECRET not in text
    assert secret not in repr(handle) and secret not in repr(payments)


def test_repr_shows_no_key_or_secret(stripe_gateway: StripeGateway) -> None:
    text = repr(stripe_gateway)
    assert TEST_API_KEY not in text and TEST_WEBHOOK_SECRET not in text
    assert "webhook_secret=set" in text


def test_gateway_debug_log_names_method_intent_and_key(
    stripe_gateway: StripeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cartpay.gateways.stripe")
    intent = stripe_gateway.create_intent(PARAMS, idempotency_key="k-logged")
    stripe_gateway.retrieve_intent(intent.id)
    messages = [r.getMessage() for r in caplog.records if r.name == "cartpay.gateways.stripe"]
    assert "stripe create intent=None idempotency_key=k-logged" in messages
    assert f"stripe retrieve intent={intent.id} idempotency_key=None" in messages


# -------------------------------------------------------------------- errors


def test_a_bad_api_key_is_an_authentication_error(stripe_url: str) -> None:
    client = stripe.StripeClient("bad_key_123", base_addresses={"api": stripe_url})
    gateway = StripeGateway(client, max_network_retries=0, livemode=False)  # (no mode in the key)
    with pytest.raises(AuthenticationError) as caught:
        gateway.create_intent(PARAMS, idempotency_key="k")
    assert caught.value.http_status == 401
    assert not caught.value.retryable
    assert isinstance(caught.value.__cause__, stripe.AuthenticationError)


def test_a_closed_port_is_retryable_unavailability() -> None:
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": f"http://127.0.0.1:{_closed_port()}"}
    )
    with pytest.raises(GatewayUnavailableError) as caught:
        StripeGateway(client, max_network_retries=0).create_intent(PARAMS, idempotency_key="k")
    assert caught.value.retryable
    assert caught.value.http_status is None
    assert isinstance(caught.value.__cause__, stripe.APIConnectionError)


def test_a_decline_is_a_card_declined_error(stripe_gateway: StripeGateway) -> None:
    intent = stripe_gateway.create_intent(PARAMS, idempotency_key="k1")
    with pytest.raises(CardDeclinedError) as caught:
        stripe_gateway.confirm_intent(
            intent.id, payment_method="pm_card_chargeCustomerFail", idempotency_key="k2"
        )
    assert (caught.value.code, caught.value.http_status) == ("card_declined", 402)
    assert caught.value.intent_id == intent.id
    assert isinstance(caught.value.__cause__, stripe.CardError)


def test_an_unknown_intent_is_not_found(stripe_gateway: StripeGateway) -> None:
    with pytest.raises(NotFoundError) as caught:
        stripe_gateway.retrieve_intent("pi_unknown")
    assert (caught.value.kind, caught.value.id) == ("payment_intent", "pi_unknown")
    assert isinstance(caught.value.__cause__, stripe.InvalidRequestError)


def test_a_refused_request_is_an_invalid_request_error(stripe_gateway: StripeGateway) -> None:
    intent = stripe_gateway.create_intent(PARAMS, idempotency_key="k1")
    stripe_gateway.cancel_intent(intent.id, reason=None, idempotency_key="k2")
    with pytest.raises(InvalidRequestError) as caught:  # localstripe: a bare 400
        stripe_gateway.cancel_intent(intent.id, reason=None, idempotency_key="k3")
    assert caught.value.http_status == 400
    assert not caught.value.retryable


def test_update_after_success_is_accepted_by_localstripe(stripe_gateway: StripeGateway) -> None:
    """Real Stripe answers payment_intent_unexpected_state (IllegalStateError, see
    test_stripe_errors.py); localstripe changes the amount. The façade refuses
    this update itself, from its own state table, before any call."""
    intent = stripe_gateway.create_intent(PARAMS, idempotency_key="k1")
    stripe_gateway.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k2")
    after = stripe_gateway.update_intent(intent.id, {"amount": 3000}, idempotency_key="k3")
    assert (after.status, after.amount) == ("succeeded", 3000)


# ------------------------------------------------------------------ webhooks


def test_a_real_localstripe_delivery_verifies(
    stripe_gateway: StripeGateway,
    localstripe_server: LocalStripe,
    webhook_receiver: WebhookReceiver,
) -> None:
    localstripe_server.register_webhook(
        "gateway-test", webhook_receiver.url, TEST_WEBHOOK_SECRET, ["payment_intent.succeeded"]
    )
    intent = stripe_gateway.create_intent(PARAMS, idempotency_key="k1")
    stripe_gateway.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k2")
    delivery = webhook_receiver.next()
    while json.loads(delivery.body)["data"]["object"]["id"] != intent.id:
        delivery = webhook_receiver.next()  # a late one from an earlier test
    stripe_gateway.verify_webhook(delivery.body, delivery.signature, tolerance=300)
    with pytest.raises(WebhookSignatureError):
        stripe_gateway.verify_webhook(delivery.body + b"\n", delivery.signature, tolerance=300)
    with pytest.raises(WebhookSignatureError):
        stripe_gateway.verify_webhook(delivery.body.decode(), delivery.signature, tolerance=300)  # type: ignore[arg-type]
    unconfigured = StripeGateway(stripe.StripeClient(TEST_API_KEY))
    with pytest.raises(WebhookSignatureError):
        unconfigured.verify_webhook(delivery.body, delivery.signature, tolerance=300)


def test_only_the_gateway_imports_stripe() -> None:
    probe = (
        "import sys, cartpay, cartpay.testing, cartpay.testing.plugin; "
        "assert 'stripe' not in sys.modules, 'stripe imported'; "
        "import cartpay.gateways.stripe; assert 'stripe' in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
