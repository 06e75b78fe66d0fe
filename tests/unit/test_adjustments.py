"""Issue 20: shipping, tax, fees and discounts in the amount, and the pricing port.

Each "Done when" line of the issue has a test here (the bad adjustments are in
tests/unit/test_bad_inputs.py, the migrations in
tests/stores/test_schema_migrations.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from attrs import evolve

from cartpay import (
    Adjustment,
    Cart,
    CartPaymentIntent,
    GatewayUnavailableError,
    PricingError,
    ValidationError,
)
from cartpay._decisions import paid_order_parts
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakePricing, FakeStripeGateway

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

RETURN = "https://shop.test/return"


def sent(fake: FakeStripeGateway, operation: str) -> list[dict[str, object]]:
    return [r.params for r in fake.requests if r.operation == operation and not r.replayed]


def mutations(fake: FakeStripeGateway) -> list[str]:
    return [r.operation for r in fake.requests if r.method == "POST"]


@pytest.fixture
def cart_5000(payments: CartPaymentIntent) -> Cart:
    """The issue's cart: items of 5,000, shipping 500, tax 450, a discount of 1,000."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500, quantity=2)
    payments.add_adjustment(cart.id, kind="shipping", code="ship", label="Shipping", amount=500)
    payments.add_adjustment(cart.id, kind="tax", code="vat", label="VAT", amount=450)
    return payments.add_adjustment(
        cart.id, kind="discount", code="WELCOME10", label="10 off", amount=1000
    )


# ------------------------------------------------------------ Done when, line 1


def test_the_issue_cart_creates_4950_then_one_update_of_5950_and_an_order_of_5950(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart_5000: Cart
) -> None:
    assert (cart_5000.subtotal, cart_5000.total) == (5000, 4950)
    handle = payments.create_payment_intent(cart_5000.id)
    assert handle.amount == 4950 == fake.intent(handle.id).amount
    assert [p["amount"] for p in sent(fake, "create_intent")] == [4950]

    cart = payments.remove_adjustment(cart_5000.id, "WELCOME10")
    assert cart.total == 5950
    before = len(fake.requests)
    assert payments.update_payment_intent(cart.id).amount == 5950
    assert sent(fake, "update_intent") == [{"amount": 5950}]
    assert len(fake.requests) == before + 1, "one update, nothing else"

    before = len(fake.requests)
    again = payments.update_payment_intent(cart.id)  # changing nothing sends nothing
    assert again.amount == 5950 and len(fake.requests) == before

    order = payments.checkout(cart.id)
    assert len(fake.requests) == before, "checkout of an up-to-date cart sends nothing"
    assert (order.total, order.subtotal) == (5950, 5000)
    assert order.adjustments == (
        Adjustment("shipping", "ship", "Shipping", 500),
        Adjustment("tax", "vat", "VAT", 450),
    )
    assert fake.intent(handle.id).amount == order.total
    paid = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert (paid.payment, paid.captured) == ("paid", 5950)


def test_the_order_lists_all_three_adjustments_when_the_discount_stays(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart_5000: Cart
) -> None:
    payments.create_payment_intent(cart_5000.id)
    order = payments.checkout(cart_5000.id)
    assert order.total == 4950
    assert [(a.kind, a.code, a.amount) for a in order.adjustments] == [
        ("shipping", "ship", 500),
        ("tax", "vat", 450),
        ("discount", "WELCOME10", 1000),
    ]
    assert payments.get_order(order.id) == order
    assert sent(fake, "update_intent") == []


def test_changing_only_the_shipping_sends_exactly_one_update_of_the_amount(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart_5000: Cart
) -> None:
    payments.create_payment_intent(cart_5000.id)
    cart = payments.add_adjustment(
        cart_5000.id, kind="shipping", code="ship", label="Express", amount=900
    )
    assert cart.adjustment("ship") == Adjustment("shipping", "ship", "Express", 900)
    assert len(cart.adjustments) == 3, "replaced, not added"
    order = payments.checkout(cart.id)
    assert sent(fake, "update_intent") == [{"amount": 5350}]
    assert order.total == 5350
    # What was last sent remembers the adjustments the amount stands for.
    assert order.adjustments[0].amount == 900


