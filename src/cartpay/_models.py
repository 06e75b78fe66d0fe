"""The cartpay models: frozen attrs values, changed with ``attrs.evolve``.

Amounts are ``int`` minor units everywhere. Records that the store keeps carry a
``version`` the store checks on every write (optimistic concurrency), and at most
one ``pending`` operation: the claim made before a gateway call (docs/design.md,
"Claim → call → record").
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from attrs import field, frozen

from . import _rules
from ._money import check_amount, check_currency
from ._options import CaptureMethod, IntentOptions

__all__ = [
    "Cart",
    "IntentHandle",
    "IntentOptions",
    "IntentParams",
    "IntentRecord",
    "IntentSnapshot",
    "IntentStatus",
    "LineItem",
    "OperationName",
    "Order",
    "OrderStatus",
    "OrphanedIntent",
    "PaymentFailure",
    "PaymentStatus",
    "PendingOperation",
    "ReconcileReport",
    "RefundSnapshot",
    "RefundStatus",
    "Transaction",
    "TransactionKind",
    "TransactionStatus",
    "WebhookAction",
    "WebhookResult",
]

IntentStatus = Literal[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
]
OrderStatus = Literal["incomplete", "processing", "complete", "cancelled"]
PaymentStatus = Literal[
    "unpaid",
    "authorized",
    "partially_authorized",
    "paid",
    "partially_paid",
    "partially_refunded",
    "refunded",
    "failed",
]
TransactionKind = Literal["authorize", "capture", "purchase", "refund"]
TransactionStatus = Literal["pending", "complete", "failed", "cancelled"]
RefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]
WebhookAction = Literal["applied", "duplicate", "ignored"]
#: The gateway operations a claim is recorded for.
OperationName = Literal["create", "update", "confirm", "capture", "cancel", "refund"]


@frozen
class IntentParams:
    """Everything cartpay sends to create an intent; also what it last sent (for diffs).

    ``items`` are the cart's lines the amount stands for (not sent: kept so an
    order made from a payment taken at that amount holds what was paid for).
    """

    amount: int
    currency: str
    options: IntentOptions = field(factory=IntentOptions)
    items: tuple[LineItem, ...] = ()


@frozen
class LineItem:
    """One cart line: ``unit_amount`` × ``quantity`` in the cart's currency."""

    sku: str
    name: str
    unit_amount: int
    quantity: int

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@frozen
class PendingOperation:
    """A claim recorded before a gateway call so a retry or a crash replays it.

    ``key`` is the idempotency key the call carries. ``params`` (create),
    ``amount``/``reason`` (capture, refund, cancel) and ``payment_method``
    (confirm) are what the call sends, so a replay sends exactly the same
    request. ``lease_until`` tells other callers when they may take the claim over.
    ``known_refunds``: the refunds the order knew when a refund was claimed (a
    refund found later, of the claimed amount, is the claim's).
    """

    operation: OperationName
    key: str
    lease_until: datetime
    params: IntentParams | None = None
    amount: int | None = None
    reason: str | None = None
    payment_method: str | None = None
    known_refunds: tuple[str, ...] = ()


@frozen
class Cart:
    """A cart and the one live intent that follows it until checkout."""

    id: str
    currency: str
    items: tuple[LineItem, ...] = ()
    payment_intent_id: str | None = None
    created_at: datetime | None = None
    version: int = 0
    generation: int = 0
    options: IntentOptions = field(factory=IntentOptions)
    sent: IntentParams | None = None
    pending: PendingOperation | None = None
    last_order_id: str | None = None

    @property
    def total(self) -> int:
        return sum(item.amount for item in self.items)

    def item(self, sku: str) -> LineItem | None:
        return next((item for item in self.items if item.sku == sku), None)


@frozen
class Transaction:
    """A payment movement on an order. ``reference`` is the intent or refund id."""

    id: str
    kind: TransactionKind
    status: TransactionStatus
    amount: int
    currency: str
    reference: str
    code: str | None = None


