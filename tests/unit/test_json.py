"""The JSON form of the public models: ``cartpay.to_json`` / ``cartpay.from_json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings, strategies as st

import cartpay
from cartpay import (
    Cart,
    CartPaymentIntent,
    IntentHandle,
    IntentOptions,
    IntentRecord,
    IntentSnapshot,
    LineItem,
    Order,
    OrphanedIntent,
    PaymentFailure,
    ReconcileReport,
    RefundSnapshot,
    Transaction,
    ValidationError,
    WebhookResult,
    from_json,
    to_json,
)
from cartpay._json import SHAPES

ids = st.text("abcdefghij_0123456789", min_size=1, max_size=12)
texts = st.text(max_size=20)  # any Unicode: JSON carries it
amounts = st.integers(min_value=0, max_value=10**12)
times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5, minutes=-30))]),
)
currencies = st.sampled_from(["usd", "eur", "jpy", "kwd"])
options = st.sampled_from(
    [
        IntentOptions(),
        IntentOptions(capture_method="manual", metadata={"shop": "north", "ü": "✓"}),
        IntentOptions(
            automatic_payment_methods=True, allow_redirects="never", description="Order 7"
        ),
        IntentOptions(allowed_payment_method_types=("card",), receipt_email="a@example.com"),
    ]
)
line_items = st.builds(LineItem, ids, texts, amounts, st.integers(min_value=1, max_value=999))
transactions = st.builds(
    Transaction,
    ids,
    st.sampled_from(["authorize", "capture", "purchase", "refund"]),
    st.sampled_from(["pending", "complete", "failed", "cancelled"]),
    amounts,
    currencies,
    ids,
    code=st.none() | ids,
)
carts = st.builds(
    Cart,
    ids,
    currencies,
    items=st.lists(line_items, max_size=3).map(tuple),
    payment_intent_id=st.none() | ids,
    created_at=st.none() | times,
    version=st.integers(0, 50),
    generation=st.integers(0, 5),
    options=options,
    last_order_id=st.none() | ids,
)
orders = st.builds(
    Order,
    ids,
    ids,
    currencies,
    amounts,
    st.lists(line_items, max_size=3).map(tuple),
    st.none() | ids,
    status=st.sampled_from(["incomplete", "processing", "complete", "cancelled"]),
    payment=st.sampled_from(["unpaid", "authorized", "paid", "partially_refunded", "failed"]),
    transactions=st.lists(transactions, max_size=4).map(tuple),
    created_at=st.none() | times,
    version=st.integers(0, 50),
    flag=st.none() | st.just("amount_mismatch"),
)
failures = st.builds(PaymentFailure, st.none() | ids, st.none() | ids, st.none() | texts)
snapshots = st.builds(
    IntentSnapshot,
    ids,
    st.sampled_from(["requires_payment_method", "processing", "requires_capture", "succeeded"]),
    amounts,
    currencies,
    client_secret=st.none() | ids.map(lambda s: f"pi_{s}_secret_{s}"),
    amount_received=amounts,
    metadata=st.dictionaries(ids, texts, max_size=3),
    last_payment_error=st.none() | failures,
)
records = st.builds(
    IntentRecord,
    ids,
    ids,
    st.sampled_from(["requires_payment_method", "succeeded", "canceled"]),
    amounts,
    currencies,
    times,
    order_id=st.none() | ids,
    version=st.integers(0, 9),
    snapshot=st.none() | snapshots,
)
refunds = st.builds(
    RefundSnapshot,
    ids,
    ids,
    amounts,
    currencies,
    st.sampled_from(["pending", "succeeded", "failed"]),
    reason=st.none() | st.just("requested_by_customer"),
)
webhook_results = st.builds(
    WebhookResult, ids, ids, st.sampled_from(["applied", "duplicate", "ignored"]), st.none() | ids
)
orphans = st.builds(OrphanedIntent, ids, ids, amounts, currencies)
reports = st.builds(
    ReconcileReport,
    checked=st.lists(ids, max_size=3).map(tuple),
    repaired=st.lists(ids, max_size=3).map(tuple),
    orphaned=st.lists(orphans, max_size=2).map(tuple),
    errors=st.lists(st.tuples(ids, texts), max_size=2).map(tuple),
    actions=st.lists(st.tuples(ids, texts), max_size=2).map(tuple),
)
models = st.one_of(
    carts,
    orders,
    line_items,
    transactions,
    snapshots,
    records,
    refunds,
    webhook_results,
    reports,
    st.sampled_from(["usd", "jpy", "kwd"]).map(cartpay.get_currency),
)


def without_internal(model: Any) -> Any:
    """The model as its JSON form gives it back: internal fields at their defaults,
    times in UTC."""
    shape = SHAPES[type(model)]
    resets: dict[str, Any] = {}
    for f in attrs.fields(type(model)):
        if f.name in shape.internal:
            default = f.default
            resets[f.name] = default.factory() if hasattr(default, "factory") else default
    return attrs.evolve(model, **resets)


@settings(max_examples=150, deadline=None)
@given(models)
def test_every_model_round_trips_through_json_text(model: Any) -> None:
    data = to_json(model)
    text = json.dumps(data, allow_nan=False)  # JSON-ready as it is: no default= needed
    back = from_json(type(model), json.loads(text))
    assert back == without_internal(model)
    assert to_json(back) == data  # the form is stable


@settings(max_examples=100, deadline=None)
@given(models)
def test_the_form_is_the_fields_less_internal_plus_computed(model: Any) -> None:
    shape = SHAPES[type(model)]
    data = to_json(model)
    fields = [f.name for f in attrs.fields(type(model))]
    expected = [n for n in fields if n not in shape.internal] + list(shape.computed)
    assert list(data) == expected
    for name in shape.computed:
        assert data[name] == getattr(model, name)
    for name in ("version", "generation", "pending", "sent", "snapshot", "client_secret"):
        assert name not in data


@given(times)
def test_times_are_iso_8601_in_utc(moment: datetime) -> None:
    data = to_json(Cart("cart_1", "usd", created_at=moment))
    text = data["created_at"]
    assert text.endswith("Z") and "+" not in text
    assert datetime.fromisoformat(text[:-1] + "+00:00") == moment
    assert from_json(Cart, data).created_at == moment
    assert from_json(Cart, data).created_at.tzinfo == timezone.utc  # type: ignore[union-attr]


def test_every_public_model_has_a_shape_naming_real_fields() -> None:
    public = {
        getattr(cartpay, n)
        for n in cartpay.__all__
        if attrs.has(getattr(cartpay, n, None))  # type: ignore[arg-type]
    }
    assert public - set(SHAPES) == {cartpay.IntentParams, cartpay.PendingOperation}
    for cls, shape in SHAPES.items():
        names = {f.name for f in attrs.fields(cls)}
        assert set(shape.internal) <= names, cls
        for name in shape.computed:
            assert isinstance(getattr(cls, name), property), (cls, name)


def test_a_checked_out_and_paid_order_from_the_facade(
    payments: CartPaymentIntent, make_order: Callable[..., Order]
) -> None:
    order = make_order()
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    paid = payments.refund_order(order.id, 1000)
    data = json.loads(json.dumps(to_json(paid)))
    assert data["payment"] == "partially_refunded"
    assert (data["total"], data["captured"], data["refunded"], data["refundable"]) == (
        6200,
        6200,
        1000,
        5200,
    )
    assert [t["kind"] for t in data["transactions"]] == ["purchase", "refund"]
    assert "version" not in data and "pending" not in data
    assert data["created_at"].endswith("Z")
    assert from_json(Order, data) == attrs.evolve(paid, version=0)


def test_client_secrets_stay_out_unless_asked_for(payments: CartPaymentIntent) -> None:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=500)
    handle = payments.create_payment_intent(cart.id)
    assert handle.client_secret
    assert handle.client_secret not in json.dumps(to_json(handle))
    assert "client_secret" not in to_json(handle)
    assert to_json(handle, include_client_secret=True)["client_secret"] == handle.client_secret
    snap = IntentSnapshot("pi_1", "succeeded", 5, "usd", client_secret="pi_1_secret_x")
    assert "pi_1_secret_x" not in json.dumps(to_json(snap))
    with pytest.raises(TypeError, match="cannot be read"):
        from_json(IntentHandle, to_json(handle))


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"currency": "usd"}, "id", "required"),
        ({"id": 5, "currency": "usd"}, "id", "type"),
        (
            {
                "id": "c",
                "currency": "usd",
                "items": [{"sku": "a", "name": "A", "unit_amount": "5"}],
            },
            "items[0].unit_amount",
            "type",
        ),
        ({"id": "c", "currency": "usd", "created_at": "yesterday"}, "created_at", "type"),
        ({"id": "c", "currency": "usd", "created_at": 1700000000}, "created_at", "type"),
        ({"id": "c", "currency": "usd", "options": {"capture_method": "later"}}, None, None),
        (
            {"id": "c", "currency": "usd", "options": {"allow_redirects": "never"}},
            "allow_redirects",
            "requires",
        ),
    ],
)
def test_bad_json_is_a_validation_error_naming_the_field(
    data: dict[str, Any], field: str | None, rule: str | None
) -> None:
    with pytest.raises(ValidationError) as caught:
        from_json(Cart, data)
    if field is not None:
        assert (caught.value.field, caught.value.rule) == (field, rule)
    else:
        assert caught.value.field.startswith("options")


def test_not_a_mapping_or_not_a_model() -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        from_json(Order, [])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no JSON form"):
        to_json({"id": "x"})
    with pytest.raises(TypeError, match="cannot be read"):
        from_json(dict, {})
