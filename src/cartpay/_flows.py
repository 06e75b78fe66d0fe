# mypy: disable-error-code="func-returns-value"
"""The façade's flows: claim → call → record for each gateway operation.

:class:`Flows` is the I/O shell over the pure decisions: it reads the records,
asks :mod:`cartpay._decisions`, :mod:`cartpay._params` and
:mod:`cartpay._lifecycle` what to do, claims (:mod:`cartpay._claims`), calls the
gateway with no transaction held, and records (:mod:`cartpay._outcomes`). Each
``*_once`` method makes one attempt and returns ``None`` when the records moved
on under it; the façade repeats it with :func:`cartpay._records.until`.

The pricing port, when the façade has one, is asked right before a create,
an update or a checkout, outside any store transaction; its answer is stored
on the cart only if the cart is still at the version that was priced, and the
claim that follows is made only at the version that was stored, so the amount
sent is always the one computed from the cart as it is saved (else: price
again).

Every method that does I/O is a flow (:mod:`cartpay._effects`), run by either
façade; the pricing port's answer is yielded like a gateway call's, so an
async façade may be given a sync or an async port (docs/async.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Literal, TypeVar

from attrs import evolve, frozen

from . import _decisions, _lifecycle, _logs, _outcomes
from ._claims import Claims, Ref
from ._effects import Flow, Read, Sleep
from ._errors import (
    CardDeclinedError,
    CartpayError,
    ConcurrencyError,
    IllegalStateError,
    IntentAlreadyUsedError,
    OperationPendingError,
    PricingError,
)
from ._models import (
    Adjustment,
    Cart,
    IntentHandle,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    LineItem,
    OperationName,
    Order,
    PendingOperation,
    RefundSnapshot,
)
from ._options import IntentOptions
from ._params import idempotency_key, intent_changes, intent_params
from ._ports import PaymentGateway, Pricing, StoreReads, StoreTransaction
from ._records import read_cart, read_intent, read_order, retry, save, until

__all__ = ["Flows"]

log = logging.getLogger("cartpay")

S = TypeVar("S", IntentSnapshot, RefundSnapshot)
C = TypeVar("C", Cart, Order)


@frozen
class _Priced:
    """What the port answered during one façade call: the cart's items, currency
    and metadata it saw, and the adjustments it gave them."""

    items: tuple[LineItem, ...]
    currency: str
    metadata: tuple[tuple[str, str], ...]
    adjustments: tuple[Adjustment, ...]


class PriceMemo:
    """The port's last answer within one façade call: a cart that still has the
    items, currency and metadata it was priced with, and carries the answer, is
    priced as of now (a checkout that updated first does not ask twice)."""

    def __init__(self) -> None:
        self.last: _Priced | None = None

    @staticmethod
    def key(cart: Cart, adjustments: tuple[Adjustment, ...]) -> _Priced:
        metadata = tuple(sorted(cart.options.metadata.items()))
        return _Priced(cart.items, cart.currency, metadata, adjustments)

    def covers(self, cart: Cart) -> bool:
        return self.last is not None and self.last == self.key(cart, cart.adjustments)


class Flows:
    """The flows of one façade: its gateway, store, claims, clock, id maker and
    pricing port (``None``: the cart's adjustments are used as the host set them)."""

    def __init__(
        self,
        gateway: PaymentGateway,
        store: object,
        claims: Claims,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[str], str],
        ceilings: Mapping[str, int] | None = None,
        pricing: Pricing | None = None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.claims = claims
        self.clock = clock
        self.new_id = new_id
        self.ceilings: Mapping[str, int] = dict(ceilings or {})
        self.pricing = pricing

    def read_order(self, order_id: str) -> Flow[Order]:
        order: Order = yield Read(self.store, lambda tx: read_order(tx, order_id))
        return order

    # ---------------------------------------------------------------- pricing

    def priced(self, cart: Cart, options: IntentOptions | None, memo: PriceMemo) -> Flow[Cart]:
        """``cart`` carrying the adjustments the pricing port gives it now (in
        memory: :meth:`save_priced` stores them). The port sees the cart with
        the ``options`` of this call. Raises ``PricingError`` when the port
        raises or answers something that is not valid adjustments."""
        if self.pricing is None:
            return cart
        asked = evolve(cart, options=options or cart.options)
        if memo.covers(asked):
            return cart
        try:
            # (An async port's answer is an awaitable: the async driver awaits it.)
            answer = yield self.pricing.price(asked)
            adjustments = _decisions.priced_adjustments(cart, answer)
        except PricingError:
            raise
        except CartpayError as exc:
            raise PricingError(
                cart.id, f"the port raised {type(exc).__name__}", retryable=exc.retryable
            ) from exc
        except Exception as exc:  # the host's engine: any failure is the port's
            raise PricingError(cart.id, f"the port raised {type(exc).__name__}") from exc
        memo.last = memo.key(asked, adjustments)
        return evolve(cart, adjustments=adjustments)

    def save_priced(self, read: Cart, priced: Cart) -> Flow[Cart | None]:
        """Store ``priced``'s adjustments on the cart if it is still as ``read``
        (the version that was priced) and no operation holds it; returns the cart
        as stored, or ``None``: it changed meanwhile, price again."""
        if priced.adjustments == read.adjustments:
            return read

        def work(tx: StoreTransaction) -> Flow[Cart | None]:
            current = yield from read_cart(tx, read.id)
            if current.version != read.version or self.claims.busy(current):
                return None
            return (yield from save(tx, current, evolve(current, adjustments=priced.adjustments)))

        return (yield from retry(self.store, work, f"cart {read.id}"))

    # ------------------------------------------------------- the cart's intent

    def sync(
        self, cart_id: str, options: IntentOptions | None, *, retrieve: bool, operation: str
    ) -> Flow[IntentHandle]:
        """Bring the cart's intent up to date with the cart: create, update or
        nothing (:func:`cartpay._decisions.intent_step`). ``retrieve``: read the
        intent for its client secret when nothing needs sending."""
        deadline = self.claims.deadline()
        memo = PriceMemo()
        return (
            yield from until(
                lambda: self.sync_once(cart_id, options, retrieve, operation, deadline, memo),
                f"cart {cart_id}",
            )
        )

    def sync_once(
        self,
        cart_id: str,
        options: IntentOptions | None,
        retrieve: bool,
        operation: str,
        deadline: float,
        memo: PriceMemo | None = None,
    ) -> Flow[IntentHandle | None]:
        cart, record, orders = yield from self.cart_view(cart_id)
        if cart.pending is not None:
            yield from self.settle_cart(cart, deadline)
            return None
        priced = yield from self.priced(cart, options, memo or PriceMemo())
        wanted = intent_params(priced, options or cart.options, ceilings=self.ceilings)
        if operation == "update_payment_intent" and cart.payment_intent_id is None:
            raise IllegalStateError(
                "cart",
                operation,
                "no_intent",
                entity_id=cart_id,
                detail="call create_payment_intent first",
            )
        step = _decisions.intent_step(priced, record, orders, wanted, operation=operation)
        saved = yield from self.save_priced(cart, priced)
        if saved is None:
            return None  # the cart changed since it was priced: price it again
        cart = saved
        if step == "create":
            return (yield from self.create(cart, wanted, deadline))
        if step == "update":
            return (yield from self.update(cart, wanted, deadline))
        assert cart.payment_intent_id is not None and cart.sent is not None
        if not retrieve:
            status = record.status if record is not None else "requires_payment_method"
            return IntentHandle(
                cart.payment_intent_id, None, status, cart.sent.amount, cart.currency
            )
        snap: IntentSnapshot = yield self.gateway.retrieve_intent(cart.payment_intent_id)
        if record is not None and snap.status != record.status:
            # It moved on: decide again.
            yield from _outcomes.record_intent_status(self.store, snap)
            return None
        return IntentHandle.from_snapshot(snap)

    def create(
        self, cart: Cart, wanted: IntentParams, deadline: float
    ) -> Flow[IntentHandle | None]:
        """Claim and make a new intent for the cart (a new generation when it had one)."""
        generation = cart.generation + (1 if cart.payment_intent_id else 0)
        key = idempotency_key("cart", cart.id, f"g{generation}", "create")
        claim = yield from self.claims.claim(
            Ref.cart(cart.id),
            self.operation("create", key, params=wanted),
            deadline,
            fresh=lambda c: c.version == cart.version,
        )
        if claim is None:
            return None  # another caller changed or holds the cart: decide again
        snap = yield from self.send_create(cart.id, claim[1])
        return IntentHandle.from_snapshot(snap) if snap is not None else None

    def send_create(self, cart_id: str, pending: PendingOperation) -> Flow[IntentSnapshot | None]:
        """Make the claimed create (``pending.params``, its own key) and record it.
        ``None`` when the cart moved on meanwhile (decide again)."""
        params = pending.params
        assert params is not None
        snap = yield from self.claims.call(
            Ref.cart(cart_id),
            pending,
            lambda: self.gateway.create_intent(params, idempotency_key=pending.key),
        )
        cart = yield from _outcomes.record_created(
            self.store, cart_id, pending, snap, now=self.clock
        )
        log.info(
            "intent %s created for cart %s: %s",
            snap.id,
            cart.id,
            _logs.money(snap.amount, snap.currency),
            extra=_logs.ids(cart=cart.id, intent=snap.id),
        )
        current = intent_params(cart, cart.options, ceilings=self.ceilings)
        return snap if cart.sent is not None and not intent_changes(cart.sent, current) else None

    def update(
        self, cart: Cart, wanted: IntentParams, deadline: float
    ) -> Flow[IntentHandle | None]:
        """Claim and send the changes between what the cart's intent was last sent
        and ``wanted``."""
        key = idempotency_key("cart", cart.id, f"g{cart.generation}", "update", f"v{cart.version}")
        claim = yield from self.claims.claim(
            Ref.cart(cart.id),
            self.operation("update", key, params=wanted),
            deadline,
            fresh=lambda c: c.version == cart.version,
            also=self.not_held,
        )
        if claim is None:
            return None
        snap = yield from self.send_update(cart, claim[1])
        return IntentHandle.from_snapshot(snap) if snap is not None else None

    @staticmethod
    def not_held(tx: StoreTransaction, cart: Cart) -> Flow[None]:
        """Inside the update's claim: the intent is still the cart's alone (an order
        checked out or paying with it since the cart was read makes it held)."""
        intent_id = cart.payment_intent_id
        if intent_id is None:
            return
        record: IntentRecord | None = yield tx.get_intent(intent_id)
        if _decisions.is_held(record, (yield tx.orders_for_intent(intent_id))):
            raise ConcurrencyError(f"cart {cart.id}'s intent was just checked out")

    def send_update(self, cart: Cart, pending: PendingOperation) -> Flow[IntentSnapshot | None]:
        """Send the claimed update (its own parameters and key) and record it. When
        Stripe says the intent can no longer change (the browser paid meanwhile),
        record what it is now and return ``None``: decide again."""
        intent_id, sent, params = cart.payment_intent_id, cart.sent, pending.params
        assert intent_id is not None and sent is not None and params is not None
        changes = intent_changes(sent, params)
        try:
            snap = yield from self.claims.call(
                Ref.cart(cart.id),
                pending,
                lambda: self.gateway.update_intent(intent_id, changes, idempotency_key=pending.key),
            )
        except IllegalStateError:
            now = yield self.gateway.retrieve_intent(intent_id)
            yield from _outcomes.record_intent_status(self.store, now)
            return None
        yield from _outcomes.record_sent(self.store, cart.id, pending.key, params, snap)
        log.info(
            "intent %s updated for cart %s: %s (%s)",
            intent_id,
            cart.id,
            _logs.money(snap.amount, snap.currency),
            ", ".join(sorted(changes)) or "nothing changed",
            extra=_logs.ids(cart=cart.id, intent=intent_id),
        )
        return snap

    def settle_cart(self, cart: Cart, deadline: float) -> Flow[None]:
        """The cart's claim: wait while another caller holds it; replay it, with its
        own key and parameters, when its outcome is unknown (expired). The caller
        then decides again on what is known now."""
        pending = cart.pending
        assert pending is not None
        claim = yield from self.claims.claim(
            Ref.cart(cart.id), pending, deadline, fresh=lambda c: c.version == cart.version
        )
        if claim is None:
            return
        if pending.operation == "create":
            yield from self.send_create(cart.id, claim[1])
        else:
            yield from self.send_update(cart, claim[1])

    # ---------------------------------------------------------------- checkout

    def checkout_once(
        self, cart_id: str, keep_cart: bool, memo: PriceMemo | None = None
    ) -> Flow[Order | None]:
        cart, record, orders = yield from self.cart_view(cart_id)
        if cart.pending is not None:
            yield from self.settle_cart(cart, self.claims.deadline())
            return None
        if cart.payment_intent_id is None or cart.sent is None:
            raise IllegalStateError(
                "cart",
                "checkout",
                "no_intent",
                entity_id=cart.id,
                detail="call create_payment_intent first",
            )
        if (
            record is not None
            and record.status in _lifecycle.MONEY_MOVING
            and not _decisions.is_held(record, orders)
        ):
            return (yield from self.checkout_paid(cart, record, keep_cart))
        priced = yield from self.priced(cart, None, memo or PriceMemo())
        wanted = intent_params(priced, cart.options, ceilings=self.ceilings)
        step = _decisions.intent_step(priced, record, orders, wanted, operation="checkout")
        held = _decisions.is_held(record, orders)
        renew = held and record is not None and record.status in _lifecycle.REUSABLE
        if step == "create" and not renew:
            status = record.status if record is not None else "requires_payment_method"
            raise IllegalStateError(
                "intent",
                "checkout",
                status,
                entity_id=cart.payment_intent_id,
                detail="the cart's intent can no longer take a payment; create a new one",
            )
        saved = yield from self.save_priced(cart, priced)
        if saved is None:
            return None  # the cart changed since it was priced: price it again
        cart = saved
        if step == "update":
            yield from self.update(cart, wanted, self.claims.deadline())
            return None
        if step == "create":
            # A kept cart that changed: it gets an intent of its own, the order keeps its.
            yield from self.create(cart, wanted, self.claims.deadline())
            return None
        # The order is what the intent's amount stands for: the cart as it was
        # stored (and priced) at the version insert_order checks.
        order = Order(
            self.new_id("ord"),
            cart.id,
            cart.currency,
            cart.total,
            cart.items,
            cart.payment_intent_id,
            created_at=self.clock(),
            options=wanted.options,  # what its intent was sent (may a confirm redirect?)
            adjustments=cart.adjustments,
        )
        return (yield from self.insert_order(cart, order, keep_cart))

    def checkout_paid(
        self, cart: Cart, record: IntentRecord, keep_cart: bool
    ) -> Flow[Order | None]:
        """Checkout of a cart whose intent took a payment before it (the browser
        paid, and its news came first): the order owns the intent and is what the
        amount paid for; lines added since stay in the cart, which gets a new intent."""
        snap = record.snapshot or (yield self.gateway.retrieve_intent(record.id))
        # Refunds made before the order existed (their events found no order).
        refunds = (yield self.gateway.list_refunds(record.id)) if snap.status == "succeeded" else ()
        parts = _decisions.paid_order_parts(cart, snap)
        order = Order(
            self.new_id("ord"),
            cart.id,
            cart.currency,
            parts.total,
            parts.items,
            record.id,
            created_at=self.clock(),
            options=cart.sent.options if cart.sent is not None else cart.options,
            adjustments=parts.adjustments,
        )
        applied = _decisions.apply_snapshot(order, record, snap, refunds)
        # The cart keeps its lines (keep_cart) or those added since; the intent it
        # follows is the order's now, so its next create makes a new one.
        left = (
            cart
            if keep_cart
            else evolve(cart, items=parts.rest, adjustments=parts.rest_adjustments)
        )
        return (
            yield from self.insert_order(
                cart,
                applied.order,
                keep_cart or bool(parts.rest),
                kept=left,
                intent=(record, applied.intent),
            )
        )

    def insert_order(
        self,
        cart: Cart,
        order: Order,
        keep_cart: bool,
        *,
        kept: Cart | None = None,
        intent: tuple[IntentRecord, IntentRecord | None] | None = None,
    ) -> Flow[Order | None]:
        """Insert the order made from ``cart`` (as read) if the cart is still so, and
        delete the cart or keep it (as ``kept``, else as it is, noting the order)."""

        def work(tx: StoreTransaction) -> Flow[Order | None]:
            current = yield from read_cart(tx, cart.id)
            if current.version != cart.version or self.claims.busy(current):
                return None  # the cart moved on (or an operation holds it): look again
            if order.intent_id is not None and intent is None:
                record: IntentRecord | None = yield tx.get_intent(order.intent_id)
                if record is not None and record.status in _lifecycle.MONEY_MOVING:
                    return None  # a payment's news came in meanwhile: look again
            yield tx.insert_order(order)
            if intent is not None and intent[1] is not None:
                yield from save(tx, (yield from read_intent(tx, intent[0].id)), intent[1])
            if keep_cart:
                yield from save(tx, current, evolve(kept or current, last_order_id=order.id))
            else:
                yield tx.delete_cart(cart.id, expected_version=cart.version)
            return order

        done = yield from retry(self.store, work, f"cart {cart.id}")
        if done is None:
            yield Sleep(0.01)
        return done

    def confirm_once(
        self,
        order_id: str,
        payment_method: str,
        return_url: str | None,
        deadline: float,
        *,
        off_session: bool = False,
    ) -> Flow[Order | None]:
        def look(tx: StoreReads) -> Flow[tuple[Order, IntentRecord | None, Cart | None]]:
            order = yield from read_order(tx, order_id)
            record = (yield tx.get_intent(order.intent_id)) if order.intent_id else None
            return order, record, (yield tx.get_cart(order.cart_id))

        # What the checks need, in one read.
        order, record, cart = yield Read(self.store, look)
        if order.pending is not None:  # an earlier call's: wait, or learn its outcome
            settled = yield from self.settle_order(order, deadline)
            if settled is None:
                return None
            after, pending, happened = settled
            decline = _decisions.lost_decline(after, pending, payment_method, happened)
            if decline is not None:  # the lost answer was a decline: this retry says so too
                raise decline
            same = (pending.operation, pending.payment_method) == ("confirm", payment_method)
            return after if happened and same else None
        _lifecycle.check_order_operation("confirm_payment", order)
        intent_id = self.intent_of(order)
        if record is not None:
            if record.order_id not in (None, order.id):
                raise IntentAlreadyUsedError(intent_id, order.id, record.order_id)
            _lifecycle.check_intent_operation("confirm", record.status, intent_id=intent_id)
            if (record.amount, record.currency) != (order.total, order.currency):
                # Stripe would take what the intent says, not what the order totals.
                raise _decisions.mismatch(order, record.amount, record.currency)
        _decisions.check_kept_cart_amount(order, cart)
        key = idempotency_key("order", order.id, "confirm", f"v{order.version}")
        ref = Ref.order(order.id)

        def bind(tx: StoreTransaction, current: Order) -> Flow[None]:
            # The claim binds the intent to this order, in the same transaction.
            intent = (yield tx.get_intent(current.intent_id)) if current.intent_id else None
            bound = _decisions.bind_intent(intent, current)
            if intent is not None and bound is not None:
                yield from save(tx, intent, bound)

        claim = yield from self.claims.claim(
            ref,
            self.operation("confirm", key, payment_method=payment_method),
            deadline,
            fresh=lambda o: o.version == order.version,
            also=bind,
        )
        if claim is None:
            return None
        _, pending = claim
        method = pending.payment_method or payment_method
        try:
            snap = yield from self.claims.call(
                ref,
                pending,
                lambda: self.gateway.confirm_intent(
                    intent_id,
                    payment_method=method,
                    return_url=return_url,
                    off_session=off_session,
                    idempotency_key=pending.key,
                ),
            )
        except CardDeclinedError:
            snap = yield self.gateway.retrieve_intent(intent_id)
            yield from _outcomes.apply(
                self.store, order.id, snap, clear=pending.key, via="confirm_payment"
            )
            raise
        return (
            yield from _outcomes.apply(
                self.store, order.id, snap, clear=pending.key, via="confirm_payment"
            )
        )

    def order_operation(
        self,
        order: Order,
        operation: OperationName,
        *,
        call: Callable[[str, PendingOperation], S],
        record: Callable[[str, PendingOperation, S], Flow[Order]],
        amount: int | None = None,
        reason: str | None = None,
        check: Callable[[Order], None] | None = None,
        flags: Mapping[str, bool] | None = None,
        refused: list[str] | None = None,
        request: str | None = None,
    ) -> Flow[tuple[Order, PendingOperation]]:
        """Claim ``operation`` on the order (``order``: as the caller just read it),
        ``call`` the gateway under the claim, ``record`` the answer. Returns the
        order and the claim that was run (an earlier claim's replay, perhaps).
        ``flags``: the Connect refund flags that are set (kept on the claim);
        ``request``: the host's idempotency key of a refund (kept on the claim);
        ``refused``: the intent's id is appended to it when Stripe refuses the
        call for the intent's state (``IllegalStateError`` from the call itself,
        wherever the driver surfaces it: a sync call or an awaited one)."""
        deadline = self.claims.deadline()
        first: list[Order] = [order]
        asked = self.operation(
            operation, "", amount=amount, reason=reason, request=request, **(flags or {})
        )

        def attempt() -> Flow[tuple[Order, PendingOperation] | None]:
            current = first.pop() if first else (yield from self.read_order(order.id))
            lost = current.pending
            if (
                lost is not None
                and not self.claims.busy(current)
                and _decisions.replays(lost, asked)
            ):
                # The lost answer of this very refund: Stripe is asked again under
                # the claim's own key. It answers with the refund that key made, or
                # makes it now, once, whatever of the first request is still on its
                # way; no guess from the refund list (a Dashboard refund of the same
                # amount is not taken for it). The order's state is not checked: the
                # refund may be what changed it.
                wanted = lost
            elif lost is not None:  # another call's: wait, or learn its outcome
                settled = yield from self.settle_order(current, deadline)
                if settled is None:
                    return None
                after, pending, happened = settled
                if not happened or pending.operation != operation:
                    return None  # decide again on what is known now
                if not _decisions.same_arguments(pending, asked):
                    # An earlier call with other arguments took effect: this one
                    # is refused rather than acting a second time.
                    raise OperationPendingError(
                        str(Ref.order(order.id)),
                        pending.operation,
                        amount=pending.amount,
                        reason=pending.reason,
                    )
                return after, pending  # the lost answer of this very call
            else:
                _lifecycle.check_order_operation(operation, current)  # type: ignore[arg-type]
                if check is not None:
                    check(current)
                # A new key per claim: the version moves on with every claim, so a
                # retry never reuses a spent key; a retry after an unknown outcome
                # first learns what happened from the intent (settle_order), then
                # decides again. A refund under the host's key has a key of its
                # own (docs/money.md).
                key = _decisions.operation_key(current, asked)
                known = tuple(t.reference for t in current.transactions if t.kind == "refund")
                wanted = evolve(asked, key=key, known_refunds=known)
            intent_id = self.intent_of(current)
            ref = Ref.order(current.id)
            claim = yield from self.claims.claim(
                ref, wanted, deadline, fresh=lambda o: o.version == current.version
            )
            if claim is None:
                return None
            pending = claim[1]
            try:
                result = yield from self.claims.call(ref, pending, lambda: call(intent_id, pending))
            except IllegalStateError:
                if refused is not None:
                    refused.append(intent_id)
                raise
            log.info(
                "order %s: %s done on intent %s",
                order.id,
                operation,
                intent_id,
                extra=_logs.ids(cart=order.cart_id, order=order.id, intent=intent_id),
            )
            return (yield from record(current.id, pending, result)), pending

        return (yield from until(attempt, f"order {order.id}"))

    def intent_operation(
        self,
        order: Order,
        operation: Literal["capture", "cancel"],
        *,
        amount: int | None = None,
        reason: str | None = None,
    ) -> Flow[Order]:
        """:meth:`order_operation` for a call that answers with the intent
        (capture, cancel): the snapshot is applied to the order. When Stripe
        refuses the call for the intent's state (it expired, or a payment just
        succeeded), the intent is read and recorded before the error is raised:
        the order then shows what Stripe has, not what it had."""
        gateway = self.gateway
        refused: list[str] = []
        calls: dict[str, Callable[[str, PendingOperation], IntentSnapshot]] = {
            "capture": lambda intent_id, pending: gateway.capture_intent(
                intent_id, amount=pending.amount, idempotency_key=pending.key
            ),
            "cancel": lambda intent_id, pending: gateway.cancel_intent(
                intent_id, reason=pending.reason, idempotency_key=pending.key
            ),
        }

        def record(order_id: str, pending: PendingOperation, snap: IntentSnapshot) -> Flow[Order]:
            return _outcomes.apply(
                self.store, order_id, snap, clear=pending.key, via=f"{operation}_order"
            )

        try:
            done, _ = yield from self.order_operation(
                order,
                operation,
                call=calls[operation],
                record=record,
                amount=amount,
                reason=reason,
                refused=refused,
            )
        except IllegalStateError:
            if refused:  # Stripe's refusal (the claim is released): learn why
                yield from self.learn_refusal(order.id, refused[-1], operation)
            raise
        return done

    def learn_refusal(self, order_id: str, intent_id: str, operation: str) -> Flow[None]:
        """Stripe refused ``operation`` for the intent's state: read the intent and
        record it (current), so the order shows what Stripe has. A failure to
        record is logged; the refusal is what the caller raises."""
        snap = yield self.gateway.retrieve_intent(intent_id)
        try:
            yield from _outcomes.apply(
                self.store, order_id, snap, via=f"refused {operation}_order", current=True
            )
        except CartpayError:
            log.warning("order %s: could not record the intent", order_id, exc_info=True)

    def settle_order(
        self, order: Order, deadline: float
    ) -> Flow[tuple[Order, PendingOperation, bool] | None]:
        """The order's claim: wait while another caller holds it (``None``); when its
        outcome is unknown (expired), learn it from the intent (and its refunds),
        record what the intent shows and drop the claim. Returns the order, the
        claim and whether its operation took effect."""
        pending = order.pending
        assert pending is not None
        ref = Ref.order(order.id)
        if self.claims.busy(order):
            yield from self.claims.pause(ref, deadline)
            return None
        intent_id = self.intent_of(order)
        snap = yield self.gateway.retrieve_intent(intent_id)
        refunds = (
            (yield self.gateway.list_refunds(intent_id)) if pending.operation == "refund" else ()
        )
        happened = _decisions.operation_happened(pending, order, snap, refunds)
        mine = _decisions.claimed_refund(pending, refunds) if happened and refunds else None
        after = yield from _outcomes.apply(
            self.store,
            order.id,
            snap,
            refunds=refunds,
            clear=pending.key,
            via=f"settling an unknown {pending.operation}",
            current=True,
            # a keyed refund's: recorded under the host's key, whoever settles it
            tag=None if mine is None or pending.request is None else (mine.id, pending.request),
        )
        log.info(
            "order %s: settled an unknown %s on intent %s: %s",
            order.id,
            pending.operation,
            intent_id,
            "it took effect" if happened else "it did not",
            extra=_logs.ids(cart=order.cart_id, order=order.id, intent=intent_id),
        )
        return after, pending, happened

    def operation(self, name: OperationName, key: str, **sends: object) -> PendingOperation:
        """A claim to make (its lease is set when it is recorded)."""
        return PendingOperation(name, key, self.clock(), **sends)  # type: ignore[arg-type]

    def change(self, ref: Ref[C], change: Callable[[C], C]) -> Flow[C]:
        """Apply ``change`` to the record in one transaction (re-run on a lost race)."""

        def work(tx: StoreTransaction) -> Flow[C]:
            current = yield from ref.read(tx)
            return (yield from save(tx, current, change(current)))

        return (yield from retry(self.store, work, str(ref)))

    def cart_view(self, cart_id: str) -> Flow[tuple[Cart, IntentRecord | None, list[Order]]]:
        """The cart, its intent's record and the orders checked out with that
        intent, read in one snapshot."""

        def look(tx: StoreReads) -> Flow[tuple[Cart, IntentRecord | None, list[Order]]]:
            cart = yield from read_cart(tx, cart_id)
            intent_id = cart.payment_intent_id
            if intent_id is None:
                return cart, None, []
            record = yield tx.get_intent(intent_id)
            return cart, record, (yield tx.orders_for_intent(intent_id))

        view: tuple[Cart, IntentRecord | None, list[Order]] = yield Read(self.store, look)
        return view

    @staticmethod
    def intent_of(order: Order) -> str:
        if order.intent_id is None:
            raise IllegalStateError("order", "pay", "no_intent", entity_id=order.id)
        return order.intent_id
