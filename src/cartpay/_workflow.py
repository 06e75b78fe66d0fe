# mypy: disable-error-code="func-returns-value"
"""The façade's work, written once for both twins.

:class:`Workflow` holds what :class:`~cartpay.CartPaymentIntent` and
:class:`~cartpay.AsyncCartPaymentIntent` share: the settings check, and one flow
(:mod:`cartpay._effects`) per public method that validates its arguments, runs
the flows below (claims around every gateway call, ``_claims``; the record
steps, ``_outcomes`` and ``_records``; the pure decisions, ``_decisions``,
``_ledger``, ``_params``, ``_lifecycle``; webhook delivery, ``_delivery``;
reconciliation, ``_reconcile``) and returns. Each twin's public method runs its
flow with its own driver (:func:`cartpay._effects.run` or
:func:`cartpay._effects.arun`) and nothing else.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Generic, TypeVar, cast

from attrs import evolve

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
from ._effects import Flow, Read, Transaction
from ._errors import (
    ConcurrencyError,
    IdempotencyError,
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
    IntentRecord,
    IntentSnapshot,
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
from ._ports import PaymentGateway, Pricing, StoreReads, StoreTransaction
from ._records import RACE_RETRIES, read_cart, read_order, retry, until

__all__ = ["Workflow"]

G = TypeVar("G")
S = TypeVar("S")
P = TypeVar("P")

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


def _connect_flags(
    reverse_transfer: bool | None, refund_application_fee: bool | None
) -> dict[str, bool]:
    """The Connect refund flags that are set, as the gateway's keywords."""
    flags = {"reverse_transfer": reverse_transfer, "refund_application_fee": refund_application_fee}
    return {name: value for name, value in flags.items() if value is not None}


#: How many times a refund of all that remains reads the order anew (see
#: ``Workflow._refund_order``) before it gives up with a ConcurrencyError.
_REMAINDER_READS = 5


class _AlreadyRefunded(Exception):
    """A refund call's key names a refund that landed since the call read the
    order (a concurrent call with the same key): the order is its answer."""

    def __init__(self, order: Order) -> None:
        super().__init__(order.id)
        self.order = order


class _RemainderMoved(Exception):
    """A refund of "all that remains" found less remaining than it read: another
    refund landed meanwhile, so it asks again for what remains now."""


