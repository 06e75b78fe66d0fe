"""The façade's flows: claim → call → record for each gateway operation.

:class:`Flows` is the I/O shell over the pure decisions: it reads the records,
asks :mod:`cartpay._decisions`, :mod:`cartpay._params` and
:mod:`cartpay._lifecycle` what to do, claims (:mod:`cartpay._claims`), calls the
gateway with no transaction held, and records (:mod:`cartpay._outcomes`). Each
``*_once`` method makes one attempt and returns ``None`` when the records moved
on under it; the façade repeats it with :func:`cartpay._records.until`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal, TypeVar

from . import _decisions, _lifecycle, _outcomes
from ._claims import Claims, Ref
from ._errors import CardDeclinedError, IllegalStateError, IntentAlreadyUsedError
from ._models import (
    Cart,
    IntentHandle,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    OperationName,
    Order,
    PendingOperation,
    RefundSnapshot,
)
from ._options import IntentOptions
from ._params import idempotency_key, intent_changes, intent_params
from ._ports import PaymentGateway, Store, StoreTransaction
from ._records import read_cart, read_order, retry, save, until

__all__ = ["Flows"]

log = logging.getLogger("cartpay")

S = TypeVar("S", IntentSnapshot, RefundSnapshot)
C = TypeVar("C", Cart, Order)


class Flows:
    """The flows of one façade: its gateway, store, claims, clock and id maker."""

    def __init__(
        self,
        gateway: PaymentGateway,
        store: Store,
        claims: Claims,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[str], str],
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.claims = claims
        self.clock = clock
        self.new_id = new_id

    def read_order(self, order_id: str) -> Order:
        with self.store.read() as tx:
            return read_order(tx, order_id)

    def create_once(
        self, cart_id: str, options: IntentOptions | None, deadline: float
    ) -> IntentHandle | None:
        cart, record = self.cart_and_intent(cart_id)
        wanted = intent_params(cart, options or cart.options)
        if record is not None and record.status in _lifecycle.REUSABLE:
            return self.update(cart, record, wanted, retrieve=True)
        if record is not None and record.status in _lifecycle.IN_FLIGHT:
            raise IllegalStateError(
                "intent",
                "replace",
                record.status,
                entity_id=record.id,
                detail="the cart's payment is in flight; confirm its order first",
            )
        generation = cart.generation + (1 if cart.payment_intent_id else 0)
        key = idempotency_key("cart", cart.id, f"g{generation}", "create")
        ref = Ref.cart(cart.id)
        claim = self.claims.claim(
            ref,
            self.operation("create", key, params=wanted),
            deadline,
            fresh=lambda c: c.payment_intent_id == cart.payment_intent_id,
        )
        if claim is None:
            return None  # another caller created it meanwhile (or holds the cart)
        _, pending = claim
        params = pending.params or wanted  # a replay sends its own parameters
        snap = self.claims.call(
            ref, pending, lambda: self.gateway.create_intent(params, idempotency_key=pending.key)
        )
        cart = _outcomes.record_created(self.store, cart.id, pending, snap, now=self.clock)
        log.info("intent created", extra={"cart_id": cart.id, "intent_id": snap.id})
        assert cart.sent is not None
        now_wanted = intent_params(cart, options or cart.options)
        if intent_changes(cart.sent, now_wanted):  # the cart moved on while we replayed
            record = self.intent_record(snap.id)
            return self.update(cart, record, now_wanted, retrieve=False)
        return IntentHandle.from_snapshot(snap)

    def update(
        self, cart: Cart, record: IntentRecord | None, wanted: IntentParams, *, retrieve: bool
    ) -> IntentHandle:
        """Send what changed between ``cart.sent`` and ``wanted`` (``record``: the
        cart's intent as stored, read with the cart)."""
        deadline = self.claims.deadline()
        first = [(cart, record, wanted)]

        def attempt() -> IntentHandle | None:
            if first:  # as the caller read it; afterwards, read again
                current, intent, now_wanted = first.pop()
            else:
                current, intent = self.cart_and_intent(cart.id)
                now_wanted = intent_params(current, wanted.options)
            return self.update_once(current, intent, now_wanted, retrieve, deadline)

        return until(attempt, f"cart {cart.id}")

    def update_once(
        self,
        cart: Cart,
        record: IntentRecord | None,
        wanted: IntentParams,
        retrieve: bool,
        deadline: float,
    ) -> IntentHandle | None:
        assert cart.payment_intent_id is not None and cart.sent is not None
        intent_id = cart.payment_intent_id
        changes = intent_changes(cart.sent, wanted)
        status = record.status if record else "requires_payment_method"
        if not changes:
            if retrieve:
                return IntentHandle.from_snapshot(self.gateway.retrieve_intent(intent_id))
            return IntentHandle(intent_id, None, status, cart.sent.amount, cart.currency)
        operation: _lifecycle.IntentOperation = (
            "update_amount" if "amount" in changes else "update_fields"
        )
        _lifecycle.check_intent_operation(operation, status, intent_id=intent_id)
        if record is not None and record.order_id is not None and "amount" in changes:
            raise IllegalStateError(  # a kept cart must not reprice what an order pays
                "intent",
                operation,
                status,
                entity_id=intent_id,
                detail=f"order {record.order_id} is paying it; confirm or cancel that order",
            )
        key = idempotency_key("cart", cart.id, f"g{cart.generation}", "update", f"v{cart.version}")
        ref = Ref.cart(cart.id)
        claim = self.claims.claim(
            ref, self.operation("update", key), deadline, fresh=lambda c: c.version == cart.version
        )
        if claim is None:
            return None
        snap = self.claims.call(
            ref,
            claim[1],
            lambda: self.gateway.update_intent(intent_id, changes, idempotency_key=key),
        )
        _outcomes.record_sent(self.store, cart.id, key, wanted, snap)
        log.info("intent updated", extra={"cart_id": cart.id, "intent_id": intent_id})
        return IntentHandle.from_snapshot(snap)

    def checkout_once(self, cart_id: str, keep_cart: bool) -> Order | None:
        cart, record = self.cart_and_intent(cart_id)
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
            self.update(cart, record, wanted, retrieve=False)
            return None
        order = Order(
            self.new_id("ord"),
            cart.id,
            cart.currency,
            cart.total,
            cart.items,
            cart.payment_intent_id,
            created_at=self.clock(),
        )
        with self.store.transaction() as tx:
            current = read_cart(tx, cart_id)
            if current.version != cart.version or self.claims.busy(current):
                stale = True  # the cart moved on (or an operation holds it): look again
            else:
                stale = False
                tx.insert_order(order)
                if not keep_cart:
                    tx.delete_cart(cart.id, expected_version=cart.version)
        if stale:
            time.sleep(0.01)
            return None
        return order

    def confirm_once(
        self, order_id: str, payment_method: str, return_url: str | None, deadline: float
    ) -> Order | None:
        with self.store.read() as tx:  # what the checks need, in one read
            order = read_order(tx, order_id)
            record = tx.get_intent(order.intent_id) if order.intent_id else None
            cart = tx.get_cart(order.cart_id)
        _lifecycle.check_order_operation("confirm_payment", order)
        intent_id = self.intent_of(order)
        if record is not None:
            if record.order_id not in (None, order.id):
                raise IntentAlreadyUsedError(intent_id, order.id, record.order_id)
            _lifecycle.check_intent_operation("confirm", record.status, intent_id=intent_id)
        _decisions.check_kept_cart_amount(order, cart)
        key = idempotency_key("order", order.id, "confirm", f"v{order.version}")
        ref = Ref.order(order.id)

        def bind(tx: StoreTransaction, current: Order) -> None:
            # The claim binds the intent to this order, in the same transaction.
            intent = tx.get_intent(current.intent_id) if current.intent_id else None
            bound = _decisions.bind_intent(intent, current)
            if intent is not None and bound is not None:
                save(tx, intent, bound)

        claim = self.claims.claim(
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
            snap = self.claims.call(
                ref,
                pending,
                lambda: self.gateway.confirm_intent(
                    intent_id,
                    payment_method=method,
                    return_url=return_url,
                    idempotency_key=pending.key,
                ),
            )
        except CardDeclinedError:
            snap = self.gateway.retrieve_intent(intent_id)
            _outcomes.apply(self.store, order.id, snap, clear=pending.key)
            raise
        return _outcomes.apply(self.store, order.id, snap, clear=pending.key)

    def order_operation(
        self,
        order: Order,
        operation: OperationName,
        *,
        call: Callable[[str, PendingOperation], S],
        record: Callable[[str, PendingOperation, S], Order],
        amount: int | None = None,
        reason: str | None = None,
        check: Callable[[Order], None] | None = None,
    ) -> tuple[Order, PendingOperation]:
        """Claim ``operation`` on the order (``order``: as the caller just read it),
        ``call`` the gateway under the claim, ``record`` the answer. Returns the
        order and the claim that was run (an earlier claim's replay, perhaps)."""
        deadline = self.claims.deadline()
        first: list[Order] = [order]

        def attempt() -> tuple[Order, PendingOperation] | None:
            current = first.pop() if first else self.read_order(order.id)
            _lifecycle.check_order_operation(operation, current)  # type: ignore[arg-type]
            if check is not None:
                check(current)
            intent_id = self.intent_of(current)
            # A new key per logical operation: the version moves on with every claim,
            # so a retry after a definite failure never reuses a spent key, while a
            # retry after an unknown outcome replays the claim's own key.
            key = idempotency_key("order", current.id, operation, f"v{current.version}")
            ref = Ref.order(current.id)
            wanted = self.operation(operation, key, amount=amount, reason=reason)
            claim = self.claims.claim(
                ref, wanted, deadline, fresh=lambda o: o.version == current.version
            )
            if claim is None:
                return None
            pending = claim[1]
            result = self.claims.call(ref, pending, lambda: call(intent_id, pending))
            log.info("order %s", operation, extra={"order_id": order.id, "intent_id": intent_id})
            return record(current.id, pending, result), pending

        return until(attempt, f"order {order.id}")

    def intent_operation(
        self,
        order: Order,
        operation: Literal["capture", "cancel"],
        *,
        amount: int | None = None,
        reason: str | None = None,
    ) -> Order:
        """:meth:`order_operation` for a call that answers with the intent
        (capture, cancel): the snapshot is applied to the order."""
        gateway = self.gateway
        calls: dict[str, Callable[[str, PendingOperation], IntentSnapshot]] = {
            "capture": lambda intent_id, pending: gateway.capture_intent(
                intent_id, amount=pending.amount, idempotency_key=pending.key
            ),
            "cancel": lambda intent_id, pending: gateway.cancel_intent(
                intent_id, reason=pending.reason, idempotency_key=pending.key
            ),
        }

        def record(order_id: str, pending: PendingOperation, snap: IntentSnapshot) -> Order:
            return _outcomes.apply(self.store, order_id, snap, clear=pending.key)

        done, _ = self.order_operation(
            order, operation, call=calls[operation], record=record, amount=amount, reason=reason
        )
        return done

    def operation(self, name: OperationName, key: str, **sends: object) -> PendingOperation:
        """A claim to make (its lease is set when it is recorded)."""
        return PendingOperation(name, key, self.clock(), **sends)  # type: ignore[arg-type]

    def change(self, ref: Ref[C], change: Callable[[C], C]) -> C:
        """Apply ``change`` to the record in one transaction (re-run on a lost race)."""

        def work(tx: StoreTransaction) -> C:
            current = ref.read(tx)
            return save(tx, current, change(current))

        return retry(self.store, work, str(ref))

    def cart_and_intent(self, cart_id: str) -> tuple[Cart, IntentRecord | None]:
        """The cart and its intent's record, read in one snapshot."""
        with self.store.read() as tx:
            cart = read_cart(tx, cart_id)
            intent_id = cart.payment_intent_id
            return cart, tx.get_intent(intent_id) if intent_id is not None else None

    def intent_record(self, intent_id: str) -> IntentRecord | None:
        with self.store.read() as tx:
            return tx.get_intent(intent_id)

    @staticmethod
    def intent_of(order: Order) -> str:
        if order.intent_id is None:
            raise IllegalStateError("order", "pay", "no_intent", entity_id=order.id)
        return order.intent_id