def test_a_discount_to_zero_and_back_and_a_free_shipping_line(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart_5000: Cart
) -> None:
    payments.create_payment_intent(cart_5000.id)
    payments.add_adjustment(cart_5000.id, kind="shipping", code="ship", label="Free", amount=0)
    payments.add_adjustment(cart_5000.id, kind="fee", code="wrap", label="Gift wrap", amount=500)
    handle = payments.update_payment_intent(cart_5000.id)
    assert handle.amount == 5000 - 1000 + 450 + 500 == fake.intent(handle.id).amount


# ------------------------------------------------------------ Done when, line 2


@pytest.fixture
def pricing() -> FakePricing:
    return FakePricing(tax_rate=900, shipping=500)  # 9 % tax, flat shipping


@pytest.fixture
def priced(
    make_payments: Callable[..., CartPaymentIntent],
    fake: FakeStripeGateway,
    store: MemoryStore,
    pricing: FakePricing,
) -> CartPaymentIntent:
    return make_payments(return_url=RETURN, gateway=fake, store=store, pricing=pricing)


def test_a_pricing_port_reprices_an_item_added_before_checkout_in_one_update(
    priced: CartPaymentIntent, fake: FakeStripeGateway, pricing: FakePricing
) -> None:
    cart = priced.create_cart("usd")
    priced.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500, quantity=2)
    handle = priced.create_payment_intent(cart.id)
    assert handle.amount == 5000 + 500 + 450
    assert priced.get_cart(cart.id).adjustment("tax") == Adjustment("tax", "tax", "Tax", 450)
    calls = pricing.calls

    priced.add_item(cart.id, sku="mug", name="Mug", unit_amount=1000)  # tax is stale now
    order = priced.checkout(cart.id)
    assert pricing.calls == calls + 1, "asked once, although checkout updated first"
    assert sent(fake, "update_intent") == [{"amount": 6000 + 500 + 540}]
    assert order.total == 7040 == fake.intent(handle.id).amount
    assert {a.code: a.amount for a in order.adjustments} == {"shipping": 500, "tax": 540}