class Workflow(Generic[G, S, P]):
    """The settings and the flows of one façade (see the module docstring): ``G``
    is its gateway port, ``S`` its store port, ``P`` its pricing port."""

    def __init__(
        self,
        *,
        gateway: G,
        store: S,
        clock: Callable[[], datetime] = _utcnow,
        new_id: Callable[[str], str] = _new_id,
        lease: timedelta = timedelta(seconds=120),
        wait: timedelta = timedelta(seconds=30),
        webhook_tolerance: int = 300,
        livemode: bool | None = None,
        refresh_on_webhook: bool = False,
        return_url: str | None = None,
        max_amounts: Mapping[str, int] | None = None,
        pricing: P | None = None,
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
        # The flows call the gateway (and the pricing port) as sync ports; an
        # async one answers with awaitables, which the async driver awaits
        # (cartpay._effects).
        self._gateway = cast("PaymentGateway", gateway)
        self._clock = clock
        self._new_id = new_id
        self._claims = Claims(store, clock=clock, lease=lease, wait=wait)
        self._flows = Flows(
            self._gateway,
            store,
            self._claims,
            clock=clock,
            new_id=new_id,
            ceilings=ceilings,
            pricing=cast("Pricing | None", pricing),
        )
        self.pricing = pricing
        self._versions_seen: set[str] = set()  # other API versions already logged
        self._versions_lock = threading.Lock()
        self.webhook_tolerance = webhook_tolerance
        self.livemode = livemode
        self.refresh_on_webhook = refresh_on_webhook

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gateway={self.gateway!r}, store={self.store!r})"

    # ------------------------------------------------------------------ carts

    def _create_cart(self, currency: str, options: IntentOptions | None) -> Flow[Cart]:
        check_currency(currency)
        _check_options(options)
        cart = Cart(
            self._new_id("cart"),
            currency,
            created_at=self._clock(),
            options=options or IntentOptions(),
        )

        def insert(tx: StoreTransaction) -> Flow[None]:
            yield tx.insert_cart(cart)

        yield Transaction(self.store, insert)
        log.info("cart %s created (%s)", cart.id, currency, extra=_logs.ids(cart=cart.id))
        return cart

    def _get_cart(self, cart_id: str) -> Flow[Cart]:
        cart: Cart = yield Read(self.store, lambda tx: read_cart(tx, cart_id))
        return cart

    def _add_item(
        self, cart_id: str, sku: str, name: str, unit_amount: int, quantity: int
    ) -> Flow[Cart]:
        def add(cart: Cart) -> Cart:
            item = new_line_item(sku, name, unit_amount, quantity, cart.currency)
            present = cart.item(sku)
            if present is not None:
                item = evolve(item, quantity=_rules.check_quantity(present.quantity + quantity))
            return _decisions.with_item(cart, item, maximum=self._maximum(cart))

        return (yield from self._flows.change(Ref.cart(cart_id), add))

    def _set_quantity(self, cart_id: str, sku: str, quantity: int) -> Flow[Cart]:
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

        return (yield from self._flows.change(Ref.cart(cart_id), change))

    def _add_adjustment(
        self, cart_id: str, kind: str, code: str, label: str, amount: int
    ) -> Flow[Cart]:
        def add(cart: Cart) -> Cart:
            adjustment = new_adjustment(kind, code, label, amount, cart.currency)
            return _decisions.with_adjustment(cart, adjustment, maximum=self._maximum(cart))

        return (yield from self._flows.change(Ref.cart(cart_id), add))

    def _remove_adjustment(self, cart_id: str, code: str) -> Flow[Cart]:
        _rules.check_text("code", code, max_length=MAX_CODE_LENGTH)
        return (
            yield from self._flows.change(
                Ref.cart(cart_id),
                lambda cart: _decisions.without_adjustment(cart, code, maximum=self._maximum(cart)),
            )
        )

    def _delete_cart(self, cart_id: str) -> Flow[None]:
        def look(tx: StoreReads) -> Flow[tuple[Cart, IntentRecord | None, bool]]:
            cart = yield from read_cart(tx, cart_id)
            intent_id = cart.payment_intent_id
            record = (yield tx.get_intent(intent_id)) if intent_id is not None else None
            orders = (yield tx.orders_for_intent(intent_id)) if intent_id else []
            return cart, record, _decisions.is_held(record, orders)

        # The cart, its intent and the intent's orders.
        cart, record, held = yield Read(self.store, look)
        if record is not None and not held and record.status in _lifecycle.REUSABLE:
            # What the record says may be stale (the browser pays on its own, and
            # a cancel would void its authorization): ask Stripe first.
            snap: IntentSnapshot = yield self._gateway.retrieve_intent(record.id)
            yield from _outcomes.record_intent_status(self.store, snap)
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
                    snap = yield self._gateway.cancel_intent(
                        record.id, reason="abandoned", idempotency_key=key
                    )
                except IllegalStateError:  # the payment went through meanwhile
                    snap = yield self._gateway.retrieve_intent(record.id)
                    yield from _outcomes.record_intent_status(self.store, snap)
                    raise
                yield from _outcomes.record_intent_status(self.store, snap)

        def delete(tx: StoreTransaction) -> Flow[None]:
            current = yield from read_cart(tx, cart_id)
            yield tx.delete_cart(cart_id, expected_version=current.version)

        yield from retry(self.store, delete, f"cart {cart_id}")

    # ---------------------------------------------------------------- intents

    def _create_payment_intent(
        self, cart_id: str, options: IntentOptions | None
    ) -> Flow[IntentHandle]:
        _check_options(options)
        return (
            yield from self._flows.sync(
                cart_id, options, retrieve=True, operation="create_payment_intent"
            )
        )

    def _update_payment_intent(
        self, cart_id: str, options: IntentOptions | None
    ) -> Flow[IntentHandle]:
        _check_options(options)
        # (The cart is priced and checked before anything is sent or written;
        # a cart without an intent raises IllegalStateError there.)
        return (
            yield from self._flows.sync(
                cart_id, options, retrieve=False, operation="update_payment_intent"
            )
        )

    # ---------------------------------------------------------------- checkout

    def _checkout(self, cart_id: str, keep_cart: bool) -> Flow[Order]:
        if not isinstance(keep_cart, bool):
            raise ValidationError("keep_cart", "type", "must be a bool")
        memo = PriceMemo()
        try:
            order: Order = yield from until(
                lambda: self._flows.checkout_once(cart_id, keep_cart, memo),
                f"cart {cart_id} during checkout",
                tries=RACE_RETRIES,
            )
        except NotFoundError as exc:
            if (exc.kind, exc.id) != ("cart", cart_id):
                raise
            made = yield from self._orders_for_cart(cart_id)
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

    def _orders_for_cart(self, cart_id: str) -> Flow[list[Order]]:
        if not isinstance(cart_id, str):
            raise ValidationError("cart_id", "type", "must be a str")

        def look(tx: StoreReads) -> Flow[list[Order]]:
            orders: list[Order] = yield tx.orders_for_cart(cart_id)
            return orders

        made: list[Order] = yield Read(self.store, look)
        return made

    def _get_order(self, order_id: str) -> Flow[Order]:
        order: Order = yield Read(self.store, lambda tx: read_order(tx, order_id))
        return order

    # ----------------------------------------------------------------- orders

    def _confirm_payment(
        self, order_id: str, payment_method: str, return_url: str | None, off_session: bool
    ) -> Flow[Order]:
        _rules.check_id("payment_method", payment_method)
        if return_url is not None:
            _rules.check_url("return_url", return_url)
        if not isinstance(off_session, bool):
            raise ValidationError("off_session", "type", "must be a bool")
        order = yield from self._get_order(order_id)
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
                    f" {type(self).__name__}(return_url=...), or create intents with"
                    " allowed_payment_method_types=['card'] or allow_redirects='never'",
                )
        deadline = self._claims.deadline()
        url = return_url
        return (
            yield from until(
                lambda: self._flows.confirm_once(
                    order_id, payment_method, url, deadline, off_session=off_session
                ),
                f"order {order_id}",
            )
        )

    def _intent_for_order(self, order_id: str) -> Flow[IntentHandle]:
        order = yield from self._get_order(order_id)
        snap: IntentSnapshot = yield self._gateway.retrieve_intent(self._flows.intent_of(order))
        if (snap.amount, snap.currency) != (order.total, order.currency):
            raise _decisions.mismatch(order, snap.amount, snap.currency)
        return IntentHandle.from_snapshot(snap)

    def _confirm_order(self, order_id: str) -> Flow[Order]:
        order = yield from self._get_order(order_id)
        intent_id = self._flows.intent_of(order)
        snap: IntentSnapshot = yield self._gateway.retrieve_intent(intent_id)
        refunds: Sequence[RefundSnapshot] = ()
        if _decisions.must_list_refunds(order, snap):  # (one request when nothing moved)
            refunds = yield self._gateway.list_refunds(intent_id)
        # A confirm, capture or cancel whose answer was lost is settled by what the
        # intent shows now (a refund's needs its list: refund_order settles it).
        pending = order.pending
        settles = (
            pending is not None
            and pending.operation in _lifecycle.ANSWERED_BY_INTENT
            and not self._claims.busy(order)
        )
        clear = pending.key if settles and pending is not None else None
        return (
            yield from _outcomes.apply(
                self.store,
                order.id,
                snap,
                refunds=refunds,
                clear=clear,
                via="confirm_order",
                current=True,
            )
        )

    def _capture_order(self, order_id: str, amount: int | None) -> Flow[Order]:
        order = yield from self._get_order(order_id)
        if amount is not None:
            check_amount(amount, order.currency, field="amount", charge=False)
            if amount > order.authorized:
                raise ValidationError(
                    "amount", "authorized", f"{amount} exceeds the authorized {order.authorized}"
                )
        return (yield from self._flows.intent_operation(order, "capture", amount=amount))

    def _cancel_order(self, order_id: str, reason: str | None) -> Flow[Order]:
        _rules.check_reason(reason, _rules.CANCEL_REASONS)

        def look(tx: StoreReads) -> Flow[tuple[Order, IntentRecord | None, bool]]:
            order = yield from read_order(tx, order_id)
            intent_id = order.intent_id
            record = (yield tx.get_intent(intent_id)) if intent_id is not None else None
            local = (
                record is None
                or record.status == "canceled"
                or not _decisions.owns_intent(
                    order, record, (yield tx.orders_for_intent(record.id))
                )
            )
            return order, record, local

        # The order, its intent and who else holds it.
        order, record, local = yield Read(self.store, look)
        intent_id = order.intent_id
        _lifecycle.check_order_operation("cancel", order)
        if intent_id is None or record is None or local:
            return (yield from self._flows.change(Ref.order(order_id), _ledger.cancel_locally))
        _lifecycle.check_intent_operation("cancel", record.status, intent_id=intent_id)
        return (yield from self._flows.intent_operation(order, "cancel", reason=reason))

    def _refund_order(
        self,
        order_id: str,
        amount: int | None,
        reason: str | None,
        reverse_transfer: bool | None,
        refund_application_fee: bool | None,
        idempotency_key: str | None = None,
    ) -> Flow[Order]:
        if idempotency_key is not None:
            _rules.check_text("idempotency_key", idempotency_key, max_length=_rules.MAX_ID_LENGTH)
        # A refund of all that remains is asked again (reading it anew) when
        # another refund landed between its read and its claim; a bounded number
        # of times, so a stream of concurrent refunds cannot keep it looping.
        for _ in range(_REMAINDER_READS):
            try:
                return (
                    yield from self._refund_once(
                        order_id,
                        amount,
                        reason,
                        reverse_transfer,
                        refund_application_fee,
                        idempotency_key,
                    )
                )
            except _RemainderMoved:
                continue
            except _AlreadyRefunded as done:  # the key's refund landed meanwhile
                return done.order
        raise ConcurrencyError(
            f"the refundable remainder of order {order_id} kept changing while it was"
            " refunded; try again"
        )

    def _refund_once(
        self,
        order_id: str,
        amount: int | None,
        reason: str | None,
        reverse_transfer: bool | None,
        refund_application_fee: bool | None,
        idempotency_key: str | None,
    ) -> Flow[Order]:
        _rules.check_reason(reason, _rules.REFUND_REASONS)
        for name, flag in (
            ("reverse_transfer", reverse_transfer),
            ("refund_application_fee", refund_application_fee),
        ):
            if flag is not None and not isinstance(flag, bool):
                raise ValidationError(name, "type", "must be a bool or None")
        order = yield from self._get_order(order_id)
        if amount is not None:  # (a bad amount is refused, with a key or without)
            check_amount(amount, order.currency, field="amount", charge=False)
        if _decisions.keyed_refund(order, idempotency_key, amount) is not None:
            return order  # made under this key already: the call's answer (docs/money.md)
        claim = _decisions.key_claim(order, idempotency_key, amount)
        if claim is not None:  # this key's call, answer lost: the same request again
            amount, reason = claim.amount, claim.reason
            reverse_transfer = claim.reverse_transfer
            refund_application_fee = claim.refund_application_fee
        lost = order.pending

        def refundable(current: Order) -> None:
            if current is not order and _decisions.keyed_refund(current, idempotency_key, amount):
                raise _AlreadyRefunded(current)
            if amount is None and wanted != current.refundable and current is not order:
                raise _RemainderMoved  # "all that remains" moved since it was read
            if wanted > current.refundable:
                raise ValidationError(
                    "amount",
                    "refundable",
                    f"{wanted} exceeds the {current.refundable} still refundable"
                    f" on order {current.id}{_refund_room(current)}",
                )

        wanted = order.refundable if amount is None else amount
        flags = _connect_flags(reverse_transfer, refund_application_fee)
        asked = self._flows.operation(
            "refund", "", amount=wanted, reason=reason, request=idempotency_key, **flags
        )
        # A lost answer that may be what made the order refundable is learned
        # first (order_operation sends this very call's refund again, or settles
        # a lost capture or confirm, then checks the order as it is). Another
        # call's lost refund can only leave less to refund: the checks refuse now.
        if lost is None or (lost.operation == "refund" and not _decisions.replays(lost, asked)):
            _lifecycle.check_order_operation("refund", order)
            if amount is None and wanted <= 0:
                raise ValidationError(
                    "amount",
                    "refundable",
                    f"nothing is left to refund on order {order.id}{_refund_room(order)}",
                )
            if amount is None:  # (an amount given was checked above)
                check_amount(wanted, order.currency, field="amount", charge=False)
            refundable(order)

        def record(order_id: str, pending: PendingOperation, refund: RefundSnapshot) -> Flow[Order]:
            return _outcomes.apply_refund(
                self.store, order_id, refund, clear=pending.key, request=pending.request
            )

        try:
            done, _ = yield from self._flows.order_operation(
                order,
                "refund",
                amount=wanted,
                reason=reason,
                check=refundable,
                call=lambda intent_id, pending: self._gateway.create_refund(
                    intent_id,
                    amount=pending.amount,
                    reason=pending.reason,
                    idempotency_key=pending.key,
                    **_connect_flags(pending.reverse_transfer, pending.refund_application_fee),
                ),
                record=record,
                flags=flags,
                request=idempotency_key,
            )
        except IdempotencyError as exc:
            if idempotency_key is None:
                raise
            # Stripe holds another request under this key's Stripe key (a refund
            # it refused, asked with another amount): the key names that request.
            raise IdempotencyError(
                f"idempotency_key {idempotency_key!r} names an earlier refund request on"
                f" order {order.id} with other parameters (Stripe request {exc.request_id});"
                " a key names one request, so ask for another refund under a new key",
                code=exc.code,
                http_status=exc.http_status,
                request_id=exc.request_id,
                retryable=False,
            ) from exc
        return done

    # ------------------------------------------------------ webhooks, reconcile

    def _handle_webhook(self, payload: bytes, signature_header: str) -> Flow[WebhookResult]:
        if not isinstance(payload, (bytes, bytearray)):
            raise WebhookPayloadError("the payload must be the raw request body as bytes")
        if not isinstance(signature_header, str) or not signature_header:
            raise WebhookSignatureError("the Stripe-Signature header is missing")
        payload = bytes(payload)
        try:
            yield self._gateway.verify_webhook(
                payload, signature_header, tolerance=self.webhook_tolerance
            )
        except WebhookError as exc:
            _rejected(exc)
            raise
        try:
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
            _rejected(exc)
            raise
        # A re-delivery is answered from one indexed lookup of its id, without a
        # write transaction; the body is parsed and checked first, as for any
        # delivery (the id and type are the ones json.loads reads).
        event_id = event.id

        def seen(tx: StoreReads) -> Flow[bool]:
            found: bool = yield tx.has_event(event_id)
            return found

        if (yield Read(self.store, seen)):
            if log.isEnabledFor(logging.INFO):
                extra = _logs.ids(event=event.id, event_type=event.type, outcome="duplicate")
                log.info("webhook %s %s: duplicate", event.id, event.type, extra=extra)
            return WebhookResult(event.id, event.type, "duplicate")
        route = _webhooks.route_event(event)
        refresh = self.refresh_on_webhook
        if event.api_version is not None and event.api_version != STRIPE_API_VERSION:
            self._note_other_version(event.api_version, event.id)
            route, refresh = _webhooks.untrusted(route), True
        result = yield from _delivery.deliver(
            self.store, self._gateway, event, route, refresh=refresh
        )
        if log.isEnabledFor(logging.INFO):  # (the extra is built only for a kept record)
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

    def _reconcile(
        self,
        older_than: timedelta,
        limit: int,
        abandon_after: timedelta | None,
        refund_orphans: bool,
        expiring_within: timedelta | None,
    ) -> Flow[ReconcileReport]:
        _rules.check_reconcile_policy(
            older_than, limit, abandon_after, refund_orphans, expiring_within
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
        report = yield from _reconcile.reconcile(
            self.store,
            self._gateway,
            confirm_order=self._confirm_order,
            cancel_order=lambda order_id: self._cancel_order(order_id, "abandoned"),
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


def _rejected(exc: WebhookError) -> None:
    # The error's own text: it never holds the header, the payload or a secret.
    log.warning(
        "webhook rejected (%s): %s",
        "signature" if isinstance(exc, WebhookSignatureError) else "payload",
        exc,
        extra=_logs.ids(outcome="rejected"),
    )
