"""A process dies between the gateway call and the write; a new process retries.

The dead process leaves its claim (the pending operation and its idempotency
key) in the database. The retry, in another process on the same database, waits
out the short lease, replays the call with the persisted key (the fake answers
from its idempotency cache) and records the outcome: nothing is made twice and
nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from multiprocessing.context import SpawnContext
from multiprocessing.pool import Pool

import pytest

from cartpay import CartPaymentIntent
from cartpay.testing import FakeStripeGateway
from tests.stores.store_workers import (
    CRASH_EXIT,
    Step,
    StoreSpec,
    confirm_payment,
    crash_during,
    create_intent,
    payments_over,
    run_step,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def spec(request: pytest.FixtureRequest) -> StoreSpec:
    found: StoreSpec = request.getfixturevalue(f"{request.param}_spec")
    return found


@pytest.fixture
def payments(spec: StoreSpec, gateway: FakeStripeGateway) -> Iterator[CartPaymentIntent]:
    store = spec.open()
    try:
        yield payments_over(gateway, store)
    finally:
        store.close()


def _crash(
    spawn: SpawnContext,
    spec: StoreSpec,
    gateway: FakeStripeGateway,
    operation: str,
    step: Step,
    arg: str,
) -> None:
    """Run ``step`` in a new process that dies right after the gateway's ``operation``."""
    process = spawn.Process(target=crash_during, args=(spec, gateway, operation, step, arg))
    process.start()
    process.join(timeout=30)
    assert process.exitcode == CRASH_EXIT


def _cart(payments: CartPaymentIntent) -> str:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee-m", name="T-shirt", unit_amount=2500, quantity=2)
    return cart.id


def test_a_create_lost_in_a_crash_is_found_again_by_its_key(
    payments: CartPaymentIntent,
    gateway: FakeStripeGateway,
    spec: StoreSpec,
    spawn: SpawnContext,
    workers: Pool,
) -> None:
    cart_id = _cart(payments)

    _crash(spawn, spec, gateway, "create_intent", create_intent, cart_id)

    crashed = payments.get_cart(cart_id)
    assert crashed.payment_intent_id is None  # the outcome was never written...
    assert crashed.pending is not None and crashed.pending.operation == "create"  # ...the claim was
    [made] = gateway.intent_ids()

    retried = workers.apply(run_step, (spec, gateway, None, create_intent, cart_id))

    assert retried == made
    assert gateway.count("create_intent", replayed=False) == 1
    assert gateway.count("create_intent", replayed=True) == 1
    assert gateway.intent_ids() == [made]
    cart = payments.get_cart(cart_id)
    assert cart.payment_intent_id == made and cart.pending is None
    assert cart.sent is not None and cart.sent.amount == 5000
    with payments.store.transaction() as tx:
        record = tx.get_intent(made)
        assert tx.unclaimed_intents(["requires_payment_method"], limit=10) == [record]


def test_a_confirm_lost_in_a_crash_pays_the_order_once(
    payments: CartPaymentIntent,
    gateway: FakeStripeGateway,
    spec: StoreSpec,
    spawn: SpawnContext,
    workers: Pool,
) -> None:
    cart_id = _cart(payments)
    intent_id = payments.create_payment_intent(cart_id).id
    order = payments.checkout(cart_id)

    _crash(spawn, spec, gateway, "confirm_intent", confirm_payment, order.id)

    crashed = payments.get_order(order.id)
    assert crashed.payment == "unpaid" and not crashed.transactions
    assert crashed.pending is not None and crashed.pending.operation == "confirm"
    assert gateway.intent(intent_id).status == "succeeded"  # the money moved

    retried = workers.apply(run_step, (spec, gateway, None, confirm_payment, order.id))

    assert retried == "paid"
    # The retry learns the lost confirm's outcome from the intent (it succeeded)
    # instead of replaying it: Stripe was asked to confirm once.
    assert gateway.count("confirm_intent") == 1
    assert gateway.count("retrieve_intent") >= 1
    paid = payments.get_order(order.id)
    assert paid.payment == "paid" and paid.pending is None
    assert [(t.kind, t.amount, t.reference) for t in paid.transactions] == [
        ("purchase", 5000, intent_id)
    ]
    with payments.store.transaction() as tx:
        record = tx.get_intent(intent_id)
    assert record is not None and record.order_id == order.id and record.status == "succeeded"
