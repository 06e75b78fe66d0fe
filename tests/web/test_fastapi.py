"""cartpay.contrib.fastapi through FastAPI's own TestClient (httpx): the webhook route
against locally signed and localstripe-signed deliveries, bad requests refused with
nothing written, the error handler's statuses, the reconcile lifespan, and the
async twin (any façade whose methods are coroutines)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cartpay import (
    CartPaymentIntent,
    ReconcileReport,
    StoreError,
    ValidationError,
    WebhookResult,
)
from cartpay.contrib.fastapi import add_error_handler, reconcile_lifespan, webhook_router
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway, FaultyGateway
from cartpay.testing.plugin import TEST_WEBHOOK_SECRET

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

pytestmark = pytest.mark.fastapi

HOOK = "/stripe/webhook"


class AsyncTwin:
    """The async façade's shape: coroutine methods (the sync façade run in a thread)."""

    def __init__(self, payments: CartPaymentIntent) -> None:
        self.payments = payments
        self.threads: list[int] = []

    async def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult:
        self.threads.append(threading.get_ident())
        return await asyncio.to_thread(self.payments.handle_webhook, payload, signature_header)

    async def reconcile(self, **options: Any) -> ReconcileReport:
        return await asyncio.to_thread(lambda: self.payments.reconcile(**options))


def _client(payments: Any, **router: Any) -> TestClient:
    app = FastAPI()
    app.include_router(webhook_router(payments, max_body_bytes=MAX_BODY, **router))
    add_error_handler(app)
    return TestClient(app)


def _post(client: TestClient, delivery: Delivery) -> Any:
    return client.post(
        HOOK,
        content=delivery.body,
        headers={"Content-Type": "application/json", "Stripe-Signature": delivery.signature},
    )


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=lambda b: b.name)
@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_bad_request_is_refused_and_writes_nothing(bad: BadRequest, twin: str) -> None:
    delivery = fake_delivery()
    payments = delivery.payments if twin == "sync" else AsyncTwin(delivery.payments)
    answer = _client(payments).post(HOOK, content=bad.body(delivery), headers=bad.headers(delivery))
    assert answer.status_code == bad.status, answer.text
    assert answer.json()["error"]["type"]
    assert_nothing_written(delivery)


def test_a_chunked_body_over_the_limit_is_refused_while_read() -> None:
    delivery = fake_delivery()

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield delivery.body
        for _ in range(MAX_BODY // 1024 + 1):
            yield b" " * 1024

    answer = _client(delivery.payments).post(
        HOOK,
        content=chunks(),
        headers={"Content-Type": "application/json", "Stripe-Signature": delivery.signature},
    )
    assert answer.status_code == 413
    assert_nothing_written(delivery)


def test_a_signed_delivery_is_applied_once_off_the_event_loop() -> None:
    delivery = fake_delivery()
    seen: list[tuple[str, int]] = []
    handled: list[int] = []

    class Recording(CartPaymentIntent):
        def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult:
            handled.append(threading.get_ident())
            return super().handle_webhook(payload, signature_header)

    payments = Recording(gateway=delivery.payments.gateway, store=delivery.payments.store)
    client = _client(payments, on_result=lambda r: seen.append((r.action, threading.get_ident())))
    first = _post(client, delivery)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "event_id": delivery.event_id,
        "event_type": "payment_intent.succeeded",
        "action": "applied",
    }
    assert_paid(delivery)
    again = _post(client, delivery)
    assert (again.status_code, again.json()["action"]) == (200, "duplicate")
    assert [action for action, _ in seen] == ["applied", "duplicate"]
    # The sync façade ran in the thread pool, not on the loop that ran on_result (two
    # threads alive at once: their idents differ; across requests they may be reused).
    assert len(handled) == len(seen) == 2
    assert all(worker != loop for worker, (_, loop) in zip(handled, seen, strict=True))


def test_the_async_twin_is_awaited_on_the_loop() -> None:
    delivery = fake_delivery()
    twin = AsyncTwin(delivery.payments)
    loop_threads: list[int] = []
    client = _client(twin, on_result=lambda r: loop_threads.append(threading.get_ident()))
    answer = _post(client, delivery)
    assert (answer.status_code, answer.json()["action"]) == (200, "applied")
    assert twin.threads == loop_threads  # called on the loop itself, not in a worker
    assert_paid(delivery)


def test_localstripe_signed_delivery_pays_the_order(localstripe_delivery: Delivery) -> None:
    answer = _post(_client(localstripe_delivery.payments), localstripe_delivery)
    assert answer.status_code == 200, answer.text
    assert answer.json()["action"] == "applied"
    assert_paid(localstripe_delivery)


def test_a_delivery_the_gateway_cannot_finish_is_a_503_to_retry() -> None:
    delivery = fake_delivery()
    faulty = FaultyGateway(
        delivery.payments.gateway, seed=1, rate=1.0, faults=["server_error"], read_rate=1.0
    )
    payments = CartPaymentIntent(
        gateway=faulty, store=delivery.payments.store, refresh_on_webhook=True
    )
    answer = _post(_client(payments), delivery)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["error"] == {
        "type": "GatewayUnavailableError",
        "retryable": True,
        "message": "try again later",
    }
    assert_nothing_written(delivery)


def test_the_router_refuses_a_bad_limit_and_a_half_async_facade() -> None:
    payments = fake_delivery().payments
    with pytest.raises(ValidationError) as bad:
        webhook_router(payments, max_body_bytes=0)
    assert (bad.value.field, bad.value.rule) == ("max_body_bytes", "positive")

    class Half:
        async def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult:
            raise NotImplementedError

        def reconcile(self, **options: Any) -> ReconcileReport:
            raise NotImplementedError

    with pytest.raises(TypeError, match="both be coroutine functions"):
        webhook_router(Half())  # type: ignore[arg-type]


