"""The promise of issue 6, as a Hypothesis state machine over the public façade:
no sequence of calls, retries, faults, crashes and webhook deliveries can
double-charge, lose a payment or corrupt an order.

Every façade call goes through :meth:`PaymentsMachine.call`, which retries
``retryable`` errors a bounded number of times (as a host would) and accepts the
typed errors a host must expect; anything else is a bug. The gateway is wrapped in
a :class:`~cartpay.testing.FaultyGateway` (timeouts before and after the server
applied the call, 500s, 409 lock timeouts, rate limits), and a host can crash in
the middle of a gateway call (the gateway acted, nothing was recorded, the claim's
release is lost) or between calls (the store is reopened and a new façade built).

The invariants are checked after every step; the teardown switches the faults
off, runs ``reconcile`` and ``confirm_order`` for every order and then checks that
every payment and refund the gateway holds is on exactly one order.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cartpay import (
    AmountMismatchError,
    CardDeclinedError,
    CartpayError,
    CartPaymentIntent,
    IllegalStateError,
    IntentAlreadyUsedError,
    IntentOptions,
    IntentRecord,
    InvalidRequestError,
    NotFoundError,
    Order,
    Transaction,
    ValidationError,
)
from cartpay._converter import dumps, loads
from cartpay._lifecycle import ORDER_STATUS_TRANSITIONS, PAYMENT_TRANSITIONS, REUSABLE
from cartpay._models import Cart, OrderStatus, PaymentStatus
from cartpay._ports import PaymentGateway, Store, StoreReads, StoreTransaction
from cartpay.stores.memory import MemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import FakeStripeGateway, FaultyGateway
from cartpay.testing._faulty import ALL_FAULTS, FaultKind

from . import strategies as s
from .stats import Run, run_for

T = TypeVar("T")
K = TypeVar("K", bound=str)
R = TypeVar("R")

#: How often the host repeats a call that raised a retryable error.
RETRIES = 4
#: The façade's lease on a pending gateway operation.
LEASE = timedelta(seconds=120)
#: Where the suite's clock starts (UTC).
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)

PAYMENT_KINDS = frozenset({"authorize", "purchase", "capture"})


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Backend:
    """One configuration of the machine: a gateway, a store and what they support."""

    label: str
    store: Literal["memory", "sqlite"]
    #: Builds the gateway under the faults (a fresh fake per example, or localstripe).
    gateway: Callable[[], PaymentGateway]
    faults: tuple[FaultKind, ...] = ALL_FAULTS
    rate: float = 0.2
    #: A host crash in the middle of a gateway call (needs idempotency, like ``timeout_after``).
    crash_mid_call: bool = True
    #: Test payment method per kind of attempt.
    methods: Mapping[s.Payment, str] = field(
        default_factory=lambda: {
            "succeeds": "pm_card_visa",
            "declined": "pm_card_chargeDeclined",
            "authentication": "pm_card_authenticationRequired",
            "processing": "pm_card_processing",
        }
    )
    reasons: bool = True
    partial_capture: bool = True
    #: Non-retryable gateway errors the backend may raise for its own gaps.
    tolerated: tuple[type[CartpayError], ...] = ()
    #: Reported amounts (``amount_received``, ``amount_capturable``) are exact.
    exact_amounts: bool = True
    #: Refunds may fail at the gateway, also after they succeeded (the fake can).
    failing_refunds: bool = True
    sqlite_dir: Path | None = None


def fake_backend(store: Literal["memory", "sqlite"], sqlite_dir: Path | None = None) -> Backend:
    return Backend(
        f"fake+faults/{store}",
        store,
        lambda: FakeStripeGateway(webhook_secret="whsec_property"),
        sqlite_dir=sqlite_dir,
    )


# ------------------------------------------------------------- crashes and time


class HostCrash(BaseException):
    """The host process died (not an ``Exception``: nothing in cartpay may catch it)."""


class ProcessGone(RuntimeError):
    """The store of a crashed process: every transaction fails."""


class CrashableStore:
    """A Store that can die with its process (the claim releases are then lost)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.dead = False

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        if self.dead:
            raise ProcessGone("the process that opened this store has crashed")
        return self.inner.transaction()

    def read(self) -> AbstractContextManager[StoreReads]:
        if self.dead:
            raise ProcessGone("the process that opened this store has crashed")
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


