"""One test per guard of docs/design.md's workflow rules that no other unit test
would miss: each was found by removing the guard (a mutation) and seeing the unit
suite still pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from cartpay import (
    AmountMismatchError,
    Cart,
    CartPaymentIntent,
    GatewayUnavailableError,
    IllegalStateError,
    IntentOptions,
    OperationPendingError,
    Order,
    RefundSnapshot,
    ValidationError,
    WebhookPayloadError,
)
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway
from tests.unit.test_webhooks import event, events_for, sign
from tests.unit.test_workflow_rules import LosesFirstCreate

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins


def kept_cart_orders(payments: CartPaymentIntent, count: int) -> tuple[str, list[Order]]:
    """A cart with an intent, checked out ``count`` times with ``keep_cart=True``."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500, quantity=2)
    payments.create_payment_intent(cart.id)
    return cart.id, [payments.checkout(cart.id, keep_cart=True) for _ in range(count)]


def processing_unbound_intent(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart: Cart
) -> None:
    """The browser confirms the cart's intent (processing); reconcile records it."""
    handle = payments.create_payment_intent(cart.id)
    fake.confirm_intent(
        handle.id,
        payment_method="pm_card_processing",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    payments.reconcile(older_than=timedelta(0))


# ------------------------------------------------------ docs/design.md, rules 2 and 3


def test_no_second_intent_while_the_first_is_processing(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    processing_unbound_intent(payments, fake, cart)
    with pytest.raises(IllegalStateError):
        payments.create_payment_intent(cart.id)
    assert fake.count("create_intent") == 1


def test_no_update_of_a_processing_intent_even_unbound(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    processing_unbound_intent(payments, fake, cart)
    payments.set_quantity(cart.id, "mug", 3)
    with pytest.raises(IllegalStateError) as info:
        payments.update_payment_intent(cart.id)
    assert info.value.status == "processing"
    assert fake.count("update_intent") == 0


def test_a_replacement_intent_starts_a_new_generation(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_cart: Callable[..., Cart]
) -> None:
    cart = make_cart()
    first = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id, keep_cart=True)
    fake.cancel_intent(first.id, reason="abandoned", idempotency_key="outside")
    payments.confirm_order(order.id)
    payments.create_payment_intent(cart.id)
    assert payments.get_cart(cart.id).generation == 1


def test_a_lost_create_is_replayed_then_brought_up_to_date(
    fake: FakeStripeGateway, store: MemoryStore
) -> None:
    flaky = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=LosesFirstCreate(fake), store=store
    )
    cart = flaky.create_cart("usd")
    flaky.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    with pytest.raises(GatewayUnavailableError):
        flaky.create_payment_intent(cart.id)
    flaky.add_item(cart.id, sku="b", name="B", unit_amount=500)
    handle = flaky.create_payment_intent(cart.id)
    assert fake.intent_ids() == [handle.id]
    assert fake.intent(handle.id).amount == 1500


# ------------------------------------------------------ docs/design.md, rules 4 and 5


def test_no_checkout_onto_an_intent_that_already_paid(payments: CartPaymentIntent) -> None:
    cart_id, (first,) = kept_cart_orders(payments, 1)
    payments.confirm_payment(first.id, payment_method="pm_card_visa")
    with pytest.raises(IllegalStateError) as info:
        payments.checkout(cart_id, keep_cart=True)
    assert (info.value.entity, info.value.status) == ("intent", "succeeded")


def test_no_checkout_without_an_intent(
    payments: CartPaymentIntent,
    make_cart: Callable[..., Cart],
    store_state: Callable[[], tuple[object, ...]],
) -> None:
    cart = make_cart()
    state = store_state()
    with pytest.raises(IllegalStateError):
        payments.checkout(cart.id)
    assert store_state() == state


def test_a_currency_mismatch_flags_the_order(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    intent_id = order.intent_id or ""
    fake.update_intent(intent_id, {"currency": "eur"}, idempotency_key="outside")
    fake.confirm_intent(
        intent_id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    with pytest.raises(AmountMismatchError):
        payments.confirm_order(order.id)
    after = payments.get_order(order.id)
    assert (after.flag, after.payment) == ("amount_mismatch", "unpaid")


# ------------------------------------------------------ docs/design.md, rule 7


def test_cancel_of_a_processing_payment_is_refused_before_any_call(
    payments: CartPaymentIntent, fake: FakeStripeGateway, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    payments.confirm_payment(order.id, payment_method="pm_card_processing")
    with pytest.raises(IllegalStateError) as info:
        payments.cancel_order(order.id)
    assert info.value.entity == "intent"
    assert fake.count("cancel_intent") == 0


class LosesFirstRefund:
    """The first refund is made at Stripe but its answer is lost."""

    def __init__(self, inner: FakeStripeGateway) -> None:
        self.inner = inner
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_refund(self, intent_id: str, **kwargs: Any) -> RefundSnapshot:
        refund = self.inner.create_refund(intent_id, **kwargs)
        if not self.lost:
            self.lost = True
            raise GatewayUnavailableError("timeout", retryable=True)
        return refund


def test_a_new_refund_after_a_lost_one_makes_both(
    fake: FakeStripeGateway, store: MemoryStore
) -> None:
    # (Since issue 12 the call with another amount first learns the lost refund's
    # outcome and is refused, typed, naming it; repeated, it makes the new one.)
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=LosesFirstRefund(fake), store=store
    )
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=6200)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, amount=1000)
    with pytest.raises(OperationPendingError) as caught:
        payments.refund_order(order.id, amount=2000)
    assert (caught.value.operation, caught.value.amount) == ("refund", 1000)
    assert payments.get_order(order.id).refunded == 1000
    after = payments.refund_order(order.id, amount=2000)
    assert after.refunded == 3000
    assert sorted(t.amount for t in after.transactions if t.kind == "refund") == [1000, 2000]


# ------------------------------------------------------ docs/design.md, rule 8


def test_a_late_processing_event_keeps_the_intent_record_succeeded(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    store: MemoryStore,
    make_order: Callable[..., Order],
) -> None:
    order = make_order()
    intent_id = order.intent_id or ""
    fake.confirm_intent(
        intent_id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    payments.confirm_order(order.id)
    snap = fake.intent(intent_id)
    late = {
        "id": snap.id,
        "object": "payment_intent",
        "status": "processing",
        "amount": snap.amount,
        "currency": snap.currency,
        "latest_charge": snap.latest_charge,
    }
    payload = event("payment_intent.processing", late, "evt_late")
    payments.handle_webhook(payload, sign(payload))
    with store.read() as tx:
        record = tx.get_intent(intent_id)
    assert record is not None and record.status == "succeeded"


def test_a_live_event_is_refused_by_a_test_mode_facade(
    payments: CartPaymentIntent, store_state: Callable[[], tuple[object, ...]]
) -> None:
    obj = {
        "id": "pi_x",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 100,
        "currency": "usd",
    }
    payload = event("payment_intent.succeeded", obj, livemode=True)
    state = store_state()
    with pytest.raises(WebhookPayloadError) as info:
        payments.handle_webhook(payload, sign(payload))
    assert "live mode" in str(info.value)
    assert store_state() == state


def test_a_webhook_pays_the_order_its_intent_is_bound_to(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    _, (_, second) = kept_cart_orders(payments, 2)
    payments.confirm_payment(second.id, payment_method="pm_card_processing")
    fake.settle(second.intent_id or "")
    payload, header = events_for(fake, second.intent_id or "")[-1]
    assert payments.handle_webhook(payload, header).order_id == second.id
    assert payments.get_order(second.id).payment == "paid"


def test_a_webhook_skips_a_cancelled_order(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    _, (first, second) = kept_cart_orders(payments, 2)
    payments.cancel_order(first.id)
    intent_id = second.intent_id or ""
    fake.confirm_intent(
        intent_id,
        payment_method="pm_card_visa",
        return_url="https://shop.test/return",
        idempotency_key="browser",
    )
    payload, header = events_for(fake, intent_id)[-1]
    assert payments.handle_webhook(payload, header).order_id == second.id
    assert payments.get_order(second.id).payment == "paid"


# ------------------------------------------------------ docs/design.md, rule 9


class OutsideTransactions:
    """Fails any gateway call made while the memory store's lock is held."""

    def __init__(self, inner: FakeStripeGateway, store: MemoryStore) -> None:
        self.inner = inner
        self.store = store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            assert not self.store._lock._is_owned(), f"{name} called inside a transaction"  # type: ignore[attr-defined]
            return attr(*args, **kwargs)

        return call


def test_no_gateway_call_is_made_inside_a_store_transaction(
    fake: FakeStripeGateway, store: MemoryStore
) -> None:
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=OutsideTransactions(fake, store), store=store
    )
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=6200)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    fake.refund_outside(order.intent_id or "", 50)  # so that confirm_order lists refunds
    payments.confirm_order(order.id)
    assert payments.refund_order(order.id, amount=100).refunded == 150
    assert fake.count() == 5  # create, confirm, retrieve, list refunds, refund


# ------------------------------------------------------ docs/design.md, rule 11


@pytest.mark.parametrize(
    "options",
    [
        {"allow_redirects": "sometimes", "automatic_payment_methods": True},
        {"allow_redirects": "never"},
        {"automatic_payment_methods": "yes"},
        {"allowed_payment_method_types": ["card"], "automatic_payment_methods": True},
        {"allowed_payment_method_types": []},
        {"excluded_payment_method_types": ["Card!"]},
        {"transfer_destination": "acct bad"},
        {"statement_descriptor_suffix": "CAFÉ"},
        {"metadata": {1: "b"}},
        {"application_fee_amount": 1.5},
    ],
    ids=repr,
)
def test_bad_intent_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        IntentOptions(**options)
