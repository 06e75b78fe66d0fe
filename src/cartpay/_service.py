"""CartPaymentIntent, the façade: the public surface only.

Each method validates its arguments, runs one flow and returns. The flows are
built from the layers below (docs/design.md, "Layers"): claims around every
gateway call (``_claims``), the record steps (``_outcomes``, ``_records``), the
pure decisions (``_decisions``, ``_ledger``, ``_params``, ``_lifecycle``),
webhook delivery (``_delivery``) and reconciliation (``_reconcile``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
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
from ._api_version import STRIPE_API_VERSION
from ._claims import Claims, Ref
from ._errors import (
    IllegalStateError,
    NotFoundError,
    ValidationError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from ._flows import Flows, PriceMemo
from ._models import (
    MAX_CODE_LENGTH,
    Cart,
    IntentHandle,
    Order,
    PendingOperation,
    ReconcileReport,
    RefundSnapshot,
    WebhookResult,
    new_adjustment,
    new_line_item,
)
from ._money import check_amount, check_ceilings, check_currency, format_amount
from ._options import IntentOptions, may_redirect
from ._params import amount_maximum, idempotency_key
from ._ports import PaymentGateway, Pricing, Store, StoreTransaction
from ._records import RACE_RETRIES, read_cart, read_order, retry, until

__all__ = ["CartPaymentIntent"]

log = _logs.log


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _refund_room(order: Order) -> str:
    """Where the captured money went, for a refund refused as too large."""
    refunds = order.amount("refund", "complete", "pending")
    disputed = f", disputed {order.disputed}" if order.disputed else ""
    return f" (captured {order.captured}, refunded {refunds}{disputed})"


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

    ``return_url`` is where Stripe sends the customer back after a redirect (3-D
    Secure, a bank's page) when :meth:`confirm_payment` is not given one.
    ``max_amounts`` lowers Stripe's maximum amount in some currencies
    (``{"usd": 1_000_000}``: no cart above $10,000.00); it can only lower them.
    ``livemode`` overrides the gateway's mode for the webhook mode check (the
    Stripe gateway knows its mode from its key; the check is then on by default).
    ``pricing`` (a :class:`~cartpay.Pricing`) is the host's pricing: asked for
    the cart's adjustments right before each create, update and checkout, its
    answer stored on the cart, so the amount sent is always today's. Without
    one, the adjustments the host set (``add_adjustment``) are used as they are.
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
        return_url: str | None = None,
        max_amounts: Mapping[str, int] | None = None,
        pricing: Pricing | None = None,
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
        if return_url is not None:
            _rules.check_url("return_url", return_url)
        ceilings = check_ceilings(max_amounts) if max_amounts is not None else {}
        if pricing is not None and not callable(getattr(pricing, "price", None)):
            raise ValidationError("pricing", "protocol", "must have a price(cart) method")
        self.gateway = gateway
        self.store = store
        self.return_url = return_url
        self.max_amounts: Mapping[str, int] = ceilings
        self._clock = clock
        self._new_id = new_id
        self._claims = Claims(store, clock=clock, lease=lease, wait=wait)
        self._flows = Flows(
            gateway,
            store,
            self._claims,
            clock=clock,
            new_id=new_id,
            ceilings=ceilings,
            pricing=pricing,
        )
        self.pricing = pricing
        self._versions_seen: set[str] = set()  # other API versions already logged
        self._versions_lock = threading.Lock()
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
            return _decisions.with_item(cart, item, maximum=self._maximum(cart))

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
            return _decisions.with_item(
                cart, evolve(present, quantity=quantity), maximum=self._maximum(cart)
            )

        return self._flows.change(Ref.cart(cart_id), change)

    def add_adjustment(
        self, cart_id: str, *, kind: str, code: str, label: str, amount: int
    ) -> Cart:
        """Add shipping, tax, a fee or a discount to the cart (``kind``), replacing
        the adjustment of the same ``code``. ``amount`` is an ``int`` ≥ 0 in the
        cart's minor units; a discount's is subtracted from the total. Raises
        ``ValidationError`` for an unknown kind, a code another kind uses, a bad
        code, label or amount. A total below the currency's minimum charge is
        refused when an intent would be created or updated, not here. With a
        pricing port, the port's answer replaces the adjustments at the next
        create, update or checkout (it sees this one in ``cart.adjustments``)."""

        def add(cart: Cart) -> Cart:
            adjustment = new_adjustment(kind, code, label, amount, cart.currency)
            return _decisions.with_adjustment(cart, adjustment, maximum=self._maximum(cart))

        return self._flows.change(Ref.cart(cart_id), add)

    def remove_adjustment(self, cart_id: str, code: str) -> Cart:
        """Remove the adjustment ``code`` (``ValidationError`` if the cart has none)."""
        _rules.check_text("code", code, max_length=MAX_CODE_LENGTH)
        return self._flows.change(
            Ref.cart(cart_id),
            lambda cart: _decisions.without_adjustment(cart, code, maximum=self._maximum(cart)),
        )

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
        The amount is the cart's total; with a pricing port, the cart is priced
        first (``PricingError`` when the port fails: nothing sent or written).

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
        ``processing``) or the cart has no intent yet. With a pricing port, the
        cart is priced first (``PricingError`` when it fails).
        """
        _check_options(options)
        # (The cart is priced and checked before anything is sent or written;
        # a cart without an intent raises IllegalStateError there.)
        return self._flows.sync(cart_id, options, retrieve=False, operation="update_payment_intent")

    # ---------------------------------------------------------------- checkout

    def checkout(self, cart_id: str, *, keep_cart: bool = False) -> Order:
        """Snapshot the cart into an unpaid order linked to the cart's intent.

        The intent is first brought up to date with the cart (one update call if
        the cart changed since the last send; with a pricing port, the cart is
        priced first, and the order holds the port's adjustments). By default the cart is consumed
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
        memo = PriceMemo()
        try:
            order = until(
                lambda: self._flows.checkout_once(cart_id, keep_cart, memo),
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
        self,
        order_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
    ) -> Order:
        """Confirm the order's intent server-side with ``payment_method`` (a saved
        card, tests), then record the outcome as ``confirm_order`` does.

        ``return_url`` (else the façade's ``return_url``) is where Stripe sends the
        customer back after a redirect. When the intent may redirect (Stripe's
        default: automatic payment methods with redirects allowed; not when its
        types are cards only or ``allow_redirects="never"``) and the gateway can
        redirect, a confirm without one raises ``ValidationError`` (field
        ``return_url``) before any call: Stripe would refuse it.

        ``off_session=True`` charges a customer's saved card while the customer is
        away (the intent needs ``customer``, and no ``setup_future_usage``). When
        the bank wants the customer to authenticate, ``AuthenticationRequiredError``
        is raised after the failed attempt is recorded; the order stays payable
        (docs/going-live.md).

        When the card needs 3-D Secure on-session, the order stays unpaid and
        :meth:`intent_for_order` says what the browser must do (``next_action``).
        A decline raises ``CardDeclinedError`` after recording the failed
        transaction; the order stays payable.
        """
        _rules.check_id("payment_method", payment_method)
        if return_url is not None:
            _rules.check_url("return_url", return_url)
        if not isinstance(off_session, bool):
            raise ValidationError("off_session", "type", "must be a bool")
        order = self.get_order(order_id)
        if off_session and not order.options.customer:
            raise ValidationError(
                "off_session",
                "customer",
                f"order {order.id}'s intent has no customer: an off-session charge is"
                " for a customer's saved payment method (IntentOptions(customer=...))",
            )
        if off_session and order.options.setup_future_usage is not None:
            # Stripe refuses it: a card cannot be set up for later while the
            # customer is away (docs/going-live.md, "Off-session charges").
            raise ValidationError(
                "off_session",
                "setup_future_usage",
                f"order {order.id}'s intent saves the card (setup_future_usage="
                f"{order.options.setup_future_usage!r}): Stripe refuses an off-session"
                " confirm of it; create the renewal's intent without setup_future_usage",
            )
        redirects = getattr(self.gateway, "redirects", True) is not False
        if return_url is None and redirects and may_redirect(order.options):
            return_url = self.return_url
            if return_url is None:
                raise ValidationError(
                    "return_url",
                    "required",
                    f"order {order.id}'s intent may redirect the customer (automatic payment"
                    " methods with redirects allowed): pass return_url, set one on"
                    " CartPaymentIntent(return_url=...), or create intents with"
                    " allowed_payment_method_types=['card'] or allow_redirects='never'",
                )
        deadline = self._claims.deadline()
        return until(
            lambda: self._flows.confirm_once(
                order_id, payment_method, return_url, deadline, off_session=off_session
            ),
            f"order {order_id}",
        )

    def intent_for_order(self, order_id: str) -> IntentHandle:
        """The order's intent as Stripe has it now, for the browser: its client
        secret (never stored) and, when its status is ``requires_action``, the
        ``next_action`` Stripe asks for (3-D Secure in the browser, or a redirect
        and its URL). Records nothing on the order (call :meth:`confirm_order`
        for that). Raises ``IllegalStateError`` when the order has no intent, and
        ``AmountMismatchError`` when the intent's amount or currency is not the
        order's (changed outside cartpay): its client secret would let the browser
        pay an amount that is not the order's.

        Stripe calls: one retrieve.
        """
        order = self.get_order(order_id)
        snap = self.gateway.retrieve_intent(self._flows.intent_of(order))
        if (snap.amount, snap.currency) != (order.total, order.currency):
            raise _decisions.mismatch(order, snap.amount, snap.currency)
        return IntentHandle.from_snapshot(snap)

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
        self,
        order_id: str,
        amount: int | None = None,
        *,
        reason: str | None = None,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> Order:
        """Refund ``amount`` (all that remains when ``None``) of a paid order.

        Refunds never exceed ``Order.refundable``: what was captured less what was
        already refunded (pending refunds count); nothing while a dispute is open
        or lost (``Order.disputed``). More raises ``ValidationError`` (rule
        ``refundable``) before any call. (Stripe refuses any refund of a charge
        with an open or lost chargeback: ``InvalidRequestError``, code
        ``charge_disputed``.)

        Connect (an intent with ``transfer_destination``): ``reverse_transfer=True``
        takes the refunded share back from the connected account (else the
        platform pays the whole refund); ``refund_application_fee=True`` gives the
        connected account back the platform's fee on it (else the platform keeps
        the fee). ``None`` sends nothing: Stripe's default, ``False`` for both.
        See docs/going-live.md, "Connect refunds".
        """
        _rules.check_reason(reason, _rules.REFUND_REASONS)
        for name, flag in (
            ("reverse_transfer", reverse_transfer),
            ("refund_application_fee", refund_application_fee),
        ):
            if flag is not None and not isinstance(flag, bool):
                raise ValidationError(name, "type", "must be a bool or None")
        order = self.get_order(order_id)
        _lifecycle.check_order_operation("refund", order)

        def refundable(current: Order) -> None:
            if wanted > current.refundable:
                raise ValidationError(
                    "amount",
                    "refundable",
                    f"{wanted} exceeds the {current.refundable} still refundable"
                    f" on order {current.id}{_refund_room(current)}",
                )

        wanted = order.refundable if amount is None else amount
        if amount is None and wanted <= 0:
            raise ValidationError(
                "amount",
                "refundable",
                f"nothing is left to refund on order {order.id}{_refund_room(order)}",
            )
        check_amount(wanted, order.currency, field="amount", charge=False)
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
                **_connect_flags(pending.reverse_transfer, pending.refund_application_fee),
            ),
            record=record,
            flags=_connect_flags(reverse_transfer, refund_application_fee),
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

        An event written in another API version than cartpay's
        (``STRIPE_API_VERSION``: an endpoint pinned elsewhere) is not trusted: its
        object is read again from Stripe (the intent retrieved, the refunds
        listed), and the first such event of each version is logged as a warning.

        Raises ``WebhookSignatureError`` / ``WebhookPayloadError`` (answer HTTP 400;
        nothing was written; also for an event of the other mode, live or test,
        than the gateway's). Stripe calls: none, except one refund list for
        ``charge.refunded``, and one retrieve when ``refresh_on_webhook`` is set or
        the event is of another API version.
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
        refresh = self.refresh_on_webhook
        if event.api_version is not None and event.api_version != STRIPE_API_VERSION:
            self._note_other_version(event.api_version, event.id)
            route, refresh = _webhooks.untrusted(route), True
        result = _delivery.deliver(self.store, self.gateway, event, route, refresh=refresh)
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
        expiring_within: timedelta | None = None,
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

        ``expiring_within`` (``None``: no report): authorized orders looked at
        whose authorization lapses within that time from now (``capture_before``,
        read from the card charge) are listed in ``report.expiring``, soonest
        first: capture or cancel them before Stripe cancels the intent.

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
        if expiring_within is not None and (
            not isinstance(expiring_within, timedelta) or expiring_within < timedelta(0)
        ):
            raise ValidationError(
                "expiring_within", "range", "must be a non-negative timedelta, or None"
            )
        now = self._clock()
        try:
            cutoff = now - older_than
        except OverflowError:
            raise ValidationError("older_than", "range", "reaches before year 1") from None
        try:
            abandoned = None if abandon_after is None else now - abandon_after
        except OverflowError:
            raise ValidationError("abandon_after", "range", "reaches before year 1") from None
        try:
            expiring = None if expiring_within is None else now + expiring_within
        except OverflowError:
            raise ValidationError("expiring_within", "range", "reaches past year 9999") from None
        report = _reconcile.reconcile(
            self.store,
            self.gateway,
            confirm_order=self.confirm_order,
            cancel_order=lambda order_id: self.cancel_order(order_id, reason="abandoned"),
            policy=_reconcile.Policy(cutoff, limit, abandoned, refund_orphans, expiring),
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

    def _maximum(self, cart: Cart) -> int:
        return amount_maximum(cart.currency, cart.options, self.max_amounts)

    def _note_other_version(self, version: str, event_id: str) -> None:
        """Log, once per version, that events of another API version arrive."""
        with self._versions_lock:
            if version in self._versions_seen:
                return
            self._versions_seen.add(version)
        log.warning(
            "webhook events of API version %s arrive (cartpay is written for %s): their"
            " objects are read again from Stripe. Pin the endpoint to %s"
            " (python -m cartpay endpoint check)",
            version,
            STRIPE_API_VERSION,
            STRIPE_API_VERSION,
            extra={"event_id": event_id, "api_version": version},
        )


def _connect_flags(
    reverse_transfer: bool | None, refund_application_fee: bool | None
) -> dict[str, bool]:
    """The Connect refund flags that are set, as the gateway's keywords."""
    flags = {"reverse_transfer": reverse_transfer, "refund_application_fee": refund_application_fee}
    return {name: value for name, value in flags.items() if value is not None}
