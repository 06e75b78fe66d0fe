"""Every Hypothesis strategy of the property suite, in one module (STYLE habit 11).

Amounts are multiples of 10 minor units so they are valid in every currency the
suite uses (``kwd`` amounts need a trailing zero); some carts stay below Stripe's
minimum charge on purpose (``ValidationError`` is an outcome to cover too).
"""

from __future__ import annotations

from typing import Literal

from hypothesis import strategies as st

__all__ = [
    "Payment",
    "cancel_reasons",
    "currencies",
    "fault_seeds",
    "line_items",
    "new_quantities",
    "payments",
    "percentages",
    "quantities",
    "refund_reasons",
    "skus",
    "unit_amounts",
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
payments: st.SearchStrategy[Payment] = st.sampled_from(
    ["succeeds", "declined", "authentication", "processing"]
)
#: ``None`` means "all of it"; else a share, in percent, of what is capturable/refundable.
percentages = st.one_of(st.none(), st.integers(min_value=1, max_value=100))
cancel_reasons = st.sampled_from([None, "requested_by_customer", "abandoned", "duplicate"])
refund_reasons = st.sampled_from([None, "requested_by_customer", "duplicate", "fraudulent"])
fault_seeds = st.integers(min_value=0, max_value=2**32 - 1)
