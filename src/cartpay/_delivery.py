# mypy: disable-error-code="func-returns-value"
"""Webhook delivery: dedupe → apply, after the façade verified and parsed it.

The event id is recorded in the same transaction as the event's effects
(docs/design.md, "Webhooks"): a re-delivery finds it and changes nothing, and a
delivery that loses a version race rolls back whole and runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import _decisions, _ledger, _logs, _outcomes
from ._effects import Flow, Read
from ._models import (
    DisputeSnapshot,
    IntentRecord,
    IntentSnapshot,
    Order,
    RefundSnapshot,
    WebhookAction,
    WebhookResult,
)
from ._ports import PaymentGateway, StoreReads, StoreTransaction
from ._records import retry, save
from ._webhooks import Event, Route

__all__ = ["deliver"]


def knows_intent(tx: StoreReads, intent_id: str) -> Flow[bool]:
    """Whether cartpay created the intent (or an order refers to it)."""
    if (yield tx.get_intent(intent_id)) is not None:
        return True
    orders: list[Order] = yield tx.orders_for_intent(intent_id)
    return bool(orders)


def _apply_event(
    tx: StoreTransaction,
    intent_id: str,
    snapshot: IntentSnapshot | None,
    refunds: Sequence[RefundSnapshot],
    disputes: Sequence[DisputeSnapshot] = (),
) -> Flow[tuple[Order, Order] | None]:
    """Apply to the order the intent pays (or the first live order linked to it);
    the order before and after. (A dispute of an intent no order holds is not
    kept: reconcile reports that money as orphaned.)"""
    record: IntentRecord | None = yield tx.get_intent(intent_id)
    target = _decisions.event_target(record, (yield tx.orders_for_intent(intent_id)))
    if target is None:
        if snapshot is not None:
            yield from _outcomes.save_intent_status(tx, snapshot)
        return None
    after = target
    if snapshot is not None:  # (saves the intent's status too, in the same write)
        after, _ = yield from _outcomes.apply_in(tx, target.id, snapshot, refunds)
    elif refunds:
        after = yield from save(tx, target, _ledger.apply_refunds(target, refunds))
    elif disputes:
        after = yield from save(tx, target, _ledger.apply_disputes(target, disputes))
    return target, after


def _seen(event: Event) -> Callable[[StoreReads], Flow[bool]]:
    def look(tx: StoreReads) -> Flow[bool]:
        seen: bool = yield tx.has_event(event.id)
        return seen

    return look


def deliver(
    store: object, gateway: PaymentGateway, event: Event, route: Route, *, refresh: bool
) -> Flow[WebhookResult]:
    """Dedupe and apply one verified ``event``. ``refresh``: re-read the intent (or
    the dispute) from the gateway instead of trusting the event's copy. A dispute
    whose copy does not name its intent is re-read whatever ``refresh`` says."""
    snapshot = route.intent
    refunds: Sequence[RefundSnapshot] = [route.refund] if route.refund else []
    disputes: Sequence[DisputeSnapshot] = [route.dispute] if route.dispute else []
    intent_id = route.intent_id
    if route.kind == "disputes" and route.dispute_id and (refresh or route.dispute is None):
        if (yield Read(store, _seen(event))):  # a re-delivery: no Stripe call for it
            return WebhookResult(event.id, event.type, "duplicate")
        dispute: DisputeSnapshot = yield gateway.retrieve_dispute(route.dispute_id)
        disputes, intent_id = [dispute], dispute.payment_intent_id
    # Whether cartpay knows the intent is looked up in the main transaction,
    # unless a gateway call (never made inside one) depends on it.
    known: bool | None = None
    if route.kind == "ignore" or intent_id is None:
        known = False
    elif (route.kind == "intent" and refresh) or (route.kind == "refunds" and not refunds):
        asked = intent_id

        def look(tx: StoreReads) -> Flow[bool | None]:
            if (yield tx.has_event(event.id)):  # a re-delivery: no Stripe call for it
                return None
            return (yield from knows_intent(tx, asked))

        known = yield Read(store, look)
        if known is None:
            return WebhookResult(event.id, event.type, "duplicate")
        if known and route.kind == "intent":
            snapshot = yield gateway.retrieve_intent(intent_id)
        elif known:
            refunds = list((yield gateway.list_refunds(intent_id)))

    def work(tx: StoreTransaction) -> Flow[WebhookResult]:
        knows = known if known is not None else (yield from knows_intent(tx, intent_id or ""))
        if not knows or intent_id is None:
            recorded = yield tx.record_event(event.id, event.type, "ignored")
            action: WebhookAction = "ignored" if recorded else "duplicate"
            return WebhookResult(event.id, event.type, action)
        if not (yield tx.record_event(event.id, event.type, "applied")):
            return WebhookResult(event.id, event.type, "duplicate")
        changed[:] = [(yield from _apply_event(tx, intent_id, snapshot, refunds, disputes))]
        order = changed[0][1] if changed[0] is not None else None
        return WebhookResult(event.id, event.type, "applied", order.id if order else None)

    changed: list[tuple[Order, Order] | None] = [None]
    result: WebhookResult = yield from retry(store, work, f"event {event.id}: its order")
    if result.action == "applied" and changed[0] is not None:
        _logs.order_outcome(*changed[0], via=f"webhook {event.id}")
    return result
