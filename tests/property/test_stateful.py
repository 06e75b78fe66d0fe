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
import json
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar, cast, get_args

import pytest
from hypothesis import seed as fixed_seed, settings, strategies as st
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
    AsyncCartPaymentIntent,
    CardDeclinedError,
    CartpayError,
    CartPaymentIntent,
    IllegalStateError,
    IntentAlreadyUsedError,
    IntentOptions,
    IntentRecord,
    InvalidRequestError,
    NotFoundError,
    OperationPendingError,
    Order,
    PricingError,
    RefundSnapshot,
    Transaction,
    ValidationError,
)
from cartpay._converter import dumps, loads
from cartpay._lifecycle import (
    MONEY_MOVING,
    ORDER_STATUS_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    REUSABLE,
)
from cartpay._models import Adjustment, Cart, LineItem, OrderStatus, PaymentStatus
from cartpay._ports import PaymentGateway, Store, StoreReads, StoreTransaction
from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import AsyncFakeStripeGateway, FakePricing, FakeStripeGateway, FaultyGateway
from cartpay.testing._faulty import ALL_FAULTS, FaultKind, InjectedFault, _error

from ..twins import Blocking, Twin, event_loop
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
#: The events the fake sends when a dispute opens, and when it is decided.
DISPUTE_OPENED = frozenset({"charge.dispute.created", "charge.dispute.funds_withdrawn"})
DISPUTE_CLOSED = frozenset({"charge.dispute.closed", "charge.dispute.funds_reinstated"})
#: Dispute statuses at the gateway in which the funds are out (open or lost),
#: and the transaction status each must be recorded as once all is delivered.
DISPUTE_RECORDED = {
    "needs_response": "pending",
    "under_review": "pending",
    "lost": "complete",
    "won": "cancelled",
}
#: The pricing port's tax: 8 % of the items, as the code ``auto-tax``.
TAX_RATE, TAX_CODE = 800, "auto-tax"
STEPS = {"usd": 1, "jpy": 1, "kwd": 10}


def model_total(items: tuple[LineItem, ...], adjustments: tuple[Adjustment, ...]) -> int:
    """The model's own total (not ``Cart.total``): items, plus every adjustment
    but discounts, less discounts."""
    total = sum(i.unit_amount * i.quantity for i in items)
    for a in adjustments:
        total += -a.amount if a.kind == "discount" else a.amount
    return total


def model_tax(items: tuple[LineItem, ...], currency: str) -> int:
    """What the pricing port must have charged as tax on ``items``."""
    subtotal = sum(i.unit_amount * i.quantity for i in items)
    return subtotal * TAX_RATE // 10_000 // STEPS[currency] * STEPS[currency]


