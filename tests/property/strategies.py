"""Every Hypothesis strategy of the property suite, in one module (STYLE habit 11).

Amounts are multiples of 10 minor units so they are valid in every currency the
suite uses (``kwd`` amounts need a trailing zero); some carts stay below Stripe's
minimum charge on purpose (``ValidationError`` is an outcome to cover too).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from hypothesis import strategies as st

__all__ = [
    "Payment",
    "adjustment_actions",
    "adjustment_amounts",
    "adjustment_codes",
    "adjustment_kinds",
    "any_text",
    "any_values",
    "cancel_reasons",
    "currencies",
    "fault_seeds",
    "json_values",
    "line_items",
    "lost_operations",
    "new_quantities",
    "payments",
    "percentages",
    "pile_sizes",
    "quantities",
    "refund_reasons",
    "skus",
    "unit_amounts",
    "webhook_bodies",
]

#: What a customer's payment attempt does; each backend maps it to a test payment method.
Payment = Literal["succeeds", "declined", "authentication", "processing"]

currencies = st.sampled_from(["usd", "jpy", "kwd"])
skus = st.sampled_from(["tee", "mug", "cap"])
unit_amounts = st.integers(min_value=2, max_value=900).map(lambda n: n * 10)
quantities = st.integers(min_value=1, max_value=3)
#: ``set_quantity`` values: 0 removes the line.
new_quantities = st.integers(min_value=0, max_value=3)
#: ``(sku, unit_amount, quantity)`` lines to fill a new cart with.
line_items = st.lists(st.tuples(skus, unit_amounts, quantities), max_size=3)
#: Issue 20's adjustments: a code may come back with another kind (refused).
adjustment_kinds = st.sampled_from(["shipping", "tax", "fee", "discount"])
#: What ``add_item`` does with the adjustments rule group on: add the item (one
#: time in two), remove an adjustment, or add one of a kind.
adjustment_actions = st.sampled_from(["item", "item", "item", "remove"]) | adjustment_kinds
adjustment_codes = st.sampled_from(["ship", "promo", "wrap"])
adjustment_amounts = st.integers(min_value=0, max_value=300).map(lambda n: n * 10)
payments: st.SearchStrategy[Payment] = st.sampled_from(
    ["succeeds", "declined", "authentication", "processing"]
)
#: ``None`` means "all of it"; else a share, in percent, of what is capturable/refundable.
percentages = st.one_of(st.none(), st.integers(min_value=1, max_value=100))
cancel_reasons = st.sampled_from([None, "requested_by_customer", "abandoned", "duplicate"])
refund_reasons = st.sampled_from([None, "requested_by_customer", "duplicate", "fraudulent"])
fault_seeds = st.integers(min_value=0, max_value=2**32 - 1)
#: The gateway operations whose answer can be lost after the gateway applied them.
lost_operations = st.sampled_from(
    [
        "create_intent",
        "update_intent",
        "confirm_intent",
        "capture_intent",
        "cancel_intent",
        "create_refund",
    ]
)
#: How many checkouts a batch of customers abandons (reconcile must see past them).
pile_sizes = st.integers(min_value=1, max_value=8)

# ------------------------------------------------------------ the fuzz test
#: Any str: lone surrogates (category Cs) and NUL included, which text() leaves out.
any_text = st.text(st.characters(exclude_categories=()), max_size=60) | st.sampled_from(
    ["\ud83d", "\x00", "a\udc00b", "x" * 300, "cart_1\n", " ", ""]
)
#: Numbers at and beyond every bound cartpay, the stores and Stripe know.
any_numbers = (
    st.integers()
    | st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, 99_999_999, 100_000_000])
    | st.floats(allow_nan=True)
)
#: JSON values, nested (the strings any str).
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | any_numbers | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
#: What a host might pass where it should not: anything.
any_values: st.SearchStrategy[Any] = (
    any_text | any_numbers | st.none() | st.booleans() | st.binary(max_size=8) | json_values
)


@st.composite
def webhook_bodies(draw: st.DrawFn, intent_ids: list[str]) -> bytes:
    """A body that is an event (of a type cartpay reads, on an intent it knows,
    or not) with arbitrary fields, or arbitrary bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=200))
    obj: dict[str, Any] = draw(st.dictionaries(any_text, json_values, max_size=5))
    kind = draw(st.sampled_from(["payment_intent", "refund", "charge", "other"]))
    obj["object"] = kind
    if kind == "payment_intent":
        obj.setdefault("id", draw(st.sampled_from(intent_ids) | any_text))
        for name in ("status", "amount", "currency", "amount_received", "created"):
            if draw(st.booleans()):
                obj[name] = draw(
                    st.sampled_from(["succeeded", "canceled", "requires_capture", "usd", 2500])
                    | json_values
                )
    else:
        obj["payment_intent"] = draw(st.sampled_from(intent_ids) | json_values)
    event = {
        "id": draw(st.sampled_from(["evt_1", "evt_2"]) | any_text),
        "object": "event",
        "type": draw(
            st.sampled_from(
                [
                    "payment_intent.succeeded",
                    "payment_intent.canceled",
                    "payment_intent.amount_capturable_updated",
                    "refund.created",
                    "charge.refunded",
                ]
            )
            | any_text
        ),
        "livemode": draw(st.booleans() | json_values),
        "created": draw(any_numbers),
        "data": {"object": obj},
    }
    return json.dumps(event).encode()  # (NaN and Infinity included, as Python writes them)
