"""The helpers the refund tests share (tests/unit/test_refund_keys.py,
test_attack_5.py, test_attack_6.py): a paid order on the fake, behind a
FaultyGateway that faults only when told to, and a gateway whose request
lands late."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from cartpay import CartpayError, CartPaymentIntent, GatewayUnavailableError, Order, Store
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway, FaultyGateway
from cartpay.testing._faulty import FaultKind

RETURN_URL = "https://shop.test/return"


def paid_order(payments: CartPaymentIntent, amount: int = 1000) -> Order:
    """A one-item order of ``amount``, paid by card."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=amount)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    order = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert order.payment == "paid"
    return order


def faulty_shop(
    store: Store | None = None,
) -> tuple[FakeStripeGateway, FaultyGateway[FakeStripeGateway], CartPaymentIntent]:
    """The fake, a FaultyGateway over it (no faults until :func:`fail_next`),
    and a façade over both and ``store`` (a MemoryStore by default)."""
    fake = FakeStripeGateway()
    gateway = FaultyGateway(fake, seed=1, rate=0.0)
    payments = CartPaymentIntent(
        return_url=RETURN_URL,
        gateway=gateway,
        store=store if store is not None else MemoryStore(),
    )
    return fake, gateway, payments


def fail_next(gateway: FaultyGateway[FakeStripeGateway], kind: FaultKind) -> None:
    """Every call fails with ``kind`` until ``gateway.rate = 0.0``."""
    gateway.rate, gateway.faults = 1.0, (kind,)


def refunded_at_stripe(fake: FakeStripeGateway, order: Order) -> list[int]:
    """The amounts of the order's intent's refunds that succeeded at the fake."""
    assert order.intent_id is not None
    return [r.amount for r in fake.refunds(order.intent_id) if r.status == "succeeded"]


class LateLandingGateway:
    """Delegates to ``inner``; ``create_refund`` once (``hold_next``) times out
    on the client while the request is still on its way: it reaches Stripe
    later (``land()``). That is what a read timeout is on a real network."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hold_next = False
        self.in_flight: list[Callable[[], object]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_refund(self, intent_id: str, **kwargs: Any) -> object:
        if self.hold_next:
            self.hold_next = False
            self.in_flight.append(lambda: self.inner.create_refund(intent_id, **kwargs))
            raise GatewayUnavailableError("read timeout after 30 s; the request may still land")
        return self.inner.create_refund(intent_id, **kwargs)

    def land(self) -> None:
        """The held requests reach Stripe, in order (their answers go nowhere)."""
        while self.in_flight:
            with contextlib.suppress(CartpayError):
                self.in_flight.pop(0)()


def keyed(order: Order, key: str) -> list[int]:
    """The amounts of the order's refunds recorded under the host's ``key``."""
    return [t.amount for t in order.transactions if t.idempotency_key == key]


def deliver(payments: CartPaymentIntent, fake: FakeStripeGateway, since: int = 0) -> None:
    """Deliver the fake's events from the ``since``-th on, in order."""
    for body, header in fake.events()[since:]:
        payments.handle_webhook(body, header)
