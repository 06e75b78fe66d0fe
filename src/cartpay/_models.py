"""The cartpay models: frozen attrs values, changed with ``attrs.evolve``.

Amounts are ``int`` minor units everywhere. Records that the store keeps carry a
``version`` the store checks on every write (optimistic concurrency), and at most
one ``pending`` operation: the claim made before a gateway call (docs/design.md,
"Claim → call → record").
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from attrs import evolve, field, frozen

from . import _rules
from ._errors import ValidationError
from ._money import check_amount, check_currency
from ._options import CaptureMethod, IntentOptions

__all__ = [
    "ADJUSTMENT_KINDS",
    "Adjustment",
    "AdjustmentKind",
    "Cart",
    "DisputeSnapshot",
    "ExpiringAuthorization",
    "IntentHandle",
    "IntentOptions",
    "IntentParams",
    "IntentRecord",
    "IntentSnapshot",
    "IntentStatus",
    "LineItem",
    "NextAction",
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
    "WebhookEndpoint",
    "WebhookResult",
]

#: The default options of a model (no option set). One shared instance, not a
#: factory: IntentOptions is frozen and its metadata read-only, and the store
#: converter (omit_if_default) compares every stored model's options with the
#: default, which a factory would build and validate anew each time.
NO_OPTIONS = IntentOptions()

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
TransactionKind = Literal["authorize", "capture", "purchase", "refund", "dispute"]
TransactionStatus = Literal["pending", "complete", "failed", "cancelled"]
RefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]
WebhookAction = Literal["applied", "duplicate", "ignored"]
#: What an adjustment is: a discount is subtracted from the total, the others added.
AdjustmentKind = Literal["shipping", "tax", "fee", "discount"]
ADJUSTMENT_KINDS: frozenset[str] = frozenset(get_args(AdjustmentKind))
#: The gateway operations a claim is recorded for.
OperationName = Literal["create", "update", "confirm", "capture", "cancel", "refund"]


@frozen
class IntentParams:
    """Everything cartpay sends to create an intent; also what it last sent (for diffs).

    ``items`` and ``adjustments`` are the cart's lines and adjustments the
    amount stands for (not sent: kept so an order made from a payment taken at
    that amount holds what was paid for).
    """

    amount: int
    currency: str
    options: IntentOptions = field(default=NO_OPTIONS)
    items: tuple[LineItem, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()


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
class Adjustment:
    """A line of the total beside the items: shipping, tax, a fee or a discount.

    ``amount`` is a non-negative ``int`` in the cart's minor units; a
    ``discount`` is subtracted from the total, the other kinds are added.
    ``code`` is unique in its cart (the host's key for it: ``"shipping"``,
    ``"vat"``, a promotion code); ``label`` is what a customer reads.
    """

    kind: AdjustmentKind
    code: str
    label: str
    amount: int

    @property
    def signed(self) -> int:
        """What the adjustment adds to the total (negative for a discount)."""
        return -self.amount if self.kind == "discount" else self.amount


def total_of(items: tuple[LineItem, ...], adjustments: tuple[Adjustment, ...] = ()) -> int:
    """The one way a total is computed: the items, plus shipping, tax and fees,
    less discounts (it may be negative: the amount checks refuse that)."""
    return sum(item.amount for item in items) + sum(a.signed for a in adjustments)


@frozen
class PendingOperation:
    """A claim recorded before a gateway call so a retry or a crash replays it.

    ``key`` is the idempotency key the call carries. ``params`` (create),
    ``amount``/``reason`` (capture, refund, cancel), ``payment_method``
    (confirm) and the Connect flags ``reverse_transfer``/``refund_application_fee``
    (refund) are what the call sends, so a replay sends exactly the same
    request, and a retry with other arguments is told apart. ``lease_until``
    tells other callers when they may take the claim over.
    ``known_refunds``: the refunds the order knew when a refund was claimed (a
    refund found later, of the claimed amount, is the claim's). ``request``: the
    host's idempotency key of a refund call (its refund is recorded under it).
    """

    operation: OperationName
    key: str
    lease_until: datetime
    params: IntentParams | None = None
    amount: int | None = None
    reason: str | None = None
    payment_method: str | None = None
    known_refunds: tuple[str, ...] = ()
    reverse_transfer: bool | None = None
    refund_application_fee: bool | None = None
    request: str | None = None

    @property
    def arguments(self) -> tuple[object, ...]:
        """What a caller asked for, beside the operation: a retry whose arguments
        differ is another request (``OperationPendingError`` once this one took
        effect)."""
        return (
            self.amount,
            self.reason,
            self.reverse_transfer,
            self.refund_application_fee,
            self.request,
        )


@frozen
class Cart:
    """A cart and the one live intent that follows it until checkout.

    ``total`` is what its intent is for: the items (``subtotal``) plus the
    ``adjustments`` (shipping, tax and fees added, discounts subtracted).
    """

    id: str
    currency: str
    items: tuple[LineItem, ...] = ()
    payment_intent_id: str | None = None
    created_at: datetime | None = None
    version: int = 0
    generation: int = 0
    options: IntentOptions = field(default=NO_OPTIONS)
    sent: IntentParams | None = None
    pending: PendingOperation | None = None
    last_order_id: str | None = None
    adjustments: tuple[Adjustment, ...] = ()

    @property
    def subtotal(self) -> int:
        """The items alone."""
        return total_of(self.items)

    @property
    def total(self) -> int:
        """Items + shipping + tax + fees − discounts."""
        return total_of(self.items, self.adjustments)

    def item(self, sku: str) -> LineItem | None:
        return next((item for item in self.items if item.sku == sku), None)

    def adjustment(self, code: str) -> Adjustment | None:
        return next((a for a in self.adjustments if a.code == code), None)


@frozen
class Transaction:
    """A payment movement on an order. ``reference`` is the intent, refund or
    dispute id. ``code`` says why it ended so: a failed payment's or refund's
    error code, a cancelled payment's cancellation reason (``"expired"`` when
    Stripe let an authorization lapse), a dispute's reason (``"fraudulent"``, …).
    ``idempotency_key``: on a refund, the key the host gave ``refund_order`` for
    it (a call with that key again returns the order; docs/money.md).
    """

    id: str
    kind: TransactionKind
    status: TransactionStatus
    amount: int
    currency: str
    reference: str
    code: str | None = None
    idempotency_key: str | None = None


@frozen
class Order:
    """An order made by checkout, linked to its cart's intent.

    ``payment_intent_id`` is the intent while no transaction links it yet; once a
    transaction references it, it leaves the order (``intent_id`` keeps the link
    for lookups). ``flag`` is ``"amount_mismatch"`` once a snapshot of the intent
    showed an amount or currency other than the order's (no payment was recorded
    from it); otherwise ``None``. An intent that pays another order sets no flag:
    confirming raises ``IntentAlreadyUsedError`` instead. ``options`` are those
    its intent was last sent (a server-side confirm reads whether the payment may
    redirect from them).

    ``items`` and ``adjustments`` are the cart's when it was checked out (or
    what a payment taken before checkout paid for); ``total`` is theirs.
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
    options: IntentOptions = field(default=NO_OPTIONS)
    capture_before: datetime | None = None
    adjustments: tuple[Adjustment, ...] = ()

    @property
    def subtotal(self) -> int:
        """The items alone."""
        return total_of(self.items)

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
    def disputed(self) -> int:
        """What chargebacks took or hold: disputes still open (``pending``) and lost
        (``complete``). A won dispute (``cancelled``) gave the money back; an
        inquiry takes none and is not recorded."""
        return self.amount("dispute", "complete", "pending")

    @property
    def refundable(self) -> int:
        """What may still be refunded: captured less complete and pending refunds;
        nothing while a dispute is open or lost (:attr:`disputed`): Stripe
        refuses any refund of a charge with such a chargeback, also of the part
        that was not disputed (docs/going-live.md, "Disputes")."""
        if self.disputed:
            return 0
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
class NextAction:
    """What Stripe asks of the customer before an intent can go on: ``type`` is
    Stripe's (``redirect_to_url``, ``use_stripe_sdk`` for 3-D Secure in the
    browser, …); ``redirect_url`` is where to send the browser when the action is
    a redirect (else ``None``). The URL may carry a one-time secret: it is not
    shown in ``repr``, never logged and never stored."""

    type: str
    redirect_url: str | None = field(default=None, repr=False)


