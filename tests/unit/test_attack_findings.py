"""Regression tests from an adversarial review of issue 12's money-safety work.

Each test started as a finding against cartpay's public API: a scenario in which
money moved in a way cartpay promises it cannot (a double refund, a paid order
for refunded money, a voided authorization, a swallowed payment). Each docstring
says what was found and what holds now.

Two tests (the reconcile/checkout race and the webhook/checkout race) pin an
interleaving deterministically with a thin delegating wrapper around the shipped
``FakeStripeGateway`` / ``MemoryStore``: a host-supplied gateway or store is a
public extension point (the ports), and the wrapper only runs another public
call at one moment, as a concurrent worker would.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest

from cartpay import (
    Cart,
    CartpayError,
    CartPaymentIntent,
    IllegalStateError,
    IntentHandle,
    IntentOptions,
    IntentSnapshot,
    Order,
    StoreTransaction,
)
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway, FaultyGateway
from cartpay.testing._faulty import FaultKind

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

# ----------------------------------------------------------------- helpers


def _shop() -> tuple[FakeStripeGateway, CartPaymentIntent]:
    fake = FakeStripeGateway()
    return fake, CartPaymentIntent(
        return_url="https://shop.test/return", gateway=fake, store=MemoryStore()
    )


def _faulty_shop() -> tuple[FakeStripeGateway, FaultyGateway[FakeStripeGateway], CartPaymentIntent]:
    fake = FakeStripeGateway()
    gateway = FaultyGateway(fake, seed=1, rate=0.0)
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=gateway, store=MemoryStore()
    )
    return fake, gateway, payments


def _fail_next(gateway: FaultyGateway[FakeStripeGateway], kind: FaultKind) -> None:
    gateway.rate = 1.0
    gateway.faults = (kind,)


def _no_faults(gateway: FaultyGateway[FakeStripeGateway]) -> None:
    gateway.rate = 0.0


class _Events:
    """Delivers the fake's events to the façade, each once, in order."""

    def __init__(self, fake: FakeStripeGateway, payments: CartPaymentIntent) -> None:
        self.fake, self.payments, self.seen = fake, payments, 0

    def deliver(self) -> None:
        events = self.fake.events()[self.seen :]
        self.seen += len(events)
        for body, signature in events:
            self.payments.handle_webhook(body, signature)


def _browser_pays(fake: FakeStripeGateway, intent_id: str, pm: str = "pm_card_visa") -> None:
    """The customer's browser confirms with the client secret (Payment Element)."""
    fake.confirm_intent(
        intent_id,
        payment_method=pm,
        return_url="https://shop.test/return",
        idempotency_key=f"browser-{intent_id}",
    )


def _cart_with_intent(
    payments: CartPaymentIntent, amount: int = 1000, options: IntentOptions | None = None
) -> tuple[Cart, IntentHandle]:
    cart = payments.create_cart("usd", options=options)
    payments.add_item(cart.id, sku="a", name="A", unit_amount=amount)
    handle = payments.create_payment_intent(cart.id)
    return cart, handle


def _paid_order(payments: CartPaymentIntent, amount: int = 1000) -> tuple[Order, str]:
    cart, handle = _cart_with_intent(payments, amount)
    order = payments.checkout(cart.id)
    order = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert order.payment == "paid"
    return order, handle.id


# ------------------------------------------------------------- the regressions


def test_refund_retried_after_a_lost_answer_and_its_webhook_refunds_once() -> None:
    """Found: a refund of 300 is applied by Stripe but its answer is lost
    (``timeout_after``); Stripe's ``refund.created`` webhook arrives and is
    recorded on the order; the host retries ``refund_order(order, 300)`` as the
    ``retryable`` error tells it to. Settling the pending claim looked for a
    refund of 300 the order did not know yet, found none (the webhook had made
    it known), and made a second refund of 300: 600 back for a 300 refund.

    Now: the retry recognises its own refund; Stripe holds exactly one refund
    of 300 and the order shows 300 refunded.
    """
    fake, gateway, payments = _faulty_shop()
    events = _Events(fake, payments)
    order, intent_id = _paid_order(payments)

    _fail_next(gateway, "timeout_after")
    with pytest.raises(CartpayError) as lost:
        payments.refund_order(order.id, 300)
    assert lost.value.retryable
    _no_faults(gateway)
    events.deliver()  # refund.created / charge.refunded arrive

    payments.refund_order(order.id, 300)  # the host's retry of the same call

    refunds = [r.amount for r in fake.refunds(intent_id) if r.status == "succeeded"]
    assert refunds == [300], f"one refund of 300 asked for, Stripe refunded {refunds}"
    assert payments.get_order(order.id).refunded == 300


