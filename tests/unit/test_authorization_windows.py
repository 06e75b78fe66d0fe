"""Authorization windows (issue 14, point 4): an expiry keeps Stripe's reason on
the cancelled transaction, ``Order.capture_before`` comes from the card charge,
and reconcile reports the authorizations about to lapse (docs/going-live.md,
"Authorization windows")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from cartpay import (
    CartPaymentIntent,
    ExpiringAuthorization,
    IntentOptions,
    Order,
    ValidationError,
)
from cartpay._converter import intent_from_payload
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway
from cartpay.testing._fake import AUTHORIZATION_WINDOW

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

RETURN = "https://shop.test/return"

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
MANUAL = IntentOptions(capture_method="manual")


class Clock:
    """One moment for the façade (``datetime``) and the fake (Unix seconds)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def unix(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeStripeGateway:
    return FakeStripeGateway(webhook_secret="whsec_unit", clock=clock.unix)


@pytest.fixture
def payments(
    make_payments: Callable[..., CartPaymentIntent],
    fake: FakeStripeGateway,
    store: MemoryStore,
    clock: Clock,
) -> CartPaymentIntent:
    return make_payments(return_url=RETURN, gateway=fake, store=store, clock=clock)


def _authorized(payments: CartPaymentIntent, make_order: Callable[..., Order]) -> Order:
    order = make_order(options=MANUAL)
    return payments.confirm_payment(order.id, payment_method="pm_card_visa")


def test_an_authorization_knows_when_it_lapses(
    payments: CartPaymentIntent, make_order: Callable[..., Order]
) -> None:
    order = _authorized(payments, make_order)
    assert order.payment == "authorized"
    assert order.capture_before == NOW + timedelta(seconds=AUTHORIZATION_WINDOW)
    assert order.capture_before is not None and order.capture_before.tzinfo is not None
    # confirm_order re-reads it; the stored order keeps it.
    assert payments.confirm_order(order.id).capture_before == order.capture_before


def test_an_events_copy_does_not_erase_the_deadline(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    """Events carry ``latest_charge`` as an id: no deadline in them, and the one
    the order knows stays."""
    order = _authorized(payments, make_order)
    for payload, header in fake.events():
        payments.handle_webhook(payload, header)
    assert payments.get_order(order.id).capture_before == order.capture_before


def test_capture_before_is_read_from_an_expanded_card_charge() -> None:
    base = {"id": "pi_1", "status": "requires_capture", "amount": 1000, "currency": "usd"}
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_method_details": {"type": "card", "card": {"capture_before": 1772971200}},
    }
    assert intent_from_payload({**base, "latest_charge": charge}).capture_before == 1772971200
    assert intent_from_payload({**base, "latest_charge": "ch_1"}).capture_before is None
    other = {"id": "ch_2", "payment_method_details": {"type": "klarna", "klarna": {}}}
    assert intent_from_payload({**base, "latest_charge": other}).capture_before is None
    odd = {"id": "ch_3", "payment_method_details": {"card": {"capture_before": "soon"}}}
    assert intent_from_payload({**base, "latest_charge": odd}).capture_before is None


def test_an_expiry_keeps_stripes_reason_on_the_voided_authorization(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = _authorized(payments, make_order)
    before = len(fake.events())
    fake.expire_authorization(order.intent_id or "")
    for payload, header in fake.events()[before:]:
        payments.handle_webhook(payload, header)
    expired = payments.get_order(order.id)
    assert (expired.status, expired.payment) == ("cancelled", "unpaid")
    (voided,) = expired.transactions
    assert (voided.kind, voided.status, voided.code) == ("authorize", "cancelled", "expired")


def test_a_merchant_cancel_keeps_its_own_reason(
    payments: CartPaymentIntent, make_order: Callable[..., Order]
) -> None:
    order = _authorized(payments, make_order)
    cancelled = payments.cancel_order(order.id, reason="requested_by_customer")
    (voided,) = cancelled.transactions
    assert (voided.status, voided.code) == ("cancelled", "requested_by_customer")


# ----------------------------------------------------------------- reconcile


def test_reconcile_reports_authorizations_expiring_within_the_window(
    payments: CartPaymentIntent, clock: Clock, make_order: Callable[..., Order]
) -> None:
    first = _authorized(payments, make_order)
    clock.now += timedelta(days=2)
    second = _authorized(payments, make_order)
    paid = make_order()
    payments.confirm_payment(paid.id, payment_method="pm_card_visa")
    clock.now += timedelta(days=4, hours=12)  # first lapses in 12 h, second in 2 d 12 h

    report = payments.reconcile(older_than=timedelta(0), expiring_within=timedelta(hours=24))
    assert report.expiring == (
        ExpiringAuthorization(
            first.id, first.intent_id or "", NOW + timedelta(days=7), first.total, "usd"
        ),
    )
    wide = payments.reconcile(older_than=timedelta(0), expiring_within=timedelta(days=3))
    assert [e.order_id for e in wide.expiring] == [first.id, second.id]  # soonest first
    assert payments.reconcile(older_than=timedelta(0)).expiring == ()
    # Reporting changes nothing: both are still authorized.
    assert {payments.get_order(o.id).payment for o in (first, second)} == {"authorized"}


def test_reconcile_learns_the_deadline_it_did_not_know(
    make_payments: Callable[..., CartPaymentIntent],
    fake: FakeStripeGateway,
    store: MemoryStore,
    clock: Clock,
) -> None:
    """An authorization made in the browser, known from its event only (no
    deadline): reconcile's re-read expands the charge and reports it."""
    payments = make_payments(return_url=RETURN, gateway=fake, store=store, clock=clock)
    cart = payments.create_cart("usd", options=MANUAL)
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500, quantity=1)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    before = len(fake.events())
    fake.confirm_intent(
        order.intent_id or "", payment_method="pm_card_visa", return_url=RETURN, idempotency_key="b"
    )
    for payload, header in fake.events()[before:]:
        payments.handle_webhook(payload, header)
    assert payments.get_order(order.id).capture_before is None
    clock.now += timedelta(days=6, hours=20)
    report = payments.reconcile(older_than=timedelta(0), expiring_within=timedelta(hours=24))
    assert [e.order_id for e in report.expiring] == [order.id]


@pytest.mark.parametrize("bad", [timedelta(seconds=-1), 3600, "1d", timedelta.max])
def test_a_bad_window_is_refused_before_anything(
    payments: CartPaymentIntent, fake: FakeStripeGateway, bad: object
) -> None:
    calls = len(fake.requests)
    with pytest.raises(ValidationError) as caught:
        payments.reconcile(expiring_within=bad)  # type: ignore[arg-type]
    assert caught.value.field == "expiring_within"
    assert len(fake.requests) == calls
