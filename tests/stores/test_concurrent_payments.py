"""Eight workers race on one cart or order through the façade, on real databases.

Runs on SQLite with threads (one shared store) and with spawned processes, and on
PostgreSQL with spawned processes; the processes share one FakeStripeGateway
through a manager proxy, so its request counts cover every worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.pool import Pool

import pytest
from attrs import define

from cartpay import CartpayError, CartPaymentIntent, Store
from cartpay.testing import FakeStripeGateway
from tests.stores.store_workers import (
    GatewayServer,
    Step,
    StoreSpec,
    checkout,
    checkout_consuming,
    confirm_order,
    confirm_order_once,
    create_intent,
    payments_over,
    run_step,
    shared_gateway,
)

WORKERS = 8


@define
class Race:
    """A façade for setting up and checking, and ``run`` to race 8 workers."""

    payments: CartPaymentIntent
    gateway: FakeStripeGateway
    run: Callable[[Step, list[str]], list[str]]
    """``run(step, args)``: worker i runs ``step(payments, args[i])``, all at once."""


def _threads(store: Store, gateway: FakeStripeGateway) -> Callable[[Step, list[str]], list[str]]:
    def run(step: Step, args: list[str]) -> list[str]:
        barrier = threading.Barrier(len(args))

        def one(arg: str) -> str:
            payments = payments_over(gateway, store)
            barrier.wait(timeout=30)
            try:
                return step(payments, arg)
            except CartpayError as exc:
                return f"error:{type(exc).__name__}:{exc}"

        with ThreadPoolExecutor(WORKERS) as pool:
            return list(pool.map(one, args))

    return run


def _processes(
    spec: StoreSpec,
    gateway: FakeStripeGateway,
    server: GatewayServer,
    pool: Pool,
    *,
    twins: bool = False,
) -> Callable[[Step, list[str]], list[str]]:
    """``twins``: every other worker drives the async façade over the async store."""

    def run(step: Step, args: list[str]) -> list[str]:
        barrier = server.Barrier(len(args))
        calls = [
            (spec, gateway, barrier, step, arg, "async" if twins and i % 2 == 0 else "sync")
            for i, arg in enumerate(args)
        ]
        return pool.starmap_async(run_step, calls).get(timeout=60)

    return run


@pytest.fixture(
    params=[
        "sqlite-threads",
        "sqlite-processes",
        pytest.param("postgres-processes", marks=pytest.mark.postgres),
        # Four processes on AsyncCartPaymentIntent and AsyncPostgresStore racing
        # four on the sync façade: the same convergence (issue 15).
        pytest.param("postgres-processes-twins", marks=pytest.mark.postgres),
    ]
)
def race(request: pytest.FixtureRequest) -> Iterator[Race]:
    kind: str = request.param
    spec: StoreSpec = request.getfixturevalue(
        "postgres_spec" if kind.startswith("postgres") else "sqlite_spec"
    )
    store = spec.open()
    try:
        if kind.endswith("threads"):
            gateway = FakeStripeGateway()
            run = _threads(store, gateway)
        else:
            server: GatewayServer = request.getfixturevalue("gateway_server")
            gateway = shared_gateway(server)
            workers = request.getfixturevalue("workers")
            run = _processes(spec, gateway, server, workers, twins=kind.endswith("twins"))
        yield Race(payments_over(gateway, store), gateway, run)
    finally:
        store.close()


def _cart(payments: CartPaymentIntent) -> str:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee-m", name="T-shirt", unit_amount=2500, quantity=2)
    return cart.id


def _pay_at_the_gateway(race: Race, intent_id: str) -> None:
    """The customer pays in the browser: the intent succeeds, cartpay doesn't know yet."""
    race.gateway.confirm_intent(
        intent_id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )


def test_concurrent_confirms_record_one_payment(race: Race) -> None:
    cart_id = _cart(race.payments)
    intent_id = race.payments.create_payment_intent(cart_id).id
    order = race.payments.checkout(cart_id)
    _pay_at_the_gateway(race, intent_id)

    results = race.run(confirm_order, [order.id] * WORKERS)

    assert results == ["paid"] * WORKERS
    paid = race.payments.get_order(order.id)
    assert paid.payment == "paid" and paid.status == "complete"
    assert [(t.kind, t.amount, t.reference) for t in paid.transactions] == [
        ("purchase", 5000, intent_id)
    ]
    assert race.gateway.count("retrieve_intent") == WORKERS
    assert race.gateway.count("confirm_intent") == 1  # only the browser's


def test_concurrent_creates_make_one_intent(race: Race) -> None:
    cart_id = _cart(race.payments)

    results = race.run(create_intent, [cart_id] * WORKERS)

    intent_ids = race.gateway.intent_ids()
    assert len(intent_ids) == 1
    assert results == intent_ids * WORKERS
    assert race.gateway.count("create_intent") == 1
    cart = race.payments.get_cart(cart_id)
    assert cart.payment_intent_id == intent_ids[0] and cart.pending is None
    with race.payments.store.transaction() as tx:
        record = tx.get_intent(intent_ids[0])
    assert record is not None and record.cart_id == cart_id and record.amount == 5000


def test_concurrent_checkouts_of_one_cart_make_one_order(race: Race) -> None:
    """Issue 16: a double click, a retry or racing checkouts get the one order (no 404)."""
    cart_id = _cart(race.payments)
    intent_id = race.payments.create_payment_intent(cart_id).id

    results = race.run(checkout_consuming, [cart_id] * WORKERS)

    made = race.payments.orders_for_cart(cart_id)
    assert [o.id for o in made] == [results[0]]
    assert results == [made[0].id] * WORKERS
    assert made[0].intent_id == intent_id
    assert race.payments.checkout(cart_id) == made[0]  # and a retry later on
    assert race.gateway.count("create_intent") == 1


def test_concurrent_checkouts_of_a_kept_cart_pay_once(race: Race) -> None:
    cart_id = _cart(race.payments)
    intent_id = race.payments.create_payment_intent(cart_id).id

    order_ids = race.run(checkout, [cart_id] * WORKERS)
    _pay_at_the_gateway(race, intent_id)
    results = race.run(confirm_order_once, order_ids)

    assert len(set(order_ids)) == WORKERS
    assert sorted(results).count("paid") == 1
    assert set(results) <= {"paid", "intent_used", "unpaid"}
    with race.payments.store.transaction() as tx:
        orders = tx.orders_for_intent(intent_id)
        record = tx.get_intent(intent_id)
    assert sorted(o.id for o in orders) == sorted(order_ids)
    paid = [o for o in orders if o.payment != "unpaid"]
    assert len(paid) == 1 and paid[0].payment == "paid" and len(paid[0].transactions) == 1
    assert all(not o.transactions and o.flag is None for o in orders if o is not paid[0])
    assert record is not None and record.order_id == paid[0].id
    assert results[order_ids.index(paid[0].id)] == "paid"
