"""Decisions: what the records and a snapshot mean for an order and its intent.

Pure functions over models, no I/O: the façade (and its async twin) read the
records, call these, and write what they return. The rules they apply are in
docs/design.md ("Workflow rules").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Literal

from attrs import evolve, frozen

from . import _claims, _ledger, _lifecycle
from ._errors import (
    AmountMismatchError,
    AuthenticationRequiredError,
    CardDeclinedError,
    CartpayError,
    IllegalStateError,
    IntentAlreadyUsedError,
    PricingError,
    ValidationError,
)
from ._models import (
    Adjustment,
    Cart,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    LineItem,
    Order,
    PendingOperation,
    RefundSnapshot,
    Transaction,
    new_adjustment,
    total_of,
)
from ._money import maximum_amount
from ._params import idempotency_key, intent_changes

__all__ = [
    "Applied",
    "PaidParts",
    "apply_snapshot",
    "bind_intent",
    "check_kept_cart_amount",
    "claimed_refund",
    "event_target",
    "intent_step",
    "is_held",
    "is_stale",
    "key_claim",
    "keyed_refund",
    "mismatch",
    "operation_happened",
    "operation_key",
    "owns_intent",
    "paid_order_parts",
    "priced_adjustments",
    "replays",
    "with_adjustment",
    "with_item",
    "with_status",
    "without_adjustment",
]


@frozen
class Applied:
    """What applying a snapshot decided: the order and intent record to store
    (the same objects when unchanged) and the error to raise once committed."""

    order: Order
    intent: IntentRecord | None
    problem: CartpayError | None = None


def with_status(record: IntentRecord | None, snap: IntentSnapshot) -> IntentRecord | None:
    """``record`` carrying the snapshot's status and amount: what Stripe last told
    us (unchanged once its status is final: a final status is never left)."""
    if record is None or _lifecycle.is_final(record.status):
        return record
    if (record.status, record.amount, record.currency) == (snap.status, snap.amount, snap.currency):
        return record
    kept = snap.without_secrets()  # never stored
    return evolve(
        record, status=snap.status, amount=snap.amount, currency=snap.currency, snapshot=kept
    )


def is_stale(record: IntentRecord | None, snap: IntentSnapshot) -> bool:
    """Whether ``snap`` is older than what the record knows: the intent reached a
    final status the snapshot does not show (a late event, a replayed answer)."""
    return (
        record is not None and _lifecycle.is_final(record.status) and snap.status != record.status
    )


def bind_intent(record: IntentRecord | None, order: Order) -> IntentRecord | None:
    """``record`` (the order's intent) bound to ``order``, the one order it pays
    (one intent pays at most one order); raises ``IntentAlreadyUsedError`` if it
    pays another."""
    if record is None or record.order_id == order.id:
        return record
    if record.order_id is not None:
        raise IntentAlreadyUsedError(record.id, order.id, record.order_id)
    return evolve(record, order_id=order.id)


def mismatch(order: Order, amount: int, currency: str) -> AmountMismatchError:
    return AmountMismatchError(
        order.id,
        expected_amount=order.total,
        expected_currency=order.currency,
        actual_amount=amount,
        actual_currency=currency,
    )


def apply_snapshot(
    order: Order,
    record: IntentRecord | None,
    snap: IntentSnapshot,
    refunds: Sequence[RefundSnapshot] = (),
    *,
    current: bool = False,
) -> Applied:
    """What ``snap`` (and ``refunds``) of the order's intent mean for the order and
    the intent's record (``current``: ``snap`` was read from the gateway just
    now, not an event's copy):

    - an amount or currency other than the order's flags the order
      (``amount_mismatch``) and records no payment;
    - an intent that pays another order records nothing here
      (``IntentAlreadyUsedError`` for a payment attempt);
    - an order cancelled without its intent (a kept cart holds it) takes nothing;
    - otherwise the ledger merges the transactions, and a payment attempt binds
      the intent to this order.
    """
    intent = with_status(record, snap)
    if is_stale(record, snap):
        return Applied(order, intent)  # older than what we know: nothing to learn
    if snap.amount != order.total or snap.currency != order.currency:
        if snap.status == "canceled":
            return Applied(order, intent)
        flagged = evolve(order, flag="amount_mismatch")
        return Applied(flagged, intent, mismatch(order, snap.amount, snap.currency))
    if record is not None and record.order_id not in (None, order.id):
        problem = None
        if _ledger.is_payment_attempt(snap):
            problem = IntentAlreadyUsedError(snap.id, order.id, record.order_id)
        return Applied(order, intent, problem)
    if order.status == "cancelled" and (record is None or record.order_id != order.id):
        return Applied(order, intent)  # cancelled without its intent: takes no payment
    if _ledger.is_payment_attempt(snap):
        intent = bind_intent(intent, order)
    # The flag says what the latest state says: consistent now, so cleared.
    updated = _ledger.apply_intent(evolve(order, flag=None), snap, current=current)
    if refunds:
        updated = _ledger.apply_refunds(updated, refunds)
    return Applied(updated, intent)


def event_target(record: IntentRecord | None, orders: Sequence[Order]) -> Order | None:
    """The order an event of the intent applies to: the one it pays, else the first
    live order linked to it; ``None`` when no order holds it."""
    live = [o for o in orders if o.status != "cancelled"]
    if record is not None and record.order_id is not None:
        return next((o for o in live if o.id == record.order_id), None)
    return live[0] if live else None


def owns_intent(order: Order, record: IntentRecord, orders: Sequence[Order]) -> bool:
    """Whether cancelling ``order`` may cancel its intent: it pays this order, or
    no other live order holds it. (No cart follows an intent an order holds, so a
    kept cart does not keep it alive: its next create makes a new one.)"""
    if record.order_id is not None:
        return record.order_id == order.id
    return not [o for o in orders if o.id != order.id and o.status != "cancelled"]


def check_kept_cart_amount(order: Order, cart: Cart | None) -> None:
    """A kept cart (``cart``, the order's) may have moved its intent to a new
    amount: refuse to confirm an order whose total no longer matches, before any
    call."""
    if cart is None or cart.payment_intent_id != order.intent_id or cart.sent is None:
        return
    if (cart.sent.amount, cart.sent.currency) != (order.total, order.currency):
        raise mismatch(order, cart.sent.amount, cart.sent.currency)


def with_item(cart: Cart, item: LineItem, *, maximum: int | None = None) -> Cart:
    """``cart`` with ``item`` (replacing the line of the same sku); raises
    ``ValidationError`` when the total would pass ``maximum`` (default: the most
    Stripe takes in the cart's currency)."""
    items = tuple(item if i.sku == item.sku else i for i in cart.items)
    if cart.item(item.sku) is None:
        items += (item,)
    return _within(evolve(cart, items=items), maximum, "quantity")


def _within(updated: Cart, maximum: int | None, field: str) -> Cart:
    """``updated``, unless its total passes ``maximum`` (default: the most Stripe
    takes in its currency): then ``ValidationError`` naming ``field``."""
    limit = maximum_amount(updated.currency) if maximum is None else maximum
    if updated.total > limit:
        raise ValidationError(
            field, "maximum", f"the cart total {updated.total} would exceed {limit}"
        )
    return updated


def with_adjustment(cart: Cart, adjustment: Adjustment, *, maximum: int | None = None) -> Cart:
    """``cart`` with ``adjustment`` (replacing the one of the same code and kind).
    Raises ``ValidationError`` when the code is taken by another kind, or the
    total would pass ``maximum`` (default: the most Stripe takes in the cart's
    currency; a total below the minimum is refused when an intent would be
    created or updated: more may be added first)."""
    present = cart.adjustment(adjustment.code)
    if present is not None and present.kind != adjustment.kind:
        raise ValidationError(
            "code",
            "duplicate",
            f"{adjustment.code!r} is already a {present.kind} adjustment of cart {cart.id};"
            f" remove it first to make it a {adjustment.kind}",
        )
    if present is None:
        adjustments = (*cart.adjustments, adjustment)
    else:
        adjustments = tuple(
            adjustment if a.code == adjustment.code else a for a in cart.adjustments
        )
    return _within(evolve(cart, adjustments=adjustments), maximum, "amount")


def without_adjustment(cart: Cart, code: str, *, maximum: int | None = None) -> Cart:
    """``cart`` without the adjustment ``code`` (``ValidationError`` if it has none)."""
    if cart.adjustment(code) is None:
        raise ValidationError("code", "in_cart", f"{code!r} is not an adjustment of cart {cart.id}")
    kept = tuple(a for a in cart.adjustments if a.code != code)
    return _within(evolve(cart, adjustments=kept), maximum, "code")  # (a discount removed)


def priced_adjustments(cart: Cart, answer: object) -> tuple[Adjustment, ...]:
    """What the pricing port answered for ``cart``, checked as ``add_adjustment``
    checks the host's: adjustments, each valid in the cart's currency, codes
    unique. Raises ``PricingError`` (the cause names the field) otherwise."""
    if isinstance(answer, (str, bytes, Adjustment)) or not isinstance(answer, Iterable):
        raise PricingError(cart.id, f"the port returned {type(answer).__name__}, not adjustments")
    checked: list[Adjustment] = []
    for found in answer:
        if not isinstance(found, Adjustment):
            raise PricingError(
                cart.id, f"the port returned a {type(found).__name__}, not an Adjustment"
            )
        try:
            checked.append(
                new_adjustment(found.kind, found.code, found.label, found.amount, cart.currency)
            )
        except ValidationError as exc:
            raise PricingError(cart.id, f"adjustment {found.code!r}: {exc}") from exc
    codes = [a.code for a in checked]
    doubled = sorted({c for c in codes if codes.count(c) > 1})
    if doubled:
        raise PricingError(cart.id, f"the port returned the code(s) {doubled} more than once")
    return tuple(checked)


IntentStep = Literal["create", "update", "current"]


def is_held(record: IntentRecord | None, orders: Sequence[Order]) -> bool:
    """Whether an order holds the intent: it pays one, or a live order was checked
    out with it. A held intent no longer follows any cart (it is never repriced)."""
    if record is not None and record.order_id is not None:
        return True
    return any(o.status != "cancelled" for o in orders)


def intent_step(
    cart: Cart,
    record: IntentRecord | None,
    orders: Sequence[Order],
    wanted: IntentParams,
    *,
    operation: str,
) -> IntentStep:
    """What bringing the cart's intent up to date with ``wanted`` takes:

    - ``create``: a new intent (none yet, the last was canceled, or an order holds
      it and the cart changed or wants to pay again: a kept cart gets its own);
    - ``update``: send the changes to the cart's intent;
    - ``current``: the intent is as the cart wants it.

    Raises ``IllegalStateError`` when the cart's intent took a payment no order
    owns yet: checkout makes that order; a second intent would charge twice.
    """
    if cart.payment_intent_id is None or cart.sent is None:
        return "create"
    status = record.status if record is not None else "requires_payment_method"
    if status == "canceled":
        return "create"
    if is_held(record, orders):
        unchanged = status in _lifecycle.REUSABLE and _same_request(cart.sent, wanted)
        return "current" if unchanged else "create"
    if status in _lifecycle.MONEY_MOVING:
        raise IllegalStateError(
            "cart",
            operation,
            status,
            entity_id=cart.id,
            detail=f"its intent {cart.payment_intent_id} has taken a payment: check the cart"
            " out, and the order owns that payment (a new intent would charge twice)",
        )
    return "update" if intent_changes(cart.sent, wanted) else "current"


def _same_request(sent: IntentParams, wanted: IntentParams) -> bool:
    return (sent.amount, sent.currency, sent.options) == (
        wanted.amount,
        wanted.currency,
        wanted.options,
    )


@frozen
class PaidParts:
    """What an order for a payment taken before checkout holds (``items`` and
    ``adjustments``, totalling ``total``), and what stays in the cart for another
    purchase (``rest``, ``rest_adjustments``)."""

    items: tuple[LineItem, ...]
    adjustments: tuple[Adjustment, ...]
    rest: tuple[LineItem, ...] = ()
    rest_adjustments: tuple[Adjustment, ...] = ()

    @property
    def total(self) -> int:
        return total_of(self.items, self.adjustments)


def paid_order_parts(cart: Cart, snap: IntentSnapshot) -> PaidParts:
    """The lines and adjustments an order for a payment taken at ``snap.amount``
    holds (what the amount stood for when it was sent), and the lines left in
    the cart for another purchase (what was added since), with the adjustments
    the order does not carry."""
    sent = cart.sent
    if sent is None or not sent.items or sent.amount != snap.amount:
        # (an order of another amount is flagged, not paid)
        return PaidParts(cart.items, cart.adjustments)
    if sent.items == cart.items:
        return PaidParts(cart.items, sent.adjustments)
    paid = sent.items
    bought = {i.sku: i.quantity for i in paid}
    rest = []
    for item in cart.items:
        left = item.quantity - bought.get(item.sku, 0)
        if left > 0:
            rest.append(evolve(item, quantity=left))
    carried = {a.code for a in sent.adjustments}
    others = tuple(a for a in cart.adjustments if a.code not in carried)
    return PaidParts(paid, sent.adjustments, tuple(rest), others)


def must_list_refunds(order: Order, snap: IntentSnapshot) -> bool:
    """Whether syncing the order with ``snap`` needs the intent's refund list: a
    payment that succeeded whose charge's ``amount_refunded`` is not what the
    order's refunds add up to (a refund made or failed elsewhere), or a refund of
    the order still pending (its end moves no amount). Without the charge's
    figure (an event's copy), a paid order's refunds are listed."""
    if snap.status != "succeeded":
        return False
    if snap.amount_refunded is None:
        return bool(order.captured)
    refunds = [t for t in order.transactions if t.kind == "refund"]
    if any(t.status == "pending" for t in refunds):
        return True
    return snap.amount_refunded != sum(t.amount for t in refunds if t.status == "complete")


def lost_decline(
    order: Order, pending: PendingOperation, payment_method: str, happened: bool
) -> CardDeclinedError | None:
    """What a retry of a confirm with ``payment_method`` must raise once its lost
    answer is settled (``order`` after settling the claim ``pending``): the decline
    that answer was, when the same confirm took effect and the order's payment
    failed; else ``None``."""
    same = (pending.operation, pending.payment_method) == ("confirm", payment_method)
    return declined(order) if same and happened and order.payment == "failed" else None


def declined(order: Order) -> CardDeclinedError:
    """The decline an order's last failed payment attempt was (the answer a
    confirm whose answer was lost would have raised): ``AuthenticationRequiredError``
    when the bank asked for the customer, else ``CardDeclinedError``."""
    failed = [
        t
        for t in order.transactions
        if t.kind in ("authorize", "purchase") and t.status == "failed"
    ]
    code = failed[-1].code if failed else None
    cls = AuthenticationRequiredError if code == "authentication_required" else CardDeclinedError
    return cls(
        f"the payment of order {order.id} was declined ({code or 'no code'})",
        code=code,
        intent_id=order.intent_id,
    )


def same_arguments(pending: PendingOperation, asked: PendingOperation) -> bool:
    """Whether a call asking for ``asked`` is the call that made the claim
    ``pending`` (the same amount, reason and Connect flags): its lost answer may be
    given back; any other call is refused once the claim took effect."""
    return pending.arguments == asked.arguments


def operation_happened(
    pending: PendingOperation,
    order: Order,
    snap: IntentSnapshot,
    refunds: Sequence[RefundSnapshot] = (),
) -> bool:
    """Whether the claimed ``pending`` operation, whose answer was lost, took
    effect at Stripe: what the intent (and its refunds) show now."""
    if pending.operation == "confirm":
        tried = (
            snap.last_payment_error is not None and snap.payment_method == pending.payment_method
        )
        return snap.status in _lifecycle.MONEY_MOVING or snap.status == "requires_action" or tried
    if pending.operation == "capture":  # (an authorization voided meanwhile: it did not)
        return snap.status in ("processing", "succeeded")
    if pending.operation == "cancel":
        return snap.status == "canceled"
    return claimed_refund(pending, refunds) is not None


def replays(pending: PendingOperation, asked: PendingOperation) -> bool:
    """Whether a call asking for ``asked`` is the refund claimed by ``pending``
    (its answer lost): the same call, sent again under the claim's own Stripe
    key, so Stripe's idempotent replay tells its outcome and a request still on
    its way lands as that refund, once (``_claims.moves_key``: when that key
    may move)."""
    return pending.operation == "refund" and _claims.replays(pending, asked)


def operation_key(order: Order, asked: PendingOperation) -> str:
    """The Stripe idempotency key of a new claim on ``order``: one per version,
    so no key is spent twice; a refund under the host's key has one derived from
    that key (a digest: no host data in it), the same for every call with it, so
    Stripe makes that refund once whatever settled an earlier call's lost answer."""
    if asked.operation == "refund" and asked.request is not None:
        digest = hashlib.blake2b(asked.request.encode(), digest_size=12).hexdigest()
        return idempotency_key("order", order.id, "refund", f"k{digest}")
    return idempotency_key("order", order.id, asked.operation, f"v{order.version}")


def keyed_refund(
    order: Order, idempotency_key: str | None, amount: int | None
) -> Transaction | None:
    """The refund the order records under the host's ``idempotency_key``, if any:
    a ``refund_order`` call with that key returns the order instead of refunding
    again. Raises ``ValidationError`` when the key's refund is of another amount
    than the call's (``amount=None``, all that remains, matches any)."""
    if idempotency_key is None:
        return None
    for t in order.transactions:
        if t.kind == "refund" and t.idempotency_key == idempotency_key:
            _check_key_amount(idempotency_key, f"refund {t.reference}", t.amount, order, amount)
            return t
    return None


def key_claim(
    order: Order, idempotency_key: str | None, amount: int | None
) -> PendingOperation | None:
    """The claim of the host's key's call when its answer was lost (pending on
    the order): the key names that request, so a call with the key asks for it
    again, its amount, reason and Connect flags (``amount=None``, all that
    remains, is that refund; another amount raises ``ValidationError``, rule
    ``reused``). ``None`` when no such claim is pending."""
    lost = order.pending
    if idempotency_key is None or lost is None or lost.request != idempotency_key:
        return None
    assert lost.amount is not None  # (a refund claim holds what it sends)
    _check_key_amount(
        idempotency_key, "a refund (its outcome is being learned)", lost.amount, order, amount
    )
    return lost


def _check_key_amount(
    idempotency_key: str, what: str, held: int, order: Order, amount: int | None
) -> None:
    if amount is not None and amount != held:
        raise ValidationError(
            "idempotency_key",
            "reused",
            f"{idempotency_key!r} is the key of {what} of {held} on order {order.id};"
            f" this call asks for {amount}",
        )


def claimed_refund(
    pending: PendingOperation, refunds: Sequence[RefundSnapshot]
) -> RefundSnapshot | None:
    """The refund a refund claim whose answer was lost made, if Stripe has it: one
    unknown when the claim was made (a webhook may have recorded it since), of
    the claimed amount. (A Dashboard refund of the same amount made meanwhile
    cannot be told apart: it is taken for the claim's; docs/money.md.)"""
    for refund in refunds:
        if refund.id not in pending.known_refunds and (
            pending.amount is None or refund.amount == pending.amount
        ):
            return refund
    return None
