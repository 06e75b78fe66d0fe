from __future__ import annotations

from typing import get_args

import pytest

from cartpay import IllegalStateError, Order
from cartpay._lifecycle import (
    INTENT_OPERATIONS,
    ORDER_STATUS_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    check_intent_operation,
    check_order_operation,
    render_tables,
    transition_order,
)
from cartpay._models import IntentStatus, OrderStatus, PaymentStatus

STATUSES: tuple[IntentStatus, ...] = get_args(IntentStatus)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("operation", list(INTENT_OPERATIONS))
def test_intent_table_is_applied(operation: str, status: IntentStatus) -> None:
    allowed = status in INTENT_OPERATIONS[operation]  # type: ignore[index]
    if allowed:
        check_intent_operation(operation, status)  # type: ignore[arg-type]
    else:
        with pytest.raises(IllegalStateError) as info:
            check_intent_operation(operation, status, intent_id="pi_1")  # type: ignore[arg-type]
        assert (info.value.entity, info.value.status, info.value.entity_id) == (
            "intent",
            status,
            "pi_1",
        )


def test_key_cells_of_the_intent_table() -> None:
    assert "processing" not in INTENT_OPERATIONS["update_amount"]
    assert INTENT_OPERATIONS["capture"] == {"requires_capture"}
    assert INTENT_OPERATIONS["refund"] == {"succeeded"}
    assert "succeeded" not in INTENT_OPERATIONS["cancel"]


def _order(status: OrderStatus = "incomplete", payment: PaymentStatus = "unpaid") -> Order:
    return Order("ord_1", "cart_1", "usd", 1000, (), "pi_1", status=status, payment=payment)


@pytest.mark.parametrize("src", get_args(OrderStatus))
@pytest.mark.parametrize("dst", get_args(OrderStatus))
def test_order_status_table(src: OrderStatus, dst: OrderStatus) -> None:
    order = _order(src, "unpaid")
    if src == dst or dst in ORDER_STATUS_TRANSITIONS[src]:
        assert transition_order(order, dst, "unpaid").status == dst
    else:
        with pytest.raises(IllegalStateError):
            transition_order(order, dst, "unpaid")


@pytest.mark.parametrize("src", get_args(PaymentStatus))
@pytest.mark.parametrize("dst", get_args(PaymentStatus))
def test_payment_table(src: PaymentStatus, dst: PaymentStatus) -> None:
    order = _order("incomplete", src)
    if src == dst or dst in PAYMENT_TRANSITIONS[src]:
        assert transition_order(order, "incomplete", dst).payment == dst
    else:
        with pytest.raises(IllegalStateError):
            transition_order(order, "incomplete", dst)


def test_final_states_are_final() -> None:
    assert ORDER_STATUS_TRANSITIONS["complete"] == frozenset()
    assert ORDER_STATUS_TRANSITIONS["cancelled"] == frozenset()
    # Money once captured never goes back to unpaid: a refund that fails after it
    # succeeded moves "refunded" back to paid, never further.
    for captured in ("paid", "partially_paid", "partially_refunded", "refunded"):
        assert PAYMENT_TRANSITIONS[captured] <= {
            "paid",
            "partially_paid",
            "partially_refunded",
            "refunded",
        }


def test_illegal_order_operation_changes_nothing() -> None:
    order = _order("complete", "paid")
    with pytest.raises(IllegalStateError) as info:
        check_order_operation("capture", order)
    assert info.value.entity == "order"
    assert order == _order("complete", "paid")


def test_docs_table_is_generated_from_the_data() -> None:
    text = render_tables()
    assert "| capture | ✗ | ✗ | ✗ | ✗ | ✓ | ✗ | ✗ |" in text
    with open("docs/lifecycle.md", encoding="utf-8") as handle:
        assert handle.read() == text, "run: python -m cartpay tables > docs/lifecycle.md"
