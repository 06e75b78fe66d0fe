"""What cartpay logs, and the stable keys it puts in each record's ``extra``.

Every record goes to the ``cartpay`` logger (or a child of it), which has a
``NullHandler``: nothing is printed unless the host configures logging. The ids
a line is about are in its message text (so ``logging.basicConfig()`` or a
server's default format shows them) and in the record's attributes, under the
keys of :data:`KEYS` (for structured logging: ``record.cartpay_order_id``).
Secrets never: no API key, webhook secret, client secret or signature header
reaches a log line.

At INFO: carts created, intents created and updated, checkouts, the payment
outcome each time an order's payment changes (``paid``, ``authorized``,
``declined``, ``refunded``, ...), gateway operations on orders, webhook results
(``applied``, ``duplicate``, ``ignored``), reconcile runs. At WARNING: rejected
webhook deliveries (a bad signature, a malformed payload or the other mode's
event) and a claim that could not be released.
"""

from __future__ import annotations

import logging

from ._models import Order

__all__ = ["KEYS", "ids", "log", "money", "order_outcome"]

log = logging.getLogger("cartpay")

#: The ``extra`` keys cartpay's log records may carry (each only when it applies).
#: Stable: a key is added, never renamed.
KEYS: dict[str, str] = {
    "cartpay_cart_id": "the cart's id",
    "cartpay_order_id": "the order's id",
    "cartpay_intent_id": "the PaymentIntent's id",
    "cartpay_refund_id": "the refund's id",
    "cartpay_event_id": "the webhook event's id",
    "cartpay_event_type": "the webhook event's type",
    "cartpay_outcome": (
        "what happened: a payment outcome (paid, authorized, declined, refunded, ...),"
        " a webhook result (applied, duplicate, ignored, rejected)"
    ),
}


def ids(
    *,
    cart: str | None = None,
    order: str | None = None,
    intent: str | None = None,
    refund: str | None = None,
    event: str | None = None,
    event_type: str | None = None,
    outcome: str | None = None,
) -> dict[str, str]:
    """The ``extra`` of a log record: the given values under their :data:`KEYS`."""
    values = {
        "cartpay_cart_id": cart,
        "cartpay_order_id": order,
        "cartpay_intent_id": intent,
        "cartpay_refund_id": refund,
        "cartpay_event_id": event,
        "cartpay_event_type": event_type,
        "cartpay_outcome": outcome,
    }
    return {key: value for key, value in values.items() if value is not None}


def money(amount: int, currency: str) -> str:
    from ._money import format_amount

    try:
        return f"{format_amount(amount, currency)} {currency}"
    except Exception:  # a currency cartpay does not know: the raw minor units
        return f"{amount} (minor units) {currency}"


def order_outcome(before: Order | None, after: Order, *, via: str) -> None:
    """Log at INFO what a recorded outcome changed in the order's payment (nothing
    when it changed nothing): a new payment status, a declined attempt, a
    cancellation. ``via`` says where the news came from (``confirm``, ``webhook``,
    ``reconcile``, ...)."""
    if not log.isEnabledFor(logging.INFO):  # (nothing to format for a dropped record)
        return
    known = {t.id for t in before.transactions} if before is not None else set()
    declined = [
        t
        for t in after.transactions
        if t.id not in known and t.status == "failed" and t.kind != "refund"
    ]
    extra = ids(cart=after.cart_id, order=after.id, intent=after.intent_id)
    for attempt in declined:
        log.info(
            "order %s: payment declined (%s) on intent %s, via %s; the order stays payable",
            after.id,
            attempt.code or "no code",
            attempt.reference,
            via,
            extra={**extra, "cartpay_outcome": "declined"},
        )
    if before is not None and before.payment == after.payment and before.status == after.status:
        return
    if before is not None and before.payment == after.payment:
        log.info(
            "order %s %s, via %s",
            after.id,
            after.status,
            via,
            extra={**extra, "cartpay_outcome": after.status},
        )
        return
    if after.payment == "failed" and declined:
        return  # said above
    log.info(
        "order %s %s: %s captured, %s authorized, %s refunded (intent %s), via %s",
        after.id,
        after.payment,
        money(after.captured, after.currency),
        money(after.authorized, after.currency),
        money(after.refunded, after.currency),
        after.intent_id,
        via,
        extra={**extra, "cartpay_outcome": after.payment},
    )
