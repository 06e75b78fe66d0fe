"""Reconciliation: repair what missed webhooks left behind (docs/design.md,
"Reconcile").

Orders still unpaid past a cutoff are synchronised through the façade's
``confirm_order``; intents that pay no order are refreshed, and those that took
money on a cart nobody checked out are reported as orphaned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from . import _lifecycle, _outcomes
from ._errors import CartpayError
from ._models import Order, OrphanedIntent, ReconcileReport
from ._ports import PaymentGateway, Store

__all__ = ["reconcile"]


def reconcile(
    store: Store,
    gateway: PaymentGateway,
    confirm_order: Callable[[str], Order],
    *,
    cutoff: datetime,
    limit: int,
) -> ReconcileReport:
    """One reconcile run over what was created before ``cutoff`` (at most ``limit``
    orders and ``limit`` intents)."""
    with store.read() as tx:
        orders = tx.unpaid_orders_before(cutoff, limit=limit)
        intents = tx.unclaimed_intents(sorted(_lifecycle.REFRESHED), limit=limit)
    checked: list[str] = []
    repaired: list[str] = []
    errors: list[tuple[str, str]] = []
    for order in orders:
        checked.append(order.id)
        try:
            after = confirm_order(order.id)
        except CartpayError as exc:
            errors.append((order.id, f"{type(exc).__name__}: {exc}"))
            continue
        before = (order.status, order.payment, order.transactions)
        if (after.status, after.payment, after.transactions) != before:
            repaired.append(order.id)
    orphaned: list[OrphanedIntent] = []
    for record in intents:
        if record.created_at > cutoff:
            continue
        with store.read() as tx:
            held = any(o.status != "cancelled" for o in tx.orders_for_intent(record.id))
        if held:
            continue
        try:
            snap = gateway.retrieve_intent(record.id)
        except CartpayError as exc:
            errors.append((record.id, f"{type(exc).__name__}: {exc}"))
            continue
        _outcomes.record_intent_status(store, snap)
        if snap.status in _lifecycle.MONEY_MOVING:
            orphaned.append(OrphanedIntent(record.cart_id, record.id, snap.amount, snap.currency))
    return ReconcileReport(tuple(checked), tuple(repaired), tuple(orphaned), tuple(errors))
