"""A refund of all that remains, when other refunds keep landing between its
read and its claim: it reads the order anew a bounded number of times, then
answers a retryable ConcurrencyError (never a loop without end, never an amount
the caller did not pass). The race itself, once, is in tests/unit/test_attack_3.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cartpay import CartPaymentIntent, ConcurrencyError, Order, _workflow
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway


def paid_order(payments: CartPaymentIntent) -> Order:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=1000, quantity=3)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    return payments.confirm_payment(order.id, payment_method="pm_card_visa")


def test_a_remainder_that_keeps_moving_ends_in_a_retryable_conflict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeStripeGateway(redirects=False)
    payments = CartPaymentIntent(gateway=fake, store=MemoryStore())
    order = paid_order(payments)
    reads: list[str] = []

    def always_moved(self: object, order_id: str, *_: object) -> Iterator[object]:
        reads.append(order_id)
        yield from ()  # a flow, as the one it replaces
        raise _workflow._RemainderMoved

    monkeypatch.setattr(_workflow.Workflow, "_refund_once", always_moved)

    with pytest.raises(ConcurrencyError) as caught:
        payments.refund_order(order.id)

    assert reads == [order.id] * _workflow._REMAINDER_READS
    assert caught.value.retryable
    assert order.id in str(caught.value)
    monkeypatch.undo()
    after = payments.get_order(order.id)
    assert after.refunded == 0 and after.pending is None
    assert payments.refund_order(order.id).refunded == 3000  # the retry the error asks for


def test_a_remainder_that_moved_once_is_refunded_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeStripeGateway(redirects=False)
    payments = CartPaymentIntent(gateway=fake, store=MemoryStore())
    order = paid_order(payments)
    real = _workflow.Workflow._refund_once
    calls = 0

    def moved_once(self: _workflow.Workflow[object, object, object], *args: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            payments.refund_order(order.id, 1000)  # lands between the read and the claim
            raise _workflow._RemainderMoved
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_workflow.Workflow, "_refund_once", moved_once)

    done = payments.refund_order(order.id)

    assert calls == 3  # the nested partial refund's own read, then the re-read
    assert done.refunded == done.captured == 3000
    assert sorted(t.amount for t in done.transactions if t.kind == "refund") == [1000, 2000]
