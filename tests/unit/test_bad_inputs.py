"""Bad input gets a typed error naming the field and the rule, before any gateway
call, and nothing is written (docs/design.md, rule 11)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from attrs import frozen

from cartpay import (
    CartpayError,
    CartPaymentIntent,
    IllegalStateError,
    IntentOptions,
    NotFoundError,
    ValidationError,
)
from cartpay._money import CARD_MAXIMUM
from cartpay.testing import FakeStripeGateway

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins


@frozen
class World:
    """A cart with an intent, a kept-cart order, a paid order, an empty cart, a
    cart whose intent follows it alone (no order holds it: updates go to it)
    with a shipping line, and two carts whose discounts (not sent yet) leave a
    total below Stripe's minimum and below zero."""

    cart_id: str
    empty_cart_id: str
    order_id: str
    paid_order_id: str
    open_cart_id: str
    low_cart_id: str
    negative_cart_id: str


@pytest.fixture
def world(payments: CartPaymentIntent) -> World:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500, quantity=2)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id, keep_cart=True)
    paid_cart = payments.create_cart("usd")
    payments.add_item(paid_cart.id, sku="mug", name="Mug", unit_amount=1200)
    payments.create_payment_intent(paid_cart.id)
    paid = payments.checkout(paid_cart.id)
    payments.confirm_payment(paid.id, payment_method="pm_card_visa")
    empty = payments.create_cart("eur")
    open_cart = payments.create_cart("usd")
    payments.add_item(open_cart.id, sku="cap", name="Cap", unit_amount=1500)
    payments.add_adjustment(open_cart.id, kind="shipping", code="ship", label="Ship", amount=500)
    payments.create_payment_intent(open_cart.id)
    low, negative = payments.create_cart("usd"), payments.create_cart("usd")
    for each, discount in ((low, 1480), (negative, 1600)):
        payments.add_item(each.id, sku="cap", name="Cap", unit_amount=1500)
        payments.create_payment_intent(each.id)
        payments.add_adjustment(each.id, kind="discount", code="D", label="D", amount=discount)
    return World(cart.id, empty.id, order.id, paid.id, open_cart.id, low.id, negative.id)


def adjust(**changes: Any) -> Call:
    """``add_adjustment`` on the open cart with one argument changed."""
    arguments = {"kind": "fee", "code": "wrap", "label": "Gift wrap", "amount": 300} | changes
    return lambda p, w: p.add_adjustment(w.open_cart_id, **arguments)


# The table feeds deliberately ill-typed input, so the façade and options are untyped here.
Call = Callable[[Any, World], Any]
Options: Any = IntentOptions

