"""CartPaymentIntent, the façade: the public surface only.

Each method validates its arguments, runs one flow and returns. The flows are
built from the layers below (docs/design.md, "Layers"): claims around every
gateway call (``_claims``), the record steps (``_outcomes``, ``_records``), the
pure decisions (``_decisions``, ``_ledger``, ``_params``, ``_lifecycle``),
webhook delivery (``_delivery``) and reconciliation (``_reconcile``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from attrs import evolve
from typing_extensions import Self

from . import (
    _decisions,
    _delivery,
    _ledger,
    _lifecycle,
    _logs,
    _outcomes,
    _reconcile,
    _rules,
    _webhooks,
)
from ._claims import Claims, Ref
from ._errors import (
    IllegalStateError,
    NotFoundError,
    ValidationError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from ._flows import Flows
from ._models import (
    Cart,
    IntentHandle,
    Order,
    PendingOperation,
    ReconcileReport,
    RefundSnapshot,
    WebhookResult,
    new_line_item,
)
from ._money import check_amount, check_currency, format_amount
from ._options import IntentOptions
from ._params import idempotency_key, intent_params
from ._ports import PaymentGateway, Store, StoreTransaction
from ._records import RACE_RETRIES, read_cart, read_order, retry, until

__all__ = ["CartPaymentIntent"]

log = _logs.log


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _check_options(options: object) -> None:
    if options is not None and not isinstance(options, IntentOptions):
        raise ValidationError("options", "type", "must be an IntentOptions")


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
        self._claims = Claims(store, clock=clock, lease=lease, wait=wait)
        self._flows = Flows(gateway, store, self._claims, clock=clock, new_id=new_id)
        self.webhook_tolerance = webhook_tolerance
        self.livemode = livemode
        self.refresh_on_webhook = refresh_on_webhook

    def __repr__(self) -> str:
        return f"CartPaymentIntent(gateway={self.gateway!r}, store={self.store!r})"

    def close(self) -> None:
        """Close the store (its connections). The façade is not used after this.
        ``with CartPaymentIntent(...) as payments:`` closes it when the block ends."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ carts

    def create_cart(self, currency: str, *, options: IntentOptions | None = None) -> Cart:
        """A new empty cart in ``currency`` (lowercase ISO code Stripe supports)."""
        check_currency(currency)
        _check_options(options)
        cart = Cart(
            self._new_id("cart"),
            currency,
            created_at=self._clock(),
            options=options or IntentOptions(),
        )
        with self.store.transaction() as tx:
            tx.insert_cart(cart)
        log.info("cart %s created (%s)", cart.id, currency, extra=_logs.ids(cart=cart.id))
        return cart

    def get_cart(self, cart_id: str) -> Cart:
        with self.store.read() as tx:
            return read_cart(tx, cart_id)

    def add_item(
        self, cart_id: str, *, sku: str, name: str, unit_amount: int, quantity: int = 1
    ) -> Cart:
        """Add ``quantity`` of ``sku`` (its name and price are replaced if present)."""

        def add(cart: Cart) -> Cart:
            item = new_line_item(sku, name, unit_amount, quantity, cart.currency)
            present = cart.item(sku)
            if present is not None:
                item = evolve(item, quantity=_rules.check_quantity(present.quantity + quantity))
            return _decisions.with_item(cart, item)

        return self._flows.change(Ref.cart(cart_id), add)

    def set_quantity(self, cart_id: str, sku: str, quantity: int) -> Cart:
        """Set the quantity of ``sku``; 0 removes the line."""
        _rules.check_quantity(quantity, allow_zero=True)

        def change(cart: Cart) -> Cart:
            present = cart.item(sku)
            if present is None:
                raise ValidationError("sku", "in_cart", f"{sku!r} is not in cart {cart.id}")
            if quantity == 0:
                return evolve(cart, items=tuple(i for i in cart.items if i.sku != sku))
            return _decisions.with_item(cart, evolve(present, quantity=quantity))

        return self._flows.change(Ref.cart(cart_id), change)

    def delete_cart(self, cart_id: str) -> None:
        """Delete the cart. Its intent, when it follows only this cart and can
        still take a payment, is canceled first (``abandoned``). Raises
        ``IllegalStateError``, deleting nothing, while money moves on that intent
        and no order owns it (the browser paid: check the cart out instead), also
        when Stripe refuses the cancel because the payment went through meanwhile.
        """
        with self.store.read() as tx:  # the cart, its intent and the intent's orders
            cart = read_cart(tx, cart_id)
            intent_id = cart.payment_intent_id
            record = tx.get_intent(intent_id) if intent_id is not None else None
            held = _decisions.is_held(record, tx.orders_for_intent(intent_id) if intent_id else [])
        if record is not None and not held and record.status in _lifecycle.REUSABLE:
            # What the record says may be stale (the browser pays on its own, and
            # a cancel would void its authorization): ask Stripe first.
            snap = self.gateway.retrieve_intent(record.id)
            _outcomes.record_intent_status(self.store, snap)
            record = evolve(record, status=snap.status)
        if record is not None and not held:
            if record.status in _lifecycle.MONEY_MOVING:
                raise IllegalStateError(
                    "cart",
                    "delete",
                    record.status,
                    entity_id=cart.id,
                    detail=f"its intent {record.id} has taken a payment no order owns yet;"
                    " check the cart out instead",
                )
            if record.status in _lifecycle.REUSABLE:
                key = idempotency_key("cart", cart.id, f"g{cart.generation}", "cancel")
                try:
                    snap = self.gateway.cancel_intent(
                        record.id, reason="abandoned", idempotency_key=key
                    )
                except IllegalStateError:  # the payment went through meanwhile
                    snap = self.gateway.retrieve_intent(record.id)
                    _outcomes.record_intent_status(self.store, snap)
                    raise
                _outcomes.record_intent_status(self.store, snap)

        def delete(tx: StoreTransaction) -> None:
            tx.delete_cart(cart_id, expected_version=read_cart(tx, cart_id).version)

        retry(self.store, delete, f"cart {cart_id}")

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
        _check_options(options)
        return self._flows.sync(cart_id, options, retrieve=True, operation="create_payment_intent")

    def update_payment_intent(
        self, cart_id: str, *, options: IntentOptions | None = None
    ) -> IntentHandle:
        """Send the cart's final details to its intent: only the changed fields.

        When nothing changed, no Stripe call is made and the handle carries no
        client secret (the browser already has it). When an order holds the
        cart's intent (a kept cart changed after checkout), the cart gets a new
        intent of its own instead: the order's is never repriced. Raises
        ``IllegalStateError`` when the intent's status forbids the change (e.g.
        ``processing``).
        """
        _check_options(options)
        cart = self.get_cart(cart_id)
        intent_params(cart, options or cart.options)  # bad input first, before any state
        if cart.payment_intent_id is None:
            raise IllegalStateError(
                "cart",
                "update_payment_intent",
                "no_intent",
                entity_id=cart_id,
                detail="call create_payment_intent first",
            )
        return self._flows.sync(cart_id, options, retrieve=False, operation="update_payment_intent")

    # ---------------------------------------------------------------- checkout

    def checkout(self, cart_id: str, *, keep_cart: bool = False) -> Order:
        """Snapshot the cart into an unpaid order linked to the cart's intent.

        The intent is first brought up to date with the cart (one update call if
        the cart changed since the last send). By default the cart is consumed
        and its intent goes with the order; ``keep_cart=True`` keeps both on the
        cart (a second checkout then makes a second order on the same intent, of
        which only one can be paid: see docs/design.md, "One intent pays at most
        one order").

        Safe to retry: a checkout of a cart that checkout consumed returns the
        order it made (the newest order made from the cart, see
        :meth:`orders_for_cart`), so a double click, a network retry or
        concurrent checkouts of one cart get one order. A cart that never made
        an order raises ``NotFoundError`` once it is gone.
        """
        if not isinstance(keep_cart, bool):
            raise ValidationError("keep_cart", "type", "must be a bool")
        try:
            order = until(
                lambda: self._flows.checkout_once(cart_id, keep_cart),
                f"cart {cart_id} during checkout",
                tries=RACE_RETRIES,
            )
        except NotFoundError as exc:
            if (exc.kind, exc.id) != ("cart", cart_id):
                raise
            made = self.orders_for_cart(cart_id)
            if not made:
                raise
            order = made[-1]
            log.info(
                "checkout of cart %s again: its order %s",
                cart_id,
                order.id,
                extra=_logs.ids(cart=cart_id, order=order.id, intent=order.intent_id),
            )
            return order
        log.info(
            "checked out cart %s: order %s for %s",
            cart_id,
            order.id,
            format_amount(order.total, order.currency),
            extra=_logs.ids(cart=cart_id, order=order.id, intent=order.intent_id),
        )
        return order

    def orders_for_cart(self, cart_id: str) -> list[Order]:
        """The orders checked out from the cart ``cart_id``, oldest first, also once
        the cart is gone (``[]`` for a cart that made none, or an unknown id)."""
        if not isinstance(cart_id, str):
            raise ValidationError("cart_id", "type", "must be a str")
        with self.store.read() as tx:
            return tx.orders_for_cart(cart_id)

    def get_order(self, order_id: str) -> Order:
        with self.store.read() as tx:
            return read_order(tx, order_id)

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
        deadline = self._claims.deadline()
        return until(
            lambda: self._flows.confirm_once(order_id, payment_method, return_url, deadline),
            f"order {order_id}",
        )

    def confirm_order(self, order_id: str) -> Order:
        """Synchronise the order with its intent (docs/design.md, "Confirm order").
        Safe to repeat.

        succeeded → purchase/capture transaction, payment ``paid``;
        requires_capture → authorize, ``authorized``; processing → pending
        transaction; a failed attempt → failed transaction, still payable;
        canceled → order ``cancelled``. Raises ``AmountMismatchError`` (order
        flagged, not paid) or ``IntentAlreadyUsedError`` (the intent pays another
        order).

        Stripe calls: one retrieve (plus one refund list when re-syncing a paid order).
        """
        order = self.get_order(order_id)
        intent_id = self._flows.intent_of(order)
        snap = self.gateway.retrieve_intent(intent_id)
        refunds: Sequence[RefundSnapshot] = ()
        if snap.status == "succeeded" and order.captured:
            refunds = self.gateway.list_refunds(intent_id)
        # A confirm, capture or cancel whose answer was lost is settled by what the
        # intent shows now (a refund's needs its list: refund_order settles it).
        pending = order.pending
        settles = (
            pending is not None
            and pending.operation in _lifecycle.ANSWERED_BY_INTENT
            and not self._claims.busy(order)
        )
        clear = pending.key if settles and pending is not None else None
        return _outcomes.apply(
            self.store, order.id, snap, refunds=refunds, clear=clear, via="confirm_order"
        )

    def capture_order(self, order_id: str, amount: int | None = None) -> Order:
        """Capture an authorized order: all of it, or ``amount`` (the rest is released)."""
        order = self.get_order(order_id)
        if amount is not None:
            check_amount(amount, order.currency, field="amount", charge=False)
            if amount > order.authorized:
                raise ValidationError(
                    "amount", "authorized", f"{amount} exceeds the authorized {order.authorized}"
                )
        return self._flows.intent_operation(order, "capture", amount=amount)

    def cancel_order(self, order_id: str, *, reason: str | None = None) -> Order:
        """Cancel an unpaid or authorized order and its intent (an authorization is
        released). An intent that pays another order, or that another live order
        holds, is left alone: only this order is cancelled."""
        _rules.check_reason(reason, _rules.CANCEL_REASONS)
        with self.store.read() as tx:  # the order, its intent and who else holds it
            order = read_order(tx, order_id)
            intent_id = order.intent_id
            record = tx.get_intent(intent_id) if intent_id is not None else None
            local = (
                record is None
                or record.status == "canceled"
                or not _decisions.owns_intent(order, record, tx.orders_for_intent(record.id))
            )
        _lifecycle.check_order_operation("cancel", order)
        if intent_id is None or record is None or local:
            return self._flows.change(Ref.order(order_id), _ledger.cancel_locally)
        _lifecycle.check_intent_operation("cancel", record.status, intent_id=intent_id)
        return self._flows.intent_operation(order, "cancel", reason=reason)

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

        def refundable(current: Order) -> None:
            if wanted > current.refundable:
                raise ValidationError(
                    "amount",
                    "refundable",
                    f"{wanted} exceeds the {current.refundable} still refundable"
                    f" on order {current.id}",
                )

        refundable(order)

        def record(order_id: str, pending: PendingOperation, refund: RefundSnapshot) -> Order:
            return _outcomes.apply_refund(self.store, order_id, refund, clear=pending.key)

        done, _ = self._flows.order_operation(
            order,
            "refund",
            amount=wanted,
            reason=reason,
            check=refundable,
            call=lambda intent_id, pending: self.gateway.create_refund(
                intent_id,
                amount=pending.amount,
                reason=pending.reason,
                idempotency_key=pending.key,
            ),
            record=record,
        )
        return done

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
        try:
            self.gateway.verify_webhook(payload, signature_header, tolerance=self.webhook_tolerance)
            event = _webhooks.parse_event(payload)
            livemode = (
                self.livemode
                if self.livemode is not None
                else getattr(self.gateway, "livemode", None)
            )
            if isinstance(livemode, bool) and event.livemode != livemode:
                mode = "live" if event.livemode else "test"
                raise WebhookPayloadError(
                    f"event {event.id} is from {mode} mode; this endpoint is not"
                )
        except WebhookError as exc:
            # The error's own text: it never holds the header, the payload or a secret.
            log.warning(
                "webhook rejected (%s): %s",
                "signature" if isinstance(exc, WebhookSignatureError) else "payload",
                exc,
                extra=_logs.ids(outcome="rejected"),
            )
            raise
        route = _webhooks.route_event(event)
        result = _delivery.deliver(
            self.store, self.gateway, event, route, refresh=self.refresh_on_webhook
        )
        log.info(
            "webhook %s %s: %s%s",
            event.id,
            event.type,
            result.action,
            f" to order {result.order_id}" if result.order_id else "",
            extra=_logs.ids(
                order=result.order_id,
                intent=route.intent_id,
                event=event.id,
                event_type=event.type,
                outcome=result.action,
            ),
        )
        return result

    def reconcile(
        self,
        *,
        older_than: timedelta = timedelta(minutes=15),
        limit: int = 500,
        abandon_after: timedelta | None = None,
        refund_orphans: bool = False,
    ) -> ReconcileReport:
        """Repair what missed webhooks left behind, and apply the abandonment policy.
        Safe to run alongside webhooks, and as often as wanted.

        Orders still incomplete or processing created more than ``older_than``
        ago are synchronised with :meth:`confirm_order`; intents that pay no
        order are refreshed, and those that took money no order owns are reported
        in ``orphaned``. Each run takes the next ``limit`` of each, going on where
        the last run stopped, so abandoned checkouts never hide newer ones.

        ``abandon_after`` (``None``: never): orders and intents older than that
        which never took money are cancelled (``abandoned``). ``refund_orphans``:
        money no order owns, on an intent older than ``abandon_after`` or whose
        cart is gone, is given back (refund, or a released authorization).
        ``report.actions`` says what was done, per order or intent.

        Stripe calls: one retrieve per order or intent looked at (plus a refund
        list for paid orders), and one cancel or refund per action.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError("older_than", "type", "must be a non-negative timedelta")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit", "positive", "must be a positive int")
        if abandon_after is not None and (
            not isinstance(abandon_after, timedelta) or abandon_after < older_than
        ):
            raise ValidationError(
                "abandon_after", "range", "must be a timedelta of at least older_than, or None"
            )
        if not isinstance(refund_orphans, bool):
            raise ValidationError("refund_orphans", "type", "must be a bool")
        now = self._clock()
        try:
            cutoff = now - older_than
        except OverflowError:
            raise ValidationError("older_than", "range", "reaches before year 1") from None
        try:
            abandoned = None if abandon_after is None else now - abandon_after
        except OverflowError:
            raise ValidationError("abandon_after", "range", "reaches before year 1") from None
        report = _reconcile.reconcile(
            self.store,
            self.gateway,
            confirm_order=self.confirm_order,
            cancel_order=lambda order_id: self.cancel_order(order_id, reason="abandoned"),
            policy=_reconcile.Policy(cutoff, limit, abandoned, refund_orphans),
        )
        log.info(
            "reconciled: %d orders checked, %d repaired, %d orphaned intents, %d actions,"
            " %d errors",
            len(report.checked),
            len(report.repaired),
            len(report.orphaned),
            len(report.actions),
            len(report.errors),
        )
        return report

    # ---------------------------------------------------------------- helpers
