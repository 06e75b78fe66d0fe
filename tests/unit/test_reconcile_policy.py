"""reconcile's progress across runs and the host's abandonment policy
(docs/money.md, "Reconcile"): what it cancels, what it gives back, and what it
leaves alone."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from cartpay import CartPaymentIntent, ValidationError
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shop(fake: FakeStripeGateway, store: MemoryStore, clock: Clock) -> CartPaymentIntent:
    return CartPaymentIntent(
        return_url="https://shop.test/return", gateway=fake, store=store, clock=clock
    )


def _cart_with_intent(shop: CartPaymentIntent, amount: int = 1000) -> tuple[str, str]:
    cart = shop.create_cart("usd")
    shop.add_item(cart.id, sku="tee", name="Tee", unit_amount=amount)
    return cart.id, shop.create_payment_intent(cart.id).id


def _browser_pays(fake: FakeStripeGateway, intent_id: str) -> None:
    fake.confirm_intent(
        intent_id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key=f"browser-{uuid.uuid4()}",
    )


def test_abandoned_orders_and_intents_that_took_no_money_are_cancelled(
    shop: CartPaymentIntent, fake: FakeStripeGateway, clock: Clock
) -> None:
    cart_id, _ = _cart_with_intent(shop)
    order = shop.checkout(cart_id)
    _, open_intent = _cart_with_intent(shop)  # a cart nobody checked out
    clock.now += timedelta(days=2)
    report = shop.reconcile(abandon_after=timedelta(days=1))
    assert shop.get_order(order.id).status == "cancelled"
    assert fake.intent(order.intent_id or "").status == "canceled"
    assert fake.intent(open_intent).status == "canceled"
    assert (order.id, "cancelled: abandoned, no money taken") in report.actions
    assert (open_intent, "cancelled: abandoned, no money taken") in report.actions


def test_nothing_is_cancelled_before_the_abandonment_age_or_without_a_policy(
    shop: CartPaymentIntent, fake: FakeStripeGateway, clock: Clock
) -> None:
    cart_id, intent_id = _cart_with_intent(shop)
    order = shop.checkout(cart_id)
    clock.now += timedelta(hours=2)
    assert shop.reconcile().actions == ()
    assert shop.reconcile(abandon_after=timedelta(days=1)).actions == ()
    assert shop.get_order(order.id).status == "incomplete"
    assert fake.intent(intent_id).status == "requires_payment_method"


def test_orphaned_money_is_reported_and_given_back_only_when_the_host_opts_in(
    shop: CartPaymentIntent, fake: FakeStripeGateway, clock: Clock
) -> None:
    _, paid = _cart_with_intent(shop, 2500)
    _browser_pays(fake, paid)  # paid in the browser; the cart was never checked out
    clock.now += timedelta(hours=1)
    young = shop.reconcile(abandon_after=timedelta(days=1), refund_orphans=True)
    assert [o.intent_id for o in young.orphaned] == [paid]
    assert fake.refunds(paid) == []  # a checkout may still come: reported only
    clock.now += timedelta(days=2)
    reported = shop.reconcile(abandon_after=timedelta(days=1))
    assert [o.intent_id for o in reported.orphaned] == [paid] and reported.actions == ()
    given = shop.reconcile(abandon_after=timedelta(days=1), refund_orphans=True)
    assert [r.amount for r in fake.refunds(paid)] == [2500]
    assert given.actions and given.actions[0][0] == paid
    assert given.actions[0][1].startswith("refunded: 2500 usd")


def test_progress_across_runs_reaches_every_order(
    shop: CartPaymentIntent, fake: FakeStripeGateway, clock: Clock
) -> None:
    orders = []
    for _ in range(7):
        cart_id, _ = _cart_with_intent(shop)
        orders.append(shop.checkout(cart_id).id)
        clock.now += timedelta(seconds=1)
    clock.now += timedelta(hours=1)
    seen = [shop.reconcile(limit=3).checked for _ in range(3)]
    assert seen[0] == tuple(orders[:3]) and seen[1] == tuple(orders[3:6])
    assert seen[2] == tuple(orders[6:])  # the end: the next run starts over
    assert shop.reconcile(limit=3).checked == tuple(orders[:3])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"abandon_after": timedelta(minutes=1)}, "abandon_after"),
        ({"abandon_after": 3600}, "abandon_after"),
        ({"abandon_after": timedelta.max}, "abandon_after"),
        ({"refund_orphans": 1}, "refund_orphans"),
    ],
)
def test_bad_policies_are_refused_before_any_call(
    shop: CartPaymentIntent, fake: FakeStripeGateway, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        shop.reconcile(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert fake.requests == []
