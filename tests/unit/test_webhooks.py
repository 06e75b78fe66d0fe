"""handle_webhook: each delivery verified, applied once, in any order (docs/design.md, rule 8)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from cartpay import (
    CartPaymentIntent,
    IntentOptions,
    Order,
    WebhookPayloadError,
    WebhookSignatureError,
)
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway

from ..signing import signer

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

SECRET = "whsec_unit"


sign = signer(SECRET)


def event(
    event_type: str, obj: dict[str, Any], event_id: str = "evt_1", livemode: bool = False
) -> bytes:
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "livemode": livemode,
        "created": int(time.time()),
        "data": {"object": obj},
    }
    return json.dumps(body).encode()


def events_for(fake: FakeStripeGateway, intent_id: str) -> list[tuple[bytes, str]]:
    found = []
    for payload, header in fake.events():
        obj = json.loads(payload)["data"]["object"]
        if intent_id in (obj.get("id"), obj.get("payment_intent")):
            found.append((payload, header))
    return found


@pytest.fixture
def confirmed_remotely(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> Order:
    """An order whose intent the browser confirmed; cartpay has not looked yet."""
    order = make_order()
    fake.confirm_intent(
        order.intent_id or "",
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    return order


def test_succeeded_event_pays_the_order(
    payments: CartPaymentIntent, fake: FakeStripeGateway, confirmed_remotely: Order
) -> None:
    payload, header = events_for(fake, confirmed_remotely.intent_id or "")[-1]
    result = payments.handle_webhook(payload, header)
    assert (result.event_type, result.action, result.order_id) == (
        "payment_intent.succeeded",
        "applied",
        confirmed_remotely.id,
    )
    order = payments.get_order(confirmed_remotely.id)
    assert (order.status, order.payment) == ("complete", "paid")
    assert [t.kind for t in order.transactions] == ["purchase"]


def test_replayed_event_is_a_duplicate(
    payments: CartPaymentIntent, fake: FakeStripeGateway, confirmed_remotely: Order
) -> None:
    payload, header = events_for(fake, confirmed_remotely.intent_id or "")[-1]
    payments.handle_webhook(payload, header)
    before = payments.get_order(confirmed_remotely.id)
    again = payments.handle_webhook(payload, sign(payload))  # a retry carries a new signature
    assert again.action == "duplicate"
    assert payments.get_order(confirmed_remotely.id) == before


def test_events_in_reverse_order_converge(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    fake.confirm_intent(
        order.intent_id or "",
        payment_method="pm_card_processing",
        return_url="https://shop.test/return",
        idempotency_key="b",
    )
    fake.settle(order.intent_id or "")
    deliveries = events_for(fake, order.intent_id or "")
    assert [json.loads(p)["type"] for p, _ in deliveries] == [
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.succeeded",
    ]
    for payload, header in reversed(deliveries):
        payments.handle_webhook(payload, header)
    order = payments.get_order(order.id)
    assert (order.status, order.payment) == ("complete", "paid")
    assert [(t.kind, t.status) for t in order.transactions] == [("purchase", "complete")]


def test_late_processing_never_undoes_succeeded(
    payments: CartPaymentIntent, fake: FakeStripeGateway, confirmed_remotely: Order
) -> None:
    payments.confirm_order(confirmed_remotely.id)
    snap = fake.intent(confirmed_remotely.intent_id or "")
    late = {
        "id": snap.id,
        "object": "payment_intent",
        "status": "processing",
        "amount": snap.amount,
        "currency": snap.currency,
        "latest_charge": snap.latest_charge,
    }
    payload = event("payment_intent.processing", late, "evt_late")
    assert payments.handle_webhook(payload, sign(payload)).action == "applied"
    order = payments.get_order(confirmed_remotely.id)
    assert (order.status, order.payment) == ("complete", "paid")
    assert [t.status for t in order.transactions] == ["complete"]


def test_same_change_under_two_event_ids_applies_once(
    payments: CartPaymentIntent, fake: FakeStripeGateway, confirmed_remotely: Order
) -> None:
    payload, _ = events_for(fake, confirmed_remotely.intent_id or "")[-1]
    body = json.loads(payload)
    twin = json.dumps({**body, "id": "evt_twin"}).encode()
    assert payments.handle_webhook(payload, sign(payload)).action == "applied"
    assert payments.handle_webhook(twin, sign(twin)).action == "applied"
    assert len(payments.get_order(confirmed_remotely.id).transactions) == 1


def test_webhook_racing_confirm_order_makes_one_transaction(
    payments: CartPaymentIntent, fake: FakeStripeGateway, confirmed_remotely: Order
) -> None:
    payload, header = events_for(fake, confirmed_remotely.intent_id or "")[-1]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            if i % 2:
                payments.handle_webhook(payload, header)
            else:
                payments.confirm_order(confirmed_remotely.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    order = payments.get_order(confirmed_remotely.id)
    assert [(t.kind, t.status) for t in order.transactions] == [("purchase", "complete")]


def test_dashboard_refund_event_shows_up_on_the_order(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    fake.refund_outside(paid_order.intent_id or "", 700)
    deliveries = events_for(fake, paid_order.intent_id or "")
    types = [json.loads(p)["type"] for p, _ in deliveries]
    assert types[-2:] == ["refund.created", "charge.refunded"]
    payments.handle_webhook(*deliveries[-1])  # charge.refunded: re-lists the refunds
    order = payments.get_order(paid_order.id)
    assert (order.payment, order.refunded) == ("partially_refunded", 700)
    payments.handle_webhook(*deliveries[-2])  # refund.created: the same refund, once
    assert payments.get_order(paid_order.id).refunded == 700
    lists = fake.count("list_refunds")
    assert payments.handle_webhook(*deliveries[-1]).action == "duplicate"
    assert fake.count("list_refunds") == lists  # a re-delivery makes no Stripe call


def _refund_event(order: Order, refund_id: str, status: str, event_id: str) -> bytes:
    obj = {
        "id": refund_id,
        "object": "refund",
        "amount": 1000,
        "currency": "usd",
        "payment_intent": order.intent_id,
        "status": status,
        "failure_reason": "declined" if status == "failed" else None,
    }
    return event(f"refund.{'failed' if status == 'failed' else 'updated'}", obj, event_id)


def test_a_refund_that_fails_after_it_succeeded_gives_the_money_back(
    payments: CartPaymentIntent, paid_order: Order
) -> None:
    order = payments.refund_order(paid_order.id, amount=1000)
    assert (order.payment, order.refunded) == ("partially_refunded", 1000)
    refund_id = next(t.reference for t in order.transactions if t.kind == "refund")

    payload = _refund_event(paid_order, refund_id, "failed", "evt_refund_failed")
    assert payments.handle_webhook(payload, sign(payload)).action == "applied"

    order = payments.get_order(paid_order.id)
    refunds = [(t.status, t.code) for t in order.transactions if t.kind == "refund"]
    assert refunds == [("failed", "declined")]
    assert (order.status, order.payment, order.refunded) == ("complete", "paid", 0)
    assert order.refundable == order.captured


def test_a_late_succeeded_refund_event_does_not_revive_a_failed_refund(
    payments: CartPaymentIntent, paid_order: Order
) -> None:
    order = payments.refund_order(paid_order.id, amount=1000)
    refund_id = next(t.reference for t in order.transactions if t.kind == "refund")
    failed = _refund_event(paid_order, refund_id, "failed", "evt_failed")
    stale = _refund_event(paid_order, refund_id, "succeeded", "evt_stale_success")
    payments.handle_webhook(failed, sign(failed))
    payments.handle_webhook(stale, sign(stale))
    order = payments.get_order(paid_order.id)
    assert [t.status for t in order.transactions if t.kind == "refund"] == ["failed"]
    assert (order.payment, order.refunded) == ("paid", 0)


def test_manual_capture_events(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    fake.confirm_intent(
        order.intent_id or "",
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="b",
    )
    payload, header = events_for(fake, order.intent_id or "")[-1]
    assert json.loads(payload)["type"] == "payment_intent.amount_capturable_updated"
    payments.handle_webhook(payload, header)
    assert payments.get_order(order.id).payment == "authorized"


def test_event_for_an_unknown_intent_is_ignored(payments: CartPaymentIntent) -> None:
    obj = {
        "id": "pi_elsewhere",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 100,
        "currency": "usd",
    }
    payload = event("payment_intent.succeeded", obj, "evt_other")
    assert payments.handle_webhook(payload, sign(payload)).action == "ignored"
    assert payments.handle_webhook(payload, sign(payload)).action == "duplicate"


def test_unknown_event_type_is_acknowledged(payments: CartPaymentIntent) -> None:
    payload = event("customer.created", {"id": "cus_1", "object": "customer"}, "evt_cus")
    result = payments.handle_webhook(payload, sign(payload))
    assert (result.action, result.event_type) == ("ignored", "customer.created")


# --- refused deliveries: a typed error, nothing written -------------------------


@pytest.fixture
def good(fake: FakeStripeGateway, confirmed_remotely: Order) -> bytes:
    return events_for(fake, confirmed_remotely.intent_id or "")[-1][0]


def _assert_refused(
    payments: CartPaymentIntent,
    store_state: Callable[[], tuple[object, ...]],
    payload: Any,
    header: Any,
    error: type[Exception],
) -> None:
    state = store_state()
    with pytest.raises(error):
        payments.handle_webhook(payload, header)
    assert store_state() == state


def test_forged_signature(
    payments: CartPaymentIntent, good: bytes, store_state: Callable[[], tuple[object, ...]]
) -> None:
    _assert_refused(
        payments, store_state, good, sign(good, secret="whsec_forger"), WebhookSignatureError
    )


def test_stale_timestamp(
    payments: CartPaymentIntent, good: bytes, store_state: Callable[[], tuple[object, ...]]
) -> None:
    _assert_refused(
        payments,
        store_state,
        good,
        sign(good, timestamp=int(time.time()) - 301),
        WebhookSignatureError,
    )


def test_body_altered_after_signing(
    payments: CartPaymentIntent, good: bytes, store_state: Callable[[], tuple[object, ...]]
) -> None:
    header = sign(good)
    altered = good.replace(b'"amount":6200', b'"amount":1')
    assert altered != good
    _assert_refused(payments, store_state, altered, header, WebhookSignatureError)


def test_second_v1_signature_from_a_rolled_secret(payments: CartPaymentIntent, good: bytes) -> None:
    old = sign(good, secret="whsec_old")
    new = sign(good)
    header = old + ",v1=" + new.split("v1=")[1]
    assert payments.handle_webhook(good, header).action == "applied"


@pytest.mark.parametrize(
    "header", ["", "t=abc,v1=00", "v1=deadbeef", "garbage", "t=1700000000"], ids=repr
)
def test_malformed_headers(
    payments: CartPaymentIntent,
    good: bytes,
    header: str,
    store_state: Callable[[], tuple[object, ...]],
) -> None:
    _assert_refused(payments, store_state, good, header, WebhookSignatureError)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b'{"object": "payment_intent", "id": "pi_1"}',
        b'{"object": "event", "id": "evt_1"}',
    ],
    ids=["not-json", "not-object", "not-event", "no-type"],
)
def test_malformed_payloads(
    payments: CartPaymentIntent, payload: bytes, store_state: Callable[[], tuple[object, ...]]
) -> None:
    _assert_refused(payments, store_state, payload, sign(payload), WebhookPayloadError)


def test_payload_must_be_bytes(
    payments: CartPaymentIntent, good: bytes, store_state: Callable[[], tuple[object, ...]]
) -> None:
    _assert_refused(payments, store_state, good.decode(), sign(good), WebhookPayloadError)


def test_livemode_mismatch(
    payments: CartPaymentIntent, store_state: Callable[[], tuple[object, ...]]
) -> None:
    payload = event(
        "payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"}, livemode=True
    )
    _assert_refused(payments, store_state, payload, sign(payload), WebhookPayloadError)


def test_tolerance_is_configurable(
    fake: FakeStripeGateway, store: MemoryStore, payments: CartPaymentIntent, good: bytes
) -> None:
    relaxed = CartPaymentIntent(
        return_url="https://shop.test/return",
        gateway=fake,
        store=store,
        webhook_tolerance=3600,
    )
    header = sign(good, timestamp=int(time.time()) - 1800)
    assert relaxed.handle_webhook(good, header).action == "applied"


def test_refresh_on_webhook_uses_the_freshest_state(
    fake: FakeStripeGateway, store: MemoryStore, confirmed_remotely: Order
) -> None:
    fresh = CartPaymentIntent(
        return_url="https://shop.test/return",
        gateway=fake,
        store=store,
        refresh_on_webhook=True,
    )
    created = events_for(fake, confirmed_remotely.intent_id or "")[0]
    assert json.loads(created[0])["type"] == "payment_intent.created"
    fresh.handle_webhook(*created)
    assert fresh.get_order(confirmed_remotely.id).payment == "paid"
    retrieves = fake.count("retrieve_intent")
    assert fresh.handle_webhook(*created).action == "duplicate"
    assert fake.count("retrieve_intent") == retrieves


# --- reconcile -------------------------------------------------------------------


def test_reconcile_repairs_an_order_whose_event_never_came(
    fake: FakeStripeGateway, payments: CartPaymentIntent, confirmed_remotely: Order
) -> None:
    assert payments.reconcile(older_than=timedelta(0)).repaired == (confirmed_remotely.id,)
    assert payments.get_order(confirmed_remotely.id).payment == "paid"
    again = payments.reconcile(older_than=timedelta(0))
    assert again.repaired == () and again.checked == ()


def test_reconcile_reports_a_paid_cart_nobody_checked_out(
    fake: FakeStripeGateway, payments: CartPaymentIntent, make_cart: Callable[..., Any]
) -> None:

    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    fake.confirm_intent(
        handle.id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    report = payments.reconcile(older_than=timedelta(0))
    assert [(o.cart_id, o.intent_id, o.amount, o.currency) for o in report.orphaned] == [
        (cart.id, handle.id, 6200, "usd")
    ]
    assert payments.reconcile(older_than=timedelta(hours=1)).orphaned == ()


@pytest.mark.parametrize("status", ["bogus", [1], None], ids=repr)
def test_a_signed_event_with_an_unknown_intent_status_is_refused(
    payments: CartPaymentIntent,
    good: bytes,
    status: object,
    store_state: Callable[[], tuple[object, ...]],
) -> None:
    body = json.loads(good)
    body["data"]["object"]["status"] = status
    payload = json.dumps(body).encode()
    _assert_refused(payments, store_state, payload, sign(payload), WebhookPayloadError)