@frozen
class IntentSnapshot:
    """The gateway's view of an intent at one moment. Never stored as such: the
    store keeps :meth:`without_secrets` (no client secret, no next action)."""

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
    next_action: NextAction | None = field(default=None, repr=False)

    def without_secrets(self) -> IntentSnapshot:
        """The snapshot as a store may keep it: no client secret, no next action."""
        if self.client_secret is None and self.next_action is None:
            return self
        return evolve(self, client_secret=None, next_action=None)

    #: What the latest charge has refunded (``amount_refunded``: refunds pending
    #: or succeeded; a failed one gives it back), known only when the charge came
    #: expanded (a retrieve), never from an event's copy.
    amount_refunded: int | None = None
    #: The connected account a destination charge transfers to
    #: (``transfer_data.destination``), else ``None``.
    transfer_destination: str | None = None
    #: When an uncaptured card authorization lapses (Unix seconds), from the
    #: latest charge's ``payment_method_details.card.capture_before``; known only
    #: when the charge came expanded (a retrieve), never from an event's copy.
    capture_before: int | None = None


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


@frozen
class DisputeSnapshot:
    """The gateway's view of a dispute (a chargeback, or an inquiry before one).

    ``status`` is Stripe's: ``warning_needs_response``, ``warning_under_review``,
    ``warning_closed`` (an inquiry: no money moved), ``needs_response``,
    ``under_review`` (funds withdrawn, open), ``won`` (funds reinstated),
    ``lost``, ``prevented``, … (kept as a string: Stripe adds values).
    ``payment_intent_id`` is ``None`` when the object did not say (re-read it).
    """

    id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    status: str
    reason: str | None = None
    charge: str | None = None