def test_dashboard_refund_before_checkout_shows_on_the_order() -> None:
    """Found: the browser pays the cart's intent; before the customer's redirect
    reaches ``checkout`` the money is refunded in the Dashboard (fraud check,
    customer call). The refund events arrived while no order owned the intent
    and were dropped; ``checkout`` made the order from the intent record's
    stored ``succeeded`` snapshot, so it was ``complete/paid`` with
    ``refunded == 0``, and reconcile never re-checked it: goods shipped for
    money given back.

    Now: after checkout and a reconcile run the order is ``refunded`` by the
    1000 Stripe refunded.
    """
    fake, payments = _shop()
    events = _Events(fake, payments)
    cart, handle = _cart_with_intent(payments)
    _browser_pays(fake, handle.id)
    events.deliver()
    fake.refund_outside(handle.id)  # Dashboard refund of everything
    events.deliver()  # refund.created / charge.refunded: no order yet

    order = payments.checkout(cart.id)
    payments.reconcile(older_than=timedelta(0))
    order = payments.get_order(order.id)

    stripe_refunded = sum(r.amount for r in fake.refunds(handle.id) if r.status == "succeeded")
    assert stripe_refunded == 1000
    assert (order.payment, order.refunded) == ("refunded", 1000), (
        f"order says {order.status}/{order.payment}, refunded {order.refunded};"
        f" Stripe refunded {stripe_refunded}"
    )


def test_checkout_after_reconcile_refunded_the_orphan_never_makes_a_paid_order() -> None:
    """Found: ``reconcile(abandon_after=..., refund_orphans=True)`` refunds a
    payment on a cart nobody checked out (as designed); the customer's redirect
    then arrives and ``checkout`` accepted the cart (its intent record said
    ``succeeded``) and returned an order ``complete/paid`` for money cartpay had
    just given back, which nothing repaired.

    Now: checkout of a cart whose payment was refunded either refuses or makes
    an order that shows the refund; never ``paid`` with ``refunded == 0``.
    """
    fake, payments = _shop()
    events = _Events(fake, payments)
    cart, handle = _cart_with_intent(payments)
    _browser_pays(fake, handle.id)
    events.deliver()

    report = payments.reconcile(
        older_than=timedelta(0), abandon_after=timedelta(0), refund_orphans=True
    )
    assert any("refunded" in action for _, action in report.actions)
    events.deliver()

    try:
        order = payments.checkout(cart.id)
    except CartpayError:
        return  # refusing is an acceptable answer
    payments.reconcile(older_than=timedelta(0))
    order = payments.get_order(order.id)
    assert not (order.payment == "paid" and order.refunded == 0), (
        f"order {order.id} is {order.status}/{order.payment} though reconcile refunded"
        f" all {order.total} of its intent"
    )


class _GatewayHook:
    """Delegates to the fake; runs ``on_retrieve`` once right after a retrieve
    (a concurrent request landing while reconcile is between its check and its
    action)."""

    def __init__(self, inner: FakeStripeGateway) -> None:
        self.inner = inner
        self.on_retrieve: Callable[[], object] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def retrieve_intent(self, intent_id: str) -> IntentSnapshot:
        snap = self.inner.retrieve_intent(intent_id)
        hook, self.on_retrieve = self.on_retrieve, None
        if hook is not None:
            hook()
        return snap


def test_reconcile_refund_orphans_racing_checkout_leaves_the_paid_order_alone() -> None:
    """Found: a cart older than ``abandon_after`` was paid in the browser; the
    customer's checkout ran while a reconcile worker with ``refund_orphans=True``
    was between its "no live order holds this intent" check and its refund.
    Checkout returned an order ``complete/paid``; reconcile then refunded the
    whole payment as money "no order owns".

    Now: the orphan check and the refund are one decision, so reconcile never
    refunds an intent an order owns: Stripe holds no refund and the order is
    paid.
    """
    fake = FakeStripeGateway()
    store = MemoryStore()
    shop = CartPaymentIntent(return_url="https://shop.test/return", gateway=fake, store=store)
    hook = _GatewayHook(fake)
    cron = CartPaymentIntent(return_url="https://shop.test/return", gateway=hook, store=store)
    events = _Events(fake, shop)
    cart, handle = _cart_with_intent(shop)
    _browser_pays(fake, handle.id)
    events.deliver()

    made: list[Order] = []
    hook.on_retrieve = lambda: made.append(shop.checkout(cart.id))
    report = cron.reconcile(
        older_than=timedelta(0), abandon_after=timedelta(0), refund_orphans=True
    )
    assert made and made[0].payment == "paid"  # checkout told the host: paid

    refunds = fake.refunds(handle.id)
    assert not refunds, (
        f"reconcile refunded order {made[0].id}'s payment as orphaned: {report.actions}"
    )


