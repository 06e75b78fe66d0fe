"""Disputes as money movements (issue 14, point 3): a ``dispute`` transaction per
chargeback, ``Order.disputed``, ``Order.refundable`` without the disputed money,
and every ``charge.dispute.*`` event applied idempotently in any order
(docs/going-live.md, "Disputes")."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest

from cartpay import (
    CartPaymentIntent,
    GatewayUnavailableError,
    IllegalStateError,
    InvalidRequestError,
    NotFoundError,
    Order,
    ValidationError,
    WebhookPayloadError,
)
from cartpay._ledger import apply_disputes, transaction_id
from cartpay._models import DisputeSnapshot
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway, FaultyGateway

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

RETURN = "https://shop.test/return"

Events = list[tuple[bytes, str]]


def _new_events(fake: FakeStripeGateway, before: int) -> Events:
    return fake.events()[before:]


def _types(events: Events) -> list[str]:
    return [json.loads(payload)["type"] for payload, _ in events]


def _deliver(payments: CartPaymentIntent, events: Events) -> list[str]:
    return [payments.handle_webhook(payload, header).action for payload, header in events]


def _dispute_of(order: Order) -> tuple[str, str, int]:
    (t,) = [t for t in order.transactions if t.kind == "dispute"]
    return t.status, t.code or "", t.amount


# ----------------------------------------------------------------- the fake


def test_the_fake_plays_a_chargeback_as_stripe_sends_it(
    fake: FakeStripeGateway, paid_order: Order
) -> None:
    intent_id = paid_order.intent_id
    assert intent_id is not None
    before = len(fake.events())
    dispute_id = fake.dispute(intent_id, amount=1000, reason="product_not_received")
    opened = _new_events(fake, before)
    assert _types(opened) == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    obj = json.loads(opened[1][0])["data"]["object"]
    assert obj["object"] == "dispute" and obj["id"] == dispute_id
    assert (obj["payment_intent"], obj["amount"], obj["status"], obj["reason"]) == (
        intent_id,
        1000,
        "needs_response",
        "product_not_received",
    )
    assert obj["charge"] == fake.intent(intent_id).latest_charge
    assert [b["amount"] for b in obj["balance_transactions"]] == [-1000]

    before = len(fake.events())
    won = fake.close_dispute(dispute_id, won=True)
    closed = _new_events(fake, before)
    assert won.status == "won"
    assert _types(closed) == ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
    obj = json.loads(closed[1][0])["data"]["object"]
    assert obj["status"] == "won"
    assert [b["amount"] for b in obj["balance_transactions"]] == [-1000, 1000]
    with pytest.raises(IllegalStateError):
        fake.close_dispute(dispute_id, won=False)  # decided once


def test_a_lost_dispute_sends_only_closed(fake: FakeStripeGateway, paid_order: Order) -> None:
    dispute_id = fake.dispute(paid_order.intent_id or "")
    before = len(fake.events())
    assert fake.close_dispute(dispute_id, won=False).status == "lost"
    assert _types(_new_events(fake, before)) == ["charge.dispute.closed"]
    assert fake.retrieve_dispute(dispute_id).status == "lost"


def test_the_fake_refuses_what_stripe_refuses(
    fake: FakeStripeGateway, paid_order: Order, make_order: Callable[..., Order]
) -> None:
    unpaid = make_order()
    with pytest.raises(IllegalStateError):
        fake.dispute(unpaid.intent_id or "")  # nothing was charged
    intent_id = paid_order.intent_id or ""
    with pytest.raises(InvalidRequestError):
        fake.dispute(intent_id, amount=paid_order.captured + 10)
    fake.dispute(intent_id, amount=500)
    with pytest.raises(IllegalStateError):
        fake.dispute(intent_id)  # a charge is disputed once
    with pytest.raises(InvalidRequestError) as refused:
        fake.create_refund(intent_id, amount=100, reason=None, idempotency_key="k1")
    assert refused.value.code == "charge_disputed"
    with pytest.raises(NotFoundError) as missing:
        fake.retrieve_dispute("du_nope")
    assert missing.value.kind == "dispute"


def test_a_dispute_covers_what_refunds_left(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    payments.refund_order(paid_order.id, 1000)
    dispute_id = fake.dispute(paid_order.intent_id or "")
    assert fake.retrieve_dispute(dispute_id).amount == paid_order.captured - 1000


# ------------------------------------------------------------ the order's view


def test_an_open_chargeback_is_a_pending_dispute_and_not_refundable(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    before = len(fake.events())
    fake.dispute(paid_order.intent_id or "", amount=2000)
    assert _deliver(payments, _new_events(fake, before)) == ["applied", "applied"]
    order = payments.get_order(paid_order.id)
    assert _dispute_of(order) == ("pending", "fraudulent", 2000)
    assert order.disputed == 2000
    assert order.refundable == 0  # Stripe refuses any refund of a charged-back charge
    # Statuses say what the customer paid; the dispute says what it took.
    assert (order.status, order.payment) == ("complete", "paid")


def test_a_lost_dispute_stays_out_of_refundable(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    before = len(fake.events())
    dispute_id = fake.dispute(paid_order.intent_id or "")
    fake.close_dispute(dispute_id, won=False)
    _deliver(payments, _new_events(fake, before))
    order = payments.get_order(paid_order.id)
    assert _dispute_of(order)[0] == "complete"
    assert (order.disputed, order.refundable) == (order.captured, 0)


def test_a_won_dispute_gives_the_money_back(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    before = len(fake.events())
    dispute_id = fake.dispute(paid_order.intent_id or "")
    fake.close_dispute(dispute_id, won=True)
    _deliver(payments, _new_events(fake, before))
    order = payments.get_order(paid_order.id)
    assert _dispute_of(order)[0] == "cancelled"
    assert (order.disputed, order.refundable) == (0, order.captured)
    done = payments.refund_order(order.id, 500)  # refunds work again
    assert done.refunded == 500


def test_a_refund_above_refundable_is_refused_before_any_call(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    paid_order: Order,
    store_state: Callable[[], tuple[object, ...]],
) -> None:
    before = len(fake.events())
    dispute_id = fake.dispute(paid_order.intent_id or "", amount=4000)
    _deliver(payments, _new_events(fake, before))
    order = payments.get_order(paid_order.id)
    state, calls = store_state(), fake.count("create_refund")
    with pytest.raises(ValidationError) as too_much:
        payments.refund_order(order.id, order.refundable + 10)
    assert (too_much.value.field, too_much.value.rule) == ("amount", "refundable")
    assert "disputed 4000" in str(too_much.value)
    assert (store_state(), fake.count("create_refund")) == (state, calls)
    # Lost: still out of refundable.
    fake.close_dispute(dispute_id, won=False)
    _deliver(payments, fake.events()[-1:])
    lost = payments.get_order(order.id)
    assert (lost.disputed, lost.refundable) == (4000, 0)


def test_nothing_left_to_refund_names_the_rule(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    before = len(fake.events())
    fake.close_dispute(fake.dispute(paid_order.intent_id or ""), won=False)
    _deliver(payments, _new_events(fake, before))
    calls = fake.count("create_refund")
    with pytest.raises(ValidationError) as nothing:
        payments.refund_order(paid_order.id)
    assert (nothing.value.field, nothing.value.rule) == ("amount", "refundable")
    assert "nothing is left to refund" in str(nothing.value)
    assert fake.count("create_refund") == calls


# ------------------------------------------------------- any order, any number


def _paid() -> tuple[CartPaymentIntent, FakeStripeGateway, Order]:
    """A fresh façade, fake and order paid server-side."""
    fake = FakeStripeGateway(webhook_secret="whsec_unit")
    payments = CartPaymentIntent(return_url=RETURN, gateway=fake, store=MemoryStore())
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500, quantity=2)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    return payments, fake, payments.confirm_payment(order.id, payment_method="pm_card_visa")


@pytest.mark.parametrize("won", [True, False], ids=["won", "lost"])
def test_every_order_of_the_events_ends_the_same(won: bool) -> None:
    """Each permutation of a dispute's events (created, funds_withdrawn, closed,
    and funds_reinstated when won), each delivered twice, on a fresh order: the
    same transaction at the end."""
    expected = ("cancelled" if won else "complete", "fraudulent", 1500)
    for permutation in itertools.permutations(range(4 if won else 3)):
        payments, fake, order = _paid()
        before = len(fake.events())
        fake.close_dispute(fake.dispute(order.intent_id or "", amount=1500), won=won)
        events = _new_events(fake, before)
        shuffled = [events[i] for i in permutation]
        actions = _deliver(payments, shuffled + shuffled)
        assert actions == ["applied"] * len(shuffled) + ["duplicate"] * len(shuffled)
        assert _dispute_of(payments.get_order(order.id)) == expected, permutation


def test_a_dispute_before_the_payments_event_converges(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    """The customer paid in the browser; the dispute's news comes before the
    payment's: the order records the dispute, then the payment, and ends paid
    with the disputed money out of refundable."""
    order = make_order()
    intent_id = order.intent_id or ""
    before = len(fake.events())
    fake.confirm_intent(
        intent_id, payment_method="pm_card_visa", return_url=RETURN, idempotency_key="browser"
    )
    paid_events = _new_events(fake, before)
    before = len(fake.events())
    fake.dispute(intent_id, amount=1000)
    dispute_events = _new_events(fake, before)
    _deliver(payments, dispute_events)
    early = payments.get_order(order.id)
    assert (early.payment, early.disputed) == ("unpaid", 1000)
    _deliver(payments, paid_events)
    done = payments.get_order(order.id)
    assert (done.payment, done.disputed, done.refundable) == ("paid", 1000, 0)


def test_an_event_that_does_not_name_its_intent_is_read_again(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    """A dispute copy without ``payment_intent`` (an older or thin payload): the
    dispute is re-read from the gateway, once; a re-delivery makes no call."""
    before = len(fake.events())
    dispute_id = fake.dispute(paid_order.intent_id or "", amount=700)
    payload, _ = _new_events(fake, before)[0]
    event = json.loads(payload)
    event["id"] = "evt_thin"
    del event["data"]["object"]["payment_intent"]
    thin, header = fake.sign(json.dumps(event).encode())
    result = payments.handle_webhook(thin, header)
    assert (result.action, result.order_id) == ("applied", paid_order.id)
    assert fake.count("retrieve_dispute") == 1
    assert _dispute_of(payments.get_order(paid_order.id)) == ("pending", "fraudulent", 700)
    assert payments.handle_webhook(thin, header).action == "duplicate"
    assert fake.count("retrieve_dispute") == 1
    assert fake.retrieve_dispute(dispute_id).amount == 700


def test_refresh_on_webhook_reads_the_dispute_instead_of_the_copy(
    make_payments: Callable[..., CartPaymentIntent],
    fake: FakeStripeGateway,
    make_order: Callable[..., Order],
) -> None:
    payments = make_payments(
        return_url=RETURN,
        gateway=fake,
        store=MemoryStore(),
        refresh_on_webhook=True,
    )
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500, quantity=2)
    payments.create_payment_intent(cart.id)
    order = payments.confirm_payment(payments.checkout(cart.id).id, payment_method="pm_card_visa")
    before = len(fake.events())
    dispute_id = fake.dispute(order.intent_id or "")
    created = _new_events(fake, before)[0]
    fake.close_dispute(dispute_id, won=False)
    # The stale "needs_response" copy is delivered, the gateway says "lost".
    assert _deliver(payments, [created]) == ["applied"]
    assert _dispute_of(payments.get_order(order.id))[0] == "complete"
    assert fake.count("retrieve_dispute") == 1


def test_an_inquiry_takes_no_money(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    """``warning_*`` statuses (an inquiry before any chargeback) and ``prevented``
    record nothing: the order can still be refunded (which settles an inquiry)."""
    for n, status in enumerate(("warning_needs_response", "warning_closed", "prevented")):
        obj = {
            "id": "du_inquiry",
            "object": "dispute",
            "amount": paid_order.captured,
            "currency": "usd",
            "payment_intent": paid_order.intent_id,
            "status": status,
            "reason": "fraudulent",
        }
        event = {
            "id": f"evt_inquiry{n}",
            "object": "event",
            "type": "charge.dispute.created",
            "livemode": False,
            "created": 1,
            "data": {"object": obj},
        }
        payload, header = fake.sign(json.dumps(event).encode())
        assert payments.handle_webhook(payload, header).action == "applied"
    order = payments.get_order(paid_order.id)
    assert order.transactions == paid_order.transactions
    assert (order.disputed, order.refundable) == (0, order.captured)


def test_a_dispute_of_an_unknown_intent_is_ignored(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    event = {
        "id": "evt_foreign",
        "object": "event",
        "type": "charge.dispute.closed",
        "livemode": False,
        "created": 1,
        "data": {
            "object": {
                "id": "du_foreign",
                "object": "dispute",
                "amount": 100,
                "currency": "usd",
                "payment_intent": "pi_someone_else",
                "status": "lost",
            }
        },
    }
    payload, header = fake.sign(json.dumps(event).encode())
    assert payments.handle_webhook(payload, header).action == "ignored"


def test_a_malformed_dispute_is_a_payload_error(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    event = {
        "id": "evt_bad",
        "object": "event",
        "type": "charge.dispute.updated",
        "data": {"object": {"id": "du_1", "object": "dispute", "status": None}},
    }
    payload, header = fake.sign(json.dumps(event).encode())
    with pytest.raises(WebhookPayloadError):
        payments.handle_webhook(payload, header)


def test_the_ledger_is_monotonic() -> None:
    """Pure: a late "needs_response" never reopens a decided dispute; a lost one
    won on appeal is reinstated; another intent's dispute is not this order's."""
    order = Order("ord_1", "cart_1", "usd", 5000, (), "pi_1")

    def at(status: str, intent: str = "pi_1") -> DisputeSnapshot:
        return DisputeSnapshot("du_1", intent, 5000, "usd", status, "general")

    lost = apply_disputes(order, [at("needs_response"), at("lost")])
    assert [t.status for t in lost.transactions] == ["complete"]
    assert lost.transactions[0].id == transaction_id("du_1", "dispute")
    assert apply_disputes(lost, [at("under_review")]) is lost
    appealed = apply_disputes(lost, [at("won")])
    assert [t.status for t in appealed.transactions] == ["cancelled"]
    assert apply_disputes(appealed, [at("lost"), at("needs_response")]) is appealed
    assert apply_disputes(order, [at("lost", "pi_other")]) is order
    assert apply_disputes(order, [at("some_new_status")]) is order


def test_a_dispute_read_through_faults_is_retryable(
    fake: FakeStripeGateway, paid_order: Order
) -> None:
    dispute_id = fake.dispute(paid_order.intent_id or "")
    faulty = FaultyGateway(fake, seed=1, rate=1.0, faults=["server_error"])
    with pytest.raises(GatewayUnavailableError) as caught:
        faulty.retrieve_dispute(dispute_id)
    assert caught.value.retryable
    assert [f.operation for f in faulty.injected] == ["retrieve_dispute"]
    with faulty.quiet():
        assert faulty.retrieve_dispute(dispute_id).id == dispute_id