def test_the_port_keeps_the_hosts_discount_and_taxes_the_items(
    priced: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    cart = priced.create_cart("usd")
    priced.add_item(cart.id, sku="tee", name="Tee", unit_amount=10000)
    priced.add_adjustment(cart.id, kind="discount", code="SPRING", label="Spring", amount=2000)
    handle = priced.create_payment_intent(cart.id)
    assert handle.amount == 10000 + 500 + 900 - 2000
    stored = priced.get_cart(cart.id)
    assert [a.code for a in stored.adjustments] == ["SPRING", "shipping", "tax"]
    priced.remove_adjustment(cart.id, "SPRING")
    assert priced.update_payment_intent(cart.id).amount == 11400


def test_the_port_is_asked_before_create_update_and_checkout_and_sees_the_metadata(
    make_payments: Callable[..., CartPaymentIntent], fake: FakeStripeGateway, store: MemoryStore
) -> None:
    seen: list[tuple[int, str, dict[str, str]]] = []

    class Recording:
        def price(self, cart: Cart) -> Iterable[Adjustment]:
            seen.append((cart.subtotal, cart.currency, dict(cart.options.metadata)))
            return [Adjustment("fee", "service", "Service", 100)]

    from cartpay import IntentOptions

    payments = make_payments(return_url=RETURN, gateway=fake, store=store, pricing=Recording())
    cart = payments.create_cart("eur")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    payments.create_payment_intent(cart.id, options=IntentOptions(metadata={"zip": "75001"}))
    payments.add_item(cart.id, sku="b", name="B", unit_amount=500)
    payments.update_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    assert seen == [
        (1000, "eur", {"zip": "75001"}),
        (1500, "eur", {"zip": "75001"}),
        (1500, "eur", {"zip": "75001"}),
    ]
    assert order.total == 1600


@pytest.mark.parametrize(
    "failure",
    [
        TimeoutError("tax engine timed out"),
        GatewayUnavailableError("tax engine 503"),
        "not a list",
        [("tax", "vat", "VAT", 100)],
        [Adjustment("tax", "vat", "VAT", 10.5)],  # type: ignore[arg-type]
        [Adjustment("tax", "vat", "VAT", -1)],
        [Adjustment("bonus", "x", "X", 1)],  # type: ignore[arg-type]
        [Adjustment("tax", "vat", "VAT", 1), Adjustment("fee", "vat", "VAT", 1)],
    ],
    ids=repr,
)
def test_a_failing_port_is_a_pricing_error_and_nothing_is_sent_or_written(
    make_payments: Callable[..., CartPaymentIntent],
    fake: FakeStripeGateway,
    store: MemoryStore,
    store_state: Callable[[], tuple[object, ...]],
    failure: object,
) -> None:
    answer: list[object] = []

    class Port:
        def price(self, cart: Cart) -> object:
            if answer:
                if isinstance(answer[0], BaseException):
                    raise answer[0]
                return answer[0]
            return [Adjustment("tax", "vat", "VAT", 100)]

    payments = make_payments(return_url=RETURN, gateway=fake, store=store, pricing=Port())
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    payments.create_payment_intent(cart.id)
    payments.add_item(cart.id, sku="b", name="B", unit_amount=500)
    answer.append(failure)
    for call in (
        lambda: payments.update_payment_intent(cart.id),
        lambda: payments.create_payment_intent(cart.id),
        lambda: payments.checkout(cart.id),
    ):
        requests, state = len(fake.requests), store_state()
        with pytest.raises(PricingError) as info:
            call()
        assert info.value.cart_id == cart.id
        assert len(fake.requests) == requests, "a gateway call was made"
        assert store_state() == state, "something was written"
        if isinstance(failure, BaseException):
            assert info.value.__cause__ is failure
            assert info.value.retryable is isinstance(failure, GatewayUnavailableError)
    answer.clear()  # the engine is back: the cart is priced and sent
    assert payments.checkout(cart.id).total == 1600


def test_the_amount_sent_is_computed_from_the_cart_as_saved_when_it_changes_while_priced(
    fake: FakeStripeGateway, store: MemoryStore
) -> None:
    """The port is slow; the customer adds an item while it prices: the priced
    answer is not stored (the cart moved on), the cart is priced again, and the
    amount sent is the total of the cart as it is saved. (Sync only: the port
    calls the façade back from inside a call, which a blocking view of the
    async twin cannot do on its own loop.)"""
    holder: list[CartPaymentIntent] = []
    slow = FakePricing(tax_rate=1000)
    calls: list[int] = []

    class Racing:
        def price(self, cart: Cart) -> Iterable[Adjustment]:
            calls.append(cart.subtotal)
            if len(calls) == 1:  # another request, while this one prices
                holder[0].add_item(cart.id, sku="late", name="Late", unit_amount=3000)
            return slow.price(cart)

    payments = CartPaymentIntent(return_url=RETURN, gateway=fake, store=store, pricing=Racing())
    holder.append(payments)
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    handle = payments.create_payment_intent(cart.id)
    assert calls == [1000, 4000]
    assert handle.amount == 4000 + 400 == fake.intent(handle.id).amount
    stored = payments.get_cart(cart.id)
    assert stored.total == handle.amount and stored.sent is not None
    assert stored.sent.amount == stored.total and stored.sent.adjustments == stored.adjustments


def test_without_a_port_the_hosts_adjustments_are_used_as_they_are(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart_5000: Cart
) -> None:
    handle = payments.create_payment_intent(cart_5000.id)
    assert payments.get_cart(cart_5000.id).adjustments == cart_5000.adjustments
    assert handle.amount == 4950


# --------------------------------------------- payments before checkout, kept carts


def test_a_payment_before_checkout_makes_the_order_of_what_it_paid_for(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart_5000: Cart
) -> None:
    """The browser pays 4,950; then the host drops the discount and adds a line:
    the order is what the 4,950 paid for (with its discount); the rest stays."""
    handle = payments.create_payment_intent(cart_5000.id)
    fake.confirm_intent(
        handle.id, payment_method="pm_card_visa", return_url=RETURN, idempotency_key="browser"
    )
    payments.remove_adjustment(cart_5000.id, "WELCOME10")
    payments.add_item(cart_5000.id, sku="cap", name="Cap", unit_amount=1500)
    order = payments.checkout(cart_5000.id)
    assert (order.total, order.payment, order.captured) == (4950, "paid", 4950)
    assert [a.code for a in order.adjustments] == ["ship", "vat", "WELCOME10"]
    rest = payments.get_cart(cart_5000.id)
    assert [i.sku for i in rest.items] == ["cap"]
    assert rest.adjustments == (), "the shipping and tax went with the order"


def test_paid_parts_without_a_matching_send_take_the_cart_as_it_is(cart_5000: Cart) -> None:
    from cartpay import IntentSnapshot

    snap = IntentSnapshot("pi_1", "succeeded", 4950, "usd")
    parts = paid_order_parts(cart_5000, snap)
    assert (parts.items, parts.adjustments, parts.total) == (
        cart_5000.items,
        cart_5000.adjustments,
        4950,
    )


def test_a_kept_cart_whose_shipping_changes_gets_its_own_intent(
    payments: CartPaymentIntent, fake: FakeStripeGateway, cart_5000: Cart
) -> None:
    handle = payments.create_payment_intent(cart_5000.id)
    order = payments.checkout(cart_5000.id, keep_cart=True)
    payments.add_adjustment(cart_5000.id, kind="shipping", code="ship", label="Express", amount=900)
    mine = payments.update_payment_intent(cart_5000.id)
    assert mine.id != handle.id and mine.amount == 5350
    assert fake.intent(handle.id).amount == order.total == 4950, "the order's is never repriced"
    paid = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert paid.captured == 4950


def test_a_kept_cart_whose_adjustment_changed_unsent_still_pays_its_order(
    payments: CartPaymentIntent, cart_5000: Cart
) -> None:
    """The kept-cart amount check compares what the cart last sent (adjustments
    included) with the order's total: a change not yet sent does not block it."""
    payments.create_payment_intent(cart_5000.id)
    order = payments.checkout(cart_5000.id, keep_cart=True)
    payments.remove_adjustment(cart_5000.id, "WELCOME10")
    assert payments.confirm_payment(order.id, payment_method="pm_card_visa").captured == 4950


def test_the_cart_total_never_passes_the_largest_amount(
    make_payments: Callable[..., CartPaymentIntent], fake: FakeStripeGateway
) -> None:
    # (Cards take twelve digits; the shop's ceiling is eight, and adjustments keep it.)
    payments = make_payments(gateway=fake, store=MemoryStore(), max_amounts={"usd": 99_999_999})
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=99_000_000)
    with pytest.raises(ValidationError) as info:
        payments.add_adjustment(cart.id, kind="fee", code="f", label="Fee", amount=9_999_999)
    assert (info.value.field, info.value.rule) == ("amount", "maximum")
    payments.add_adjustment(cart.id, kind="discount", code="d", label="D", amount=1_000_000)
    payments.add_item(cart.id, sku="b", name="B", unit_amount=1_500_000)
    with pytest.raises(ValidationError) as info:
        payments.remove_adjustment(cart.id, "d")
    assert info.value.rule == "maximum"


def test_adjustments_are_validated_in_the_carts_currency(payments: CartPaymentIntent) -> None:
    cart = payments.create_cart("kwd")
    with pytest.raises(ValidationError) as info:
        payments.add_adjustment(cart.id, kind="shipping", code="s", label="S", amount=505)
    assert (info.value.field, info.value.rule) == ("amount", "step")
    done = payments.add_adjustment(cart.id, kind="shipping", code="s", label="S", amount=500)
    assert done.adjustments == (Adjustment("shipping", "s", "S", 500),)
    assert evolve(done, adjustments=()).total == 0
