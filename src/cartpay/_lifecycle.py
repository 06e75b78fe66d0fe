"""The state machines, as data: PaymentIntent status × operation, and the order's
status and payment transitions. One function applies each table; an illegal step
raises :class:`~cartpay.IllegalStateError` and changes nothing.

``python -m cartpay tables`` prints these tables; ``docs/lifecycle.md`` is that output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeVar, get_args

from attrs import evolve

from ._errors import IllegalStateError
from ._models import (
    IntentStatus,
    OperationName,
    Order,
    OrderStatus,
    PaymentStatus,
    TransactionKind,
    TransactionStatus,
)

__all__ = [
    "ANSWERED_BY_INTENT",
    "AUTHORIZED",
    "DISPUTE_TRANSACTION",
    "EARLY",
    "FINAL_INTENT",
    "INTENT_OPERATIONS",
    "MONEY_MOVING",
    "ORDER_OPERATIONS",
    "ORDER_STATUS_TRANSITIONS",
    "PAYMENT_TRANSITIONS",
    "REFRESHED",
    "REUSABLE",
    "TRANSACTION_STEPS",
    "advance_order",
    "check_intent_operation",
    "check_order_operation",
    "is_final",
    "render_tables",
    "transition_order",
]

T = TypeVar("T", OrderStatus, PaymentStatus)

IntentOperation = Literal[
    "update_amount", "update_fields", "confirm", "capture", "cancel", "refund"
]
OrderOperation = Literal["confirm_payment", "capture", "cancel", "refund"]

#: Statuses before any payment attempt went through (the intent can still take one).
EARLY: frozenset[IntentStatus] = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action"}
)

#: PaymentIntent status × operation → allowed (docs/stripe.md, section 1.2; conservative
#: where Stripe's answer is not established: "?" cells are refused).
INTENT_OPERATIONS: Mapping[IntentOperation, frozenset[IntentStatus]] = {
    "update_amount": EARLY,
    "update_fields": EARLY,
    "confirm": frozenset({"requires_payment_method", "requires_confirmation"}),
    "capture": frozenset({"requires_capture"}),
    "cancel": EARLY | {"requires_capture"},
    "refund": frozenset({"succeeded"}),
}

#: Intent statuses in which the intent can still take a payment (create reuses it).
REUSABLE: frozenset[IntentStatus] = EARLY
#: Intent statuses in which a payment is on its way or taken (money can move).
MONEY_MOVING: frozenset[IntentStatus] = frozenset({"processing", "requires_capture", "succeeded"})
#: Intent statuses reconcile refreshes when no order claims the intent.
REFRESHED: frozenset[IntentStatus] = frozenset(get_args(IntentStatus)) - {"canceled"}
#: Order operations whose effect the intent itself shows, so an unknown outcome is
#: settled by reading it (a refund's needs the refund list; a cart's create or
#: update cannot be asked about and is replayed with its own key instead).
ANSWERED_BY_INTENT: frozenset[OperationName] = frozenset({"confirm", "capture", "cancel"})
#: Intent statuses after which nothing about the intent changes any more.
FINAL_INTENT: frozenset[IntentStatus] = frozenset({"succeeded", "canceled"})

ORDER_STATUS_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    "incomplete": frozenset({"processing", "complete", "cancelled"}),
    # An asynchronous payment that fails sends the order back to payable.
    "processing": frozenset({"incomplete", "complete", "cancelled"}),
    "complete": frozenset(),
    "cancelled": frozenset(),
}

_PAYABLE: frozenset[PaymentStatus] = frozenset(
    {"authorized", "partially_authorized", "paid", "partially_paid", "failed"}
)
PAYMENT_TRANSITIONS: Mapping[PaymentStatus, frozenset[PaymentStatus]] = {
    "unpaid": _PAYABLE,
    "failed": _PAYABLE | {"unpaid"},
    # A voided authorization (cancel, expiry) leaves nothing paid.
    "authorized": frozenset({"paid", "partially_paid", "unpaid"}),
    "partially_authorized": frozenset({"paid", "partially_paid", "unpaid"}),
    "paid": frozenset({"partially_refunded", "refunded"}),
    "partially_paid": frozenset({"partially_refunded", "refunded"}),
    # A refund that fails after it succeeded gives the money back to the order.
    "partially_refunded": frozenset({"refunded", "paid", "partially_paid"}),
    "refunded": frozenset({"partially_refunded", "paid", "partially_paid"}),
}

_PAYMENT_STEPS: Mapping[TransactionStatus, frozenset[TransactionStatus]] = {
    "pending": frozenset({"complete", "failed", "cancelled"}),
    "complete": frozenset(),
    # A stale failure (an earlier attempt's event) may have failed a newer pending
    # attempt; the intent's success with that same charge is authoritative.
    "failed": frozenset({"complete"}),
    "cancelled": frozenset(),
}
#: Transaction kind → (status → the statuses it may still move to): a
#: transaction only moves forward, so a late or repeated snapshot never undoes a
#: newer one.
TRANSACTION_STEPS: Mapping[
    TransactionKind, Mapping[TransactionStatus, frozenset[TransactionStatus]]
] = {
    # A complete authorization can still be voided (cancel, expiry).
    "authorize": {**_PAYMENT_STEPS, "complete": frozenset({"cancelled"})},
    "purchase": _PAYMENT_STEPS,
    "capture": _PAYMENT_STEPS,
    # A refund can fail after it succeeded (its funds come back later; Stripe
    # sends refund.failed), and a failed refund never succeeds again.
    "refund": {
        "pending": frozenset({"complete", "failed", "cancelled"}),
        "complete": frozenset({"failed"}),
        "failed": frozenset(),
        "cancelled": frozenset(),
    },
    # A chargeback: open (funds withdrawn) → lost (complete) or won (cancelled:
    # funds reinstated). A lost dispute won on appeal is reinstated too; a won
    # one is final, so a late "needs_response" never reopens it.
    "dispute": {
        "pending": frozenset({"complete", "cancelled"}),
        "complete": frozenset({"cancelled"}),
        "failed": frozenset(),
        "cancelled": frozenset(),
    },
}

#: Stripe dispute status → the dispute transaction's status (docs/going-live.md,
#: "Disputes"). Inquiries (``warning_*``) and prevented disputes move no money:
#: they imply no transaction (``None``), and neither does a status not listed.
DISPUTE_TRANSACTION: Mapping[str, TransactionStatus | None] = {
    "warning_needs_response": None,
    "warning_under_review": None,
    "warning_closed": None,
    "prevented": None,
    "needs_response": "pending",
    "under_review": "pending",
    "appeal_needs_response": "pending",
    "appeal_under_review": "pending",
    "lost": "complete",
    "won": "cancelled",
}

#: Order payments whose authorization can lapse (reconcile's ``expiring`` report).
AUTHORIZED: frozenset[PaymentStatus] = frozenset({"authorized", "partially_authorized"})


#: Order operation → (allowed order statuses, allowed payment statuses).
ORDER_OPERATIONS: Mapping[
    OrderOperation, tuple[frozenset[OrderStatus], frozenset[PaymentStatus]]
] = {
    "confirm_payment": (frozenset({"incomplete"}), frozenset({"unpaid", "failed"})),
    "capture": (frozenset({"processing"}), frozenset({"authorized", "partially_authorized"})),
    "cancel": (
        frozenset({"incomplete", "processing"}),
        frozenset({"unpaid", "failed", "authorized", "partially_authorized"}),
    ),
    "refund": (
        frozenset({"complete"}),
        frozenset({"paid", "partially_paid", "partially_refunded"}),
    ),
}


def check_intent_operation(
    operation: IntentOperation, status: IntentStatus, *, intent_id: str | None = None
) -> None:
    """Raise ``IllegalStateError`` unless ``operation`` is allowed in ``status``."""
    if status not in INTENT_OPERATIONS[operation]:
        allowed = ", ".join(sorted(INTENT_OPERATIONS[operation]))
        raise IllegalStateError(
            "intent", operation, status, entity_id=intent_id, detail=f"allowed only in {allowed}"
        )


def check_order_operation(operation: OrderOperation, order: Order) -> None:
    """Raise ``IllegalStateError`` unless the order's status and payment allow ``operation``."""
    statuses, payments = ORDER_OPERATIONS[operation]
    if order.status not in statuses:
        raise IllegalStateError("order", operation, order.status, entity_id=order.id)
    if order.payment not in payments:
        raise IllegalStateError(
            "order", operation, order.payment, entity_id=order.id, detail="payment status"
        )