class CrashingGateway(FaultyGateway[PaymentGateway]):
    """A FaultyGateway that can also crash the host in the middle of one mutating
    call: the inner gateway acts, then ``on_crash`` kills the store and
    :class:`HostCrash` propagates (the façade's release of its claim fails)."""

    def __init__(
        self, inner: PaymentGateway, *, seed: int, rate: float, faults: tuple[FaultKind, ...]
    ) -> None:
        super().__init__(inner, seed=seed, rate=rate, faults=faults)
        self.crash_next = False
        self.on_crash: Callable[[], None] = lambda: None

    def _mutate(self, operation: str, intent_id: str | None, key: str, call: Callable[[], R]) -> R:
        if not (self.crash_next and self.enabled):
            return super()._mutate(operation, intent_id, key, call)
        self.crash_next = False
        with suppress(Exception):
            call()
        self.on_crash()
        raise HostCrash(f"the host crashed during {operation} {intent_id or ''}")


class Clock:
    """The façade's clock: every reading is 1 ms later; a restart jumps past the leases."""

    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def jump(self, delta: timedelta) -> None:
        self.now += delta


# ---------------------------------------------------------------- the expectations


def _closure(table: Mapping[K, frozenset[K]]) -> dict[K, frozenset[K]]:
    """Every state reachable from each state (itself included) in ``table``."""
    reach: dict[K, frozenset[K]] = {}
    for start in table:
        seen, todo = {start}, [start]
        while todo:
            for nxt in table[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = frozenset(seen)
    return reach


STATUS_REACH = _closure(ORDER_STATUS_TRANSITIONS)
PAYMENT_REACH = _closure(PAYMENT_TRANSITIONS)


def transaction_may_move(old: Transaction, new: Transaction) -> bool:
    """Transactions only move forward: pending → final; an authorization may be voided;
    a refund may fail after it succeeded; a payment failed by a stale event completes
    when its charge succeeded."""
    if old.status == new.status:
        return True
    if old.status == "pending":
        return new.status in ("complete", "failed", "cancelled")
    if (old.status, new.status) == ("failed", "complete"):
        return old.kind in PAYMENT_KINDS  # a stale failure, overturned by the intent's success
    if (old.status, new.status) == ("complete", "failed"):
        return old.kind == "refund"  # refund.failed after the refund succeeded
    return old.kind == "authorize" and (old.status, new.status) == ("complete", "cancelled")


def expected_statuses(order: Order) -> tuple[set[OrderStatus], set[PaymentStatus]]:
    """What the order's status and payment must be, recomputed from its transactions
    (independently of ``_ledger``)."""
    captured = order.captured
    refunded = order.refunded
    authorized = order.authorized
    if captured:
        if refunded >= captured:
            return {"complete"}, {"refunded"}
        if refunded:
            return {"complete"}, {"partially_refunded"}
        return {"complete"}, {"paid" if captured >= order.total else "partially_paid"}
    if authorized:
        return {"processing"}, {
            "authorized" if authorized >= order.total else "partially_authorized"
        }
    pending = any(t.kind in PAYMENT_KINDS and t.status == "pending" for t in order.transactions)
    if order.status == "cancelled":
        return {"cancelled"}, {"unpaid", "failed"}
    if pending:
        return {"processing"}, {"unpaid", "failed"}
    return {"incomplete"}, {"unpaid", "failed"}


def payment_transactions(order: Order) -> list[Transaction]:
    return [t for t in order.transactions if t.kind in PAYMENT_KINDS and t.status == "complete"]


# ---------------------------------------------------------------------- the machine

_files = itertools.count()


class PaymentsMachine(RuleBasedStateMachine):
    """Carts, intents, orders, payments, webhooks and crashes, in any order."""

    carts = Bundle("carts")
    orders = Bundle("orders")

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.run: Run = run_for(backend.label)
        self.run.examples += 1
        self.clock = Clock()
        self.started = False
        self.queue: list[tuple[bytes, str]] = []
        self.pulled = 0
        self.browser_payments = 0
        self.seen: dict[str, tuple[OrderStatus, PaymentStatus, dict[str, Transaction]]] = {}
        self.orphaned: set[str] = set()
        self.outcomes: Counter[str] = Counter()
        self.path: Path | None = None
        self.tmpdir: str | None = None
        self.reader: sqlite3.Connection | None = None

    # ------------------------------------------------------------ setup, teardown

    @initialize(seed=s.fault_seeds)
    def start(self, seed: int) -> None:
        inner = self.backend.gateway()
        self.fake = inner if isinstance(inner, FakeStripeGateway) else None
        self.gateway = CrashingGateway(
            inner, seed=seed, rate=self.backend.rate, faults=self.backend.faults
        )
        self.gateway.on_crash = self.kill_store
        self.memory: MemoryStore | None = None
        self.sqlite: SQLiteStore | None = None
        if self.backend.store == "memory":
            self.memory = MemoryStore()
        else:
            self.tmpdir = tempfile.mkdtemp(prefix="cartpay-prop-", dir=self.backend.sqlite_dir)
            self.path = Path(self.tmpdir) / f"store{next(_files)}.sqlite3"
            self.sqlite = SQLiteStore(self.path)
            self.reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        self.open_facade()
        self.started = True

    def open_facade(self) -> None:
        inner: Store = self.memory if self.memory is not None else self.require_sqlite()
        self.store = CrashableStore(inner)
        self.payments = CartPaymentIntent(
            gateway=self.gateway,
            store=self.store,
            clock=self.clock,
            lease=LEASE,
            wait=timedelta(0),
        )

    def require_sqlite(self) -> SQLiteStore:
        assert self.sqlite is not None
        return self.sqlite

    def kill_store(self) -> None:
        self.store.dead = True

    def reopen(self) -> None:
        """The host restarts: a new store on the same data, a new façade, and a clock
        past every lease the dead process held."""
        self.store.dead = True
        if self.sqlite is not None:
            assert self.path is not None
            self.sqlite.close()
            self.sqlite = SQLiteStore(self.path)
        self.clock.jump(LEASE + timedelta(seconds=1))
        self.open_facade()

    def teardown(self) -> None:
        try:
            if self.started:
                self.settle_everything()
                self.check_gateway_matches_orders()
        finally:
            self.run.steps += sum(self.outcomes.values())
            self.run.outcomes.update(self.outcomes)
            if self.started:
                for fault in self.gateway.injected:
                    self.run.faults[fault.kind] += 1
                if self.reader is not None:
                    self.reader.close()
                if self.sqlite is not None:
                    self.sqlite.close()
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    # ------------------------------------------------------------- the host's call

    def call(self, name: str, fn: Callable[[], T]) -> T | None:
        """Call the façade as a host would: repeat retryable errors up to
        :data:`RETRIES` times, accept the typed errors a host must expect, restart
        after a crash. Any other exception is a bug and fails the test."""
        for attempt in range(RETRIES + 1):
            try:
                result = fn()
            except HostCrash:
                self.outcomes["crash"] += 1
                self.reopen()
                return None
            except CartpayError as exc:
                if exc.retryable and attempt < RETRIES:
                    continue
                self.accept(name, exc)
                self.outcomes[f"{name}:{type(exc).__name__}"] += 1
                return None
            self.outcomes[f"{name}:ok"] += 1
            return result
        raise AssertionError("unreachable")

    def accept(self, name: str, exc: CartpayError) -> None:
        """Raise ``exc`` again unless it is an outcome a host must expect."""
        if exc.retryable:  # the host gave up after its retries
            return
        expected = (
            ValidationError,
            IllegalStateError,
            IntentAlreadyUsedError,
            AmountMismatchError,
            CardDeclinedError,
            *self.backend.tolerated,
        )
        if isinstance(exc, expected):
            return
        if isinstance(exc, NotFoundError) and exc.kind in ("cart", "order"):
            return
        raise AssertionError(f"{name} raised an unexpected {type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ reading

    def order(self, order_id: str) -> Order | None:
        with self.store.inner.transaction() as tx:
            return tx.get_order(order_id)

    def contents(self) -> tuple[list[Cart], list[Order], list[IntentRecord], list[str]]:
        """Everything stored: carts, orders, intents and every stored row as text."""
        if self.memory is not None:
            carts = list(self.memory._carts.values())
            orders = list(self.memory._orders.values())
            intents = list(self.memory._intents.values())
            texts = [dumps(c) for c in carts] + [dumps(o) for o in orders]
            texts += [dumps(i) for i in intents]
            texts += [repr(r) for r in (*carts, *orders, *intents)]
            texts += [f"{k} {v}" for k, v in self.memory._events.items()]
            return carts, orders, intents, texts
        assert self.reader is not None
        rows: dict[str, list[tuple[object, ...]]] = {}
        for table in ("carts", "orders", "intents", "events"):
            rows[table] = list(self.reader.execute(f"SELECT * FROM {table}"))  # noqa: S608
        carts = [loads(str(r[-1]), Cart) for r in rows["carts"]]
        orders = [loads(str(r[5]), Order) for r in rows["orders"]]
        intents = [loads(str(r[-1]), IntentRecord) for r in rows["intents"]]
        texts = [repr(r) for table in rows.values() for r in table]
        return carts, orders, intents, texts

    def remote_status(self, record: IntentRecord) -> str:
        if self.fake is not None:
            return self.fake.intent(record.id).status
        return record.status

    # -------------------------------------------------------------------- carts

    def new_cart(
        self, currency: str, manual: bool, items: list[tuple[str, int, int]]
    ) -> str | None:
        options = IntentOptions(capture_method="manual") if manual else None
        cart = self.call(
            "create_cart", lambda: self.payments.create_cart(currency, options=options)
        )
        if cart is None:
            return None
        for sku, unit_amount, quantity in items:
            self.add_item(cart.id, sku, unit_amount, quantity)
        return cart.id

    @rule(target=carts, currency=s.currencies, manual=st.booleans(), items=s.line_items)
    def create_cart(self, currency: str, manual: bool, items: list[tuple[str, int, int]]) -> object:
        cart = self.new_cart(currency, manual, items)
        return multiple() if cart is None else cart

    @rule(
        target=orders,
        currency=s.currencies,
        manual=st.booleans(),
        items=s.line_items,
        keep_cart=st.booleans(),
        payment=st.none() | s.payments,
    )
    def shop(
        self,
        currency: str,
        manual: bool,
        items: list[tuple[str, int, int]],
        keep_cart: bool,
        payment: s.Payment | None,
    ) -> object:
        """A customer's whole visit: cart, items, intent, checkout, and maybe a payment."""
        cart = self.new_cart(currency, manual, items)
        if cart is None:
            return multiple()
        self.create_payment_intent(cart)
        order = self.checkout(cart, keep_cart)
        if isinstance(order, str) and payment is not None:
            self.confirm_payment(order, payment)
        return order

    @rule(cart=carts, sku=s.skus, unit_amount=s.unit_amounts, quantity=s.quantities)
    def add_item(self, cart: str, sku: str, unit_amount: int, quantity: int) -> None:
        self.call(
            "add_item",
            lambda: self.payments.add_item(
                cart, sku=sku, name=sku.title(), unit_amount=unit_amount, quantity=quantity
            ),
        )

    @rule(cart=carts, sku=s.skus, quantity=s.new_quantities)
    def set_quantity(self, cart: str, sku: str, quantity: int) -> None:
        self.call("set_quantity", lambda: self.payments.set_quantity(cart, sku, quantity))

    @rule(cart=carts)
    def delete_cart(self, cart: str) -> None:
        self.call("delete_cart", lambda: self.payments.delete_cart(cart))

    # ------------------------------------------------------------------ intents

    @rule(cart=carts)
    def create_payment_intent(self, cart: str) -> None:
        handle = self.call("create_intent", lambda: self.payments.create_payment_intent(cart))
        if handle is not None:
            assert "_secret_" not in repr(handle)

    @rule(cart=carts)
    def update_payment_intent(self, cart: str) -> None:
        self.call("update_intent", lambda: self.payments.update_payment_intent(cart))

    @rule(target=orders, cart=carts, keep_cart=st.booleans())
    def checkout(self, cart: str, keep_cart: bool) -> object:
        order = self.call("checkout", lambda: self.payments.checkout(cart, keep_cart=keep_cart))
        return multiple() if order is None else order.id

    @rule(target=orders, cart=carts)
    def checkout_twice(self, cart: str) -> object:
        """Rule 6's case: two orders on one intent."""
        first = self.call("checkout", lambda: self.payments.checkout(cart, keep_cart=True))
        second = self.call("checkout", lambda: self.payments.checkout(cart, keep_cart=True))
        return multiple(*(o.id for o in (first, second) if o is not None))

    # ------------------------------------------------------------------- orders

    @rule(order=orders, payment=s.payments)
    def confirm_payment(self, order: str, payment: s.Payment) -> None:
        method = self.backend.methods[payment]
        self.outcomes[f"pm:{payment}"] += 1
        self.call(
            "confirm_payment",
            lambda: self.payments.confirm_payment(order, payment_method=method),
        )

    @precondition(lambda self: self.fake is not None)
    @rule(order=orders, payment=s.payments)
    def pay_in_browser(self, order: str, payment: s.Payment) -> None:
        """The customer confirms the intent with its client secret (Stripe.js):
        cartpay learns of it only from webhooks, confirm_order or reconcile."""
        found = self.order(order)
        assert self.fake is not None
        if found is None or found.intent_id is None:
            return
        self.browser_payments += 1
        with suppress(CardDeclinedError, IllegalStateError):
            self.fake.confirm_intent(
                found.intent_id,
                payment_method=self.backend.methods[payment],
                idempotency_key=f"browser:{self.browser_payments}",
            )

    @precondition(lambda self: self.fake is not None)
    @rule(order=orders, success=st.booleans())
    def authenticate(self, order: str, success: bool) -> None:
        """The customer finishes (or fails) 3-D Secure in the browser."""
        found = self.order(order)
        assert self.fake is not None
        if found is not None and found.intent_id is not None:
            with suppress(IllegalStateError):
                self.fake.authenticate(found.intent_id, success=success)

    @precondition(lambda self: self.fake is not None)
    @rule(order=orders, success=st.booleans())
    def settle(self, order: str, success: bool) -> None:
        """An asynchronous payment finishes at the bank."""
        found = self.order(order)
        assert self.fake is not None
        if found is not None and found.intent_id is not None:
            with suppress(IllegalStateError):
                self.fake.settle(found.intent_id, success=success)

    @rule(order=orders)
    def confirm_order(self, order: str) -> None:
        self.call("confirm_order", lambda: self.payments.confirm_order(order))

    @rule(order=orders, percent=s.percentages)
    def capture(self, order: str, percent: int | None) -> None:
        found = self.order(order)
        amount = None
        if percent is not None and found is not None and self.backend.partial_capture:
            amount = max(10, found.authorized * percent // 100 // 10 * 10)
        self.call("capture_order", lambda: self.payments.capture_order(order, amount))

    @rule(order=orders, reason=s.cancel_reasons)
    def cancel(self, order: str, reason: str | None) -> None:
        why = reason if self.backend.reasons else None
        self.call("cancel_order", lambda: self.payments.cancel_order(order, reason=why))

    @rule(order=orders, percent=s.percentages, reason=s.refund_reasons)
    def refund(self, order: str, percent: int | None, reason: str | None) -> None:
        found = self.order(order)
        amount = None
        if percent is not None and found is not None:
            amount = max(10, found.refundable * percent // 100 // 10 * 10)
        why = reason if self.backend.reasons else None
        self.call("refund_order", lambda: self.payments.refund_order(order, amount, reason=why))

    @precondition(lambda self: self.fake is not None and self.backend.failing_refunds)
    @rule(order=orders, pick=st.integers(min_value=0, max_value=10))
    def fail_refund(self, order: str, pick: int) -> None:
        """A refund fails at the bank, also one that had succeeded (refund.failed)."""
        found = self.order(order)
        assert self.fake is not None
        refunds = [t.reference for t in found.transactions if t.kind == "refund"] if found else []
        if refunds:
            with suppress(IllegalStateError, NotFoundError):
                self.fake.fail_refund(refunds[pick % len(refunds)])

    # ------------------------------------------------------- webhooks, reconcile

    def pull_events(self) -> None:
        if self.fake is None:
            return
        events = self.fake.events()
        self.queue.extend(events[self.pulled :])
        self.pulled = len(events)

    @precondition(lambda self: self.fake is not None)
    @rule(pick=st.integers(min_value=0, max_value=10_000), redeliver=st.booleans())
    def deliver_webhook(self, pick: int, redeliver: bool) -> None:
        """Deliver one undelivered event, picked at random (so reordered and
        delayed); ``redeliver`` keeps it queued to be delivered again."""
        self.pull_events()
        if not self.queue:
            return
        index = pick % len(self.queue)
        payload, header = self.queue[index] if redeliver else self.queue.pop(index)
        self.call("handle_webhook", lambda: self.payments.handle_webhook(payload, header))

    @rule()
    def reconcile(self) -> None:
        self.call("reconcile", lambda: self.payments.reconcile(older_than=timedelta(0)))

    # ----------------------------------------------------------------- crashes

    @rule(mid_call=st.booleans())
    def crash(self, mid_call: bool) -> None:
        """The host restarts between two calls, or dies inside its next mutating
        gateway call (the gateway acts, the claim's release is lost)."""
        if mid_call and self.backend.crash_mid_call:
            self.gateway.crash_next = True
        else:
            self.outcomes["restart"] += 1
            self.reopen()

    # --------------------------------------------------------------- invariants

    @invariant()
    def store_is_consistent(self) -> None:
        if not self.started:
            return
        _, orders, intents, texts = self.contents()
        self.check_one_live_intent_per_cart(intents, orders)
        self.check_one_order_per_intent(orders)
        for order in orders:
            self.check_amounts(order)
            self.check_statuses(order)
            self.check_no_regression(order)
        leaked = [t for t in texts if "_secret_" in t]
        assert not leaked, f"a client secret is stored: {leaked[0][:200]}"

    def check_one_live_intent_per_cart(
        self, intents: list[IntentRecord], orders: list[Order]
    ) -> None:
        # An intent an order holds goes with the order, not the cart (a kept cart
        # that changes gets its own): only the ones that follow a cart count.
        held = {o.intent_id for o in orders if o.status != "cancelled"}
        live = Counter(
            r.cart_id
            for r in intents
            if self.remote_status(r) in REUSABLE and r.order_id is None and r.id not in held
        )
        crowded = {cart: n for cart, n in live.items() if n > 1}
        assert not crowded, f"carts with more than one live intent: {crowded}"

    def check_one_order_per_intent(self, orders: list[Order]) -> None:
        payers: dict[str, set[str]] = {}
        for order in orders:
            for t in payment_transactions(order):
                payers.setdefault(t.reference, set()).add(order.id)
        shared = {ref: ids for ref, ids in payers.items() if len(ids) > 1}
        assert not shared, f"an intent pays more than one order: {shared}"

    def check_amounts(self, order: Order) -> None:
        if order.flag is None:
            for t in payment_transactions(order):
                assert t.currency == order.currency, f"{order.id}: {t} in another currency"
                if t.kind in ("authorize", "purchase"):
                    assert t.amount == order.total, (
                        f"{order.id}: {t.kind} of {t.amount} for a total of {order.total}"
                    )
        if order.amount("authorize", "complete", "cancelled"):
            assert order.amount("capture") <= order.amount("authorize", "complete", "cancelled"), (
                f"{order.id}: captured more than authorized: {order.transactions}"
            )
        refunds = order.amount("refund", "complete", "pending")
        assert refunds <= order.captured, (
            f"{order.id}: refunds {refunds} exceed the captured {order.captured}"
        )

    def check_statuses(self, order: Order) -> None:
        statuses, payments = expected_statuses(order)
        assert order.status in statuses and order.payment in payments, (
            f"{order.id} is {order.status}/{order.payment} but its transactions say "
            f"{sorted(statuses)}/{sorted(payments)}: {order.transactions}"
        )

    def check_no_regression(self, order: Order) -> None:
        before = self.seen.get(order.id)
        txns = {t.id: t for t in order.transactions}
        if before is not None:
            status, payment, old_txns = before
            assert order.status in STATUS_REACH[status], (
                f"{order.id} went from {status} to {order.status}"
            )
            assert order.payment in PAYMENT_REACH[payment], (
                f"{order.id} went from payment {payment} to {order.payment}"
            )
            for txn_id, old in old_txns.items():
                new = txns.get(txn_id)
                assert new is not None, f"{order.id} lost the transaction {old}"
                assert transaction_may_move(old, new), f"{order.id}: {old} became {new}"
        self.seen[order.id] = (order.status, order.payment, txns)

    # ----------------------------------------------------------------- teardown

    def settle_everything(self) -> None:
        """No more faults or crashes: reconcile, then confirm every order."""
        self.gateway.enabled = False
        self.gateway.crash_next = False
        report = self.call("reconcile", lambda: self.payments.reconcile(older_than=timedelta(0)))
        assert report is not None, "reconcile failed with faults off"
        self.orphaned = {o.intent_id for o in report.orphaned}
        _, orders, _, _ = self.contents()
        for order in orders:
            self.call("confirm_order", partial(self.payments.confirm_order, order.id))
        self.store_is_consistent()

    def check_gateway_matches_orders(self) -> None:
        """Every payment and refund the gateway holds is on exactly one order."""
        _, orders, intents, _ = self.contents()
        intent_ids = self.fake.intent_ids() if self.fake is not None else [r.id for r in intents]
        for intent_id in intent_ids:
            snap = self.gateway.retrieve_intent(intent_id)
            holders = [
                o for o in orders if any(t.reference == intent_id for t in payment_transactions(o))
            ]
            flagged = [o.id for o in orders if o.intent_id == intent_id and o.flag]
            if snap.status in ("succeeded", "requires_capture") and not holders and flagged:
                continue  # docs/design.md, rule 5: the amounts differ, the orders are flagged
            if not holders and intent_id in self.orphaned:
                continue  # money on a cart with no live order: reconcile reported it
            if snap.status in ("succeeded", "requires_capture"):
                assert len(holders) == 1, (
                    f"{intent_id} is {snap.status} but is on {len(holders)} orders "
                    f"({[o.id for o in holders]})"
                )
                (holder,) = holders
                if snap.status == "succeeded":
                    self.run.paid_orders += 1
                    received = snap.amount_received or snap.amount
                    if self.backend.exact_amounts:
                        assert holder.captured == received, (
                            f"{holder.id} captured {holder.captured}, the gateway {received}"
                        )
                elif self.backend.exact_amounts:
                    assert holder.authorized == snap.amount_capturable, (
                        f"{holder.id} authorized {holder.authorized}, "
                        f"the gateway {snap.amount_capturable}"
                    )
            else:
                assert not holders, f"{intent_id} is {snap.status} but pays {holders[0].id}"
            if snap.status != "succeeded":
                continue
            for refund in self.gateway.list_refunds(intent_id):
                if refund.status not in ("succeeded", "failed"):
                    continue
                on = [
                    t
                    for o in orders
                    for t in o.transactions
                    if t.kind == "refund" and t.reference == refund.id
                ]
                assert len(on) == 1, f"refund {refund.id} is on {len(on)} orders"
                recorded = "complete" if refund.status == "succeeded" else "failed"
                assert (on[0].amount, on[0].status) == (refund.amount, recorded), (
                    f"{refund.status} refund {refund.id} of {refund.amount} recorded as {on[0]}"
                )
                if refund.status == "failed":
                    self.run.failed_refunds += 1
                else:
                    self.run.refunded_orders += 1


# ------------------------------------------------------------------------- tests


def run_machine(backend: Backend, config: settings | None = None) -> Run:
    """Run the machine for ``backend`` under ``config`` (default: the loaded profile)."""
    run = run_for(backend.label)
    started = time.perf_counter()
    try:
        run_state_machine_as_test(
            lambda: PaymentsMachine(backend),  # type: ignore[arg-type]  # a factory is allowed
            settings=config,
        )
    finally:
        run.seconds += time.perf_counter() - started
    return run


def assert_explored(run: Run) -> None:
    """The run did what it is for: it paid, refunded and met faults and crashes."""
    assert run.examples > 0 and run.steps > 0
    assert run.paid_orders > 0, "no example paid an order: the machine is not exploring"
    assert sum(run.faults.values()) > 0, "no fault was injected"


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_fake_gateway_with_faults(store: Literal["memory", "sqlite"], tmp_path: Path) -> None:
    run = run_machine(fake_backend(store, tmp_path))
    assert_explored(run)
    assert run.outcomes["crash"] > 0, "no host crashed mid-call"
    assert run.refunded_orders > 0, "no example refunded"
    assert run.failed_refunds > 0, "no refund failed"


LOCALSTRIPE_TOLERATES: tuple[type[CartpayError], ...] = (InvalidRequestError,)
"""localstripe cannot confirm again after a decline (400 'Bad request')."""


@pytest.mark.localstripe
def test_stripe_gateway_on_localstripe(stripe_gateway: PaymentGateway, tmp_path: Path) -> None:
    """The same machine through StripeGateway against localstripe, restricted to what
    localstripe supports: no idempotency (so no timeout-after or mid-call crash), no
    3-D Secure or async methods, no reasons, no partial captures, no webhooks."""
    backend = Backend(
        "stripe+localstripe/sqlite",
        "sqlite",
        lambda: stripe_gateway,
        faults=("timeout_before", "server_error", "lock_timeout", "rate_limited"),
        crash_mid_call=False,
        methods={
            "succeeds": "pm_card_visa",
            "declined": "pm_card_chargeCustomerFail",
            "authentication": "pm_card_visa",
            "processing": "pm_card_visa",
        },
        reasons=False,
        partial_capture=False,
        tolerated=LOCALSTRIPE_TOLERATES,
        exact_amounts=False,
        sqlite_dir=tmp_path,
    )
    default = settings()
    config = settings(
        default, max_examples=max(3, default.max_examples // 6), stateful_step_count=30
    )
    run = run_machine(backend, config)
    assert_explored(run)
