"""CartPaymentIntent, the façade: orchestration only.

Decisions live in pure modules (``_params``: what to send; ``_sync``: what a
snapshot means; ``_lifecycle``: what is allowed). Every method that calls the
gateway follows the same three steps (DESIGN §3.9):

1. **claim** — in one short store transaction, check the rules and record the
   pending operation with its idempotency key and a lease;
2. **call** — the gateway, with no transaction or lock held;
3. **record** — in another transaction, write the outcome if the record is still
   at the version the claim left; a caller that lost a race re-reads and converges.

A retry after a timeout or a crash finds the pending operation and replays it with
the same key, so the gateway acts once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from typing import TypeVar, get_args

from attrs import evolve

from . import _lifecycle, _rules, _sync, _webhooks
from ._errors import (
    AmountMismatchError,
    CardDeclinedError,
    CartpayError,
    ConcurrencyError,
    IllegalStateError,
    IntentAlreadyUsedError,
    NotFoundError,
    ValidationError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from ._lifecycle import IntentOperation
from ._models import (
    Cart,
    IntentHandle,
    IntentOptions,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    IntentStatus,
    LineItem,
    Order,
    OrphanedIntent,
    PendingOperation,
    ReconcileReport,
    RefundSnapshot,
    WebhookAction,
    WebhookResult,
    new_line_item,
)
from ._money import MAX_AMOUNT, check_amount, check_currency
from ._params import idempotency_key, intent_changes, intent_params
from ._ports import PaymentGateway, Store, StoreReads, StoreTransaction

__all__ = ["CartPaymentIntent"]

log = logging.getLogger("cartpay")

T = TypeVar("T")

#: How many times a write that lost a version race is re-read and retried.
_RACE_RETRIES = 20
#: Intent statuses reconcile refreshes when no order claims the intent: all but canceled.
_RECONCILE_INTENTS = tuple(s for s in get_args(IntentStatus) if s != "canceled")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _with_status(record: IntentRecord | None, snap: IntentSnapshot) -> IntentRecord | None:
    """``record`` carrying the snapshot's status and amount (unchanged when its
    status is final: monotonic, a final status is never left)."""
    if record is None or record.status == snap.status or _lifecycle.is_final(record.status):
        return record
    return evolve(record, status=snap.status, amount=snap.amount)


_Claimed = TypeVar("_Claimed", Cart, Order)


def _released(
    record: _Claimed | None, key: str, *, definite: bool, now: datetime
) -> _Claimed | None:
    """``record`` with its claim ``key`` released: gone when the call's outcome is
    definite, expired at ``now`` when it is not (the next caller replays the key).
    ``None`` when the claim is no longer ``key`` (someone else's now)."""
    if record is None or record.pending is None or record.pending.key != key:
        return None
    pending = None if definite else evolve(record.pending, lease_until=now)
    return evolve(record, pending=pending, version=record.version + 1)


def _write_intent(
    tx: StoreTransaction, before: IntentRecord | None, after: IntentRecord | None
) -> None:
    """One write of ``after`` over ``before`` (as read in ``tx``) if it is a new
    record (the helpers return ``before`` itself when nothing changes)."""
    if before is None or after is None or after is before:
        return
    tx.update_intent(evolve(after, version=before.version + 1), expected_version=before.version)


class CartPaymentIntent:
    """The cart → PaymentIntent → order workflow over a gateway and a store.

    Thread-safe and safe across processes sharing one store: concurrent calls on
    the same cart or order serialise through the store's version checks and the
    pending-operation leases.

    ``lease`` is how long a caller may hold a pending gateway operation before
    another caller may take it over (set it above the gateway's timeout with
    retries); ``wait`` how long a caller waits for another caller's operation on
    the same record before raising ``ConcurrencyError``.
    """

    def __init__(
        self,
        *,
        gateway: PaymentGateway,
        store: Store,
        clock: Callable[[], datetime] = _utcnow,
        new_id: Callable[[str], str] = _new_id,
        lease: timedelta = timedelta(seconds=120),
        wait: timedelta = timedelta(seconds=30),
        webhook_tolerance: int = 300,
        livemode: bool | None = None,
        refresh_on_webhook: bool = False,
    ) -> None:
        if isinstance(webhook_tolerance, bool) or not isinstance(webhook_tolerance, int):
            raise ValidationError("webhook_tolerance", "integer", "must be an int of seconds")
        if webhook_tolerance <= 0:  # Stripe's SDKs treat 0 as "never stale"
            raise ValidationError(
                "webhook_tolerance", "positive", "must be positive; 0 would accept any old delivery"
            )
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ValidationError("lease", "positive", "must be a positive timedelta")
        if not isinstance(wait, timedelta) or wait < timedelta(0):
            raise ValidationError("wait", "non_negative", "must be a timedelta ≥ 0 (0: never wait)")
        for name, value in (("clock", clock), ("new_id", new_id)):
            if not callable(value):
                raise ValidationError(name, "callable", "must be a function")
        self.gateway = gateway
        self.store = store
        self._clock = clock
        self._new_id = new_id
        self._lease = lease
        self._wait = wait.total_seconds()
        self.webhook_tolerance = webhook_tolerance
        self.livemode = livemode
        self.refresh_on_webhook = refresh_on_webhook

    def __repr__(self) -> str:
        return f"CartPaymentIntent(gateway={self.gateway!r}, store={self.store!r})"

    # ------------------------------------------------------------------ carts

    def create_cart(self, currency: str, *, options: IntentOptions | None = None) -> Cart:
        """A new empty cart in ``currency`` (lowercase ISO code Stripe supports)."""
        check_currency(currency)
        if options is not None and not isinstance(options, IntentOptions):
            raise ValidationError("options", "type", "must be an IntentOptions")
        cart = Cart(
            self._new_id("cart"),
            currency,
            created_at=self._clock(),
            options=options or IntentOptions(),
        )
        with self.store.transaction() as tx:
            tx.insert_cart(cart)
        log.info("cart created", extra={"cart_id": cart.id})
        return cart

    def get_cart(self, cart_id: str) -> Cart:
        with self.store.read() as tx:
            return self._cart(tx, cart_id)

    def add_item(
        self, cart_id: str, *, sku: str, name: str, unit_amount: int, quantity: int = 1
    ) -> Cart:
        """Add ``quantity`` of ``sku`` (its name and price are replaced if present)."""

        def add(cart: Cart) -> Cart:
            item = new_line_item(sku, name, unit_amount, quantity, cart.currency)
            present = cart.item(sku)
            if present is not None:
                item = evolve(item, quantity=_rules.check_quantity(present.quantity + quantity))
            return self._with_item(cart, item)

        return self._change_cart(cart_id, add)

    def set_quantity(self, cart_id: str, sku: str, quantity: int) -> Cart:
        """Set the quantity of ``sku``; 0 removes the line."""
        _rules.check_quantity(quantity, allow_zero=True)

        def change(cart: Cart) -> Cart:
            present = cart.item(sku)
            if present is None:
                raise ValidationError("sku", "in_cart", f"{sku!r} is not in cart {cart.id}")
            if quantity == 0:
                return evolve(cart, items=tuple(i for i in cart.items if i.sku != sku))
            return self._with_item(cart, evolve(present, quantity=quantity))

        return self._change_cart(cart_id, change)

    def delete_cart(self, cart_id: str) -> None:
        """Delete the cart; its live intent, if any, is canceled first (``abandoned``)."""
        with self.store.read() as tx:  # the cart, its intent and the intent's orders
            cart = self._cart(tx, cart_id)
            intent_id = cart.payment_intent_id
            record = tx.get_intent(intent_id) if intent_id is not None else None
            cancel = (
                record is not None
                and record.status in _lifecycle.REUSABLE
                and record.order_id is None
                and not tx.orders_for_intent(record.id)
            )
        if cancel and record is not None:
            key = idempotency_key("cart", cart.id, f"g{cart.generation}", "cancel")
            snap = self.gateway.cancel_intent(record.id, reason="abandoned", idempotency_key=key)
            self._record_intent_status(snap)
        for _ in range(_RACE_RETRIES):
            with self.store.transaction() as tx:
                current = self._cart(tx, cart_id)
                try:
                    tx.delete_cart(cart_id, expected_version=current.version)
                except ConcurrencyError:
                    continue
                return
        raise ConcurrencyError(f"cart {cart_id} kept changing; try again")

    # ---------------------------------------------------------------- intents

    def create_payment_intent(
        self, cart_id: str, *, options: IntentOptions | None = None
    ) -> IntentHandle:
        """The cart's live intent, created if needed, matching the cart now.

        Reuses the cart's intent while it can take a payment (updating it if the
        cart changed, else retrieving it for its client secret); creates one only
        when there is none or the last was canceled or used. The create carries
        the key ``cartpay:cart:<id>:g<generation>:create``, recorded before the call.

        Stripe calls: one create, or one update/retrieve when reusing.
        """
        if options is not None and not isinstance(options, IntentOptions):
            raise ValidationError("options", "type", "must be an IntentOptions")
        deadline = time.monotonic() + self._wait
        while True:
            cart, record = self._cart_and_intent(cart_id)
            wanted = intent_params(cart, options or cart.options)
            if record is not None and record.status in _lifecycle.REUSABLE:
                return self._update(cart, record, wanted, retrieve=True)
            if record is not None and record.status in ("processing", "requires_capture"):
                raise IllegalStateError(
                    "intent",
                    "replace",
                    record.status,
                    entity_id=record.id,
                    detail="the cart's payment is in flight; confirm its order first",
                )
            claim = self._claim_cart_create(cart, wanted, deadline)
            if claim is None:
                continue  # another caller created it meanwhile: reuse theirs
            claimed, pending = claim
            snap = self._call(
                lambda: self.gateway.create_intent(
                    pending.params or wanted, idempotency_key=pending.key
                ),
                release=lambda definite: self._release_cart(claimed.id, pending.key, definite),
            )
            cart = self._record_created(claimed.id, pending, snap)
            log.info("intent created", extra={"cart_id": cart.id, "intent_id": snap.id})
            assert cart.sent is not None
            now_wanted = intent_params(cart, options or cart.options)
            if intent_changes(cart.sent, now_wanted):  # the cart moved on while we replayed
                return self._update(cart, self._intent_record(snap.id), now_wanted, retrieve=False)
            return IntentHandle.from_snapshot(snap)

    def update_payment_intent(
        self, cart_id: str, *, options: IntentOptions | None = None
    ) -> IntentHandle:
        """Send the cart's final details to its intent: only the changed fields.

        When nothing changed, no Stripe call is made and the handle carries no
        client secret (the browser already has it). Raises ``IllegalStateError``
        when the intent's status forbids the change (e.g. ``processing``).
        """
        if options is not None and not isinstance(options, IntentOptions):
            raise ValidationError("options", "type", "must be an IntentOptions")
        cart, record = self._cart_and_intent(cart_id)
        wanted = intent_params(cart, options or cart.options)
        if cart.payment_intent_id is None:
            raise IllegalStateError(
                "cart",
                "update_payment_intent",
                "no_intent",
                entity_id=cart.id,
                detail="call create_payment_intent first",
            )
        return self._update(cart, record, wanted, retrieve=False)

    def _update(
        self, cart: Cart, record: IntentRecord | None, wanted: IntentParams, *, retrieve: bool
    ) -> IntentHandle:
        """Send what changed between ``cart.sent`` and ``wanted`` (``record``: the
        cart's intent as stored, read with the cart)."""
        deadline = time.monotonic() + self._wait
        while True:
            assert cart.payment_intent_id is not None and cart.sent is not None
            intent_id = cart.payment_intent_id
            changes = intent_changes(cart.sent, wanted)
            status = record.status if record else "requires_payment_method"
            if not changes:
                if retrieve:
                    return IntentHandle.from_snapshot(self.gateway.retrieve_intent(intent_id))
                return IntentHandle(intent_id, None, status, cart.sent.amount, cart.currency)
            operation: IntentOperation = "update_amount" if "amount" in changes else "update_fields"
            _lifecycle.check_intent_operation(operation, status, intent_id=intent_id)
            if record is not None and record.order_id is not None and "amount" in changes:
                raise IllegalStateError(  # a kept cart must not reprice what an order pays
                    "intent",
                    operation,
                    status,
                    entity_id=intent_id,
                    detail=f"order {record.order_id} is paying it; confirm or cancel that order",
                )
            key = idempotency_key(
                "cart", cart.id, f"g{cart.generation}", "update", f"v{cart.version}"
            )
            claimed = self._claim_cart(cart, "update", key, deadline)
            if claimed is None:
                cart, record = self._cart_and_intent(cart.id)
                wanted = intent_params(cart, wanted.options)
                continue
            snap = self._call(
                lambda: self.gateway.update_intent(intent_id, changes, idempotency_key=key),
                release=lambda definite: self._release_cart(cart.id, key, definite),
            )
            self._record_sent(claimed, key, wanted, snap)
            log.info("intent updated", extra={"cart_id": cart.id, "intent_id": intent_id})
            return IntentHandle.from_snapshot(snap)

    # ---------------------------------------------------------------- checkout

    def checkout(self, cart_id: str, *, keep_cart: bool = False) -> Order:
        """Snapshot the cart into an unpaid order linked to the cart's intent.

        The intent is first brought up to date with the cart (one update call if
        the cart changed since the last send). By default the cart is consumed
        and its intent goes with the order; ``keep_cart=True`` keeps both on the
        cart (a second checkout then makes a second order on the same intent, of
        which only one can be paid, rule 6).
        """
        if not isinstance(keep_cart, bool):
            raise ValidationError("keep_cart", "type", "must be a bool")
        for _ in range(_RACE_RETRIES):
            with self.store.read() as tx:  # the cart and its intent, in one read
                cart = self._cart(tx, cart_id)
                record = tx.get_intent(cart.payment_intent_id) if cart.payment_intent_id else None
            wanted = intent_params(cart, cart.options)
            if cart.payment_intent_id is None or cart.sent is None:
                raise IllegalStateError(
                    "cart",
                    "checkout",
                    "no_intent",
                    entity_id=cart.id,
                    detail="call create_payment_intent first",
                )
            if record is not None and record.status not in _lifecycle.REUSABLE:
                raise IllegalStateError(
                    "intent",
                    "checkout",
                    record.status,
                    entity_id=record.id,
                    detail="the cart's intent can no longer take a payment; create a new one",
                )
            if intent_changes(cart.sent, wanted):
                self._update(cart, record, wanted, retrieve=False)
                continue
            order = Order(
                self._new_id("ord"),
                cart.id,
                cart.currency,
                cart.total,
                cart.items,
                cart.payment_intent_id,
                created_at=self._clock(),
            )
            with self.store.transaction() as tx:
                current = self._cart(tx, cart_id)
                busy = current.pending is not None and current.pending.lease_until > self._clock()
                if current.version != cart.version or busy:
                    stale = True
                else:
                    stale = False
                    tx.insert_order(order)
                    if not keep_cart:
                        tx.delete_cart(cart.id, expected_version=cart.version)
            if stale:  # the cart moved on (or an operation holds it): look again
                time.sleep(0.01)
                continue
            log.info("checked out", extra={"cart_id": cart.id, "order_id": order.id})
            return order
        raise ConcurrencyError(f"cart {cart_id} kept changing during checkout; try again")

    def get_order(self, order_id: str) -> Order:
        with self.store.read() as tx:
            return self._order(tx, order_id)

    # ----------------------------------------------------------------- orders

    def confirm_payment(
        self, order_id: str, *, payment_method: str, return_url: str | None = None
    ) -> Order:
        """Confirm the order's intent server-side with ``payment_method`` (saved cards,
        tests), then record the outcome as ``confirm_order`` does.

        A decline raises ``CardDeclinedError`` after recording the failed
        transaction; the order stays payable.
        """
        _rules.check_id("payment_method", payment_method)
        if return_url is not None:
            _rules.check_url("return_url", return_url)
        deadline = time.monotonic() + self._wait
        while True:
            with self.store.read() as tx:  # what the checks need, in one read
                order = self._order(tx, order_id)
                record = tx.get_intent(order.intent_id) if order.intent_id else None
                cart = tx.get_cart(order.cart_id)
            _lifecycle.check_order_operation("confirm_payment", order)
            intent_id = self._intent_of(order)
            if record is not None:
                if record.order_id not in (None, order.id):
                    raise IntentAlreadyUsedError(intent_id, order.id, record.order_id)
                _lifecycle.check_intent_operation("confirm", record.status, intent_id=intent_id)
            self._check_kept_cart_amount(order, cart)
            key = idempotency_key("order", order.id, "confirm", f"v{order.version}")
            claim = self._claim_order(order, "confirm", key, deadline, reason=payment_method)
            if claim is None:
                continue
            claimed, pending = claim
            try:
                snap = self._call(
                    lambda: self.gateway.confirm_intent(
                        intent_id,
                        payment_method=pending.reason or payment_method,
                        return_url=return_url,
                        idempotency_key=pending.key,
                    ),
                    release=lambda definite: self._release_order(claimed.id, pending.key, definite),
                )
            except CardDeclinedError:
                self._apply(order.id, self.gateway.retrieve_intent(intent_id), clear=pending.key)
                raise
            return self._apply(order.id, snap, clear=pending.key)

    def confirm_order(self, order_id: str) -> Order:
        """Synchronise the order with its intent (DESIGN §3.5). Safe to repeat.

        succeeded → purchase/capture transaction, payment ``paid``;
        requires_capture → authorize, ``authorized``; processing → pending
        transaction; a failed attempt → failed transaction, still payable;
        canceled → order ``cancelled``. Raises ``AmountMismatchError`` (order
        flagged, not paid) or ``IntentAlreadyUsedError`` (rule 6).

        Stripe calls: one retrieve (plus one refund list when re-syncing a paid order).
        """
        order = self.get_order(order_id)
        intent_id = self._intent_of(order)
        snap = self.gateway.retrieve_intent(intent_id)
        refunds: Sequence[RefundSnapshot] = ()
        if snap.status == "succeeded" and order.captured:
            refunds = self.gateway.list_refunds(intent_id)
        return self._apply(order.id, snap, refunds=refunds)

    def capture_order(self, order_id: str, amount: int | None = None) -> Order:
        """Capture an authorized order: all of it, or ``amount`` (the rest is released)."""
        order = self.get_order(order_id)
        if amount is not None:
            check_amount(amount, order.currency, field="amount", charge=False)
            if amount > order.authorized:
                raise ValidationError(
                    "amount", "authorized", f"{amount} exceeds the authorized {order.authorized}"
                )
        return self._order_operation(
            order_id,
            "capture",
            amount=amount,
            read=order,
            call=lambda intent_id, pending: self.gateway.capture_intent(
                intent_id, amount=pending.amount, idempotency_key=pending.key
            ),
        )

    def cancel_order(self, order_id: str, *, reason: str | None = None) -> Order:
        """Cancel an unpaid or authorized order and its intent (an authorization is
        released). An intent that pays another order, or still follows a kept
        cart, is left alone: only this order is cancelled."""
        _rules.check_reason(reason, _rules.CANCEL_REASONS)
        with self.store.read() as tx:  # the order, its intent and who else holds it
            order = self._order(tx, order_id)
            intent_id = order.intent_id
            record = tx.get_intent(intent_id) if intent_id is not None else None
            local = (
                record is None
                or record.status == "canceled"
                or not self._owns_intent(tx, order, record)
            )
        _lifecycle.check_order_operation("cancel", order)
        if intent_id is None or record is None or local:
            return self._change_order(order_id, _sync.cancel_locally)
        _lifecycle.check_intent_operation("cancel", record.status, intent_id=intent_id)
        return self._order_operation(
            order_id,
            "cancel",
            reason=reason,
            read=order,
            call=lambda intent_id, pending: self.gateway.cancel_intent(
                intent_id, reason=pending.reason, idempotency_key=pending.key
            ),
        )

    def refund_order(
        self, order_id: str, amount: int | None = None, *, reason: str | None = None
    ) -> Order:
        """Refund ``amount`` (all that remains when ``None``) of a paid order.

        Refunds never exceed what was captured less what was already refunded
        (pending refunds count).
        """
        _rules.check_reason(reason, _rules.REFUND_REASONS)
        order = self.get_order(order_id)
        _lifecycle.check_order_operation("refund", order)
        wanted = order.refundable if amount is None else amount
        check_amount(wanted, order.currency, field="amount", charge=False)
        if wanted > order.refundable:
            raise ValidationError(
                "amount",
                "refundable",
                f"{wanted} exceeds the {order.refundable} still refundable on order {order.id}",
            )

        def refund(intent_id: str, pending: PendingOperation) -> RefundSnapshot:
            return self.gateway.create_refund(
                intent_id, amount=pending.amount, reason=pending.reason, idempotency_key=pending.key
            )

        return self._order_operation(
            order_id, "refund", amount=wanted, reason=reason, read=order, call=refund
        )

    # ------------------------------------------------------ webhooks, reconcile

    def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult:
        """Verify, deduplicate and apply one webhook delivery. Always safe to call.

        The signature is checked over the raw ``payload`` bytes by the gateway
        (any ``v1`` signature may match; older than ``webhook_tolerance`` seconds
        is stale). The event id is recorded in the same store transaction as the
        event's effects: a repeated delivery returns ``action="duplicate"`` and
        changes nothing. Payment-intent and refund events go through the same
        mapping as :meth:`confirm_order`, monotonically, so any order or number
        of deliveries converges. Unknown event types and intents cartpay did not
        create are recorded as ``ignored``.

        Raises ``WebhookSignatureError`` / ``WebhookPayloadError`` (answer HTTP 400;
        nothing was written). Stripe calls: none, except one refund list for
        ``charge.refunded`` and one retrieve when ``refresh_on_webhook`` is set.
        """
        if not isinstance(payload, (bytes, bytearray)):
            raise WebhookPayloadError("the payload must be the raw request body as bytes")
        if not isinstance(signature_header, str) or not signature_header:
            raise WebhookSignatureError("the Stripe-Signature header is missing")
        payload = bytes(payload)
        self.gateway.verify_webhook(payload, signature_header, tolerance=self.webhook_tolerance)
        event = _webhooks.parse_event(payload)
        livemode = (
            self.livemode if self.livemode is not None else getattr(self.gateway, "livemode", None)
        )
        if isinstance(livemode, bool) and event.livemode != livemode:
            mode = "live" if event.livemode else "test"
            raise WebhookPayloadError(f"event {event.id} is from {mode} mode; this endpoint is not")
        route = _webhooks.route_event(event)
        snapshot, refunds = route.intent, [route.refund] if route.refund else []
        # Whether cartpay knows the intent is looked up in the main transaction,
        # unless a gateway call (never made inside one) depends on it.
        known: bool | None = None
        if route.kind == "ignore" or route.intent_id is None:
            known = False
        elif (route.kind == "intent" and self.refresh_on_webhook) or (
            route.kind == "refunds" and route.refund is None
        ):
            with self.store.read() as tx:
                if tx.has_event(event.id):  # a re-delivery: no Stripe call for it
                    return WebhookResult(event.id, event.type, "duplicate")
                known = self._knows_intent(tx, route.intent_id)
            if known and route.kind == "intent":
                snapshot = self.gateway.retrieve_intent(route.intent_id)
            elif known:
                refunds = list(self.gateway.list_refunds(route.intent_id))
        for _ in range(_RACE_RETRIES):
            try:
                with self.store.transaction() as tx:
                    if known is not None:
                        knows = known
                    else:
                        assert route.intent_id is not None
                        knows = self._knows_intent(tx, route.intent_id)
                    if not knows:
                        recorded = tx.record_event(event.id, event.type, "ignored")
                        action: WebhookAction = "ignored" if recorded else "duplicate"
                        return WebhookResult(event.id, event.type, action)
                    if not tx.record_event(event.id, event.type, "applied"):
                        return WebhookResult(event.id, event.type, "duplicate")
                    assert route.intent_id is not None
                    order_id = self._apply_event(tx, route.intent_id, snapshot, refunds)
                    return WebhookResult(event.id, event.type, "applied", order_id)
            except ConcurrencyError:
                continue  # raced with confirm_order or another delivery: re-read, re-apply
        raise ConcurrencyError(f"event {event.id}: its order kept changing; Stripe will retry")

    @staticmethod
    def _knows_intent(tx: StoreReads, intent_id: str) -> bool:
        """Whether cartpay created the intent (or an order refers to it)."""
        return tx.get_intent(intent_id) is not None or bool(tx.orders_for_intent(intent_id))

    def _apply_event(
        self,
        tx: StoreTransaction,
        intent_id: str,
        snapshot: IntentSnapshot | None,
        refunds: Sequence[RefundSnapshot],
    ) -> str | None:
        """Apply to the order the intent pays (or the first order linked to it)."""
        record = tx.get_intent(intent_id)
        orders = [o for o in tx.orders_for_intent(intent_id) if o.status != "cancelled"]
        if record is not None and record.order_id is not None:
            target = next((o for o in orders if o.id == record.order_id), None)
        else:
            target = orders[0] if orders else None
        if target is None:
            if snapshot is not None:
                self._save_intent_status(tx, snapshot)
            return None
        if snapshot is not None:  # (saves the intent's status too, in the same write)
            self.apply_snapshot(tx, target.id, snapshot, refunds=refunds)
        elif refunds:
            order = self._order(tx, target.id)
            updated = _sync.apply_refunds(order, refunds)
            if updated != order:
                tx.update_order(
                    evolve(updated, version=order.version + 1), expected_version=order.version
                )
        return target.id

    def reconcile(
        self, *, older_than: timedelta = timedelta(minutes=15), limit: int = 500
    ) -> ReconcileReport:
        """Repair what missed webhooks left behind. Safe to run alongside webhooks.

        Orders still incomplete or processing whose order is older than
        ``older_than`` are synchronised with :meth:`confirm_order`; intents that
        pay no order are refreshed, and those that took money (succeeded,
        requires_capture, processing) on a cart nobody checked out are reported
        in ``orphaned`` with their amount. Stripe calls: one retrieve per order
        or intent looked at.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError("older_than", "type", "must be a non-negative timedelta")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit", "positive", "must be a positive int")
        try:
            cutoff = self._clock() - older_than
        except OverflowError:
            raise ValidationError("older_than", "range", "reaches before year 1") from None
        with self.store.read() as tx:
            orders = tx.unpaid_orders_before(cutoff, limit=limit)
            intents = tx.unclaimed_intents(_RECONCILE_INTENTS, limit=limit)
        checked: list[str] = []
        repaired: list[str] = []
        errors: list[tuple[str, str]] = []
        for order in orders:
            checked.append(order.id)
            try:
                after = self.confirm_order(order.id)
            except CartpayError as exc:
                errors.append((order.id, f"{type(exc).__name__}: {exc}"))
                continue
            if (after.status, after.payment, after.transactions) != (
                order.status,
                order.payment,
                order.transactions,
            ):
                repaired.append(order.id)
        orphaned: list[OrphanedIntent] = []
        for record in intents:
            if record.created_at > cutoff or any(
                o.status != "cancelled" for o in self._orders_for(record.id)
            ):
                continue
            try:
                snap = self.gateway.retrieve_intent(record.id)
            except CartpayError as exc:
                errors.append((record.id, f"{type(exc).__name__}: {exc}"))
                continue
            self._record_intent_status(snap)
            if snap.status in ("succeeded", "requires_capture", "processing"):
                orphaned.append(
                    OrphanedIntent(record.cart_id, record.id, snap.amount, snap.currency)
                )
        log.info("reconciled", extra={"checked": len(checked), "repaired": len(repaired)})
        return ReconcileReport(tuple(checked), tuple(repaired), tuple(orphaned), tuple(errors))

    # ------------------------------------------------------- claims and records

    def _order_operation(
        self,
        order_id: str,
        operation: str,
        *,
        call: Callable[[str, PendingOperation], IntentSnapshot | RefundSnapshot],
        amount: int | None = None,
        reason: str | None = None,
        read: Order | None = None,
    ) -> Order:
        """``read``: the order as the caller just read it (not read again at first)."""
        deadline = time.monotonic() + self._wait
        while True:
            order, read = read or self.get_order(order_id), None
            _lifecycle.check_order_operation(operation, order)  # type: ignore[arg-type]
            if operation == "refund" and amount is not None and amount > order.refundable:
                raise ValidationError(
                    "amount",
                    "refundable",
                    f"{amount} exceeds the {order.refundable} still refundable",
                )
            intent_id = self._intent_of(order)
            # A new key per logical operation: the version moves on with every claim,
            # so a retry after a definite failure never reuses a spent key, while a
            # retry after an unknown outcome replays the claim's own key.
            key = idempotency_key("order", order.id, operation, f"v{order.version}")
            claim = self._claim_order(order, operation, key, deadline, amount=amount, reason=reason)
            if claim is None:
                continue
            claimed, pending = claim
            result = self._call(
                lambda: call(intent_id, pending),
                release=lambda definite: self._release_order(claimed.id, pending.key, definite),
            )
            log.info("order %s", operation, extra={"order_id": order_id, "intent_id": intent_id})
            if isinstance(result, RefundSnapshot):
                recorded = self._apply_refund(order_id, result, clear=pending.key)
                if (pending.amount, pending.reason) != (amount, reason):
                    continue  # that was an earlier refund's replay; now make this one
                return recorded
            return self._apply(order_id, result, clear=pending.key)

    def _call(self, call: Callable[[], T], *, release: Callable[[bool], None]) -> T:
        """Run a gateway call; on failure release the claim. A definite failure
        (not retryable) clears the pending operation; an unknown outcome keeps it
        so the next caller replays the same key."""
        try:
            return call()
        except CartpayError as exc:
            release(not exc.retryable)
            raise
        except BaseException:
            release(False)
            raise

    def _lease_until(self) -> datetime:
        return self._clock() + self._lease

    def _wait_or_raise(self, deadline: float, what: str) -> None:
        if time.monotonic() >= deadline:
            raise ConcurrencyError(f"{what} has an operation in progress; try again")
        time.sleep(0.01)

    def _claim_cart_create(
        self, cart: Cart, wanted: IntentParams, deadline: float
    ) -> tuple[Cart, PendingOperation] | None:
        """Claim the cart's create. ``None``: someone else finished one; re-read."""
        with self.store.transaction() as tx:
            current = self._cart(tx, cart.id)
            if current.payment_intent_id != cart.payment_intent_id:
                return None
            pending = current.pending
            now = self._clock()
            if pending is not None and pending.lease_until > now:
                live = True
            else:
                live = False
                if pending is None or pending.operation != "create":
                    generation = current.generation + (1 if current.payment_intent_id else 0)
                    key = idempotency_key("cart", current.id, f"g{generation}", "create")
                    pending = PendingOperation("create", key, self._lease_until(), params=wanted)
                else:  # an earlier create's outcome is unknown: replay it exactly
                    pending = evolve(pending, lease_until=self._lease_until())
                claimed = evolve(current, pending=pending, version=current.version + 1)
                try:
                    tx.update_cart(claimed, expected_version=current.version)
                except ConcurrencyError:  # another caller claimed it first: re-read
                    return None
        if live:
            self._wait_or_raise(deadline, f"cart {cart.id}")
            return None
        return claimed, pending

    def _claim_cart(self, cart: Cart, operation: str, key: str, deadline: float) -> Cart | None:
        with self.store.transaction() as tx:
            current = self._cart(tx, cart.id)
            busy = current.pending is not None and current.pending.lease_until > self._clock()
            if not busy and current.version == cart.version:
                claimed = evolve(
                    current,
                    pending=PendingOperation(operation, key, self._lease_until()),
                    version=current.version + 1,
                )
                try:
                    tx.update_cart(claimed, expected_version=current.version)
                except ConcurrencyError:  # another caller claimed it first: re-read
                    return None
                return claimed
        if busy:
            self._wait_or_raise(deadline, f"cart {cart.id}")
        return None

    def _release_cart(self, cart_id: str, key: str, definite: bool) -> None:
        try:
            with self.store.transaction() as tx:
                cart = tx.get_cart(cart_id)
                released = _released(cart, key, definite=definite, now=self._clock())
                if cart is not None and released is not None:
                    tx.update_cart(released, expected_version=cart.version)
        except Exception:  # the claim expires by itself; never hide the call's error
            log.warning("could not release the claim on cart %s", cart_id, exc_info=True)

    def _record_created(
        self, cart_id: str, pending: PendingOperation, snap: IntentSnapshot
    ) -> Cart:
        for _ in range(_RACE_RETRIES):
            with self.store.transaction() as tx:
                cart = self._cart(tx, cart_id)
                if cart.payment_intent_id == snap.id:
                    return cart
                if cart.pending is None or cart.pending.key != pending.key:
                    raise ConcurrencyError(f"cart {cart_id}'s create was taken over; try again")
                assert pending.params is not None
                updated = evolve(
                    cart,
                    payment_intent_id=snap.id,
                    generation=cart.generation + (1 if cart.payment_intent_id else 0),
                    sent=pending.params,
                    options=pending.params.options,  # options given to the call stay
                    pending=None,
                    version=cart.version + 1,
                )
                try:
                    if tx.get_intent(snap.id) is None:
                        tx.insert_intent(
                            IntentRecord(
                                snap.id,
                                cart.id,
                                snap.status,
                                snap.amount,
                                snap.currency,
                                self._clock(),
                            )
                        )
                    tx.update_cart(updated, expected_version=cart.version)
                except ConcurrencyError:
                    continue
                return updated
        raise ConcurrencyError(f"cart {cart_id} kept changing; try again")

    def _record_sent(
        self, claimed: Cart, key: str, sent: IntentParams, snap: IntentSnapshot
    ) -> None:
        for _ in range(_RACE_RETRIES):
            with self.store.transaction() as tx:
                cart = tx.get_cart(claimed.id)
                if cart is None or cart.pending is None or cart.pending.key != key:
                    break
                try:
                    tx.update_cart(
                        evolve(
                            cart,
                            sent=sent,
                            options=sent.options,  # options given to the call stay
                            pending=None,
                            version=cart.version + 1,
                        ),
                        expected_version=cart.version,
                    )
                    self._save_intent_status(tx, snap)
                except ConcurrencyError:
                    continue
                return
        self._record_intent_status(snap)

    def _claim_order(
        self,
        order: Order,
        operation: str,
        key: str,
        deadline: float,
        *,
        amount: int | None = None,
        reason: str | None = None,
    ) -> tuple[Order, PendingOperation] | None:
        # A lost version race (on the order or its intent) rolls the claim back: re-read.
        busy = True  # (wait a moment before re-reading if the race is lost before the read)
        with suppress(ConcurrencyError), self.store.transaction() as tx:
            current = self._order(tx, order.id)
            pending = current.pending
            busy = pending is not None and pending.lease_until > self._clock()
            if not busy and current.version == order.version:
                if (
                    pending is not None
                    and pending.operation == operation
                    and (operation != "confirm" or pending.reason == reason)
                ):
                    pending = evolve(pending, lease_until=self._lease_until())  # replay
                else:
                    pending = PendingOperation(
                        operation, key, self._lease_until(), amount=amount, reason=reason
                    )
                claimed = evolve(current, pending=pending, version=current.version + 1)
                tx.update_order(claimed, expected_version=current.version)
                if operation == "confirm" and current.intent_id is not None:
                    record = tx.get_intent(current.intent_id)
                    _write_intent(tx, record, self._bind_intent(record, current))
                return claimed, pending
        if busy:
            self._wait_or_raise(deadline, f"order {order.id}")
        return None

    def _release_order(self, order_id: str, key: str, definite: bool) -> None:
        try:
            with self.store.transaction() as tx:
                order = tx.get_order(order_id)
                released = _released(order, key, definite=definite, now=self._clock())
                if order is not None and released is not None:
                    tx.update_order(released, expected_version=order.version)
        except Exception:  # (as in _release_cart)
            log.warning("could not release the claim on order %s", order_id, exc_info=True)

    def _bind_intent(self, record: IntentRecord | None, order: Order) -> IntentRecord | None:
        """``record`` (the order's intent) bound to ``order``, the one order it
        pays (rule 6); raises ``IntentAlreadyUsedError`` if it pays another."""
        if record is None or record.order_id == order.id:
            return record
        if record.order_id is not None:
            raise IntentAlreadyUsedError(record.id, order.id, record.order_id)
        return evolve(record, order_id=order.id)

    def _apply(
        self,
        order_id: str,
        snap: IntentSnapshot,
        *,
        refunds: Sequence[RefundSnapshot] = (),
        clear: str | None = None,
    ) -> Order:
        """Record what ``snap`` means for the order, in one transaction (with retries
        on version races). Raises after recording when the snapshot must be refused."""
        for _ in range(_RACE_RETRIES):
            try:
                with self.store.transaction() as tx:
                    order, problem = self.apply_snapshot(
                        tx, order_id, snap, refunds=refunds, clear=clear
                    )
            except ConcurrencyError:
                continue
            if problem is not None:
                raise problem
            return order
        raise ConcurrencyError(f"order {order_id} kept changing; try again")

    def apply_snapshot(
        self,
        tx: StoreTransaction,
        order_id: str,
        snap: IntentSnapshot,
        *,
        refunds: Sequence[RefundSnapshot] = (),
        clear: str | None = None,
    ) -> tuple[Order, CartpayError | None]:
        """Inside ``tx``: apply ``snap`` (and ``refunds``) to the order. Returns the
        order and the error to raise once committed (flagged orders)."""
        order = self._order(tx, order_id)
        updated = order
        if clear is not None and order.pending is not None and order.pending.key == clear:
            updated = evolve(updated, pending=None)
        problem: CartpayError | None = None
        record = tx.get_intent(snap.id)
        intent = _with_status(record, snap)  # written once, below, with any binding
        if snap.amount != order.total or snap.currency != order.currency:
            if snap.status != "canceled":
                updated = evolve(updated, flag="amount_mismatch")
                problem = AmountMismatchError(
                    order.id,
                    expected_amount=order.total,
                    expected_currency=order.currency,
                    actual_amount=snap.amount,
                    actual_currency=snap.currency,
                )
        elif record is not None and record.order_id not in (None, order.id):
            if _sync.is_payment_attempt(snap):
                problem = IntentAlreadyUsedError(snap.id, order.id, record.order_id)
        elif order.status == "cancelled" and (record is None or record.order_id != order.id):
            pass  # cancelled without its intent (a kept cart holds it): takes no payment
        else:
            if _sync.is_payment_attempt(snap):
                intent = self._bind_intent(intent, order)
            updated = _sync.apply_intent(updated, snap)
            if refunds:
                updated = _sync.apply_refunds(updated, refunds)
        _write_intent(tx, record, intent)
        if updated != order:
            updated = evolve(updated, version=order.version + 1)
            tx.update_order(updated, expected_version=order.version)
        return updated, problem

    def _apply_refund(self, order_id: str, refund: RefundSnapshot, *, clear: str) -> Order:
        for _ in range(_RACE_RETRIES):
            try:
                with self.store.transaction() as tx:
                    order = self._order(tx, order_id)
                    updated = _sync.apply_refunds(order, [refund])
                    if order.pending is not None and order.pending.key == clear:
                        updated = evolve(updated, pending=None)
                    if updated != order:
                        updated = evolve(updated, version=order.version + 1)
                        tx.update_order(updated, expected_version=order.version)
                    return updated
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"order {order_id} kept changing; try again")

    def _save_intent_status(self, tx: StoreTransaction, snap: IntentSnapshot) -> None:
        record = tx.get_intent(snap.id)
        _write_intent(tx, record, _with_status(record, snap))

    def _record_intent_status(self, snap: IntentSnapshot) -> None:
        for _ in range(_RACE_RETRIES):
            try:
                with self.store.transaction() as tx:
                    self._save_intent_status(tx, snap)
                return
            except ConcurrencyError:
                continue

    # ---------------------------------------------------------------- helpers

    def _cart(self, tx: StoreReads, cart_id: str) -> Cart:
        if not isinstance(cart_id, str):
            raise ValidationError("cart_id", "type", "must be a str")
        _rules.check_record_id("cart_id", cart_id)  # a store could not even look it up
        cart = tx.get_cart(cart_id)
        if cart is None:
            raise NotFoundError("cart", cart_id)
        return cart

    def _order(self, tx: StoreReads, order_id: str) -> Order:
        if not isinstance(order_id, str):
            raise ValidationError("order_id", "type", "must be a str")
        _rules.check_record_id("order_id", order_id)  # (as in _cart)
        order = tx.get_order(order_id)
        if order is None:
            raise NotFoundError("order", order_id)
        return order

    def _cart_and_intent(self, cart_id: str) -> tuple[Cart, IntentRecord | None]:
        """The cart and its intent's record, read in one snapshot."""
        with self.store.read() as tx:
            cart = self._cart(tx, cart_id)
            intent_id = cart.payment_intent_id
            return cart, tx.get_intent(intent_id) if intent_id is not None else None

    def _intent_record(self, intent_id: str | None) -> IntentRecord | None:
        if intent_id is None:
            return None
        with self.store.read() as tx:
            return tx.get_intent(intent_id)

    def _orders_for(self, intent_id: str) -> list[Order]:
        with self.store.read() as tx:
            return tx.orders_for_intent(intent_id)

    def _intent_of(self, order: Order) -> str:
        if order.intent_id is None:
            raise IllegalStateError("order", "pay", "no_intent", entity_id=order.id)
        return order.intent_id

    @staticmethod
    def _owns_intent(tx: StoreReads, order: Order, record: IntentRecord) -> bool:
        """Whether cancelling ``order`` may cancel its intent."""
        if record.order_id is not None:
            return record.order_id == order.id
        cart = tx.get_cart(record.cart_id)
        others = [
            o
            for o in tx.orders_for_intent(record.id)
            if o.id != order.id and o.status != "cancelled"
        ]
        return not others and (cart is None or cart.payment_intent_id != record.id)

    @staticmethod
    def _check_kept_cart_amount(order: Order, cart: Cart | None) -> None:
        """A kept cart (``cart``, the order's) may have moved its intent to a new
        amount: refuse to confirm an order whose total no longer matches, before
        any call."""
        if cart is None or cart.payment_intent_id != order.intent_id or cart.sent is None:
            return
        if (cart.sent.amount, cart.sent.currency) != (order.total, order.currency):
            raise AmountMismatchError(
                order.id,
                expected_amount=order.total,
                expected_currency=order.currency,
                actual_amount=cart.sent.amount,
                actual_currency=cart.sent.currency,
            )

    def _with_item(self, cart: Cart, item: LineItem) -> Cart:
        items = tuple(item if i.sku == item.sku else i for i in cart.items)
        if cart.item(item.sku) is None:
            items += (item,)
        updated = evolve(cart, items=items)
        if updated.total > MAX_AMOUNT:
            raise ValidationError(
                "quantity", "maximum", f"the cart total {updated.total} would exceed {MAX_AMOUNT}"
            )
        return updated

    def _change_cart(self, cart_id: str, change: Callable[[Cart], Cart]) -> Cart:
        for _ in range(_RACE_RETRIES):
            with self.store.transaction() as tx:
                cart = self._cart(tx, cart_id)
                updated = evolve(change(cart), version=cart.version + 1)
                try:
                    tx.update_cart(updated, expected_version=cart.version)
                except ConcurrencyError:
                    continue
                return updated
        raise ConcurrencyError(f"cart {cart_id} kept changing; try again")

    def _change_order(self, order_id: str, change: Callable[[Order], Order]) -> Order:
        for _ in range(_RACE_RETRIES):
            with self.store.transaction() as tx:
                order = self._order(tx, order_id)
                updated = evolve(change(order), version=order.version + 1)
                try:
                    tx.update_order(updated, expected_version=order.version)
                except ConcurrencyError:
                    continue
                return updated
        raise ConcurrencyError(f"order {order_id} kept changing; try again")