# ----------------------------------------------------------------- error handler


def _shop(payments: CartPaymentIntent) -> TestClient:
    app = FastAPI()
    add_error_handler(app)

    @app.post("/carts/{cart_id}/items")
    def add(cart_id: str, sku: str, quantity: int) -> dict[str, int]:
        cart = payments.add_item(cart_id, sku=sku, name=sku, unit_amount=500, quantity=quantity)
        return {"total": cart.total}

    @app.get("/orders/{order_id}")
    def order(order_id: str) -> dict[str, str]:
        return {"payment": payments.get_order(order_id).payment}

    @app.post("/orders/{order_id}/pay")
    def pay(order_id: str, card: str) -> dict[str, str]:
        return {"payment": payments.confirm_payment(order_id, payment_method=card).payment}

    @app.get("/broken")
    def broken() -> None:
        raise StoreError("disk /var/lib/shop.sqlite3 is full", reason="full", retryable=False)

    return TestClient(app)


def test_the_error_handler_answers_the_documented_statuses() -> None:
    payments = CartPaymentIntent(
        gateway=FakeStripeGateway(), store=MemoryStore(), return_url=RETURN_URL
    )
    client = _shop(payments)
    cart = payments.create_cart("usd")

    bad = client.post(f"/carts/{cart.id}/items", params={"sku": "tee", "quantity": 0})
    assert bad.status_code == 422
    assert bad.json()["error"]["type"] == "ValidationError"
    assert (bad.json()["error"]["field"], bad.json()["error"]["rule"]) == ("quantity", "positive")

    missing = client.get("/orders/order_nope")
    assert missing.status_code == 404
    assert missing.json()["error"] | {"message": ""} == {
        "type": "NotFoundError",
        "retryable": False,
        "message": "",
        "kind": "order",
        "id": "order_nope",
    }

    assert client.post(f"/carts/{cart.id}/items", params={"sku": "tee", "quantity": 1}).json() == {
        "total": 500
    }
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    declined = client.post(f"/orders/{order.id}/pay", params={"card": "pm_card_chargeDeclined"})
    assert declined.status_code == 402
    assert declined.json()["error"]["code"] == "card_declined"
    assert client.post(f"/orders/{order.id}/pay", params={"card": "pm_card_visa"}).json() == {
        "payment": "paid"
    }
    again = client.post(f"/orders/{order.id}/pay", params={"card": "pm_card_visa"})
    assert again.status_code == 409  # paid already: IllegalStateError

    broken = client.get("/broken")
    assert broken.status_code == 500
    assert "disk" not in broken.text  # a server error's message stays in the server
    assert "Retry-After" not in broken.headers


# --------------------------------------------------------------------- lifespan


def test_the_lifespan_reconciles_on_schedule_and_stops_with_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeStripeGateway(webhook_secret=TEST_WEBHOOK_SECRET)
    payments = CartPaymentIntent(gateway=fake, store=MemoryStore(), return_url=RETURN_URL)
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
    # The webhook never arrives: only reconcile can find out the order was paid.

    reports: list[ReconcileReport] = []
    calls = 0

    class FailsOnce(CartPaymentIntent):
        def reconcile(self, **options: Any) -> ReconcileReport:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise StoreError("database unavailable", reason="unavailable", retryable=True)
            return super().reconcile(**options)

    flaky = FailsOnce(gateway=fake, store=payments.store)
    started: list[str] = []

    @asynccontextmanager_lifespan
    def app_lifespan() -> Iterator[None]:
        started.append("up")
        yield
        started.append("down")

    lifespan = reconcile_lifespan(
        flaky,
        every=timedelta(milliseconds=20),
        older_than=timedelta(0),
        on_report=reports.append,
        lifespan=app_lifespan,
    )
    app = FastAPI(lifespan=lifespan)
    with caplog.at_level(logging.ERROR, logger="cartpay.contrib.fastapi"), TestClient(app):
        deadline = time.monotonic() + 10
        while len(reports) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert started == ["up", "down"]
    assert "reconcile failed" in caplog.text  # the first run raised, the schedule went on
    assert order.id in reports[0].repaired
    assert payments.get_order(order.id).payment == "paid"
    runs = calls
    time.sleep(0.1)
    assert calls == runs  # stopped with the app


def test_the_lifespan_awaits_an_async_twin_and_refuses_a_bad_interval() -> None:
    payments = CartPaymentIntent(
        gateway=FakeStripeGateway(), store=MemoryStore(), return_url=RETURN_URL
    )
    reports: list[ReconcileReport] = []

    async def report(r: ReconcileReport) -> None:
        reports.append(r)

    app = FastAPI(
        lifespan=reconcile_lifespan(
            AsyncTwin(payments), every=timedelta(seconds=60), on_report=report
        )
    )
    with TestClient(app):
        deadline = time.monotonic() + 10
        while not reports and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(reports) == 1 and reports[0].checked == ()  # once at start-up
    with pytest.raises(ValidationError) as bad:
        reconcile_lifespan(payments, every=timedelta(0))
    assert bad.value.field == "every"


def asynccontextmanager_lifespan(func: Any) -> Any:
    """An app lifespan from a plain generator (enter, exit), as FastAPI takes it."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        steps = func()
        next(steps)
        yield
        next(steps, None)

    return lifespan