def test_delete_cart_refuses_while_the_browser_holds_an_authorization() -> None:
    """Found: manual capture. The browser confirms the cart's intent
    (``requires_capture``: the card is authorized) before its webhook arrives,
    and the host deletes the cart (abandon job, "empty cart" in another tab).
    ``delete_cart`` trusted the stale record (``requires_payment_method``) and
    cancelled the intent, which Stripe allows for ``requires_capture``: the
    authorization was voided, the cart deleted, and no order existed.

    Now: ``delete_cart`` raises ``IllegalStateError`` while an authorization is
    held; the intent stays ``requires_capture`` and the cart can still be
    checked out.
    """
    fake, payments = _shop()
    cart, handle = _cart_with_intent(payments, options=IntentOptions(capture_method="manual"))
    _browser_pays(fake, handle.id)
    assert fake.intent(handle.id).status == "requires_capture"

    with pytest.raises(IllegalStateError):
        payments.delete_cart(cart.id)
    assert fake.intent(handle.id).status == "requires_capture"


def test_refund_retry_is_told_apart_from_a_dashboard_refund_of_the_same_amount() -> None:
    """Found: ``refund_order(order, 300)`` times out before it was sent
    (``timeout_before``: Stripe did nothing). Meanwhile support refunds 300 in
    the Dashboard (its webhook not yet in), and the host retries
    ``refund_order(order, 300)``. Settling the claim sees a refund of 300 the
    order does not know (the Dashboard's), takes it for the host's, and returns
    success without refunding: the host believes its 300 went out on top.

    Now: the retry is the same call, so it sends its refund again under the
    claim's own idempotency key (no guess from the refund list): Stripe makes it
    now, and holds two refunds of 300. (Another call that settles the claim still
    learns its outcome from the list: docs/money.md, "Unknown outcomes".)
    """
    fake, gateway, payments = _faulty_shop()
    order, intent_id = _paid_order(payments)

    _fail_next(gateway, "timeout_before")
    with pytest.raises(CartpayError):
        payments.refund_order(order.id, 300)
    _no_faults(gateway)
    fake.refund_outside(intent_id, 300)  # support, in the Dashboard

    payments.refund_order(order.id, 300)  # returns as if done
    total = sum(r.amount for r in fake.refunds(intent_id) if r.status == "succeeded")
    assert total == 600, f"refund_order(300) reported success; Stripe refunded {total} in all"


def test_refund_with_another_amount_after_a_lost_answer_raises_and_refunds_once() -> None:
    """Found: ``refund_order(order, 300)`` is applied by Stripe and the answer
    is lost; the host retries with a corrected amount, ``refund_order(order,
    500)``. cartpay settled the first claim (it happened) and silently made a
    second refund of 500: 800 in all, though had the first timed out before
    being sent the same two calls gave 500. The outcome hinged on a fact the
    host could not know, and nothing told it.

    Now: the second call raises a typed ``CartpayError``
    (``OperationPendingError``, naming the pending refund of 300) and Stripe
    holds only the 300.
    """
    fake, gateway, payments = _faulty_shop()
    order, intent_id = _paid_order(payments)

    _fail_next(gateway, "timeout_after")
    with pytest.raises(CartpayError):
        payments.refund_order(order.id, 300)
    _no_faults(gateway)

    with pytest.raises(CartpayError):
        payments.refund_order(order.id, 500)
    assert [r.amount for r in fake.refunds(intent_id)] == [300]


class _StoreHook:
    """Delegates to a MemoryStore; runs ``before_transaction`` once, just before
    the next write transaction opens (a webhook worker committing first)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.before_transaction: Callable[[], object] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        hook, self.before_transaction = self.before_transaction, None
        if hook is not None:
            hook()
        return self.inner.transaction()


def test_payment_webhook_landing_during_checkout_leaves_the_order_paid() -> None:
    """Found: the browser pays, and ``payment_intent.succeeded`` is handled by a
    webhook worker while ``checkout`` of that cart runs, after checkout read
    the cart and the intent record (still ``requires_payment_method``) and
    before it inserts the order (threads on one SQLite file hit this in about
    1 run of 3; here the interleaving is pinned). The webhook found no order,
    recorded ``succeeded`` on the intent record only and was deduplicated;
    checkout inserted an ``incomplete/unpaid`` order that stayed unpaid until
    a reconcile run past ``older_than`` (15 min by default).

    Now: webhook and checkout converge in either order: the stored order is
    ``paid`` once the event was handled, without waiting for reconcile.
    """
    fake = FakeStripeGateway()
    store = _StoreHook(MemoryStore())
    payments = CartPaymentIntent(return_url="https://shop.test/return", gateway=fake, store=store)
    events = _Events(fake, payments)
    cart, handle = _cart_with_intent(payments)
    events.deliver()
    _browser_pays(fake, handle.id)

    store.before_transaction = events.deliver  # the webhook commits first
    order = payments.checkout(cart.id)
    payments.reconcile()  # the default run (older_than=15 min)

    stored = payments.get_order(order.id)
    assert stored.payment == "paid", (
        f"Stripe took {fake.intent(handle.id).amount_received}; the event was handled;"
        f" the order is {stored.status}/{stored.payment}"
    )
