# mypy: disable-error-code="func-returns-value"
"""Recording outcomes: the third step of claim → call → record, and what a webhook
event or a read from Stripe writes. Each function is one unit of work
(:func:`cartpay._records.retry`): read, decide (:mod:`cartpay._decisions`,
:mod:`cartpay._ledger`), save. All are flows (:mod:`cartpay._effects`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from attrs import evolve

from . import _decisions, _ledger, _logs
from ._claims import cleared
from ._effects import Flow
from ._errors import CartpayError, ConcurrencyError
from ._models import (
    Cart,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    Order,
    PendingOperation,
    RefundSnapshot,
)
from ._ports import StoreTransaction
from ._records import read_cart, read_order, retry, save

__all__ = [
    "apply",
    "apply_in",
    "apply_refund",
    "record_created",
    "record_intent_status",
    "record_refund_on_holders",
    "record_sent",
    "save_intent_status",
]


def apply_in(
    tx: StoreTransaction,
    order_id: str,
    snap: IntentSnapshot,
    refunds: Sequence[RefundSnapshot] = (),
    *,
    clear: str | None = None,
    current: bool = False,
    tag: tuple[str, str] | None = None,
) -> Flow[tuple[Order, CartpayError | None]]:
    """Inside ``tx``: apply ``snap`` (and ``refunds``) to the order and the intent's
    record, clearing the claim ``clear``; ``tag``: a refund id and the host's
    idempotency key it was made under. Returns the order and the error to raise
    once committed (a flagged order)."""
    order = yield from read_order(tx, order_id)
    record: IntentRecord | None = yield tx.get_intent(snap.id)
    applied = _decisions.apply_snapshot(
        cleared(order, clear), record, snap, refunds, current=current
    )
    if record is not None and applied.intent is not None:
        yield from save(tx, record, applied.intent)
    after = applied.order if tag is None else _ledger.tag_refund(applied.order, *tag)
    return (yield from save(tx, order, after)), applied.problem


def apply(
    store: object,
    order_id: str,
    snap: IntentSnapshot,
    *,
    refunds: Sequence[RefundSnapshot] = (),
    clear: str | None = None,
    via: str = "a read of the intent",
    current: bool = False,
    tag: tuple[str, str] | None = None,
) -> Flow[Order]:
    """Record what ``snap`` means for the order in one transaction; raises after
    committing when the snapshot must be refused (a flagged order). The payment
    outcome is logged once committed (``via``: what brought the news;
    ``current``: ``snap`` was read from the gateway just now; ``tag``: see
    :func:`apply_in`)."""

    def work(tx: StoreTransaction) -> Flow[tuple[Order, Order, CartpayError | None]]:
        before = yield from read_order(tx, order_id)
        applied = yield from apply_in(
            tx, order_id, snap, refunds, clear=clear, current=current, tag=tag
        )
        return (before, *applied)

    before, order, problem = yield from retry(store, work, f"order {order_id}")
    _logs.order_outcome(before, order, via=via)
    if problem is not None:
        raise problem
    return order


def apply_refund(
    store: object, order_id: str, refund: RefundSnapshot, *, clear: str, request: str | None = None
) -> Flow[Order]:
    """Record a refund the gateway answered with, clearing its claim ``clear``;
    ``request``: the host's idempotency key it was made under."""

    def work(tx: StoreTransaction) -> Flow[tuple[Order, Order]]:
        order = yield from read_order(tx, order_id)
        applied = _ledger.apply_refunds(cleared(order, clear), [refund])
        after = yield from save(tx, order, _ledger.tag_refund(applied, refund.id, request))
        return order, after

    before, after = yield from retry(store, work, f"order {order_id}")
    _logs.log.info(
        "order %s: refund %s of %s is %s",
        order_id,
        refund.id,
        _logs.money(refund.amount, refund.currency),
        refund.status,
        extra=_logs.ids(
            cart=after.cart_id, order=order_id, intent=after.intent_id, refund=refund.id
        ),
    )
    _logs.order_outcome(before, after, via="refund_order")
    return after


def save_intent_status(tx: StoreTransaction, snap: IntentSnapshot) -> Flow[None]:
    """Inside ``tx``: the intent's record takes the snapshot's status (monotonic)."""
    record: IntentRecord | None = yield tx.get_intent(snap.id)
    after = _decisions.with_status(record, snap)
    if record is not None and after is not None:
        yield from save(tx, record, after)


def record_intent_status(store: object, snap: IntentSnapshot) -> Flow[None]:
    """:func:`save_intent_status` in its own transaction."""
    yield from retry(store, lambda tx: save_intent_status(tx, snap), f"intent {snap.id}")


def record_created(
    store: object,
    cart_id: str,
    pending: PendingOperation,
    snap: IntentSnapshot,
    *,
    now: Callable[[], datetime],
) -> Flow[Cart]:
    """Record the intent a create made: the cart follows it (a new generation when
    it replaces one), remembers what was sent, and the intent gets its record."""
    assert pending.params is not None
    params = pending.params

    def work(tx: StoreTransaction) -> Flow[Cart | None]:
        cart = yield from read_cart(tx, cart_id)
        if cart.payment_intent_id == snap.id:
            return cart
        if cart.pending is None or cart.pending.key != pending.key:
            return None
        if (yield tx.get_intent(snap.id)) is None:
            kept = snap.without_secrets()  # never stored
            yield tx.insert_intent(
                IntentRecord(
                    snap.id, cart.id, snap.status, snap.amount, snap.currency, now(), snapshot=kept
                )
            )
        updated = evolve(
            cart,
            payment_intent_id=snap.id,
            generation=cart.generation + (1 if cart.payment_intent_id else 0),
            sent=params,
            options=params.options,  # options given to the call stay
            pending=None,
        )
        return (yield from save(tx, cart, updated))

    cart = yield from retry(store, work, f"cart {cart_id}")
    if cart is None:
        raise ConcurrencyError(f"cart {cart_id}'s create was taken over; try again")
    return cart


def record_sent(
    store: object, cart_id: str, key: str, sent: IntentParams, snap: IntentSnapshot
) -> Flow[None]:
    """Record an update the gateway applied: the cart remembers what was sent (the
    fingerprint the next update diffs against) and its claim ``key`` is cleared."""

    def work(tx: StoreTransaction) -> Flow[bool]:
        cart: Cart | None = yield tx.get_cart(cart_id)
        if cart is None or cart.pending is None or cart.pending.key != key:
            return False
        yield from save(tx, cart, evolve(cart, sent=sent, options=sent.options, pending=None))
        yield from save_intent_status(tx, snap)
        return True

    try:
        if (yield from retry(store, work, f"cart {cart_id}")):
            return
    except ConcurrencyError:
        pass
    yield from record_intent_status(store, snap)


def record_refund_on_holders(store: object, refund: RefundSnapshot) -> Flow[None]:
    """Record ``refund`` on the live orders that hold its intent, if any (one made
    while the refund was on its way)."""

    def work(tx: StoreTransaction) -> Flow[None]:
        orders: list[Order] = yield tx.orders_for_intent(refund.payment_intent_id)
        for order in orders:
            if order.status != "cancelled":
                yield from save(tx, order, _ledger.apply_refunds(order, [refund]))

    yield from retry(store, work, f"intent {refund.payment_intent_id}")