def transition_order(order: Order, status: OrderStatus, payment: PaymentStatus) -> Order:
    """The order in ``status``/``payment``; raises if either step is not in its table."""
    if status != order.status and status not in ORDER_STATUS_TRANSITIONS[order.status]:
        raise IllegalStateError("order", f"move to {status}", order.status, entity_id=order.id)
    if payment != order.payment and payment not in PAYMENT_TRANSITIONS[order.payment]:
        raise IllegalStateError(
            "order", f"set payment {payment}", order.payment, entity_id=order.id
        )
    if status == order.status and payment == order.payment:
        return order
    return evolve(order, status=status, payment=payment)


def _reachable(table: Mapping[T, frozenset[T]], start: T, goal: T) -> bool:
    seen, frontier = {start}, [start]
    while frontier:
        for step in table[frontier.pop()]:
            if step == goal:
                return True
            if step not in seen:
                seen.add(step)
                frontier.append(step)
    return start == goal


def advance_order(order: Order, status: OrderStatus, payment: PaymentStatus) -> Order:
    """The order in ``status``/``payment`` when the tables reach them from where it is
    in one step or several (events may skip steps: a refund's news can come before
    the payment's); raises ``IllegalStateError`` when they cannot be reached."""
    if not _reachable(ORDER_STATUS_TRANSITIONS, order.status, status):
        raise IllegalStateError("order", f"move to {status}", order.status, entity_id=order.id)
    if not _reachable(PAYMENT_TRANSITIONS, order.payment, payment):
        raise IllegalStateError(
            "order", f"set payment {payment}", order.payment, entity_id=order.id
        )
    if status == order.status and payment == order.payment:
        return order
    return evolve(order, status=status, payment=payment)