CASES: list[tuple[str, Call, type[CartpayError], str | None, str | None]] = [
    # (name, call, error type, field, rule)
    (
        "negative unit amount",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X", unit_amount=-1),
        ValidationError,
        "unit_amount",
        "positive",
    ),
    (
        "zero unit amount",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X", unit_amount=0),
        ValidationError,
        "unit_amount",
        "positive",
    ),
    (
        "too large unit amount",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X", unit_amount=CARD_MAXIMUM + 1),
        ValidationError,
        "unit_amount",
        "maximum",
    ),
    (
        "float unit amount",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X", unit_amount=12.5),
        ValidationError,
        "unit_amount",
        "integer",
    ),
    (
        "str unit amount",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X", unit_amount="1250"),
        ValidationError,
        "unit_amount",
        "integer",
    ),
    (
        "quantity zero",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X", unit_amount=100, quantity=0),
        ValidationError,
        "quantity",
        "positive",
    ),
    (
        "quantity negative",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X", unit_amount=100, quantity=-2),
        ValidationError,
        "quantity",
        "positive",
    ),
    (
        "quantity float",
        lambda p, w: p.set_quantity(w.cart_id, "tee", 1.5),
        ValidationError,
        "quantity",
        "integer",
    ),
    (
        "set quantity negative",
        lambda p, w: p.set_quantity(w.cart_id, "tee", -1),
        ValidationError,
        "quantity",
        "positive",
    ),
    (
        "set quantity of unknown sku",
        lambda p, w: p.set_quantity(w.cart_id, "nope", 2),
        ValidationError,
        "sku",
        "in_cart",
    ),
    (
        "empty sku",
        lambda p, w: p.add_item(w.cart_id, sku=" ", name="X", unit_amount=100),
        ValidationError,
        "sku",
        "non_empty",
    ),
    (
        "cart total over the maximum",
        lambda p, w: p.add_item(
            w.cart_id, sku="x", name="X", unit_amount=CARD_MAXIMUM // 2, quantity=3
        ),
        ValidationError,
        "quantity",
        "maximum",
    ),
    (
        "unknown currency",
        lambda p, w: p.create_cart("xyz"),
        ValidationError,
        "currency",
        "supported",
    ),
    (
        "uppercase currency",
        lambda p, w: p.create_cart("USD"),
        ValidationError,
        "currency",
        "lowercase",
    ),
    ("currency not a str", lambda p, w: p.create_cart(840), ValidationError, "currency", "type"),
    (
        "51 metadata keys",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(metadata={f"k{i}": "v" for i in range(51)})
        ),
        ValidationError,
        "metadata",
        "max_keys",
    ),
    (
        "metadata key of 41 chars",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata={"k" * 41: "v"})),
        ValidationError,
        None,
        "key_length",
    ),
    (
        "metadata key with brackets",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata={"a[b]": "v"})),
        ValidationError,
        "metadata[a[b]]",
        "key_brackets",
    ),
    (
        "metadata value of 501 chars",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata={"k": "v" * 501})),
        ValidationError,
        "metadata[k]",
        "value_length",
    ),
    (
        "metadata value not a str",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata={"k": 5})),
        ValidationError,
        "metadata[k]",
        "value_type",
    ),
    (
        "descriptor with *",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(statement_descriptor_suffix="SHOP*1")
        ),
        ValidationError,
        "statement_descriptor_suffix",
        "forbidden_characters",
    ),
    (
        "descriptor only digits",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(statement_descriptor_suffix="12345")
        ),
        ValidationError,
        "statement_descriptor_suffix",
        "letter",
    ),
    (
        "descriptor too long",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(statement_descriptor_suffix="A" * 23)
        ),
        ValidationError,
        "statement_descriptor_suffix",
        "max_length",
    ),
    (
        "descriptor with a quote",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(statement_descriptor_suffix="Bob's")
        ),
        ValidationError,
        "statement_descriptor_suffix",
        "forbidden_characters",
    ),
    (
        "description too long",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(description="d" * 1001)),
        ValidationError,
        "description",
        "max_length",
    ),
    (
        "bad capture method",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(capture_method="later")),
        ValidationError,
        "capture_method",
        "choice",
    ),
    (
        "allowed and excluded types",
        lambda p, w: p.update_payment_intent(
            w.cart_id,
            options=Options(
                allowed_payment_method_types=["card"], excluded_payment_method_types=["link"]
            ),
        ),
        ValidationError,
        "allowed_payment_method_types",
        "exclusive",
    ),
    (
        "bad receipt email",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(receipt_email="not-an-email")
        ),
        ValidationError,
        "receipt_email",
        "email",
    ),
    (
        "fee above the amount",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(application_fee_amount=10_000)
        ),
        ValidationError,
        "application_fee_amount",
        "maximum",
    ),
    (
        "negative fee",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(application_fee_amount=-1)),
        ValidationError,
        "application_fee_amount",
        "range",
    ),
    (
        "automatic methods changed on update",
        lambda p, w: p.update_payment_intent(
            w.open_cart_id, options=Options(automatic_payment_methods=True)
        ),
        ValidationError,
        "automatic_payment_methods",
        "create_only",
    ),
    (
        "options not IntentOptions",
        lambda p, w: p.create_payment_intent(w.cart_id, options={"description": "x"}),
        ValidationError,
        "options",
        "type",
    ),
    (
        "intent for an empty cart",
        lambda p, w: p.create_payment_intent(w.empty_cart_id),
        ValidationError,
        "items",
        "non_empty",
    ),
    (
        "unknown cart id",
        lambda p, w: p.add_item("cart_nope", sku="x", name="X", unit_amount=100),
        NotFoundError,
        "cart_id",
        "exists",
    ),
    (
        "unknown cart for intent",
        lambda p, w: p.create_payment_intent("cart_nope"),
        NotFoundError,
        "cart_id",
        "exists",
    ),
    (
        "unknown order id",
        lambda p, w: p.confirm_order("ord_nope"),
        NotFoundError,
        "order_id",
        "exists",
    ),
    (
        "unknown order to refund",
        lambda p, w: p.refund_order("ord_nope", amount=100),
        NotFoundError,
        "order_id",
        "exists",
    ),
    ("cart id not a str", lambda p, w: p.get_cart(42), ValidationError, "cart_id", "type"),
    (
        "refund negative",
        lambda p, w: p.refund_order(w.paid_order_id, amount=-5),
        ValidationError,
        "amount",
        "positive",
    ),
    (
        "refund float",
        lambda p, w: p.refund_order(w.paid_order_id, amount=5.0),
        ValidationError,
        "amount",
        "integer",
    ),
    (
        "refund more than captured",
        lambda p, w: p.refund_order(w.paid_order_id, amount=1201),
        ValidationError,
        "amount",
        "refundable",
    ),
    (
        "refund with a bad reason",
        lambda p, w: p.refund_order(w.paid_order_id, amount=100, reason="changed_mind"),
        ValidationError,
        "reason",
        "choice",
    ),
    (
        "cancel with a bad reason",
        lambda p, w: p.cancel_order(w.order_id, reason="bored"),
        ValidationError,
        "reason",
        "choice",
    ),
    (
        "capture zero",
        lambda p, w: p.capture_order(w.order_id, amount=0),
        ValidationError,
        "amount",
        "positive",
    ),
    (
        "payment method not an id",
        lambda p, w: p.confirm_payment(w.order_id, payment_method="pm card visa"),
        ValidationError,
        "payment_method",
        "id",
    ),
    (
        "payment method with a trailing newline",
        lambda p, w: p.confirm_payment(w.order_id, payment_method="pm_card_visa\n"),
        ValidationError,
        "payment_method",
        "id",
    ),
    (
        "customer with a trailing newline",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(customer="cus_1\n")),
        ValidationError,
        "customer",
        "id",
    ),
    (
        "receipt email with a trailing newline",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(receipt_email="a@b.co\n")),
        ValidationError,
        "receipt_email",
        None,
    ),
    (
        "return_url not a URL",
        lambda p, w: p.confirm_payment(
            w.order_id, payment_method="pm_card_visa", return_url="not a url"
        ),
        ValidationError,
        "return_url",
        "url",
    ),
    (
        "return_url javascript:",
        lambda p, w: p.confirm_payment(
            w.order_id, payment_method="pm_card_visa", return_url="javascript:alert(1)"
        ),
        ValidationError,
        "return_url",
        "url",
    ),
    (
        "keep_cart not a bool",
        lambda p, w: p.checkout(w.cart_id, keep_cart="no"),
        ValidationError,
        "keep_cart",
        "type",
    ),
    (
        "reconcile limit not an int",
        lambda p, w: p.reconcile(limit="x"),
        ValidationError,
        "limit",
        "positive",
    ),
    (
        "reconcile limit negative",
        lambda p, w: p.reconcile(limit=-1),
        ValidationError,
        "limit",
        "positive",
    ),
    (
        "reconcile older_than before year 1",
        lambda p, w: p.reconcile(older_than=timedelta.max),
        ValidationError,
        "older_than",
        "range",
    ),
    (
        "capture method not a str",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(capture_method=["manual"])),
        ValidationError,
        "capture_method",
        "choice",
    ),
    (
        "setup_future_usage not a str",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(setup_future_usage={})),
        ValidationError,
        "setup_future_usage",
        "choice",
    ),
    (
        "metadata not a mapping",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata=5)),
        ValidationError,
        "metadata",
        "type",
    ),
    (
        "metadata a str",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata="abc")),
        ValidationError,
        "metadata",
        "type",
    ),
    # text a store or Stripe cannot take (a lone surrogate, a NUL)
    (
        "description with a lone surrogate",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(description="Tee \ud83d")),
        ValidationError,
        "description",
        "encodable",
    ),
    (
        "description with a NUL",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(description="Tee\x00")),
        ValidationError,
        "description",
        "no_nul",
    ),
    (
        "metadata key with a lone surrogate",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata={"k\ud83d": "v"})),
        ValidationError,
        "metadata[k\\ud83d]",
        "encodable",
    ),
    (
        "metadata value with a lone surrogate",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata={"k": "\udc00v"})),
        ValidationError,
        "metadata[k]",
        "encodable",
    ),
    (
        "metadata value with a NUL",
        lambda p, w: p.update_payment_intent(w.cart_id, options=Options(metadata={"k": "a\x00"})),
        ValidationError,
        "metadata[k]",
        "no_nul",
    ),
    (
        "options with a surrogate on create",
        lambda p, w: p.create_payment_intent(
            w.empty_cart_id, options=Options(description="\ud83d")
        ),
        ValidationError,
        "description",
        "encodable",
    ),
    (
        "cart created with surrogate options",
        lambda p, w: p.create_cart("usd", options=Options(metadata={"k": "\ud83d"})),
        ValidationError,
        "metadata[k]",
        "encodable",
    ),
    (
        "sku with a lone surrogate",
        lambda p, w: p.add_item(w.cart_id, sku="\ud83dtee", name="X", unit_amount=100),
        ValidationError,
        "sku",
        "encodable",
    ),
    (
        "name with a NUL",
        lambda p, w: p.add_item(w.cart_id, sku="x", name="X\x00", unit_amount=100),
        ValidationError,
        "name",
        "no_nul",
    ),
    (
        "receipt email with a lone surrogate",
        lambda p, w: p.update_payment_intent(
            w.cart_id, options=Options(receipt_email="a\ud83d@b.co")
        ),
        ValidationError,
        "receipt_email",
        "encodable",
    ),
    (
        "return_url with a lone surrogate",
        lambda p, w: p.confirm_payment(
            w.order_id, payment_method="pm_card_visa", return_url="https://shop.test/\ud83d"
        ),
        ValidationError,
        "return_url",
        "encodable",
    ),
    (
        "cart id with a lone surrogate",
        lambda p, w: p.add_item(w.cart_id + "\ud83d", sku="x", name="X", unit_amount=100),
        ValidationError,
        "cart_id",
        "encodable",
    ),
    (
        "cart id with a NUL",
        lambda p, w: p.checkout(w.cart_id + "\x00"),
        ValidationError,
        "cart_id",
        "no_nul",
    ),
    (
        "cart id of 256 characters",
        lambda p, w: p.get_cart("c" * 256),
        ValidationError,
        "cart_id",
        "max_length",
    ),
    (
        "order id with a lone surrogate",
        lambda p, w: p.refund_order("ord_\udfff", amount=100),
        ValidationError,
        "order_id",
        "encodable",
    ),
    (
        "order id with a NUL",
        lambda p, w: p.cancel_order(w.order_id + "\x00"),
        ValidationError,
        "order_id",
        "no_nul",
    ),
    # operations in the wrong status
    (
        "refund an unpaid order",
        lambda p, w: p.refund_order(w.order_id, amount=100),
        IllegalStateError,
        None,
        None,
    ),
    (
        "capture an unpaid order",
        lambda p, w: p.capture_order(w.order_id),
        IllegalStateError,
        None,
        None,
    ),
    (
        "cancel a paid order",
        lambda p, w: p.cancel_order(w.paid_order_id),
        IllegalStateError,
        None,
        None,
    ),
    (
        "pay a paid order again",
        lambda p, w: p.confirm_payment(w.paid_order_id, payment_method="pm_card_visa"),
        IllegalStateError,
        None,
        None,
    ),
    # adjustments (issue 20)
    ("adjustment of an unknown kind", adjust(kind="gift"), ValidationError, "kind", "choice"),
    ("adjustment kind not a str", adjust(kind=None), ValidationError, "kind", "choice"),
    (
        "adjustment code of another kind",
        adjust(kind="discount", code="ship"),
        ValidationError,
        "code",
        "duplicate",
    ),
    ("adjustment of a float", adjust(amount=3.0), ValidationError, "amount", "integer"),
    ("adjustment of a bool", adjust(amount=True), ValidationError, "amount", "integer"),
    ("adjustment of a str", adjust(amount="300"), ValidationError, "amount", "integer"),
    ("negative adjustment", adjust(amount=-300), ValidationError, "amount", "non_negative"),
    (
        "adjustment above the maximum",
        adjust(amount=CARD_MAXIMUM + 1),
        ValidationError,
        "amount",
        "maximum",
    ),
    ("adjustment code too long", adjust(code="c" * 101), ValidationError, "code", "max_length"),
    ("empty adjustment code", adjust(code=""), ValidationError, "code", "non_empty"),
    ("blank adjustment code", adjust(code="  "), ValidationError, "code", "non_empty"),
    ("adjustment code not a str", adjust(code=7), ValidationError, "code", "type"),
    ("adjustment code with NUL", adjust(code="a\x00"), ValidationError, "code", "no_nul"),
    ("adjustment label too long", adjust(label="l" * 501), ValidationError, "label", "max_length"),
    ("empty adjustment label", adjust(label=""), ValidationError, "label", "non_empty"),
    (
        "remove an adjustment the cart lacks",
        lambda p, w: p.remove_adjustment(w.open_cart_id, "nope"),
        ValidationError,
        "code",
        "in_cart",
    ),
    (
        "remove an adjustment code not a str",
        lambda p, w: p.remove_adjustment(w.open_cart_id, None),
        ValidationError,
        "code",
        "type",
    ),
    (
        "update to a total below the minimum",
        lambda p, w: p.update_payment_intent(w.low_cart_id),
        ValidationError,
        "amount",
        "minimum",
    ),
    (
        "create at a total below the minimum",
        lambda p, w: p.create_payment_intent(w.low_cart_id),
        ValidationError,
        "amount",
        "minimum",
    ),
    (
        "checkout at a total below the minimum",
        lambda p, w: p.checkout(w.low_cart_id),
        ValidationError,
        "amount",
        "minimum",
    ),
    (
        "update to a total below zero",
        lambda p, w: p.update_payment_intent(w.negative_cart_id),
        ValidationError,
        "amount",
        "positive",
    ),
    (
        "update a cart without intent",
        lambda p, w: p.update_payment_intent(w.empty_cart_id),
        ValidationError,
        "items",
        "non_empty",
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "error", "field", "rule"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_before_any_call_and_writes_nothing(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    world: World,
    store_state: Callable[[], tuple[object, ...]],
    name: str,
    call: Call,
    error: type[CartpayError],
    field: str | None,
    rule: str | None,
) -> None:
    requests, state = len(fake.requests), store_state()
    with pytest.raises(error) as info:
        call(payments, world)
    if field is not None:
        assert getattr(info.value, "field", None) == field
    if rule is not None:
        assert getattr(info.value, "rule", None) == rule
    if isinstance(info.value, ValidationError):
        assert info.value.field in str(info.value) or name == "metadata key of 41 chars"
    assert len(fake.requests) == requests, "a gateway call was made"
    assert store_state() == state, "something was written"


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(
    ("settings", "field", "rule"),
    [
        ({"webhook_tolerance": 0}, "webhook_tolerance", "positive"),
        ({"webhook_tolerance": -5}, "webhook_tolerance", "positive"),
        ({"webhook_tolerance": 300.0}, "webhook_tolerance", "integer"),
        ({"lease": timedelta(0)}, "lease", "positive"),
        ({"wait": 30}, "wait", "non_negative"),
        ({"wait": timedelta(seconds=-1)}, "wait", "non_negative"),
        ({"clock": 5}, "clock", "callable"),
        ({"new_id": "id"}, "new_id", "callable"),
        ({"pricing": object()}, "pricing", "protocol"),
        ({"pricing": lambda cart: []}, "pricing", "protocol"),
    ],
    ids=repr,
)
def test_bad_facade_settings(
    fake: FakeStripeGateway, settings: dict[str, Any], field: str, rule: str
) -> None:
    from cartpay.stores.memory import MemoryStore

    with pytest.raises(ValidationError) as info:
        CartPaymentIntent(
            return_url="https://shop.test/return", gateway=fake, store=MemoryStore(), **settings
        )
    assert (info.value.field, info.value.rule) == (field, rule)
