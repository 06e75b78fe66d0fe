# mypy: disable-error-code="func-returns-value"
"""Reconciliation: repair what missed webhooks left behind, and apply the host's
policy for what was abandoned (docs/money.md, "Reconcile").

Each run looks at the next ``limit`` unpaid orders and the next ``limit`` intents
that pay no order, going on where the last run stopped (a cursor kept in the
store) and starting over once it reaches the newest: however many checkouts are
abandoned, every order is looked at again within a bounded number of runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from attrs import frozen

from . import _lifecycle, _outcomes
from ._effects import Flow, Read, Transaction
from ._errors import CartpayError
from ._models import (
    ExpiringAuthorization,
    IntentRecord,
    IntentSnapshot,
    Order,
    OrphanedIntent,
    ReconcileReport,
    RefundSnapshot,
)
from ._params import idempotency_key
from ._ports import PaymentGateway, ScanKey, StoreReads, StoreTransaction

__all__ = ["Policy", "reconcile"]

ORDERS_CURSOR = "reconcile.orders"
INTENTS_CURSOR = "reconcile.intents"


@frozen
class Policy:
    """What a run does besides repairing. ``cutoff``: only what was created before
    it is looked at; ``abandoned_before``: orders and intents created before it
    that never took money are cancelled (``None``: never); ``refund_orphans``:
    money no order owns, on an intent created before ``abandoned_before`` or
    whose cart is gone, is given back (a refund, or a released authorization);
    ``expiring_before``: authorized orders whose authorization lapses before it
    are reported in ``expiring`` (``None``: none are)."""

    cutoff: datetime
    limit: int
    abandoned_before: datetime | None = None
    refund_orphans: bool = False
    expiring_before: datetime | None = None


def _key(cursor: str | None) -> ScanKey | None:
    if not cursor:
        return None
    moment, _, row_id = cursor.partition("|")
    return datetime.fromisoformat(moment), row_id


def _cursor(created_at: datetime | None, row_id: str) -> str:
    assert created_at is not None  # (the scans return rows with a creation time)
    return f"{created_at.isoformat()}|{row_id}"


def _next_page(
    tx: StoreTransaction, policy: Policy
) -> Flow[tuple[list[Order], list[IntentRecord]]]:
    """The next orders and intents to look at; moves the cursors on (or back to the
    start once a scan reaches its end)."""
    orders: list[Order] = yield tx.unpaid_orders_before(
        policy.cutoff, limit=policy.limit, after=_key((yield tx.get_cursor(ORDERS_CURSOR)))
    )
    intents: list[IntentRecord] = yield tx.unclaimed_intents(
        sorted(_lifecycle.REFRESHED),
        limit=policy.limit,
        after=_key((yield tx.get_cursor(INTENTS_CURSOR))),
    )
    full = len(orders) == policy.limit
    yield tx.set_cursor(
        ORDERS_CURSOR, _cursor(orders[-1].created_at, orders[-1].id) if full else None
    )
    full = len(intents) == policy.limit
    last = intents[-1] if intents else None
    yield tx.set_cursor(
        INTENTS_CURSOR, _cursor(last.created_at, last.id) if full and last else None
    )
    return orders, intents


def _holders(tx: StoreReads, record: IntentRecord) -> Flow[tuple[bool, bool]]:
    """Whether a live order holds the intent, and whether its cart is gone."""
    holders: list[Order] = yield tx.orders_for_intent(record.id)
    cart_gone = (yield tx.get_cart(record.cart_id)) is None
    return any(o.status != "cancelled" for o in holders), cart_gone


def reconcile(
    store: object,
    gateway: PaymentGateway,
    *,
    confirm_order: Callable[[str], Flow[Order]],
    cancel_order: Callable[[str], Flow[Order]],
    policy: Policy,
) -> Flow[ReconcileReport]:
    """One reconcile run (see the module docstring and ``Policy``)."""
    orders, intents = yield Transaction(store, lambda tx: _next_page(tx, policy))
    checked: list[str] = []
    repaired: list[str] = []
    errors: list[tuple[str, str]] = []
    actions: list[tuple[str, str]] = []
    expiring: list[ExpiringAuthorization] = []
    for order in orders:
        checked.append(order.id)
        try:
            # (Disputes are not touched here: they are only on paid orders, and
            # re-reading an intent never changes a dispute transaction.)
            after = yield from confirm_order(order.id)
            soon = _expiring(after, policy)
            if soon is not None:
                expiring.append(soon)
            if (after.status, after.payment, after.transactions) != (
                order.status,
                order.payment,
                order.transactions,
            ):
                repaired.append(order.id)
                actions.append((order.id, f"repaired: {after.status}/{after.payment}"))
            if _abandoned(after, policy):
                yield from cancel_order(order.id)
                actions.append((order.id, "cancelled: abandoned, no money taken"))
        except CartpayError as exc:
            errors.append((order.id, f"{type(exc).__name__}: {exc}"))
    orphaned: list[OrphanedIntent] = []
    for record in intents:
        if record.created_at > policy.cutoff:
            continue
        held, cart_gone = yield Read(store, lambda tx: _holders(tx, record))  # noqa: B023
        if held:
            continue
        try:
            snap = yield gateway.retrieve_intent(record.id)
            yield from _outcomes.record_intent_status(store, snap)
            old = (
                policy.abandoned_before is not None and record.created_at < policy.abandoned_before
            )
            if snap.status in _lifecycle.MONEY_MOVING:
                orphaned.append(
                    OrphanedIntent(record.cart_id, record.id, snap.amount, snap.currency)
                )
                if policy.refund_orphans and (old or cart_gone):
                    gave = yield from _give_back(store, gateway, record, snap)
                    actions.append((record.id, gave))
            elif snap.status in _lifecycle.EARLY and (old or cart_gone):
                key = idempotency_key("intent", record.id, "abandon")
                done = yield gateway.cancel_intent(
                    record.id, reason="abandoned", idempotency_key=key
                )
                yield from _outcomes.record_intent_status(store, done)
                actions.append((record.id, "cancelled: abandoned, no money taken"))
        except CartpayError as exc:
            errors.append((record.id, f"{type(exc).__name__}: {exc}"))
    return ReconcileReport(
        tuple(checked),
        tuple(repaired),
        tuple(orphaned),
        tuple(errors),
        tuple(actions),
        tuple(sorted(expiring, key=lambda e: (e.capture_before, e.order_id))),
    )


def _expiring(order: Order, policy: Policy) -> ExpiringAuthorization | None:
    """The order's authorization, when it lapses before the host's horizon (read
    just now: confirm_order's retrieve expands the charge that says when)."""
    deadline = order.capture_before
    if (
        policy.expiring_before is None
        or deadline is None
        or order.payment not in _lifecycle.AUTHORIZED
        or order.intent_id is None
        or deadline > policy.expiring_before
    ):
        return None
    return ExpiringAuthorization(
        order.id, order.intent_id, deadline, order.authorized, order.currency
    )


def _abandoned(order: Order, policy: Policy) -> bool:
    """An order nobody paid, older than the host's abandonment age."""
    return (
        policy.abandoned_before is not None
        and order.created_at is not None
        and order.created_at < policy.abandoned_before
        and order.status == "incomplete"
        and order.payment in ("unpaid", "failed")
        and not order.transactions
    )


def _give_back(
    store: object, gateway: PaymentGateway, record: IntentRecord, snap: IntentSnapshot
) -> Flow[str]:
    """Money no order owns goes back: an authorization is released, a payment
    refunded (a payment still processing is only reported). Looked at again just
    before, and after: a checkout that made an order for it meanwhile keeps it,
    or, past that moment, its order shows the refund. A destination charge
    (Connect) is undone on both sides: the transfer is reversed and the
    platform's fee given back (docs/going-live.md, "Connect refunds"), so the
    seller keeps nothing of a sale no order owns."""
    held, _ = yield Read(store, lambda tx: _holders(tx, record))
    if held:
        return "kept: an order was made for it meanwhile"
    status = snap.status
    if status == "requires_capture":
        key = idempotency_key("intent", record.id, "orphan", "cancel")
        snap = yield gateway.cancel_intent(record.id, reason="abandoned", idempotency_key=key)
        yield from _outcomes.record_intent_status(store, snap)
        return "released: an authorization no order owns"
    if status == "succeeded":
        key = idempotency_key("intent", record.id, "orphan", "refund")
        connect = snap.transfer_destination is not None
        flags = {"reverse_transfer": True, "refund_application_fee": True} if connect else {}
        refund: RefundSnapshot = yield gateway.create_refund(
            record.id, amount=None, reason=None, idempotency_key=key, **flags
        )
        yield from _outcomes.record_refund_on_holders(store, refund)
        return f"refunded: {refund.amount} {refund.currency} no order owns ({refund.id})"
    return "reported: a payment no order owns is still processing"
