"""examples/flask_blueprint.py through Flask's own test_client: the webhook route
against locally signed and localstripe-signed deliveries, bad requests refused with
nothing written, and the error handler's statuses."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cartpay import CartPaymentIntent
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway

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

pytestmark = pytest.mark.flask

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask_blueprint.py"
HOOK = "/stripe/webhook"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flask_blueprint_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _client(payments: CartPaymentIntent) -> FlaskClient:
    app = Flask("shop")
    app.register_blueprint(_example().cartpay_blueprint(payments, max_body_bytes=MAX_BODY))

    @app.get("/orders/<order_id>")
    def order(order_id: str) -> dict[str, str]:
        return {"payment": payments.get_order(order_id).payment}

    @app.post("/carts/<cart_id>/items/<int:quantity>")
    def add(cart_id: str, quantity: int) -> dict[str, int]:
        cart = payments.add_item(
            cart_id, sku="tee", name="T-shirt", unit_amount=500, quantity=quantity
        )
        return {"total": cart.total}

    return app.test_client()


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=lambda b: b.name)
def test_a_bad_request_is_refused_and_writes_nothing(bad: BadRequest) -> None:
    delivery = fake_delivery()
    answer = _client(delivery.payments).post(
        HOOK, data=bad.body(delivery), headers=bad.headers(delivery)
    )
    assert answer.status_code == bad.status, answer.data
    assert answer.get_json()["error"]["type"]
    assert_nothing_written(delivery)


def test_a_signed_delivery_is_applied_once() -> None:
    delivery = fake_delivery()
    client = _client(delivery.payments)
    first = client.post(
        HOOK,
        data=delivery.body,
        headers={"Content-Type": "application/json", "Stripe-Signature": delivery.signature},
    )
    assert first.status_code == 200, first.data
    assert first.get_json()["action"] == "applied"
    assert_paid(delivery)
    again = client.post(
        HOOK,
        data=delivery.body,
        headers={"Content-Type": "application/json", "Stripe-Signature": delivery.signature},
    )
    assert again.get_json()["action"] == "duplicate"


def test_localstripe_signed_delivery_pays_the_order(localstripe_delivery: Delivery) -> None:
    answer = _client(localstripe_delivery.payments).post(
        HOOK,
        data=localstripe_delivery.body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": localstripe_delivery.signature,
        },
    )
    assert answer.status_code == 200, answer.data
    assert_paid(localstripe_delivery)


def test_the_error_handler_answers_the_documented_statuses() -> None:
    payments = CartPaymentIntent(
        gateway=FakeStripeGateway(), store=MemoryStore(), return_url=RETURN_URL
    )
    client = _client(payments)
    cart = payments.create_cart("usd")
    bad = client.post(f"/carts/{cart.id}/items/0")
    assert bad.status_code == 422
    assert (bad.get_json()["error"]["field"], bad.get_json()["error"]["rule"]) == (
        "quantity",
        "positive",
    )
    missing = client.get("/orders/order_nope")
    assert (missing.status_code, missing.get_json()["error"]["type"]) == (404, "NotFoundError")
    assert client.post(f"/carts/{cart.id}/items/3").get_json() == {"total": 1500}
