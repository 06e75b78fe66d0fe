"""``refund_order(..., idempotency_key=)``: the host's key names one refund.

Without a key, a retry of a refund whose answer was lost is recognised only while
its claim is pending: once another call settled that claim (a refund of another
amount, which raises ``OperationPendingError`` naming it), the identical retry
looked like a new refund and Stripe refunded twice. With a key, the refund is
recorded under it whoever settles it, and every later call with the key returns
the order without refunding again (docs/money.md, "Unknown outcomes")."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path

import pytest

from cartpay import (
    AsyncCartPaymentIntent,
    CartpayError,
    CartPaymentIntent,
    OperationPendingError,
    Order,
    ValidationError,
)
from cartpay.stores.memory import AsyncMemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import AsyncFakeStripeGateway, FakeStripeGateway

from .. import shops
from ..shops import RETURN_URL, fail_next, faulty_shop, paid_order, refunded_at_stripe

KEY = "refund-42-line-3"


def keyed(order: Order, key: str = KEY) -> list[int]:
    return shops.keyed(order, key)


# ------------------------------------------------------ the lost answer, settled


def test_a_keyed_retry_after_another_call_settled_its_lost_answer_refunds_once() -> None:
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)

    fail_next(gateway, "timeout_after")  # Stripe refunds 300; the answer is lost
    with pytest.raises(CartpayError) as lost:
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    assert lost.value.retryable
    gateway.rate = 0.0
    with pytest.raises(OperationPendingError):  # another call settles it, and is refused
        payments.refund_order(order.id, 500)

    done = payments.refund_order(order.id, 300, idempotency_key=KEY)  # the host's retry

    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == 300
    assert keyed(done) == [300]


def test_a_keyed_retry_after_a_webhook_recorded_its_refund_refunds_once() -> None:
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())

    fail_next(gateway, "timeout_after")
    with pytest.raises(CartpayError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    gateway.rate = 0.0
    for body, header in fake.events()[seen:]:  # refund.created, charge.refunded
        payments.handle_webhook(body, header)

    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    again = payments.refund_order(order.id, 300, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == again.refunded == 300
    assert keyed(again) == [300]


def test_a_keyed_refund_lost_before_stripe_acted_is_made_by_the_retry() -> None:
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)

    fail_next(gateway, "timeout_before")  # nothing reached Stripe
    with pytest.raises(CartpayError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    gateway.rate = 0.0

    done = payments.refund_order(order.id, 300, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [300]
    assert keyed(done) == [300]


# ---------------------------------------------------------------- answered calls


def test_a_repeated_keyed_call_returns_the_order_without_a_request() -> None:
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    first = payments.refund_order(order.id, 300, idempotency_key=KEY)
    calls = gateway.calls

    again = payments.refund_order(order.id, 300, idempotency_key=KEY)
    everything = payments.refund_order(order.id, idempotency_key=KEY)  # "all that remains"

    assert gateway.calls == calls
    assert again == first == everything
    assert refunded_at_stripe(fake, order) == [300]


def test_the_same_key_with_another_amount_is_refused_before_any_call() -> None:
    _, gateway, payments = faulty_shop()
    order = paid_order(payments)
    first = payments.refund_order(order.id, 300, idempotency_key=KEY)
    calls = gateway.calls

    with pytest.raises(ValidationError) as refused:
        payments.refund_order(order.id, 400, idempotency_key=KEY)

    assert (refused.value.field, refused.value.rule) == ("idempotency_key", "reused")
    assert "300" in str(refused.value) and "400" in str(refused.value)
    assert gateway.calls == calls
    assert payments.get_order(order.id) == first


def test_other_keys_are_other_refunds_and_keys_belong_to_their_order() -> None:
    fake, _, payments = faulty_shop()
    order = paid_order(payments)
    other = paid_order(payments)

    payments.refund_order(order.id, 300, idempotency_key="a")
    done = payments.refund_order(order.id, 300, idempotency_key="b")
    payments.refund_order(other.id, 300, idempotency_key="a")

    assert refunded_at_stripe(fake, order) == [300, 300]
    assert keyed(done, "a") == keyed(done, "b") == [300]
    assert refunded_at_stripe(fake, other) == [300]


def test_a_call_without_a_key_is_another_refund() -> None:
    fake, _, payments = faulty_shop()
    order = paid_order(payments)

    payments.refund_order(order.id, 300, idempotency_key=KEY)
    done = payments.refund_order(order.id, 300)

    assert refunded_at_stripe(fake, order) == [300, 300]
    assert keyed(done) == [300]


def test_a_keyed_refund_of_all_that_remains() -> None:
    fake, _, payments = faulty_shop()
    order = paid_order(payments)
    payments.refund_order(order.id, 200)

    done = payments.refund_order(order.id, idempotency_key=KEY)
    again = payments.refund_order(order.id, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [200, 800]
    assert keyed(done) == [800] and again == done


# ------------------------------------------------------------------- bad keys


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "non_empty"),
        ("   ", "non_empty"),
        ("k" * 256, "max_length"),
        ("a\x00b", "no_nul"),
        ("a\udc80b", "encodable"),
        (42, "type"),
        (b"key", "type"),
    ],
    ids=["empty", "blank", "too-long", "nul", "surrogate", "int", "bytes"],
)
def test_a_bad_key_is_refused_before_anything(key: object, rule: str) -> None:
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    calls = gateway.calls

    with pytest.raises(ValidationError) as refused:
        payments.refund_order(order.id, 300, idempotency_key=key)  # type: ignore[arg-type]

    assert (refused.value.field, refused.value.rule) == ("idempotency_key", rule)
    assert gateway.calls == calls
    assert payments.get_order(order.id) == order
    assert refunded_at_stripe(fake, order) == []


def test_the_longest_key_is_taken() -> None:
    _, _, payments = faulty_shop()
    order = paid_order(payments)
    done = payments.refund_order(order.id, 300, idempotency_key="k" * 255)
    assert keyed(done, "k" * 255) == [300]


# ----------------------------------------------------- stores, threads, the twin


def test_the_key_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    fake, gateway, payments = faulty_shop(SQLiteStore(path))
    order = paid_order(payments)
    fail_next(gateway, "timeout_after")
    with pytest.raises(CartpayError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    gateway.rate = 0.0
    with pytest.raises(OperationPendingError):
        payments.refund_order(order.id, 500)
    payments.close()

    reopened = CartPaymentIntent(return_url=RETURN_URL, gateway=gateway, store=SQLiteStore(path))
    done = reopened.refund_order(order.id, 300, idempotency_key=KEY)
    reopened.close()

    assert refunded_at_stripe(fake, order) == [300]
    assert keyed(done) == [300]


def test_the_same_keyed_refund_from_many_threads_refunds_once(tmp_path: Path) -> None:
    fake = FakeStripeGateway()
    store = SQLiteStore(tmp_path / "shop.sqlite3")
    payments = CartPaymentIntent(return_url=RETURN_URL, gateway=fake, store=store)
    order = paid_order(payments)
    barrier = threading.Barrier(6)
    results: list[object] = []

    def refund() -> None:
        barrier.wait()
        try:
            results.append(payments.refund_order(order.id, 300, idempotency_key=KEY))
        except CartpayError as exc:  # a retryable conflict, at worst
            results.append(exc)

    threads = [threading.Thread(target=refund) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert refunded_at_stripe(fake, order) == [300]
    assert all(isinstance(r, Order) or getattr(r, "retryable", False) for r in results), results
    assert keyed(payments.get_order(order.id)) == [300]
    store.close()


def test_the_async_twin_takes_the_key() -> None:
    async def scenario() -> tuple[Order, Order, list[int]]:
        fake = AsyncFakeStripeGateway()
        payments = AsyncCartPaymentIntent(
            return_url=RETURN_URL, gateway=fake, store=AsyncMemoryStore()
        )
        cart = await payments.create_cart("usd")
        await payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
        await payments.create_payment_intent(cart.id)
        order = await payments.checkout(cart.id)
        await payments.confirm_payment(order.id, payment_method="pm_card_visa")
        first, second = await asyncio.gather(
            payments.refund_order(order.id, 300, idempotency_key=KEY),
            payments.refund_order(order.id, 300, idempotency_key=KEY),
        )
        refunds = await fake.list_refunds(order.intent_id or "")
        return first, second, [r.amount for r in refunds]

    first, second, refunds = asyncio.run(scenario())
    assert refunds == [300]
    assert first.refunded == second.refunded == 300


@pytest.mark.postgres
def test_a_settled_keyed_refund_on_postgresql() -> None:
    """The lost answer settled by another call, then the keyed retry, on
    PostgreSQL (the key is in the order's stored body)."""
    dsn = os.environ.get("CARTPAY_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("CARTPAY_TEST_POSTGRES_DSN is not set; start a server with .ci/postgres-up")
    import psycopg

    from cartpay.stores.postgres import PostgresStore

    schema = f"keys_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(dsn, schema=schema, max_size=2)
    try:
        fake, gateway, payments = faulty_shop(store)
        order = paid_order(payments)
        fail_next(gateway, "timeout_after")
        with pytest.raises(CartpayError):
            payments.refund_order(order.id, 300, idempotency_key=KEY)
        gateway.rate = 0.0
        with pytest.raises(OperationPendingError):
            payments.refund_order(order.id, 500)

        done = payments.refund_order(order.id, 300, idempotency_key=KEY)

        assert refunded_at_stripe(fake, order) == [300]
        assert keyed(payments.get_order(order.id)) == keyed(done) == [300]
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