def is_final(status: IntentStatus) -> bool:
    return status in FINAL_INTENT


def render_tables() -> str:
    """The tables as Markdown (``docs/lifecycle.md`` is generated from this)."""
    statuses: tuple[str, ...] = get_args(IntentStatus)
    lines = ["# Lifecycle tables", "", "Generated by `python -m cartpay tables`.", ""]
    lines += ["## PaymentIntent status × operation", ""]
    lines.append("| operation | " + " | ".join(statuses) + " |")
    lines.append("|---" * (len(statuses) + 1) + "|")
    for op, allowed in INTENT_OPERATIONS.items():
        cells = ["✓" if s in allowed else "✗" for s in statuses]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines += ["", "## Order status transitions", "", "| from | to |", "|---|---|"]
    for src, dsts in ORDER_STATUS_TRANSITIONS.items():
        lines.append(f"| {src} | {', '.join(sorted(dsts)) or '(final)'} |")
    lines += ["", "## Order payment transitions", "", "| from | to |", "|---|---|"]
    for src_p, dsts_p in PAYMENT_TRANSITIONS.items():
        lines.append(f"| {src_p} | {', '.join(sorted(dsts_p)) or '(final)'} |")
    lines += [
        "",
        "## Order operations",
        "",
        "| operation | order status | payment |",
        "|---|---|---|",
    ]
    for op_o, (st, pay) in ORDER_OPERATIONS.items():
        lines.append(f"| {op_o} | {', '.join(sorted(st))} | {', '.join(sorted(pay))} |")
    lines += ["", "## Transaction steps", "", "| kind | from | to |", "|---|---|---|"]
    for kind, steps in TRANSACTION_STEPS.items():
        for src_t, dsts_t in steps.items():
            lines.append(f"| {kind} | {src_t} | {', '.join(sorted(dsts_t)) or '(final)'} |")
    lines += [
        "",
        "## Dispute status → dispute transaction",
        "",
        "| Stripe dispute status | transaction status |",
        "|---|---|",
    ]
    for dispute_status, txn_status in DISPUTE_TRANSACTION.items():
        lines.append(f"| {dispute_status} | {txn_status or '(none: no money moved)'} |")
    return "\n".join(lines) + "\n"