def _hidden(_: object) -> str:
    return "'***'"


@frozen
class IntentHandle:
    """What the browser needs to confirm: the intent id and its client secret.

    The client secret is shown nowhere: not in ``repr``, not in logs, not in the store.
    ``next_action`` is what Stripe asks of the customer when the status is
    ``requires_action`` (3-D Secure, a redirect), else ``None``.
    """

    id: str
    client_secret: str | None = field(repr=_hidden)
    status: IntentStatus
    amount: int
    currency: str
    next_action: NextAction | None = None

    @classmethod
    def from_snapshot(cls, snapshot: IntentSnapshot) -> IntentHandle:
        return cls(
            snapshot.id,
            snapshot.client_secret,
            snapshot.status,
            snapshot.amount,
            snapshot.currency,
            snapshot.next_action,
        )


@frozen
class WebhookResult:
    """What :meth:`CartPaymentIntent.handle_webhook` did with a delivery."""

    event_id: str
    event_type: str
    action: WebhookAction
    order_id: str | None = None


@frozen
class WebhookEndpoint:
    """A Stripe webhook endpoint: where Stripe sends events, which, and in which
    API version. ``secret`` (``whsec_…``) is set only in the answer to its
    creation, and shown in no ``repr``."""

    id: str
    url: str
    enabled_events: tuple[str, ...]
    api_version: str | None
    status: str
    livemode: bool = False
    secret: str | None = field(default=None, repr=_hidden)


@frozen
class OrphanedIntent:
    """An intent that succeeded on a cart nobody checked out (money without an order)."""

    cart_id: str
    intent_id: str
    amount: int
    currency: str


@frozen
class ExpiringAuthorization:
    """An authorized order whose authorization lapses by ``capture_before`` (UTC)
    unless it is captured: reported by reconcile's ``expiring_within``."""

    order_id: str
    intent_id: str
    capture_before: datetime
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
    or released. ``expiring``: the authorized orders looked at whose authorization
    lapses within the host's ``expiring_within``, soonest first (empty without it).
    """

    checked: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()
    orphaned: tuple[OrphanedIntent, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()
    actions: tuple[tuple[str, str], ...] = ()
    expiring: tuple[ExpiringAuthorization, ...] = ()


def new_line_item(sku: str, name: str, unit_amount: int, quantity: int, currency: str) -> LineItem:
    """A validated line item (raises ``ValidationError`` naming the field)."""
    _rules.check_text("sku", sku, max_length=200)
    _rules.check_text("name", name, max_length=500)
    check_amount(unit_amount, check_currency(currency), field="unit_amount", charge=False)
    _rules.check_quantity(quantity)
    return LineItem(sku, name, unit_amount, quantity)


#: The longest adjustment code and label.
MAX_CODE_LENGTH = 100
MAX_LABEL_LENGTH = 500


def new_adjustment(
    kind: object, code: object, label: object, amount: object, currency: str
) -> Adjustment:
    """A validated adjustment (raises ``ValidationError`` naming the field): a
    known ``kind``, a non-empty ``code`` and ``label``, and an ``int`` amount
    ≥ 0 in the currency's steps (0: free shipping, say)."""
    if not isinstance(kind, str) or kind not in ADJUSTMENT_KINDS:
        raise ValidationError(
            "kind", "choice", f"{kind!r} is not one of {sorted(ADJUSTMENT_KINDS)}"
        )
    code = _rules.check_text("code", code, max_length=MAX_CODE_LENGTH)
    label = _rules.check_text("label", label, max_length=MAX_LABEL_LENGTH)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError(
            "amount", "integer", f"must be an int in minor units, got {type(amount).__name__}"
        )
    if amount < 0:
        raise ValidationError(
            "amount", "non_negative", f"must be 0 or more, got {amount} (a discount is a kind)"
        )
    if amount:
        check_amount(amount, check_currency(currency), field="amount", charge=False)
    return Adjustment(kind, code, label, amount)  # type: ignore[arg-type]  # a kind, checked