#: Groups of rules (issue 12's adversarial user), each of which a backend may leave
#: out: ``browser`` (the customer confirms at the gateway with the client secret,
#: before or after checkout), ``lost_answers`` (the answer to any mutating call is
#: lost, after the gateway applied it or before it was sent, and the host may give
#: up), ``other_amounts`` (a capture or refund whose answer was lost is retried with
#: another amount), ``kept_carts`` (checkouts that keep the cart, and the kept cart
#: changed, re-priced and deleted afterwards), ``dashboard_refunds`` and
#: ``dashboard_cancels`` (refunds, cancels and expiring authorizations made at the
#: gateway), ``dropped_events`` (an event never delivered: reconcile must repair it),
#: ``abandoned`` (piles of abandoned checkouts in reconcile's way) and ``disputes``
#: (chargebacks opened and decided at the gateway, and refunds asked above what
#: they leave refundable; issue 14); issue 20's ``adjustments`` (shipping, tax,
#: fees and discounts added to and removed from any cart between any steps) and
#: ``pricing`` (every other example's façade has a pricing port that taxes the
#: items, and that sometimes fails). ``refund_keys`` (refunds under the host's
#: idempotency key, retried after lost answers and after other calls settled
#: them) runs in a machine of its own, :class:`RefundKeysMachine`, so it is not
#: in :data:`ALL_FEATURES`: the other groups' searches stay as they were.
Feature = Literal[
    "browser",
    "lost_answers",
    "other_amounts",
    "kept_carts",
    "dashboard_refunds",
    "dashboard_cancels",
    "dropped_events",
    "abandoned",
    "disputes",
    "adjustments",
    "pricing",
    "refund_keys",
]
ALL_FEATURES: frozenset[Feature] = frozenset(get_args(Feature)) - frozenset({"refund_keys"})
#: Reconcile's ``limit`` in the machine: small, so abandoned orders fill its window.
RECONCILE_LIMIT = 4


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
    #: The rule groups of :data:`ALL_FEATURES` this backend runs (the fake: all).
    features: frozenset[Feature] = ALL_FEATURES
    #: Which façade the host drives: ``async`` is AsyncCartPaymentIntent over the
    #: same faulty gateway and store, seen as coroutines (each call run to its end
    #: on an event loop of the example's own, tests/twins.py).
    twin: Twin = "sync"


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
    :class:`HostCrash` propagates (the façade's release of its claim fails).

    It can also lose the answer to the next call of one operation on purpose
    (``lose_next``: the operation, and whether the gateway applied it first), and
    says so in ``lost`` (the host may give up instead of retrying). ``late_next``:
    the next call of that operation times out while its request is still on its
    way; it reaches the gateway when :meth:`land` is called."""

    def __init__(
        self, inner: PaymentGateway, *, seed: int, rate: float, faults: tuple[FaultKind, ...]
    ) -> None:
        super().__init__(inner, seed=seed, rate=rate, faults=faults)
        self.crash_next = False
        self.on_crash: Callable[[], None] = lambda: None
        self.lose_next: tuple[str, bool] | None = None
        self.lost = False
        self.late_next: str | None = None
        self.in_flight: list[Callable[[], object]] = []
        #: The next call of this operation fails with a server error (Stripe did
        #: not act), and the one after it is late (``late_next``).
        self.error_then_late: str | None = None

    def land(self) -> None:
        """The requests still on their way reach the gateway, in order."""
        while self.in_flight:
            with suppress(Exception):  # (nobody hears the answer)
                self.in_flight.pop(0)()

    def _mutate(self, operation: str, intent_id: str | None, key: str, call: Callable[[], R]) -> R:
        if self.enabled and self.error_then_late == operation:
            self.error_then_late = None
            self.late_next = operation
            number = self.calls
            self.calls += 1
            self.injected.append(
                InjectedFault(number, operation, "server_error", intent_id, key, False)
            )
            raise _error("server_error", operation, intent_id)
        if self.enabled and self.late_next == operation:
            self.late_next = None
            self.lost = True
            number = self.calls
            self.calls += 1
            self.in_flight.append(call)
            fault = InjectedFault(number, operation, "timeout_before", intent_id, key, False)
            self.injected.append(fault)
            raise _error("timeout_before", operation, intent_id)
        if self.enabled and self.lose_next is not None and self.lose_next[0] == operation:
            applied = self.lose_next[1]
            self.lose_next = None
            self.lost = True
            number = self.calls
            self.calls += 1
            if applied:
                with suppress(Exception):  # the answer is lost, whatever it was
                    call()
            kind: FaultKind = "timeout_after" if applied else "timeout_before"
            self.injected.append(InjectedFault(number, operation, kind, intent_id, key, applied))
            raise _error(kind, operation, intent_id)
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


def _event_type(payload: bytes) -> str:
    return str(json.loads(payload)["type"])


def model_refundable(order: Order) -> int:
    """What the model says may still be refunded, from the transactions alone
    (independently of ``Order.refundable``): captured less refunds (complete or
    pending), and nothing while a dispute holds or took money (open or lost:
    Stripe refuses any refund of the charge then)."""
    if any(
        t.kind == "dispute" and t.status in ("complete", "pending") and t.amount
        for t in order.transactions
    ):
        return 0
    captured = sum(
        t.amount
        for t in order.transactions
        if t.kind in ("purchase", "capture") and t.status == "complete"
    )
    taken = sum(
        t.amount
        for t in order.transactions
        if t.kind == "refund" and t.status in ("complete", "pending")
    )
    return captured - taken


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
        self.dashboard_calls = 0
        #: cart id → the intent whose client secret the host last handed the browser
        self.handles: dict[str, str] = {}
        #: The host does not retry the call whose answer ``lose_next_answer`` loses.
        self.give_up = False
        self.seen: dict[str, tuple[OrderStatus, PaymentStatus, dict[str, Transaction]]] = {}
        self.orphaned: set[str] = set()
        self.outcomes: Counter[str] = Counter()
        self.path: Path | None = None
        self.tmpdir: str | None = None
        self.reader: sqlite3.Connection | None = None
        self.pricing: FakePricing | None = None
        self.loops = ExitStack()

    # ------------------------------------------------------------ setup, teardown

    @initialize(seed=s.fault_seeds)
    def start(self, seed: int) -> None:
        inner = self.backend.gateway()
        self.fake = inner if isinstance(inner, FakeStripeGateway) else None
        self.gateway = CrashingGateway(
            inner, seed=seed, rate=self.backend.rate, faults=self.backend.faults
        )
        self.gateway.on_crash = self.kill_store
        # Every other example prices its carts with a port (the seed decides, so
        # the examples other rule groups draw are unchanged).
        priced = self.has("pricing") and seed % 2 == 0
        self.pricing = FakePricing(tax_rate=TAX_RATE, tax_code=TAX_CODE) if priced else None
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
        if self.backend.twin == "sync":
            self.payments = CartPaymentIntent(
                return_url="https://shop.test/return",
                gateway=self.gateway,
                store=self.store,
                clock=self.clock,
                lease=LEASE,
                wait=timedelta(0),
                pricing=self.pricing,
            )
            return
        # The async twin over the very gateway (faults, crashes) and store (it
        # dies with the host): their calls as coroutines; a plain pricing port.
        twin = AsyncCartPaymentIntent(
            return_url="https://shop.test/return",
            gateway=AsyncFakeStripeGateway(cast(FakeStripeGateway, self.gateway)),
            store=AsyncMemoryStore(cast(MemoryStore, self.store)),
            clock=self.clock,
            lease=LEASE,
            wait=timedelta(0),
            pricing=self.pricing,
        )
        loop = self.loops.enter_context(event_loop())
        self.payments = cast(CartPaymentIntent, Blocking(twin, loop))

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
            if self.started and self.fake is not None:
                self.quiet_moment()
                self.check_every_payment_owned()
            elif self.started:
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
            self.loops.close()

    # ------------------------------------------------------------- the host's call

    def call(self, name: str, fn: Callable[[], T]) -> T | None:
        """Call the façade as a host would: repeat retryable errors up to
        :data:`RETRIES` times (none after an answer lost on purpose when the host
        gives up), accept the typed errors a host must expect, restart after a
        crash. Any other exception is a bug and fails the test."""
        for attempt in range(RETRIES + 1):
            self.gateway.lost = False
            try:
                result = fn()
            except HostCrash:
                self.outcomes["crash"] += 1
                self.reopen()
                return None
            except CartpayError as exc:
                gave_up = self.gateway.lost and self.give_up
                if gave_up:
                    self.give_up = False
                    self.outcomes[f"{name}:lost-answer"] += 1
                if exc.retryable and attempt < RETRIES and not gave_up:
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
            OperationPendingError,  # another amount while a lost answer is pending
            PricingError,  # the pricing port failed on purpose (add_item)
            *self.backend.tolerated,
        )
        if isinstance(exc, expected):
            return
        # (charge_disputed: a chargeback cartpay has not heard of yet)
        refused = ("amount_too_large", "charge_already_refunded", "charge_disputed")
        if name == "refund_order" and isinstance(exc, InvalidRequestError) and exc.code in refused:
            return  # a Dashboard refund cartpay has not heard of yet left less to refund
        if isinstance(exc, NotFoundError) and exc.kind in ("cart", "order"):
            return
        raise AssertionError(f"{name} raised an unexpected {type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ reading

    def cart_gone(self, cart_id: str) -> bool:
        with self.store.inner.transaction() as tx:
            return tx.get_cart(cart_id) is None

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

    def has(self, feature: Feature) -> bool:
        """Whether the backend runs the rule group (all but kept carts need the fake)."""
        wanted = feature in self.backend.features
        return wanted and (self.fake is not None or feature == "kept_carts")

    def cart_exists(self, cart_id: str) -> bool:
        with self.store.inner.transaction() as tx:
            return tx.get_cart(cart_id) is not None

    def order_intent(self, order_id: str) -> str | None:
        found = self.order(order_id)
        return None if found is None else found.intent_id

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
            self.put_item(cart.id, sku, unit_amount, quantity)
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
        later=s.line_items,
        keep_cart=st.booleans(),
        payment=st.none() | s.payments,
        where=st.sampled_from(["server", "browser_before_checkout", "browser_after_checkout"]),
    )
    def shop(
        self,
        currency: str,
        manual: bool,
        items: list[tuple[str, int, int]],
        later: list[tuple[str, int, int]],
        keep_cart: bool,
        payment: s.Payment | None,
        where: str,
    ) -> object:
        """A customer's whole visit: cart, items, intent, more items, checkout, and
        maybe a payment: confirmed by the server, or by the browser (Payment
        Element, Express Checkout) with the client secret before or after checkout."""
        cart = self.new_cart(currency, manual, items)
        if cart is None:
            return multiple()
        self.create_payment_intent(cart)
        for sku, unit_amount, quantity in later:
            self.put_item(cart, sku, unit_amount, quantity)
        if where == "browser_before_checkout" and not self.has("browser"):
            where = "server"
        if payment is not None and where == "browser_before_checkout":
            self.pay_cart_in_browser(cart, payment)
        order = self.checkout(cart, keep_cart)
        if isinstance(order, str) and payment is not None:
            if where == "server":
                self.confirm_payment(order, payment)
            elif self.fake is not None:
                self.pay_in_browser(order, payment)
        return order

    @rule(
        cart=carts,
        sku=s.skus,
        unit_amount=s.unit_amounts,
        quantity=s.quantities,
        data=st.data(),
    )
    def add_item(
        self, cart: str, sku: str, unit_amount: int, quantity: int, data: st.DataObject
    ) -> None:
        """An item added to a cart; with issue 20's rule groups, instead (one
        time in two) an adjustment added or removed, and with the pricing port,
        maybe the host's tax engine timing out on the next cart it prices. (No
        rule of their own and nothing drawn when they are off, so that the
        examples the other rule groups draw stay as they were.)"""
        if self.pricing is not None and data.draw(st.booleans(), label="engine_fails"):
            self.pricing.fail_next(TimeoutError("the tax engine timed out"))
        if self.has("adjustments"):
            action = data.draw(s.adjustment_actions, label="action")
            if action == "remove":
                code = data.draw(s.adjustment_codes, label="code")
                self.call("remove_adjustment", lambda: self.payments.remove_adjustment(cart, code))
                return
            if action != "item":
                self.adjust(
                    cart, action, data.draw(s.adjustment_codes), data.draw(s.adjustment_amounts)
                )
                return
        self.put_item(cart, sku, unit_amount, quantity)

    def adjust(self, cart: str, kind: str, code: str, amount: int) -> None:
        """Shipping, tax, a fee or a discount added to the cart, replacing the one
        of the same code (refused when it has another kind)."""
        self.call(
            "add_adjustment",
            lambda: self.payments.add_adjustment(
                cart, kind=kind, code=code, label=code.title(), amount=amount
            ),
        )

    def put_item(self, cart: str, sku: str, unit_amount: int, quantity: int) -> None:
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
            # Issue 12, behaviour 11: never hand the browser an intent that cannot pay.
            assert handle.status != "canceled", f"create_payment_intent({cart}) gave {handle}"
            self.handles[cart] = handle.id
            self.check_sent(cart, handle.amount)

    @rule(cart=carts)
    def update_payment_intent(self, cart: str) -> None:
        handle = self.call("update_intent", lambda: self.payments.update_payment_intent(cart))
        if handle is not None:
            self.handles[cart] = handle.id
            self.check_sent(cart, handle.amount)

    def check_sent(self, cart_id: str, amount: int) -> None:
        """Issue 20: the amount an intent call answers with is the model's total of
        the cart as stored after it (priced, with a port)."""
        with self.store.inner.transaction() as tx:
            cart = tx.get_cart(cart_id)
        if cart is None:
            return
        expected = model_total(cart.items, cart.adjustments)
        assert amount == expected, (
            f"{cart_id}'s intent is for {amount}, but its items and adjustments total "
            f"{expected}: {cart.items} {cart.adjustments}"
        )
        if self.pricing is not None:
            self.check_taxed(cart_id, cart.items, cart.adjustments, cart.currency)

    def check_taxed(
        self,
        what: str,
        items: tuple[LineItem, ...],
        adjustments: tuple[Adjustment, ...],
        currency: str,
    ) -> None:
        """With the pricing port: the tax is the port's for these very items."""
        taxes = [a.amount for a in adjustments if a.code == TAX_CODE]
        assert taxes == [model_tax(items, currency)], (
            f"{what} is taxed {taxes} but its items {items} owe {model_tax(items, currency)}"
        )

    # ------------------------------------------------------------- adjustments

    @rule(target=orders, cart=carts, keep_cart=st.booleans())
    def checkout(self, cart: str, keep_cart: bool) -> object:
        keep_cart = keep_cart and self.has("kept_carts")
        order = self.call("checkout", lambda: self.payments.checkout(cart, keep_cart=keep_cart))
        if order is not None and self.cart_gone(cart):
            # Issue 16: a retried checkout of a consumed cart returns the order it made.
            again = self.call("checkout", lambda: self.payments.checkout(cart))
            assert again is None or again.id == order.id, f"retry of {cart}: {again} != {order}"
        return multiple() if order is None else order.id

    @precondition(lambda self: self.has("kept_carts"))
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
        done = self.call(
            "confirm_payment",
            lambda: self.payments.confirm_payment(order, payment_method=method),
        )
        # A confirm that returns was not declined: a retry after a lost answer
        # that was a decline raises it too (issue 14, attack finding). The order's
        # payment may still say ``failed`` (an earlier attempt, perhaps one the
        # browser made, while this one waits for 3-D Secure or the bank), so the
        # gateway's intent is what shows this attempt was not declined.
        if done is not None and done.intent_id and self.fake is not None:
            status = self.fake.intent(done.intent_id).status
            assert status != "requires_payment_method", (
                f"confirm_payment({order}, {payment}) returned though its intent"
                f" {done.intent_id} is {status} (declined, or never confirmed)"
            )

    def browser_confirms(self, intent_id: str, payment: s.Payment) -> None:
        """The customer confirms ``intent_id`` with its client secret (Stripe.js) at
        the gateway: cartpay learns of it only from webhooks, checkout,
        confirm_order or reconcile."""
        assert self.fake is not None
        self.browser_payments += 1
        self.outcomes[f"pm:{payment}"] += 1
        with suppress(CardDeclinedError, IllegalStateError):
            self.fake.confirm_intent(
                intent_id,
                payment_method=self.backend.methods[payment],
                return_url="https://shop.test/return",
                idempotency_key=f"browser:{self.browser_payments}",
            )

    @precondition(lambda self: self.fake is not None)
    @rule(order=orders, payment=s.payments)
    def pay_in_browser(self, order: str, payment: s.Payment) -> None:
        """The customer pays the order's intent in the browser after checkout."""
        intent_id = self.order_intent(order)
        if intent_id is not None:
            self.browser_confirms(intent_id, payment)

    @precondition(lambda self: self.has("browser"))
    @rule(cart=carts, payment=s.payments)
    def pay_cart_in_browser(self, cart: str, payment: s.Payment) -> None:
        """The customer pays with the client secret the host handed out for the
        cart, before checkout (Payment Element, Express Checkout) or, for a kept
        cart, after it."""
        intent_id = self.handles.get(cart)
        if intent_id is not None:
            self.browser_confirms(intent_id, payment)

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
        intent_id = found.intent_id if found is not None else None
        before = self.fake.intent(intent_id).status if self.fake and intent_id else None
        reached = self.fake.count("capture_intent") if self.fake else 0
        done = self.call("capture_order", lambda: self.payments.capture_order(order, amount))
        if done is None:
            self.check_refusal_recorded(order, "capture_intent", reached)
        if done is not None and amount is not None:
            # Issue 12, behaviour 5: a capture that reports success captured what
            # was asked, never an earlier call's amount.
            assert done.captured == amount, (
                f"capture_order({order}, amount={amount}) succeeded with {done.captured} "
                f"captured: {done.transactions}"
            )
        if self.fake is not None and intent_id is not None and amount is not None:
            # ... and what this call sent was what it was asked for, or nothing.
            snap = self.fake.intent(intent_id)
            if before == "requires_capture" and snap.status == "succeeded":
                assert snap.amount_received == amount, (
                    f"capture_order({order}, amount={amount}) captured {snap.amount_received}"
                )

    @rule(order=orders, reason=s.cancel_reasons)
    def cancel(self, order: str, reason: str | None) -> None:
        why = reason if self.backend.reasons else None
        reached = self.fake.count("cancel_intent") if self.fake else 0
        done = self.call("cancel_order", lambda: self.payments.cancel_order(order, reason=why))
        if done is None:
            self.check_refusal_recorded(order, "cancel_intent", reached)

    def check_refusal_recorded(self, order: str, operation: str, reached: int) -> None:
        """After a capture or cancel that failed once it reached the gateway and left
        no claim (a refusal, not a lost answer): the order shows what the gateway
        has. An intent Stripe canceled (an authorization that expired, a cancel at
        the Dashboard) leaves nothing authorized on it (issue 14, attack finding)."""
        found = self.order(order)
        if self.fake is None or found is None or found.intent_id is None:
            return
        if found.pending is not None or self.fake.count(operation) == reached:
            return
        snap = self.fake.intent(found.intent_id)
        assert snap.status != "canceled" or found.authorized == 0, (
            f"{operation} of {order} was refused for a canceled intent, yet the order"
            f" still shows {found.authorized} authorized: {found.transactions}"
        )

    @rule(order=orders, percent=s.percentages, reason=s.refund_reasons)
    def refund(
        self,
        order: str,
        percent: int | None,
        reason: str | None,
        transfer: bool | None = None,
    ) -> None:
        """``transfer``: the Connect flag ``reverse_transfer`` (only the fake takes it)."""
        found = self.order(order)
        amount = None
        if percent is not None and found is not None:
            amount = max(10, found.refundable * percent // 100 // 10 * 10)
        why = reason if self.backend.reasons else None
        intent_id = found.intent_id if found is not None else None
        had = {r.id for r in self.fake.refunds(intent_id)} if self.fake and intent_id else set()
        done = self.call(
            "refund_order",
            lambda: self.payments.refund_order(
                order, amount, reason=why, reverse_transfer=transfer
            ),
        )
        if self.fake is not None and intent_id is not None:
            # Issue 12, behaviour 5 for refunds: a call makes at most one refund,
            # of the amount asked for, never an earlier call's that never left.
            made = [r.amount for r in self.fake.refunds(intent_id) if r.id not in had]
            assert len(made) <= 1 and (amount is None or made in ([], [amount])), (
                f"refund_order({order}, amount={amount}) made the refunds {made}"
            )
        if done is not None and found is not None and amount is not None:
            # Issue 12, behaviour 5 for refunds: success means a refund of the
            # amount asked for was made by this call.
            known = {t.id for t in found.transactions}
            new = [t.amount for t in done.transactions if t.kind == "refund" and t.id not in known]
            # (or it was the same call as a refund claim whose answer was lost: its
            # refund, perhaps recorded meanwhile, is the answer; docs/money.md)
            lost = found.pending
            same = lost is not None and lost.operation == "refund" and lost.amount == amount
            assert amount in new or same, (
                f"refund_order({order}, amount={amount}) succeeded with new refunds {new}"
            )
        if done is not None and found is not None and self.fake is not None:
            # Issue 14 (Connect refunds), retries with other arguments: a call told
            # its refund was made gets one made with its own flags, never an
            # earlier call's made with other ones.
            known = {t.id for t in found.transactions}
            sent = [
                self.fake.refund_request(t.reference)
                for t in done.transactions
                if t.kind == "refund" and t.id not in known and t.reference
            ]
            sent = [r for r in sent if r]  # (not Dashboard refunds found on the way)
            assert not sent or any(r.get("reverse_transfer") == transfer for r in sent), (
                f"refund_order({order}, amount={amount}, reverse_transfer={transfer})"
                f" succeeded with a refund sent as {sent}"
            )

    @precondition(lambda self: self.has("other_amounts"))
    @rule(
        order=st.none() | orders,
        operation=st.sampled_from(["capture", "refund"]),
        first=s.percentages,
        second=s.percentages,
        applied=st.booleans(),
        transfers=st.tuples(st.sampled_from([None, True, False]), st.sampled_from([None, True])),
    )
    def retry_with_another_amount(
        self,
        order: str | None,
        operation: str,
        first: int | None,
        second: int | None,
        applied: bool,
        transfers: tuple[bool | None, bool | None],
    ) -> None:
        """A capture or refund whose answer is lost (after the gateway applied it,
        or before it was sent); the host gives up on it, then asks again with
        another amount (a refund also with other Connect flags, on the fake).
        ``order=None``: on a new order, paid (authorized for a capture) by the
        server, so that there is something to capture or refund."""
        if order is None:
            made = self.shop(
                "usd", operation == "capture", [("tee", 2500, 2)], [], False, "succeeds", "server"
            )
            if not isinstance(made, str):
                return
            order = made
        lost = "capture_intent" if operation == "capture" else "create_refund"
        self.gateway.lose_next = (lost, applied)
        self.give_up = True
        flags = transfers if self.fake is not None else (None, None)
        for percent, transfer in zip((first, second), flags, strict=True):
            if operation == "capture":
                self.capture(order, percent)
            else:
                self.refund(order, percent, None, transfer)
        self.gateway.lose_next = None
        self.give_up = False

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

    @precondition(lambda self: self.has("dashboard_refunds"))
    @rule(order=orders, percent=s.percentages)
    def refund_at_dashboard(self, order: str, percent: int | None) -> None:
        """A refund made in the Stripe Dashboard: cartpay hears of it from events."""
        intent_id = self.order_intent(order)
        assert self.fake is not None
        if intent_id is None:
            return
        snap = self.fake.intent(intent_id)
        left = snap.amount_received - sum(
            r.amount for r in self.fake.refunds(intent_id) if r.status != "failed"
        )
        amount = None if percent is None else max(10, left * percent // 100 // 10 * 10)
        with suppress(IllegalStateError, InvalidRequestError):
            self.fake.refund_outside(intent_id, amount)
            self.outcomes["dashboard:refund"] += 1

    @precondition(lambda self: self.has("dashboard_cancels"))
    @rule(order=orders)
    def cancel_at_dashboard(self, order: str) -> None:
        """An order's intent canceled in the Dashboard."""
        self.cancel_outside(self.order_intent(order))

    @precondition(lambda self: self.has("dashboard_cancels"))
    @rule(cart=carts)
    def cancel_cart_intent_at_dashboard(self, cart: str) -> None:
        """The intent a cart's browser holds, canceled in the Dashboard."""
        self.cancel_outside(self.handles.get(cart))

    def cancel_outside(self, intent_id: str | None) -> None:
        assert self.fake is not None
        if intent_id is None:
            return
        self.dashboard_calls += 1
        with suppress(IllegalStateError):
            self.fake.cancel_intent(
                intent_id, reason="abandoned", idempotency_key=f"dashboard:{self.dashboard_calls}"
            )
            self.outcomes["dashboard:cancel"] += 1

    @precondition(lambda self: self.has("dashboard_cancels"))
    @rule(order=orders)
    def expire_authorization(self, order: str) -> None:
        """Stripe lets an uncaptured authorization lapse (the intent is canceled)."""
        intent_id = self.order_intent(order)
        assert self.fake is not None
        if intent_id is not None:
            with suppress(IllegalStateError):
                self.fake.expire_authorization(intent_id)
                self.outcomes["dashboard:expired"] += 1

    @precondition(lambda self: self.has("kept_carts"))
    @rule(
        order=orders,
        sku=s.skus,
        unit_amount=s.unit_amounts,
        then=st.sampled_from(["update", "create", "delete", "update_then_delete"]),
    )
    def change_kept_cart(self, order: str, sku: str, unit_amount: int, then: str) -> None:
        """The cart an order was checked out from with ``keep_cart=True`` gets
        another item, then its intent is brought up to date and/or it is deleted."""
        found = self.order(order)
        if found is None or not self.cart_exists(found.cart_id):
            return
        cart = found.cart_id
        self.put_item(cart, sku, unit_amount, 1)
        if then in ("update", "update_then_delete"):
            self.update_payment_intent(cart)
        if then == "create":
            self.create_payment_intent(cart)
        if then in ("delete", "update_then_delete"):
            self.delete_cart(cart)

    @precondition(lambda self: self.has("lost_answers"))
    @rule(operation=s.lost_operations, applied=st.booleans(), give_up=st.booleans())
    def lose_next_answer(self, operation: str, applied: bool, give_up: bool) -> None:
        """The answer to the next ``operation`` call is lost: after the gateway
        applied it, or before it was sent. ``give_up``: the host does not retry
        that call (the customer's request failed; they go on)."""
        self.gateway.lose_next = (operation, applied)
        self.give_up = give_up

    @precondition(lambda self: self.has("abandoned"))
    @rule(count=s.pile_sizes, checkout=st.booleans())
    def abandon_checkouts(self, count: int, checkout: bool) -> None:
        """``count`` customers make an intent (and check out), then leave: the
        intents (orders) stay unpaid forever, in reconcile's way."""
        for _ in range(count):
            cart = self.new_cart("usd", False, [("tee", 1000, 1)])
            if cart is None:
                continue
            self.create_payment_intent(cart)
            if checkout:
                self.call("checkout", partial(self.payments.checkout, cart))

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
        done = self.call("handle_webhook", lambda: self.payments.handle_webhook(payload, header))
        if done is None and not redeliver:
            self.queue.append((payload, header))  # Stripe delivers it again later

    @precondition(lambda self: self.has("dropped_events"))
    @rule(pick=st.integers(min_value=0, max_value=10_000))
    def drop_webhook(self, pick: int) -> None:
        """An intent's event is never delivered (the endpoint was down for days):
        only reconcile can repair what it would have said. (Refund events are only
        delayed: reconcile does not re-read paid orders.)"""
        self.pull_events()
        droppable = [i for i, (p, _) in enumerate(self.queue) if b'"type":"payment_intent.' in p]
        if droppable:
            self.queue.pop(droppable[pick % len(droppable)])
            self.outcomes["webhook:dropped"] += 1

    @rule()
    def reconcile(self) -> None:
        self.call("reconcile", self.reconcile_once)

    def reconcile_once(self) -> object:
        return self.payments.reconcile(older_than=timedelta(0), limit=RECONCILE_LIMIT)

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
        self.check_one_intent_per_order(orders, intents)
        if self.fake is not None:
            self.check_money_taken(orders, intents)
        for order in orders:
            self.check_amounts(order)
            self.check_statuses(order)
            self.check_no_regression(order)
        leaked = [t for t in texts if "_secret_" in t]
        assert not leaked, f"a client secret is stored: {leaked[0][:200]}"

    def check_one_live_intent_per_cart(
        self, intents: list[IntentRecord], orders: list[Order]
    ) -> None:
        """A cart follows at most one intent that can still take a payment (one an
        order holds follows that order, not the cart)."""
        held = {o.intent_id for o in orders if o.status != "cancelled"}
        held |= {r.id for r in intents if r.order_id is not None}
        live = Counter(
            r.cart_id for r in intents if r.id not in held and self.remote_status(r) in REUSABLE
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

    def check_one_intent_per_order(self, orders: list[Order], intents: list[IntentRecord]) -> None:
        """No order is paid by two intents: its payments reference one intent, and
        at most one intent record names it as the order it pays."""
        for order in orders:
            refs = {t.reference for t in payment_transactions(order)}
            assert len(refs) <= 1, f"{order.id} is paid by {len(refs)} intents: {sorted(refs)}"
        bound = Counter(r.order_id for r in intents if r.order_id is not None)
        twice = {order_id: n for order_id, n in bound.items() if n > 1}
        assert not twice, f"orders that more than one intent pays: {twice}"

    def check_money_taken(self, orders: list[Order], intents: list[IntentRecord]) -> None:
        """Issue 12's invariant, on the gateway's state: an intent that took money
        (or is taking it) was charged exactly the total, in the currency, of the
        order that owns it (the order its record says it pays) and of every live
        order linked to it, and never more than that total was received."""
        assert self.fake is not None
        by_id = {o.id: o for o in orders}
        records = {r.id: r for r in intents}
        for intent_id in self.fake.intent_ids():
            snap = self.fake.intent(intent_id)
            if snap.status not in MONEY_MOVING:
                continue
            record = records.get(intent_id)
            owners = [o for o in orders if o.intent_id == intent_id and o.status != "cancelled"]
            if record is not None and record.order_id is not None:
                bound = by_id.get(record.order_id)
                assert bound is not None, f"{intent_id} pays {record.order_id}, which is gone"
                owners.append(bound)
            for owner in owners:
                assert (snap.amount, snap.currency) == (owner.total, owner.currency), (
                    f"{intent_id} ({snap.status}) charges {snap.amount} {snap.currency} "
                    f"for {owner.id}, whose total is {owner.total} {owner.currency}"
                )
                assert snap.amount_received <= owner.total, (
                    f"{intent_id} received {snap.amount_received} for {owner.id} of {owner.total}"
                )

    def check_amounts(self, order: Order) -> None:
        # Issue 20: the order's total is its items and adjustments' (the model's
        # sum), and with the pricing port its tax is the port's for its items.
        expected = model_total(order.items, order.adjustments)
        assert order.total == expected, (
            f"{order.id} totals {order.total}, its items and adjustments {expected}"
        )
        if self.pricing is not None and order.flag is None:
            self.check_taxed(order.id, order.items, order.adjustments, order.currency)
        # Issue 12, behaviour 12: a stale event never flags a paid order.
        assert not (order.captured and order.flag), f"{order.id} is paid and flagged {order.flag}"
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
        # A refund's news may come before the payment's (issue 12, behaviour 6):
        # then it may exceed what the order captured so far, never what the
        # intent received at the gateway.
        received = order.captured
        if self.fake is not None and order.intent_id is not None and refunds > received:
            received = max(received, self.fake.intent(order.intent_id).amount_received)
        assert refunds <= received, (
            f"{order.id}: refunds {refunds} exceed the captured {order.captured}"
        )
        self.check_disputed(order)

    def check_disputed(self, order: Order) -> None:
        """Issue 14's invariant: refunded + disputed (open or lost) ≤ captured. Per
        step, news may still be on its way: a dispute's may come before the
        payment's (bounded then by what the intent received at the gateway), and
        movements the gateway has since undone (a refund that failed, a dispute
        won) may still be recorded: those are left out of the sum."""
        disputes = [
            t for t in order.transactions if t.kind == "dispute" and t.status != "cancelled"
        ]
        if not disputes:
            return
        refunds = [
            t
            for t in order.transactions
            if t.kind == "refund" and t.status in ("complete", "pending")
        ]
        received = order.captured
        if self.fake is not None and order.intent_id is not None:
            received = max(received, self.fake.intent(order.intent_id).amount_received)
            failed = {r.id for r in self.fake.refunds(order.intent_id) if r.status == "failed"}
            won = {d.id for d in self.fake.disputes(order.intent_id) if d.status == "won"}
            refunds = [t for t in refunds if t.reference not in failed]
            disputes = [t for t in disputes if t.reference not in won]
        taken = sum(t.amount for t in refunds) + sum(t.amount for t in disputes)
        assert taken <= received, (
            f"{order.id}: refunds and disputes take {taken} of the {received} captured: "
            f"{order.transactions}"
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

    def quiet_moment(self) -> None:
        """Issue 12's quiet moment: no more faults, crashes or lost answers; every
        event still waiting is delivered (in the order it waits in), reconcile runs
        as often as its small limit needs to have looked at everything once, and
        every cart whose intent took money that no order holds is checked out.
        No ``confirm_order``: what the host does not do, cartpay must."""
        assert self.fake is not None
        self.gateway.enabled = False
        self.gateway.crash_next = False
        self.gateway.lose_next = None
        self.give_up = False
        if self.pricing is not None:
            self.pricing.fail_next(None)  # the tax engine is back
        self.pull_events()
        while self.queue:
            payload, header = self.queue.pop(0)
            self.call("handle_webhook", partial(self.payments.handle_webhook, payload, header))
        _, orders, intents, _ = self.contents()
        runs = -(-max(len(orders), len(intents), 1) // RECONCILE_LIMIT) + 1
        for _ in range(runs):
            assert self.call("reconcile", self.reconcile_once) is not None, (
                "reconcile failed with faults off"
            )
        carts, orders, intents, _ = self.contents()
        held = {o.intent_id for o in orders if o.status != "cancelled"}
        held |= {r.id for r in intents if r.order_id is not None}
        for cart in carts:
            intent_id = cart.payment_intent_id
            if intent_id is None or intent_id in held:
                continue
            if self.fake.intent(intent_id).status in MONEY_MOVING:
                self.call("checkout", partial(self.payments.checkout, cart.id))
        self.store_is_consistent()

    def check_every_payment_owned(self) -> None:
        """After the quiet moment: every intent that took money is on exactly one
        order of its amount and currency, whose captured, authorized and refunded
        amounts are the gateway's and whose status and payment are what the
        gateway's state implies; no order records money on an intent that took
        none; every refund is on exactly one order. Nothing is stranded."""
        assert self.fake is not None
        _, orders, _, _ = self.contents()
        for intent_id in self.fake.intent_ids():
            snap = self.fake.intent(intent_id)
            holders = [
                o
                for o in orders
                if any(
                    t.reference == intent_id
                    and t.kind in PAYMENT_KINDS
                    and t.status in ("complete", "pending")
                    for t in o.transactions
                )
            ]
            where = f"{intent_id} ({snap.status}, {snap.amount} {snap.currency})"
            if snap.status not in MONEY_MOVING:
                assert not holders, f"{where} took no money, yet {holders[0]} records some"
                if snap.status == "canceled":
                    for o in orders:
                        if any(t.reference == intent_id for t in o.transactions):
                            assert o.status == "cancelled", f"{where}: {o.id} is {o.status}"
                continue
            linked = [o.id for o in orders if o.intent_id == intent_id]
            assert len(holders) == 1, (
                f"{where} took money but is recorded on {len(holders)} orders "
                f"({[o.id for o in holders]}; linked: {linked}): stranded or doubled"
            )
            (holder,) = holders
            assert (holder.total, holder.currency) == (snap.amount, snap.currency), (
                f"{where} is on {holder.id} of {holder.total} {holder.currency}"
            )
            self.check_holder(holder, snap.status, where)
        self.check_refunds_recorded(orders)

    def check_holder(self, holder: Order, status: str, where: str) -> None:
        assert self.fake is not None
        snap = self.fake.intent(holder.intent_id or "")
        state = (holder.status, holder.payment, holder.captured, holder.authorized, holder.refunded)
        if status == "succeeded":
            self.run.paid_orders += 1
            self.check_disputes_recorded(holder, where)
            captured = snap.amount_received
            refunded = sum(r.amount for r in self.fake.refunds(snap.id) if r.status == "succeeded")
            if refunded >= captured:
                payment = "refunded"
            elif refunded:
                payment = "partially_refunded"
            else:
                payment = "paid" if captured >= holder.total else "partially_paid"
            expected: set[tuple[object, ...]] = {
                ("complete", payment, captured, authorized, refunded)
                for authorized in (0, holder.total)  # a manual capture authorized first
            }
        elif status == "requires_capture":
            payment = (
                "authorized" if snap.amount_capturable >= holder.total else "partially_authorized"
            )
            expected = {("processing", payment, 0, snap.amount_capturable, 0)}
        else:  # processing
            expected = {("processing", p, 0, 0, 0) for p in ("unpaid", "failed")}
        assert state in expected, (
            f"{where} is on {holder.id}, which is {state[:2]} with captured/authorized/"
            f"refunded {state[2:]}; the gateway implies one of {sorted(map(str, expected))}: "
            f"{holder.transactions}"
        )

    def check_disputes_recorded(self, holder: Order, where: str) -> None:
        """After the quiet moment: each dispute of the intent is on the order that
        holds its payment, as it stands at the gateway, and refunded + disputed ≤
        captured, exactly (nothing is stale any more)."""
        assert self.fake is not None
        recorded = {t.reference: t for t in holder.transactions if t.kind == "dispute"}
        for dispute in self.fake.disputes(holder.intent_id or ""):
            t = recorded.get(dispute.id)
            wanted = DISPUTE_RECORDED[dispute.status]
            assert t is not None and (t.status, t.amount) == (wanted, dispute.amount), (
                f"{where}: {dispute.status} dispute {dispute.id} of {dispute.amount} is "
                f"recorded on {holder.id} as {t}"
            )
            self.outcomes[f"dispute:recorded:{t.status}"] += 1
        refunds = holder.amount("refund", "complete", "pending")
        assert refunds + holder.disputed <= holder.captured, (
            f"{where}: {holder.id} refunded {refunds} and disputed {holder.disputed} "
            f"of {holder.captured}"
        )

    def check_refund_recorded(self, refund: RefundSnapshot, orders: list[Order]) -> None:
        """A final refund at the gateway is on exactly one order, as it is there."""
        if refund.status not in ("succeeded", "failed"):
            return
        on = [
            t
            for o in orders
            for t in o.transactions
            if t.kind == "refund" and t.reference == refund.id
        ]
        assert len(on) == 1, (
            f"refund {refund.id} of {refund.payment_intent_id} is on {len(on)} orders"
        )
        recorded = "complete" if refund.status == "succeeded" else "failed"
        assert (on[0].amount, on[0].status) == (refund.amount, recorded), (
            f"{refund.status} refund {refund.id} of {refund.amount} recorded as {on[0]}"
        )
        if refund.status == "failed":
            self.run.failed_refunds += 1
        else:
            self.run.refunded_orders += 1

    def check_refunds_recorded(self, orders: list[Order]) -> None:
        assert self.fake is not None
        for intent_id in self.fake.intent_ids():
            for refund in self.fake.refunds(intent_id):
                self.check_refund_recorded(refund, orders)

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
                self.check_refund_recorded(refund, orders)


class DisputesMachine(PaymentsMachine):
    """The machine with issue 14's ``disputes`` rule group. A subclass, so that a
    backend without that group runs the very machine (and the same derandomized
    search) as before it: the planted-bug budgets of the other groups hold."""

    @precondition(lambda self: self.has("disputes"))
    @rule(
        target=PaymentsMachine.orders,
        order=st.none() | PaymentsMachine.orders,
        percent=s.percentages,
        deliver=st.booleans(),
    )
    def open_dispute(self, order: str | None, percent: int | None, deliver: bool) -> object:
        """The cardholder disputes the order's charge (a chargeback: the funds are
        withdrawn), for all that is left or a part of it; ``order=None``: a new
        order paid by the server. ``deliver``: its events reach the host now
        (else they wait in the queue, to come late). Only while a live order
        holds the intent: a dispute of money no order owns is not kept
        (reconcile reports that money as orphaned; docs/going-live.md)."""
        assert self.fake is not None
        if order is None:
            made = self.shop("usd", False, [("tee", 2500, 2)], [], False, "succeeds", "server")
            if not isinstance(made, str):
                return multiple()
            order = made
        intent_id = self.order_intent(order)
        if intent_id is None or not self.held_by_live_order(intent_id):
            return multiple()
        snap = self.fake.intent(intent_id)
        left = snap.amount_received - sum(
            r.amount for r in self.fake.refunds(intent_id) if r.status != "failed"
        )
        amount = None if percent is None else max(10, left * percent // 100 // 10 * 10)
        try:
            dispute_id = self.fake.dispute(intent_id, amount=amount)
        except (IllegalStateError, InvalidRequestError):
            return multiple()
        self.outcomes["dispute:opened"] += 1
        if deliver:
            self.deliver_now(dispute_id, DISPUTE_OPENED)
        return order

    @precondition(lambda self: self.has("disputes"))
    @rule(order=PaymentsMachine.orders, won=st.booleans(), deliver=st.booleans())
    def decide_dispute(self, order: str, won: bool, deliver: bool) -> None:
        """The issuer decides the order's open dispute: won (funds reinstated) or
        lost. ``deliver``: the closing events reach the host now, before any of
        the dispute's earlier events still waiting (those then come late)."""
        assert self.fake is not None
        intent_id = self.order_intent(order)
        if intent_id is None:
            return
        for dispute in self.fake.disputes(intent_id):
            with suppress(IllegalStateError):
                self.fake.close_dispute(dispute.id, won=won)
                self.outcomes[f"dispute:{'won' if won else 'lost'}"] += 1
                if deliver:
                    self.deliver_now(dispute.id, DISPUTE_CLOSED)

    def deliver_now(self, dispute_id: str, types: frozenset[str]) -> None:
        """Deliver the waiting events of ``types`` about ``dispute_id``, in order."""
        self.pull_events()
        marker = f'"id":"{dispute_id}"'.encode()
        now = [(p, h) for p, h in self.queue if marker in p and _event_type(p) in types]
        for event in now:
            self.queue.remove(event)
            payload, header = event
            if (
                self.call("handle_webhook", partial(self.payments.handle_webhook, payload, header))
                is None
            ):
                self.queue.append(event)

    @precondition(lambda self: self.has("disputes"))
    @rule(order=PaymentsMachine.orders, extra=st.integers(min_value=1, max_value=100))
    def refund_above_refundable(self, order: str, extra: int) -> None:
        """The host asks to refund more than the order has left: captured less
        refunds less what disputes took or hold, as the model computes it. It is
        refused (``ValidationError``, or the order's state) before any call."""
        assert self.fake is not None
        found = self.order(order)
        if found is None or not found.captured:
            return
        amount = model_refundable(found) + extra * 10
        calls = self.fake.count("create_refund")
        self.call("refund_order", lambda: self.payments.refund_order(order, amount))
        assert self.fake.count("create_refund") == calls, (
            f"refund_order({order}, {amount}) above refundable {model_refundable(found)} "
            f"(disputed {found.amount('dispute', 'complete', 'pending')}) reached the gateway: "
            f"{found.transactions}"
        )

    def held_by_live_order(self, intent_id: str) -> bool:
        _, orders, _, _ = self.contents()
        return any(o.intent_id == intent_id and o.status != "cancelled" for o in orders)


#: The host's idempotency keys the machine refunds under (a few, so they repeat;
#: ``None``: a refund without a key, retried as the same call).
REFUND_KEYS = ("refund-a", "refund-b", None)
#: How a keyed refund's first answer is lost: not at all, after the gateway
#: applied it, before it was sent, while its request is still on its way (it
#: lands after the retry), or a server error and then (the host's own retry)
#: a request still on its way.
LOSSES: tuple[bool | str | None, ...] = (None, True, False, "late", "error, late")
#: What happens between a keyed refund and its retry (see RefundKeysMachine).
BETWEEN = ("nothing", "another amount", "cancel", "events")


class RefundKeysMachine(PaymentsMachine):
    """The machine with refunds made under the host's idempotency key
    (``refund_keys``; docs/money.md, "Unknown outcomes"). A subclass, as
    :class:`DisputesMachine` is, so the other groups' searches stay as they were."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        #: (order, key) → the amount a call with the key was answered for.
        self.keyed: dict[tuple[str, str], int] = {}
        #: (order, key) → the amount the host asks under the key (one per key, as
        #: a careful host does: Stripe keeps the first request's answer under it).
        self.asked: dict[tuple[str, str], int] = {}

    @precondition(lambda self: self.has("refund_keys"))
    @rule(
        order=PaymentsMachine.orders,
        percent=s.percentages,
        key=st.sampled_from(REFUND_KEYS),
        lose=st.sampled_from(LOSSES),
        between=st.sampled_from(BETWEEN),
    )
    def keyed_refund(
        self,
        order: str,
        percent: int | None,
        key: str | None,
        lose: bool | str | None,
        between: str,
    ) -> None:
        """A refund under the host's key, whose answer may be lost (``lose``:
        after Stripe applied it, before it was sent, or still on its way, landing
        after the retry; the host gives up); then ``between``: nothing, a refund
        of another amount (it settles the lost answer, and is refused if the
        refund was made), a cancel (it settles it too), or the waiting events
        (they record the refund); then the host calls again with the same key and
        amount. Stripe makes at most one refund for the key, and an answered
        call's order shows it under the key, once. Without a key, the same for a
        retry that is the same call (nothing or events between; after another
        call settled it, a retry without a key is another refund: docs/money.md)."""
        assert self.fake is not None
        found = self.order(order)
        if found is None or found.intent_id is None:
            return
        intent_id = found.intent_id
        fresh = key is None or (order, key) not in self.keyed
        amount = self.asked.get((order, key)) if key is not None else None
        if amount is None:
            amount = max(10, found.refundable * (percent or 50) // 100 // 10 * 10)
        if key is not None:
            self.asked[(order, key)] = amount
        had = {r.id for r in self.fake.refunds(intent_id)}

        def refund() -> Order:
            return self.payments.refund_order(order, amount, idempotency_key=key)

        if lose == "late":
            self.gateway.late_next = "create_refund"
            self.give_up = True
        elif lose == "error, late":
            self.gateway.error_then_late = "create_refund"
            self.give_up = True
        elif isinstance(lose, bool):
            self.gateway.lose_next = ("create_refund", lose)
            self.give_up = True
        first = self.call("refund_order", refund)
        self.gateway.lose_next = self.gateway.late_next = self.gateway.error_then_late = None
        self.give_up = False
        if between == "another amount":
            self.call("refund_order", lambda: self.payments.refund_order(order, amount + 10))
        elif between == "cancel":
            self.call("cancel_order", lambda: self.payments.cancel_order(order))
        elif between == "events":
            self.pull_events()
            while self.queue:
                payload, header = self.queue.pop(0)
                self.call("handle_webhook", partial(self.payments.handle_webhook, payload, header))
        again = self.call("refund_order", refund)
        self.gateway.land()
        made = [r.amount for r in self.fake.refunds(intent_id) if r.id not in had]
        if key is None and (first is not None or between not in ("nothing", "events")):
            return  # (answered, or settled by another call: the retry is another refund)
        assert made.count(amount) <= (1 if fresh else 0), (
            f"refund_order({order}, {amount}, idempotency_key={key!r}) and its retry"
            f" ({between} between) made the refunds {made}"
            + ("" if fresh else "; a call with the key was answered before")
        )
        for done in (first, again):
            if done is None or key is None:
                continue
            self.outcomes["refund_order:keyed"] += 1
            tagged = [t.amount for t in done.transactions if t.idempotency_key == key]
            assert tagged == [amount], (
                f"refund_order({order}, {amount}, idempotency_key={key!r}) was answered with"
                f" the refunds {tagged} under its key: {done.transactions}"
            )
            self.keyed[(order, key)] = amount


# ------------------------------------------------------------------------- tests


def run_machine(
    backend: Backend, config: settings | None = None, *, seed: int | None = None
) -> Run:
    """Run the machine for ``backend`` under ``config`` (default: the loaded
    profile); a ``seed`` replaces the derandomized (or random) one."""
    run = run_for(backend.label)
    started = time.perf_counter()
    try:
        machine: type[PaymentsMachine] = PaymentsMachine
        if "disputes" in backend.features:
            machine = DisputesMachine
        elif "refund_keys" in backend.features:
            machine = RefundKeysMachine

        def factory() -> RuleBasedStateMachine:
            return machine(backend)

        if seed is not None:
            factory = fixed_seed(seed)(factory)
        run_state_machine_as_test(factory, settings=config)  # type: ignore[arg-type]  # a factory is allowed
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
    assert run.outcomes["dispute:recorded:complete"] > 0, "no lost dispute was recorded"
    assert run.outcomes["dispute:recorded:cancelled"] > 0, "no won dispute was recorded"


def test_the_async_twin_with_faults(tmp_path: Path) -> None:
    """The same machine driving AsyncCartPaymentIntent (issue 15) over the same
    faulty, crashing gateway and memory store: every invariant holds for the
    async façade too. A smaller profile (a sixth of the examples, shorter
    sequences): the rules are the sync façade's code, run by another driver."""
    backend = replace(fake_backend("memory", tmp_path), label="fake+faults/memory/async")
    backend = replace(backend, twin="async")
    default = settings()
    config = settings(
        default, max_examples=max(3, default.max_examples // 6), stateful_step_count=30
    )
    run = run_machine(backend, config)
    assert_explored(run)
    assert run.outcomes["crash"] > 0, "no host crashed mid-call"
    assert run.refunded_orders > 0, "no example refunded"


def test_refund_keys_with_faults(tmp_path: Path) -> None:
    """Refunds under the host's key (RefundKeysMachine) among every other rule
    group but disputes (a machine of their own) and Dashboard refunds (one of
    the claimed amount is taken for the claim's: docs/money.md): a key never
    refunds twice, whatever settles its lost answer."""
    left_out: frozenset[Feature] = frozenset({"disputes", "dashboard_refunds"})
    features = (ALL_FEATURES - left_out) | frozenset[Feature]({"refund_keys"})
    backend = replace(
        fake_backend("memory", tmp_path), label="fake+faults/memory/keys", features=features
    )
    default = settings()
    config = settings(default, max_examples=max(3, default.max_examples // 4))
    run = run_machine(backend, config)
    assert_explored(run)
    assert run.outcomes["refund_order:keyed"] > 0, "no keyed refund was answered"
    assert run.outcomes["refund_order:lost-answer"] > 0, "no refund's answer was lost"


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
