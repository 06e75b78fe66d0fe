"""End to end: localstripe itself delivers signed webhooks to a small HTTP server
started by the test (the WSGI endpoint of ``examples/webhook_endpoint.py``), which
calls ``handle_webhook``; the order gets paid without anyone calling confirm_order."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from cartpay import CartPaymentIntent
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from cartpay.testing import LocalStripe
from cartpay.testing.plugin import TEST_WEBHOOK_SECRET

pytestmark = pytest.mark.localstripe

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook_endpoint.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_endpoint_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""


@pytest.fixture
def endpoint(
    stripe_gateway: StripeGateway, localstripe_server: LocalStripe
) -> Iterator[tuple[CartPaymentIntent, str, list[str]]]:
    """The example's WSGI endpoint on a free port. Tests register it as the webhook
    named ``endpoint`` (re-registering replaces it; afterwards it points nowhere)."""
    payments = CartPaymentIntent(gateway=stripe_gateway, store=MemoryStore())
    app = _example().make_app(payments)
    answers: list[str] = []

    def recording_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        def record(status: str, headers: list[tuple[str, str]]) -> Any:
            answers.append(status)
            return start_response(status, headers)

        return [b"".join(app(environ, record))]

    server: WSGIServer = make_server("127.0.0.1", 0, recording_app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield payments, f"http://127.0.0.1:{server.server_port}/", answers
    finally:
        localstripe_server.register_webhook("endpoint", "http://127.0.0.1:9/", "whsec_none", [])
        server.shutdown()
        server.server_close()


def test_localstripe_delivers_and_the_endpoint_applies(
    endpoint: tuple[CartPaymentIntent, str, list[str]],
    stripe_gateway: StripeGateway,
    localstripe_server: LocalStripe,
) -> None:
    payments, url, answers = endpoint
    localstripe_server.register_webhook(
        "endpoint", url, TEST_WEBHOOK_SECRET, ["payment_intent.succeeded"]
    )
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    # The customer's browser confirms; cartpay only hears about it through the webhook.
    stripe_gateway.confirm_intent(handle.id, payment_method="pm_card_visa", idempotency_key="js")
    deadline = time.monotonic() + 15
    while payments.get_order(order.id).payment != "paid" and time.monotonic() < deadline:
        time.sleep(0.05)
    order = payments.get_order(order.id)
    assert (order.status, order.payment, order.captured) == ("complete", "paid", 5000)
    assert "200 OK" in answers


def test_a_delivery_signed_with_another_secret_is_a_400(
    endpoint: tuple[CartPaymentIntent, str, list[str]],
    stripe_gateway: StripeGateway,
    localstripe_server: LocalStripe,
) -> None:
    payments, url, answers = endpoint
    localstripe_server.register_webhook(
        "endpoint", url, "whsec_someone_else", ["payment_intent.succeeded"]
    )
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500)
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    stripe_gateway.confirm_intent(handle.id, payment_method="pm_card_visa", idempotency_key="js")
    deadline = time.monotonic() + 15
    while "400 Bad Request" not in answers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "400 Bad Request" in answers
    assert payments.get_order(order.id).payment == "unpaid"