@frozen
class Order:
    """An order made by checkout, linked to its cart's intent.

    ``payment_intent_id`` is the intent while no transaction links it yet; once a
    transaction references it, it leaves the order (``intent_id`` keeps the link
    for lookups). ``flag`` is ``"amount_mismatch"`` once a snapshot of the intent
    showed an amount or currency other than the order's (no payment was recorded
    from it); otherwise ``None``. An intent that pays another order sets no flag:
    confirming raises ``IntentAlreadyUsedError`` instead.
    """

    id: str
    cart_id: str
    currency: str
    total: int
    items: tuple[LineItem, ...]
    intent_id: str | None
    status: OrderStatus = "incomplete"
    payment: PaymentStatus = "unpaid"
    transactions: tuple[Transaction, ...] = ()
    created_at: datetime | None = None
    version: int = 0
    flag: str | None = None
    pending: PendingOperation | None = None

    @property
    def payment_intent_id(self) -> str | None:
        if self.intent_id is None:
            return None
        if any(t.reference == self.intent_id for t in self.transactions):
            return None
        return self.intent_id

    def amount(self, kind: TransactionKind, *statuses: TransactionStatus) -> int:
        """Sum of the transactions of ``kind`` in ``statuses`` (default: complete)."""
        wanted = statuses or ("complete",)
        return sum(t.amount for t in self.transactions if t.kind == kind and t.status in wanted)

    @property
    def captured(self) -> int:
        return self.amount("purchase") + self.amount("capture")

    @property
    def authorized(self) -> int:
        return self.amount("authorize")

    @property
    def refunded(self) -> int:
        return self.amount("refund")

    @property
    def refundable(self) -> int:
        """What may still be refunded: captured less complete and pending refunds."""
        return self.captured - self.amount("refund", "complete", "pending")


@frozen
class IntentRecord:
    """What the store knows of an intent cartpay created (never its client secret).

    ``order_id`` is the one order the intent pays (docs/design.md, rule 6), set by
    the first order that makes a payment attempt with it. ``status``, ``amount``
    and ``snapshot`` are what Stripe last told cartpay (the snapshot without its
    client secret): checkout books a payment taken before it from there.
    """

    id: str
    cart_id: str
    status: IntentStatus
    amount: int
    currency: str
    created_at: datetime
    order_id: str | None = None
    version: int = 0
    snapshot: IntentSnapshot | None = None


@frozen
class PaymentFailure:
    """The last failed attempt on an intent."""

    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    charge: str | None = None


@frozen
class IntentSnapshot:
    """The gateway's view of an intent at one moment. Never stored as such."""

    id: str
    status: IntentStatus
    amount: int
    currency: str
    client_secret: str | None = field(default=None, repr=False)
    amount_capturable: int = 0
    amount_received: int = 0
    capture_method: CaptureMethod = "automatic"
    created: int = 0
    livemode: bool = False
    metadata: dict[str, str] = field(factory=dict)
    last_payment_error: PaymentFailure | None = None
    cancellation_reason: str | None = None
    latest_charge: str | None = None
    payment_method: str | None = None


@frozen
class RefundSnapshot:
    """The gateway's view of a refund."""

    id: str
    payment_intent_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None = None
    failure_reason: str | None = None


def _hidden(_: object) -> str:
    return "'***'"


@frozen
class IntentHandle:
    """What the browser needs to confirm: the intent id and its client secret.

    The client secret is shown nowhere: not in ``repr``, not in logs, not in the store.
    """

    id: str
    client_secret: str | None = field(repr=_hidden)
    status: IntentStatus
    amount: int
    currency: str

    @classmethod
    def from_snapshot(cls, snapshot: IntentSnapshot) -> IntentHandle:
        return cls(
            snapshot.id,
            snapshot.client_secret,
            snapshot.status,
            snapshot.amount,
            snapshot.currency,
        )


@frozen
class WebhookResult:
    """What :meth:`CartPaymentIntent.handle_webhook` did with a delivery."""

    event_id: str
    event_type: str
    action: WebhookAction
    order_id: str | None = None


@frozen
class OrphanedIntent:
    """An intent that succeeded on a cart nobody checked out (money without an order)."""

    cart_id: str
    intent_id: str
    amount: int
    currency: str


@frozen
class ReconcileReport:
    """What :meth:`CartPaymentIntent.reconcile` looked at and changed.

    ``checked``: the orders synchronised; ``repaired``: those whose statuses or
    transactions changed; ``orphaned``: intents that took money no order owns;
    ``errors``: (id, error) for what could not be looked at; ``actions``: (id,
    what was done) for every order or intent the run changed, in order: an order
    repaired (and how), an abandoned order or intent cancelled, an orphan refunded
    or released.
    """

    checked: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()
    orphaned: tuple[OrphanedIntent, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()
    actions: tuple[tuple[str, str], ...] = ()


def new_line_item(sku: str, name: str, unit_amount: int, quantity: int, currency: str) -> LineItem:
    """A validated line item (raises ``ValidationError`` naming the field)."""
    _rules.check_text("sku", sku, max_length=200)
    _rules.check_text("name", name, max_length=500)
    check_amount(unit_amount, check_currency(currency), field="unit_amount", charge=False)
    _rules.check_quantity(quantity)
    return LineItem(sku, name, unit_amount, quantity)
