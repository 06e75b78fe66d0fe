"""What a snapshot means for an order: pure functions shared by ``confirm_order``,
the operations that return a snapshot, webhooks and reconciliation (docs/design.md,
"Confirm order").

Application is monotonic: transactions only move forward (pending → final, plus
the two steps out of ``complete`` Stripe has: a voided authorization and a refund
that fails after it succeeded), and a status step the order tables forbid is not
taken, so a late or repeated snapshot never undoes what a newer one did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from attrs import evolve

from ._errors import IllegalStateError
from ._lifecycle import (
    DISPUTE_TRANSACTION,
    EARLY,
    TRANSACTION_STEPS,
    advance_order,
    transition_order,
)
from ._models import (
    DisputeSnapshot,
    IntentSnapshot,
    Order,
    OrderStatus,
    PaymentStatus,
    RefundSnapshot,
    Transaction,
    TransactionKind,
    TransactionStatus,
)

__all__ = [
    "apply_disputes",
    "apply_intent",
    "apply_refunds",
    "cancel_locally",
    "is_payment_attempt",
    "transaction_id",
]

_REFUND_STATUS: Mapping[str, TransactionStatus] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "complete",
    "failed": "failed",
    "canceled": "cancelled",
}


def transaction_id(reference: str, kind: str, attempt: str = "") -> str:
    """Deterministic, so every path that sees the same movement records it once."""
    digest = hashlib.blake2b(f"{reference}|{kind}|{attempt}".encode(), digest_size=10)
    return "txn_" + digest.hexdigest()


def is_payment_attempt(snapshot: IntentSnapshot) -> bool:
    """Whether the snapshot shows money moving (or a failed try): it binds the intent
    to the order it is applied to (docs/design.md, rule 6)."""
    if snapshot.status in ("processing", "requires_capture", "succeeded"):
        return True
    return snapshot.status in EARLY and snapshot.last_payment_error is not None


def _transaction(
    snap: IntentSnapshot,
    kind: TransactionKind,
    status: TransactionStatus,
    amount: int,
    attempt: str,
    code: str | None = None,
) -> Transaction:
    return Transaction(
        transaction_id(snap.id, kind, attempt), kind, status, amount, snap.currency, snap.id, code
    )


def _implied(order: Order, snap: IntentSnapshot, *, current: bool = False) -> list[Transaction]:
    """The transactions the snapshot implies (merged into the order by id).
    ``current``: the snapshot was read from the gateway just now (not an event's
    copy, which may be late): then an intent waiting for a payment has no
    attempt processing, and every pending one has ended."""
    manual = snap.capture_method == "manual"
    kind: TransactionKind = "authorize" if manual else "purchase"
    charge = snap.latest_charge or ""
    mine = [t for t in order.transactions if t.reference == snap.id]
    if snap.status == "processing":
        if manual and any(t.kind == "authorize" and t.status == "complete" for t in mine):
            return [_transaction(snap, "capture", "pending", snap.amount, "")]
        return [_transaction(snap, kind, "pending", snap.amount, charge)]
    if snap.status == "requires_capture":
        return [
            _transaction(snap, "authorize", "complete", snap.amount_capturable or snap.amount, "")
        ]
    if snap.status == "succeeded":
        received = snap.amount_received or snap.amount
        if manual:
            return [
                _transaction(snap, "authorize", "complete", snap.amount, ""),
                _transaction(snap, "capture", "complete", received, ""),
            ]
        return [_transaction(snap, "purchase", "complete", received, charge)]
    if snap.status == "canceled":
        # The cancellation reason stays with what it cancelled: "expired" when
        # Stripe let an authorization lapse, the host's reason for a cancel.
        return [
            evolve(t, status="cancelled", code=snap.cancellation_reason)
            for t in mine
            if t.kind in ("authorize", "purchase", "capture")
            and t.status in ("pending", "complete")
        ]
    waiting = [t for t in mine if t.status == "pending" and t.kind in ("authorize", "purchase")]
    # An event's copy may be late: only the attempt it names failed. A current
    # read says no attempt is processing: those it does not name ended too (their
    # own failure's news was lost).
    ended = [evolve(t, status="failed") for t in waiting] if current else []
    error = snap.last_payment_error
    if error is None:
        return ended
    pending = waiting
    if error.charge:  # only the attempt that failed: a late failure of an earlier
        # attempt must not fail a newer one still processing
        failed = transaction_id(snap.id, kind, error.charge)
        pending = [t for t in pending if t.id == failed]
    named = [evolve(t, status="failed", code=error.code) for t in pending]
    others = [t for t in ended if t.id not in {n.id for n in named}]
    if named:
        return named + others
    attempt = error.charge or charge or f"{error.code}:{snap.payment_method or ''}"
    return [_transaction(snap, kind, "failed", snap.amount, attempt, error.code), *others]


def _merge(
    existing: tuple[Transaction, ...], incoming: Iterable[Transaction]
) -> tuple[Transaction, ...]:
    by_id = {t.id: t for t in existing}
    order = [t.id for t in existing]
    for new in incoming:
        old = by_id.get(new.id)
        if old is None:
            by_id[new.id] = new
            order.append(new.id)
        elif new.status in TRANSACTION_STEPS[old.kind][old.status]:
            by_id[new.id] = evolve(old, status=new.status, amount=new.amount, code=new.code)
    return tuple(by_id[i] for i in order)


def _derive(order: Order, *, canceled: bool) -> tuple[OrderStatus, PaymentStatus]:
    captured, refunded = order.captured, order.refunded
    if captured:
        if refunded >= captured:
            return "complete", "refunded"
        if refunded:
            return "complete", "partially_refunded"
        return "complete", "paid" if captured >= order.total else "partially_paid"
    authorized = order.authorized
    if authorized:
        return "processing", "authorized" if authorized >= order.total else "partially_authorized"
    payments = [t for t in order.transactions if t.kind in ("authorize", "purchase", "capture")]
    if canceled or order.status == "cancelled":
        return "cancelled", "failed" if order.payment == "failed" else "unpaid"
    if any(t.status == "pending" for t in payments):
        return "processing", order.payment if order.payment in ("unpaid", "failed") else "unpaid"
    if payments and payments[-1].status == "failed":
        return "incomplete", "failed"
    return "incomplete", order.payment if order.payment in ("unpaid", "failed") else "unpaid"


def _restate(order: Order, *, canceled: bool = False) -> Order:
    status, payment = _derive(order, canceled=canceled)
    try:
        return advance_order(order, status, payment)
    except IllegalStateError:
        # Monotonic: a step the tables forbid comes from a stale view; keep what we have.
        return order


def _deadline(order: Order, snap: IntentSnapshot) -> datetime | None:
    """When the order's authorization lapses: what an expanded charge says (a
    snapshot without one, an event's copy, keeps what the order knew)."""
    if snap.capture_before is None:
        return order.capture_before
    return datetime.fromtimestamp(snap.capture_before, timezone.utc)


