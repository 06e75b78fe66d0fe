"""What the concurrency and crash tests run in each thread or spawned process.

Importable without pytest (spawned children import it by name). A worker opens
its own store from a :class:`StoreSpec`, builds a ``CartPaymentIntent`` over the
shared gateway (a ``FakeStripeGateway`` or its proxy from :class:`GatewayServer`),
waits at the barrier so all workers race, runs one scenario step and returns a
plain string (cartpay errors do not cross process boundaries).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.managers import SyncManager
from typing import Any, Protocol, cast

from attrs import frozen

from cartpay import (
    AsyncStore,
    CartpayError,
    CartPaymentIntent,
    IntentAlreadyUsedError,
    PaymentGateway,
    Store,
)
from cartpay.testing import FakeStripeGateway

LEASE = timedelta(seconds=1)
WAIT = timedelta(seconds=15)


class GatewayServer(SyncManager):
    """A manager process holding FakeStripeGateway instances shared by all workers
    (``server.FakeStripeGateway()`` returns a proxy with the port methods and ``count``)."""


GatewayServer.register("FakeStripeGateway", FakeStripeGateway)


def shared_gateway(server: GatewayServer) -> FakeStripeGateway:
    """A new FakeStripeGateway in the manager process, seen through its proxy."""
    proxy: FakeStripeGateway = getattr(server, "FakeStripeGateway")()  # noqa: B009
    return proxy


class Barrier(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


@frozen
class StoreSpec:
    """How a worker opens the store under test (picklable)."""

    kind: str  # "sqlite" or "postgres"
    target: str  # the file path or the DSN
    schema: str | None = None

    def open(self) -> Store:
        if self.kind == "sqlite":
            from cartpay.stores.sqlite import SQLiteStore

            return SQLiteStore(self.target)
        from cartpay.stores.postgres import PostgresStore

        return PostgresStore(self.target, schema=self.schema, max_size=2)

    def open_async(self) -> AsyncStore:
        """The async twin of :meth:`open`'s store, on the same database."""
        if self.kind == "sqlite":
            from cartpay.stores.sqlite import AsyncSQLiteStore

            return AsyncSQLiteStore(self.target)
        from cartpay.stores.postgres import AsyncPostgresStore

        return AsyncPostgresStore(self.target, schema=self.schema, max_size=2)


def payments_over(gateway: PaymentGateway, store: Store) -> CartPaymentIntent:
    return CartPaymentIntent(
        return_url="https://shop.test/return", gateway=gateway, store=store, lease=LEASE, wait=WAIT
    )


# ------------------------------------------------------------------ scenario steps


def create_intent(payments: CartPaymentIntent, cart_id: str) -> str:
    """The cart's intent id."""
    return payments.create_payment_intent(cart_id).id


def confirm_order(payments: CartPaymentIntent, order_id: str) -> str:
    """The order's payment status after confirming."""
    return payments.confirm_order(order_id).payment


def checkout(payments: CartPaymentIntent, cart_id: str) -> str:
    """The id of a new order for the cart, which keeps its intent."""
    return payments.checkout(cart_id, keep_cart=True).id


def checkout_consuming(payments: CartPaymentIntent, cart_id: str) -> str:
    """The id of the order a consuming checkout of the cart returns."""
    return payments.checkout(cart_id).id


def confirm_order_once(payments: CartPaymentIntent, order_id: str) -> str:
    """The order's payment status, or ``intent_used`` (docs/design.md, rule 6)."""
    try:
        return payments.confirm_order(order_id).payment
    except IntentAlreadyUsedError:
        return "intent_used"


def confirm_payment(payments: CartPaymentIntent, order_id: str) -> str:
    return payments.confirm_payment(order_id, payment_method="pm_card_visa").payment


Step = Callable[[CartPaymentIntent, str], str]


def run_step(
    spec: StoreSpec,
    gateway: PaymentGateway,
    barrier: Barrier | None,
    step: Step,
    arg: str,
    twin: str = "sync",
) -> str:
    """Open the store, wait for the others, run ``step``; ``error:<name>`` on a cartpay error.
    ``twin="async"``: the step drives AsyncCartPaymentIntent over the async twin of
    the store (and the shared gateway seen as coroutines), on an event loop of
    this worker's own (tests/twins.py)."""
    if twin == "async":
        return _run_step_async(spec, gateway, barrier, step, arg)
    store = spec.open()
    try:
        payments = payments_over(gateway, store)
        if barrier is not None:
            barrier.wait(timeout=30)
        try:
            return step(payments, arg)
        except CartpayError as exc:
            return f"error:{type(exc).__name__}:{exc}"
    finally:
        store.close()


def _run_step_async(
    spec: StoreSpec, gateway: PaymentGateway, barrier: Barrier | None, step: Step, arg: str
) -> str:
    from cartpay import AsyncCartPaymentIntent
    from cartpay.testing import AsyncFakeStripeGateway
    from tests.twins import Blocking, event_loop, wait

    store = spec.open_async()
    with event_loop() as loop:
        try:
            twin = AsyncCartPaymentIntent(
                return_url="https://shop.test/return",
                gateway=AsyncFakeStripeGateway(cast(FakeStripeGateway, gateway)),
                store=store,
                lease=LEASE,
                wait=WAIT,
            )
            payments = cast(CartPaymentIntent, Blocking(twin, loop))
            if barrier is not None:
                barrier.wait(timeout=30)
            try:
                return step(payments, arg)
            except CartpayError as exc:
                return f"error:{type(exc).__name__}:{exc}"
        finally:
            wait(loop, store.close())


# ------------------------------------------------------------------- crashes


#: The exit status of a process killed by :class:`CrashAfterCall`.
CRASH_EXIT = 17


class CrashAfterCall:
    """A gateway that makes the real call, then kills the process before the
    façade can record the outcome (``os._exit``: no cleanup, no finally)."""

    def __init__(self, gateway: PaymentGateway, operation: str) -> None:
        self._gateway = gateway
        self._operation = operation

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._gateway, name)
        if name != self._operation:
            return found

        def call_then_crash(*args: Any, **kwargs: Any) -> Any:
            found(*args, **kwargs)
            os._exit(CRASH_EXIT)

        return call_then_crash


def crash_during(
    spec: StoreSpec, gateway: PaymentGateway, operation: str, step: Step, arg: str
) -> None:
    """Run ``step`` with a gateway that exits the process right after ``operation``."""
    store = spec.open()
    crashing: Any = CrashAfterCall(gateway, operation)
    step(payments_over(crashing, store), arg)
    store.close()
    raise AssertionError(f"{operation} was never called")
