"""What the framework suites share: a paid order's signed delivery (from the fake
gateway, signed locally as Stripe signs), the bad requests every webhook route
must refuse, and the check that a refused request wrote nothing."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cartpay import CartPaymentIntent
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway
from cartpay.testing.plugin import TEST_WEBHOOK_SECRET

#: The body limit the suites configure (small, so "huge" is cheap to send).
MAX_BODY = 64 * 1024
#: Where the shop has Stripe send the customer back (3-D Secure, a bank's page).
RETURN_URL = "https://shop.test/checkout/done"


@dataclass(frozen=True)
class Delivery:
    """A signed webhook delivery and what it is about."""

    payments: CartPaymentIntent
    order_id: str
    version: int  # the order's version before the delivery
    body: bytes
    signature: str

    @property
    def event_id(self) -> str:
        event_id: str = json.loads(self.body)["id"]
        return event_id


def fake_delivery() -> Delivery:
    """A checked-out order whose intent the "browser" confirmed on the fake gateway,
    with the signed ``payment_intent.succeeded`` event that says so (not yet
    delivered: the order is still unpaid)."""
    fake = FakeStripeGateway(webhook_secret=TEST_WEBHOOK_SECRET)
    payments = CartPaymentIntent(gateway=fake, store=MemoryStore(), return_url=RETURN_URL)
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    fake.confirm_intent(
        handle.id,
        payment_method="pm_card_visa",
        return_url=RETURN_URL,  # as Stripe.js sends it
        idempotency_key="browser",
    )
    body, signature = next(
        (body, sig)
        for body, sig in reversed(fake.events())
        if json.loads(body)["type"] == "payment_intent.succeeded"
    )
    return Delivery(payments, order.id, order.version, body, signature)


@dataclass(frozen=True)
class BadRequest:
    """A webhook request every integration refuses, and with which status."""

    name: str
    status: int
    headers: Callable[[Delivery], dict[str, str]]
    body: Callable[[Delivery], bytes]


def _json(d: Delivery) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": d.signature}


BAD_REQUESTS = [
    BadRequest(
        "no signature", 400, lambda d: {"Content-Type": "application/json"}, lambda d: d.body
    ),
    BadRequest(
        "empty signature",
        400,
        lambda d: {"Content-Type": "application/json", "Stripe-Signature": ""},
        lambda d: d.body,
    ),
    BadRequest(
        "signed with another secret",
        400,
        lambda d: {**_json(d), "Stripe-Signature": d.signature.replace("v1=", "v1=0")},
        lambda d: d.body,
    ),
    BadRequest("altered body", 400, _json, lambda d: d.body.replace(b"5000", b"1")),
    BadRequest("not JSON", 400, _json, lambda d: b"\x00not json"),
    BadRequest(
        "form content type",
        415,
        lambda d: {**_json(d), "Content-Type": "application/x-www-form-urlencoded"},
        lambda d: d.body,
    ),
    BadRequest(
        "text content type",
        415,
        lambda d: {**_json(d), "Content-Type": "text/plain"},
        lambda d: d.body,
    ),
    BadRequest("huge body", 413, _json, lambda d: d.body + b" " * MAX_BODY),
]


def assert_nothing_written(delivery: Delivery) -> None:
    """The order is as checkout left it and the event was not recorded."""
    order = delivery.payments.get_order(delivery.order_id)
    assert (order.status, order.payment) == ("incomplete", "unpaid"), order
    assert order.version == delivery.version
    with delivery.payments.store.read() as reads:
        assert not reads.has_event(delivery.event_id)


def assert_paid(delivery: Delivery) -> None:
    order = delivery.payments.get_order(delivery.order_id)
    assert (order.status, order.payment) == ("complete", "paid"), order
    with delivery.payments.store.read() as reads:
        assert reads.has_event(delivery.event_id)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` (ASGI) served by uvicorn in a thread on a free port, lifespan and all;
    yields its base URL and stops it on the way out."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