def apply_intent(order: Order, snap: IntentSnapshot, *, current: bool = False) -> Order:
    """The order after applying ``snap`` (the caller checked amount and currency);
    ``current``: read from the gateway just now (see :func:`_implied`)."""
    merged = _merge(order.transactions, _implied(order, snap, current=current))
    deadline = _deadline(order, snap)
    updated = order
    if merged != order.transactions or deadline != order.capture_before:
        updated = evolve(order, transactions=merged, capture_before=deadline)
    return _restate(updated, canceled=snap.status == "canceled")


def apply_refunds(order: Order, refunds: Iterable[RefundSnapshot]) -> Order:
    """The order after recording ``refunds`` of its intent."""
    incoming = [
        Transaction(
            transaction_id(r.id, "refund"),
            "refund",
            _REFUND_STATUS.get(r.status, "pending"),
            r.amount,
            r.currency,
            r.id,
            r.failure_reason,
        )
        for r in refunds
        if r.payment_intent_id == order.intent_id
    ]
    merged = _merge(order.transactions, incoming)
    if merged == order.transactions:
        return order
    return _restate(evolve(order, transactions=merged))


def tag_refund(order: Order, refund_id: str, idempotency_key: str | None) -> Order:
    """The order with its refund ``refund_id`` recorded as made under the host's
    ``idempotency_key`` (``refund_order``'s); unchanged without a key, when the
    refund is not on the order, or when it carries a key already."""
    if idempotency_key is None:
        return order
    tagged = tuple(
        evolve(t, idempotency_key=idempotency_key)
        if t.kind == "refund" and t.reference == refund_id and t.idempotency_key is None
        else t
        for t in order.transactions
    )
    return order if tagged == order.transactions else evolve(order, transactions=tagged)


def apply_disputes(order: Order, disputes: Iterable[DisputeSnapshot]) -> Order:
    """The order after recording ``disputes`` of its intent: one ``dispute``
    transaction per dispute that moved money (``_lifecycle.DISPUTE_TRANSACTION``),
    its reason in ``code``. Monotonic like the rest: a late "needs_response"
    never reopens a dispute that was won or lost. Statuses and payment do not
    change: ``Order.disputed`` and ``Order.refundable`` say what a chargeback took."""
    incoming = []
    for d in disputes:
        status = DISPUTE_TRANSACTION.get(d.status)
        if status is None or d.payment_intent_id != order.intent_id:
            continue
        incoming.append(
            Transaction(
                transaction_id(d.id, "dispute"),
                "dispute",
                status,
                d.amount,
                d.currency,
                d.id,
                d.reason,
            )
        )
    merged = _merge(order.transactions, incoming)
    return order if merged == order.transactions else evolve(order, transactions=merged)


def cancel_locally(order: Order) -> Order:
    """The order cancelled without touching its intent (the intent pays another order)."""
    return transition_order(order, "cancelled", order.payment)
