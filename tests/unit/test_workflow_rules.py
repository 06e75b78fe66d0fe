"""Every workflow rule of docs/design.md (webhooks aside) with the fake gateway and the
memory store."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from cartpay import (
    AmountMismatchError,
    CardDeclinedError,
    Cart,
    CartPaymentIntent,
    GatewayUnavailableError,
    IllegalStateError,
    IntentAlreadyUsedError,
    IntentOptions,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    NotFoundError,
    Order,
    ValidationError,
)
from cartpay.stores.memory import MemoryStore, _MemoryTransaction
from cartpay.testing import FakeStripeGateway

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

# --- docs/design.md, rule 1: amounts come from the cart, on the server ----------------


def test_intent_amount_is_the_cart_total(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    assert handle.amount == 2500 * 2 + 1200 == fake.intent(handle.id).amount
    assert isinstance(handle.amount, int)


def test_jpy_amounts_are_whole_yen(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart("jpy", items=(("bento", 1200, 3),))
    handle = payments.create_payment_intent(cart.id)
    assert (handle.amount, handle.currency) == (3600, "jpy")


def test_kwd_amounts_need_a_trailing_zero(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart], fake: FakeStripeGateway
) -> None:
    cart = make_cart("kwd", items=(("dates", 5120, 2),))
    assert payments.create_payment_intent(cart.id).amount == 10240
    other = payments.create_cart("kwd")
    with pytest.raises(ValidationError) as info:
        payments.add_item(other.id, sku="x", name="X", unit_amount=5125)
    assert (info.value.field, info.value.rule) == ("unit_amount", "step")


def test_cart_below_the_minimum_charge_is_refused_before_stripe(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart], fake: FakeStripeGateway
) -> None:
    cart = make_cart(items=(("gum", 20, 1),))
    with pytest.raises(ValidationError) as info:
        payments.create_payment_intent(cart.id)
    assert (info.value.field, info.value.rule) == ("amount", "minimum")
    assert fake.requests == []


# --- docs/design.md, rule 2: one live intent per cart ---------------------------------


def test_create_reuses_the_carts_intent(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    first = payments.create_payment_intent(cart.id)
    second = payments.create_payment_intent(cart.id)
    assert first.id == second.id
    assert second.client_secret == first.client_secret
    assert fake.count("create_intent") == 1
    assert fake.count("retrieve_intent") == 1


def test_create_after_cart_change_updates_instead_of_creating(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    first = payments.create_payment_intent(cart.id)
    payments.set_quantity(cart.id, "tee", 5)
    second = payments.create_payment_intent(cart.id)
    assert second.id == first.id
    assert second.amount == 2500 * 5 + 1200
    assert fake.count("create_intent") == 1 and fake.count("update_intent") == 1


def test_create_carries_a_key_derived_from_the_cart(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    (request,) = [r for r in fake.requests if r.operation == "create_intent"]
    assert request.idempotency_key == f"cartpay:cart:{cart.id}:g0:create"


def test_a_canceled_intent_is_replaced_by_a_new_generation(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    first = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id, keep_cart=True)
    fake.cancel_intent(first.id, reason="abandoned", idempotency_key="outside")
    payments.confirm_order(order.id)
    second = payments.create_payment_intent(cart.id)
    assert second.id != first.id
    keys = [r.idempotency_key for r in fake.requests if r.operation == "create_intent"]
    assert keys[-1] == f"cartpay:cart:{cart.id}:g1:create"


class LosesFirstCreate:
    """Delegates to the fake, but the first create's answer is lost after the
    server applied it (a timeout on the way back)."""

    def __init__(self, inner: FakeStripeGateway) -> None:
        self.inner = inner
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_intent(self, params: IntentParams, *, idempotency_key: str) -> IntentSnapshot:
        result = self.inner.create_intent(params, idempotency_key=idempotency_key)
        if not self.lost:
            self.lost = True
            raise GatewayUnavailableError("timed out after the server applied it")
        return result


def test_a_create_whose_outcome_was_lost_is_replayed_with_the_same_key(
    fake: FakeStripeGateway, store: MemoryStore
) -> None:
    flaky = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=LosesFirstCreate(fake), store=store
    )
    cart = flaky.create_cart("usd")
    flaky.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    with pytest.raises(GatewayUnavailableError) as info:
        flaky.create_payment_intent(cart.id)
    assert info.value.retryable
    assert flaky.get_cart(cart.id).pending is not None  # the claim survives, lease released
    handle = flaky.create_payment_intent(cart.id)
    assert fake.intent_ids() == [handle.id]
    assert fake.count("create_intent", replayed=True) == 1
    assert flaky.get_cart(cart.id).payment_intent_id == handle.id
    assert flaky.get_cart(cart.id).pending is None


# --- docs/design.md, rule 3: update only when something changed -----------------------


def test_noop_update_makes_no_stripe_call(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    before = len(fake.requests)
    handle = payments.update_payment_intent(cart.id)
    assert len(fake.requests) == before
    assert handle.client_secret is None and handle.amount == 6200


def test_update_sends_only_the_changed_fields(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart(options=IntentOptions(description="Order", metadata={"a": "1", "b": "2"}))
    payments.create_payment_intent(cart.id)
    payments.set_quantity(cart.id, "mug", 2)
    payments.update_payment_intent(cart.id)
    payments.update_payment_intent(
        cart.id, options=IntentOptions(description="Order", metadata={"a": "1", "c": "3"})
    )
    updates = [r.params for r in fake.requests if r.operation == "update_intent"]
    assert updates == [{"amount": 7400}, {"metadata": {"c": "3", "b": ""}}]
    assert fake.intent(payments.get_cart(cart.id).payment_intent_id or "").metadata == {
        "a": "1",
        "c": "3",
    }


def test_a_kept_cart_changed_while_its_order_pays_gets_its_own_intent(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    make_cart: Callable[..., Cart],
    store: MemoryStore,
) -> None:
    # (Before issue 12 this update was refused; now the order keeps its intent,
    # never repriced, and the kept cart goes on with a new one.)
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id, keep_cart=True)
    payments.confirm_payment(order.id, payment_method="pm_card_processing")
    assert payments.get_order(order.id).status == "processing"
    payments.set_quantity(cart.id, "mug", 3)
    handle = payments.update_payment_intent(cart.id)
    assert handle.id != order.intent_id
    assert fake.intent(handle.id).amount == payments.get_cart(cart.id).total
    assert fake.intent(order.intent_id or "").amount == 6200
    assert fake.count("update_intent") == 0


def test_remote_illegal_state_is_reported_with_the_remote_status(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    fake.confirm_intent(
        handle.id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    payments.set_quantity(cart.id, "mug", 3)
    with pytest.raises(IllegalStateError) as info:
        payments.update_payment_intent(cart.id)
    assert info.value.status == "succeeded"
    assert payments.get_cart(cart.id).pending is None


# --- docs/design.md, rule 4: checkout -------------------------------------------------


def test_checkout_makes_an_unpaid_order_linked_to_the_intent(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    assert (order.status, order.payment, order.total, order.currency) == (
        "incomplete",
        "unpaid",
        6200,
        "usd",
    )
    assert order.payment_intent_id == handle.id
    assert order.items == cart.items
    from cartpay import NotFoundError

    with pytest.raises(NotFoundError):
        payments.get_cart(cart.id)


def test_checkout_syncs_a_stale_intent_first(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    payments.set_quantity(cart.id, "tee", 1)
    order = payments.checkout(cart.id, keep_cart=True)
    assert order.total == fake.intent(handle.id).amount == 3700


# --- docs/design.md, rule 5: confirm order maps the intent ----------------------------


def test_confirm_order_succeeded_is_a_purchase(
    payments: CartPaymentIntent, paid_order: Order
) -> None:
    assert (paid_order.status, paid_order.payment) == ("complete", "paid")
    (txn,) = paid_order.transactions
    assert (txn.kind, txn.status, txn.amount, txn.currency) == ("purchase", "complete", 6200, "usd")
    assert txn.reference == paid_order.intent_id
    assert paid_order.payment_intent_id is None  # linked through the transaction now
    again = payments.confirm_order(paid_order.id)
    assert again == paid_order


def test_confirm_order_requires_capture_is_an_authorization(
    payments: CartPaymentIntent, make_order: Callable[..., Order]
) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    order = payments.confirm_order(order.id)
    assert (order.status, order.payment) == ("processing", "authorized")
    assert [(t.kind, t.status, t.amount) for t in order.transactions] == [
        ("authorize", "complete", 6200)
    ]


def test_confirm_order_processing_is_pending(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    payments.confirm_payment(order.id, payment_method="pm_card_processing")
    order = payments.confirm_order(order.id)
    assert [(t.kind, t.status) for t in order.transactions] == [("purchase", "pending")]
    assert (order.status, order.payment) == ("processing", "unpaid")
    fake.settle(order.intent_id or "")
    order = payments.confirm_order(order.id)
    assert [(t.kind, t.status) for t in order.transactions] == [("purchase", "complete")]
    assert (order.status, order.payment) == ("complete", "paid")


def test_an_asynchronous_payment_failing_at_the_bank_fails_its_pending_attempt(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    payments.confirm_payment(order.id, payment_method="pm_card_processing")
    processing_charge = fake.retrieve_intent(order.intent_id or "").latest_charge

    failed = fake.settle(order.intent_id or "", success=False)
    # Stripe reports the failure on the attempt's own charge, not a new one.
    assert failed.last_payment_error is not None
    assert failed.last_payment_error.charge == processing_charge == failed.latest_charge

    order = payments.confirm_order(order.id)
    assert [(t.kind, t.status, t.code) for t in order.transactions] == [
        ("purchase", "failed", "payment_intent_payment_attempt_failed")
    ]
    assert (order.status, order.payment) == ("incomplete", "failed")


def test_declined_attempt_is_a_failed_transaction_and_the_order_stays_payable(
    payments: CartPaymentIntent, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    with pytest.raises(CardDeclinedError) as info:
        payments.confirm_payment(order.id, payment_method="pm_card_chargeDeclined")
    assert info.value.decline_code == "generic_decline"
    order = payments.get_order(order.id)
    assert (order.status, order.payment) == ("incomplete", "failed")
    assert [(t.kind, t.status, t.code) for t in order.transactions] == [
        ("purchase", "failed", "card_declined")
    ]
    order = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert (order.status, order.payment) == ("complete", "paid")
    assert [t.status for t in order.transactions] == ["failed", "complete"]


def test_authentication_required_then_authenticated(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    order = payments.confirm_payment(order.id, payment_method="pm_card_authenticationRequired")
    assert (order.status, order.payment, order.transactions) == ("incomplete", "unpaid", ())
    fake.authenticate(order.intent_id or "")
    assert payments.confirm_order(order.id).payment == "paid"


def test_canceled_intent_cancels_the_order(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    fake.cancel_intent(order.intent_id or "", reason=None, idempotency_key="dashboard")
    assert payments.confirm_order(order.id).status == "cancelled"


def test_a_kept_cart_checked_out_again_after_a_change_pays_each_order_its_own_amount(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    # (Before issue 12 the second checkout repriced the first order's intent and
    # the first order was refused with AmountMismatchError; now an intent held by
    # an order never follows the cart: the second order gets its own.)
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    first = payments.checkout(cart.id, keep_cart=True)
    payments.set_quantity(cart.id, "mug", 4)
    second = payments.checkout(cart.id, keep_cart=True)
    assert second.intent_id != first.intent_id
    assert fake.intent(first.intent_id or "").amount == first.total
    assert fake.intent(second.intent_id or "").amount == second.total != first.total
    assert payments.confirm_payment(first.id, payment_method="pm_card_visa").captured == first.total
    paid = payments.confirm_payment(second.id, payment_method="pm_card_visa")
    assert paid.captured == second.total


def test_mismatch_is_flagged_when_the_intent_moved_outside(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    fake.update_intent(order.intent_id or "", {"amount": 9999}, idempotency_key="outside")
    with pytest.raises(AmountMismatchError) as info:
        payments.confirm_order(order.id)
    assert (info.value.expected_amount, info.value.actual_amount) == (6200, 9999)
    order = payments.get_order(order.id)
    assert order.flag == "amount_mismatch" and order.payment == "unpaid"


# --- docs/design.md, rule 6: one intent pays at most one order ------------------------


def test_cart_checked_out_twice_only_one_order_is_paid(
    payments: CartPaymentIntent, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    first = payments.checkout(cart.id, keep_cart=True)
    second = payments.checkout(cart.id, keep_cart=True)
    assert first.intent_id == second.intent_id
    payments.confirm_payment(first.id, payment_method="pm_card_visa")
    with pytest.raises(IntentAlreadyUsedError) as info:
        payments.confirm_order(second.id)
    assert info.value.paid_order_id == first.id
    with pytest.raises(IntentAlreadyUsedError):
        payments.confirm_payment(second.id, payment_method="pm_card_visa")
    assert payments.get_order(second.id).transactions == ()
    assert payments.get_order(first.id).payment == "paid"


# --- docs/design.md, rule 7: capture, cancel, refund ----------------------------------


def test_partial_capture_releases_the_rest(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    order = payments.capture_order(order.id, amount=5000)
    assert (order.status, order.payment, order.captured) == ("complete", "partially_paid", 5000)
    assert fake.intent(order.intent_id or "").amount_capturable == 0
    (capture,) = [r for r in fake.requests if r.operation == "capture_intent"]
    assert re.fullmatch(rf"cartpay:order:{order.id}:capture:v\d+", capture.idempotency_key or "")
    with pytest.raises(IllegalStateError):
        payments.capture_order(order.id)


def test_full_capture(payments: CartPaymentIntent, make_order: Callable[..., Order]) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    order = payments.capture_order(order.id)
    assert (order.payment, order.captured, order.authorized) == ("paid", 6200, 6200)


def test_capture_more_than_authorized_is_refused(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    before = len(fake.requests)
    with pytest.raises(ValidationError) as info:
        payments.capture_order(order.id, amount=6201)
    assert (info.value.field, info.value.rule) == ("amount", "authorized")
    assert len(fake.requests) == before


def test_cancel_an_authorized_order(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    order = payments.cancel_order(order.id, reason="requested_by_customer")
    assert (order.status, order.payment) == ("cancelled", "unpaid")
    assert [t.status for t in order.transactions] == ["cancelled"]
    assert fake.intent(order.intent_id or "").cancellation_reason == "requested_by_customer"


def test_cancel_a_paid_order_is_illegal(payments: CartPaymentIntent, paid_order: Order) -> None:
    with pytest.raises(IllegalStateError) as info:
        payments.cancel_order(paid_order.id)
    assert info.value.entity == "order"


def test_refunds_are_capped_at_what_was_captured(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    paid_order: Order,
    store_state: Callable[[], tuple[object, ...]],
) -> None:
    order = payments.refund_order(paid_order.id, amount=2000, reason="requested_by_customer")
    assert (order.payment, order.refunded, order.refundable) == ("partially_refunded", 2000, 4200)
    before, state = len(fake.requests), store_state()
    with pytest.raises(ValidationError) as info:
        payments.refund_order(paid_order.id, amount=4201)
    assert (info.value.field, info.value.rule) == ("amount", "refundable")
    assert len(fake.requests) == before and store_state() == state
    order = payments.refund_order(paid_order.id)
    assert (order.payment, order.refunded, order.refundable) == ("refunded", 6200, 0)
    keys = [r.idempotency_key for r in fake.requests if r.operation == "create_refund"]
    assert len(keys) == len(set(keys)) == 2
    assert all(re.fullmatch(rf"cartpay:order:{order.id}:refund:v\d+", k or "") for k in keys)
    with pytest.raises(IllegalStateError):
        payments.refund_order(paid_order.id, amount=100)


def test_refund_of_a_partial_capture_is_capped_by_the_capture(
    payments: CartPaymentIntent, make_order: Callable[..., Order]
) -> None:
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    payments.capture_order(order.id, amount=3000)
    with pytest.raises(ValidationError):
        payments.refund_order(order.id, amount=3001)
    assert payments.refund_order(order.id).payment == "refunded"


def test_dashboard_refund_shows_up_on_confirm(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    fake.refund_outside(paid_order.intent_id or "", 1000)
    order = payments.confirm_order(paid_order.id)
    assert (order.payment, order.refunded) == ("partially_refunded", 1000)


# --- docs/design.md, rule 10: secrets -------------------------------------------------


def test_client_secret_in_no_repr_and_no_log(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    make_cart: Callable[..., Cart],
    store_state: Callable[[], tuple[object, ...]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cart = make_cart()
    handle = payments.create_payment_intent(cart.id)
    secret = handle.client_secret
    assert secret and secret.startswith(handle.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    order = payments.confirm_order(order.id)
    snapshot = fake.intent(handle.id)
    for shown in (
        repr(handle),
        str(handle),
        repr(snapshot),
        repr(order),
        repr(payments),
        repr(store_state()),
    ):
        assert secret not in shown
    assert secret not in caplog.text
    assert all(secret not in str(r.__dict__) for r in caplog.records)


def test_a_refused_operation_records_what_stripe_has_and_is_not_sent_again(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    """Stripe refuses a cancel of an intent captured at the Dashboard: the refusal
    is raised and the intent read and recorded (the order shows the payment), so
    a second cancel is refused before any call; the claim is gone."""
    order = make_order(options=IntentOptions(capture_method="manual"))
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    fake.capture_intent(order.intent_id or "", amount=None, idempotency_key="dashboard")
    with pytest.raises(IllegalStateError) as info:
        payments.cancel_order(order.id)
    assert info.value.status == "succeeded"
    after = payments.get_order(order.id)
    assert (after.status, after.payment, after.pending) == ("complete", "paid", None)
    with pytest.raises(IllegalStateError) as again:
        payments.cancel_order(order.id, reason="requested_by_customer")
    assert again.value.status == "complete"
    assert fake.count("cancel_intent") == 1


def test_a_full_refund_that_fails_later_shows_on_confirm_and_can_be_refunded_again(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    order = payments.refund_order(paid_order.id)
    assert (order.payment, order.refunded) == ("refunded", order.captured)
    refund_id = next(t.reference for t in order.transactions if t.kind == "refund")

    fake.fail_refund(refund_id, reason="expired_or_canceled_card")
    order = payments.confirm_order(order.id)  # re-lists the intent's refunds

    assert [(t.status, t.code) for t in order.transactions if t.kind == "refund"] == [
        ("failed", "expired_or_canceled_card")
    ]
    assert (order.status, order.payment, order.refunded) == ("complete", "paid", 0)
    again = payments.refund_order(order.id)
    assert (again.payment, again.refunded) == ("refunded", again.captured)


def test_the_fake_refuses_to_fail_a_refund_twice(
    payments: CartPaymentIntent, fake: FakeStripeGateway, paid_order: Order
) -> None:
    order = payments.refund_order(paid_order.id, amount=100)
    refund_id = next(t.reference for t in order.transactions if t.kind == "refund")
    fake.fail_refund(refund_id)
    with pytest.raises(IllegalStateError):
        fake.fail_refund(refund_id)
    with pytest.raises(NotFoundError):
        fake.fail_refund("re_missing")


def test_a_payment_confirmed_in_the_browser_binds_and_records_its_intent_in_one_write(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    store: MemoryStore,
    make_order: Callable[..., Order],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = make_order()
    intent_id = order.intent_id or ""
    fake.confirm_intent(
        intent_id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    writes: list[IntentRecord] = []
    real = _MemoryTransaction.update_intent

    def counted(self: _MemoryTransaction, intent: IntentRecord, *, expected_version: int) -> None:
        writes.append(intent)
        real(self, intent, expected_version=expected_version)

    monkeypatch.setattr(_MemoryTransaction, "update_intent", counted)
    order = payments.confirm_order(order.id)

    assert order.payment == "paid"
    assert [(w.status, w.order_id) for w in writes] == [("succeeded", order.id)]
    with store.transaction() as tx:
        assert tx.get_intent(intent_id) == writes[0]


@pytest.mark.parametrize("url", ["https://shop.example/return?order=1", "myapp://checkout/done"])
def test_an_absolute_return_url_is_sent_with_the_confirm(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    make_order: Callable[..., Order],
    url: str,
) -> None:
    order = make_order()
    payments.confirm_payment(order.id, payment_method="pm_card_visa", return_url=url)
    (confirm,) = [r for r in fake.requests if r.operation == "confirm_intent"]
    assert confirm.params["return_url"] == url


@pytest.mark.parametrize("step", ["create", "update"])
def test_options_given_to_an_intent_call_become_the_carts_and_checkout_works(
    payments: CartPaymentIntent, fake: FakeStripeGateway, step: str
) -> None:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T", unit_amount=2500)
    options = IntentOptions(description="Order for Ada", metadata={"shop": "1"})
    if step == "create":
        payments.create_payment_intent(cart.id, options=options)
    else:
        payments.create_payment_intent(cart.id)
        payments.update_payment_intent(cart.id, options=options)
    assert payments.get_cart(cart.id).options == options
    calls = fake.count()

    order = payments.checkout(cart.id)  # nothing changed since the send: no call

    assert fake.count() == calls
    assert order.intent_id is not None


def test_cancelling_a_kept_carts_order_cancels_its_intent_and_the_cart_gets_a_new_one(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    # No cart follows an intent an order holds: cancelling that order cancels it.
    cart = make_cart()
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id, keep_cart=True)
    cancelled = payments.cancel_order(order.id, reason="requested_by_customer")
    assert cancelled.status == "cancelled"
    assert fake.intent(order.intent_id or "").status == "canceled"
    handle = payments.create_payment_intent(cart.id)
    assert handle.id != order.intent_id and handle.status == "requires_payment_method"
