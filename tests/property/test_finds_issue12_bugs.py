"""Issue 12's bugs, planted back one at a time: the state machine must find each
one, and shrink it, with only the rule groups that can reach it switched on (as
:mod:`test_finds_planted_bug` does for docs/design.md, rule 6).

Each plant is a function that puts one decision back the way it was before the
fix. Behaviours 6 and 12 are fixed on main, but today the unplanted machine
fails first (see ``MACHINE_FAILS_UNPLANTED``); the others wait for the fix
(``skip`` says which) and are unskipped with it: their plant points
are the decisions the fix is expected to own, so check each plant still reaches
the behaviour it names when unskipping (a plant that no longer bites makes its
test fail with ``DID NOT RAISE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from cartpay import (
    CartPaymentIntent,
    IllegalStateError,
    _claims,
    _decisions,
    _flows,
    _ledger,
    _lifecycle,
    _outcomes,
    _reconcile,
)
from cartpay._errors import CartpayError
from cartpay._models import (
    IntentRecord,
    IntentSnapshot,
    Order,
    OrphanedIntent,
    PendingOperation,
    ReconcileReport,
)
from cartpay._params import idempotency_key
from cartpay._ports import PaymentGateway, Store, StoreTransaction
from cartpay._records import read_cart, retry

from .test_stateful import Feature, fake_backend, run_machine

#: Today the unplanted machine fails first (a stale ``payment_failed`` event
#: fails the pending payment of a ``processing`` intent, so the quiet moment finds
#: money in flight on no order): a plant cannot be told apart until that is fixed.
MACHINE_FAILS_UNPLANTED = pytest.mark.skip(
    reason="needs the issue 12 fix: the unplanted machine must pass first "
    "(stale payment_failed while processing)"
)

#: The steps of a shrunk example that are the machine's own (not the host's).
OWN_STEPS = ("state.start(", "state.store_is_consistent(", "state.teardown(")


def find(
    tmp_path: Path,
    label: str,
    features: Iterable[Feature],
    symptoms: tuple[str, ...],
    *,
    max_steps: int = 8,
    max_examples: int = 3000,
    seconds: float = 60,
) -> list[str]:
    """Run the machine with ``features`` on the fake (memory store) until it
    fails; the failure must show one of ``symptoms`` and shrink to at most
    ``max_steps`` host steps. Returns those steps."""
    backend = replace(
        fake_backend("memory", tmp_path),
        label=f"planted/{label}",
        failing_refunds=False,
        features=frozenset(features),
    )
    config = settings(
        max_examples=max_examples,
        stateful_step_count=25,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
    started = time.perf_counter()
    with pytest.raises(AssertionError) as caught:
        run_machine(backend, config)
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert any(symptom in message for symptom in symptoms), message
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    steps = [
        line
        for line in notes.splitlines()
        if "state." in line and not line.lstrip().startswith(OWN_STEPS)
    ]
    assert 1 <= len(steps) <= max_steps, notes
    assert elapsed < seconds, f"finding {label} took {elapsed:.1f} s"
    return steps


# ------------------------------- fixed on main: these run once the machine passes


@MACHINE_FAILS_UNPLANTED
def test_finds_a_refund_event_before_the_payment_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Behaviour 6: the order moved only one table step at a time, so a Dashboard
    refund's event before the payment's left it ``incomplete/unpaid`` for good."""
    monkeypatch.setattr(_ledger, "advance_order", _lifecycle.transition_order)
    find(
        tmp_path,
        "refund-before-payment",
        ["dashboard_refunds"],
        ("but its transactions say", "the gateway implies"),
    )


def _never_stale(record: IntentRecord | None, snap: IntentSnapshot) -> bool:
    """Behaviour 12's plant: no snapshot is older than what the record knows."""
    return False


@MACHINE_FAILS_UNPLANTED
def test_finds_a_stale_event_flagging_a_paid_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Behaviour 12: a late ``payment_intent.created`` with the cart's first amount
    flagged an order paid at its (updated) total."""
    monkeypatch.setattr(_decisions, "is_stale", _never_stale)
    find(tmp_path, "stale-event", [], ("is paid and flagged",))


# ------------------------------------------- waiting for the rest of the fix


def refuse_a_paid_cart(original: Callable[..., Order | None]) -> Callable[..., Order | None]:
    """Behaviour 2's plant: checkout refuses a cart whose intent took money
    ("create a new one") instead of making the order that owns it."""

    def checkout_once(self: _flows.Flows, cart_id: str, keep_cart: bool) -> Order | None:
        _, record = self.cart_and_intent(cart_id)
        if record is not None and record.status in _lifecycle.MONEY_MOVING:
            raise IllegalStateError(
                "intent", "checkout", record.status, entity_id=record.id, detail="create a new one"
            )
        return original(self, cart_id, keep_cart)

    return checkout_once


@pytest.mark.skip(reason="needs the issue 12 fix: 2, checkout accepts a cart that was paid")
def test_finds_a_cart_paid_before_checkout_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        _flows.Flows, "checkout_once", refuse_a_paid_cart(_flows.Flows.checkout_once)
    )
    find(tmp_path, "paid-before-checkout", ["browser"], ("recorded on 0 orders",))


def _never_held(record: IntentRecord | None, orders: object) -> bool:
    """Behaviour 3's plant: an intent an order holds follows its kept cart again
    (it is re-priced when the cart changes)."""
    return False


@pytest.mark.skip(reason="needs the issue 12 fix: 3, an order's intent never follows its cart")
def test_finds_a_kept_cart_repricing_its_orders_intent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The fix's decision (``_decisions.is_held`` in the work in progress) may be
    # named otherwise when it lands: plant the one that says "an order holds it".
    monkeypatch.setattr(_decisions, "is_held", _never_held)
    find(tmp_path, "kept-cart-reprice", ["kept_carts"], ("charges",))


def _replays_ignoring_arguments(pending: PendingOperation, wanted: PendingOperation) -> bool:
    """Behaviour 5's plant: an expired claim of the same operation is replayed
    whatever the new caller asked for (the amount, the reason)."""
    return pending.operation == wanted.operation and pending.payment_method == wanted.payment_method


@pytest.mark.skip(reason="needs the issue 12 fix: 5, OperationPendingError for other arguments")
def test_finds_a_capture_replay_ignoring_the_new_amount(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # If the fix settles an unknown capture/refund from the intent before it
    # claims, plant that step instead (it must report the old amount as done).
    monkeypatch.setattr(_claims, "replays", _replays_ignoring_arguments)
    find(tmp_path, "replay-other-amount", ["other_amounts"], ("succeeded with",))


def delete_cart_whatever_its_intent_did(self: CartPaymentIntent, cart_id: str) -> None:
    """Behaviour 8's plant: ``delete_cart`` as it was, cancelling only an intent that
    can still take a payment, and deleting the cart whatever its intent took."""
    with self.store.read() as tx:
        cart = read_cart(tx, cart_id)
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
        _outcomes.record_intent_status(self.store, snap)

    def delete(tx: StoreTransaction) -> None:
        tx.delete_cart(cart_id, expected_version=read_cart(tx, cart_id).version)

    retry(self.store, delete, f"cart {cart_id}")


@pytest.mark.skip(reason="needs the issue 12 fix: 8, delete_cart refuses while money moves")
def test_finds_a_cart_deleted_with_its_payment_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(CartPaymentIntent, "delete_cart", delete_cart_whatever_its_intent_did)
    find(tmp_path, "delete-paid-cart", ["browser"], ("recorded on 0 orders",))


def reconcile_oldest_first(
    store: Store,
    gateway: PaymentGateway,
    confirm_order: Callable[[str], Order],
    *,
    cutoff: datetime,
    limit: int,
    **_: object,
) -> ReconcileReport:
    """Behaviour 7's plant: every run looks at the same oldest ``limit`` unpaid
    orders and unclaimed intents (no cursor), as reconcile did."""
    with store.read() as tx:
        orders = tx.unpaid_orders_before(cutoff, limit=limit)
        intents = tx.unclaimed_intents(sorted(_lifecycle.REFRESHED), limit=limit)
    checked: list[str] = []
    errors: list[tuple[str, str]] = []
    for order in orders:
        checked.append(order.id)
        try:
            confirm_order(order.id)
        except CartpayError as exc:
            errors.append((order.id, f"{type(exc).__name__}: {exc}"))
    orphaned: list[OrphanedIntent] = []
    for record in intents:
        with store.read() as tx:
            if any(o.status != "cancelled" for o in tx.orders_for_intent(record.id)):
                continue
        try:
            snap = gateway.retrieve_intent(record.id)
        except CartpayError as exc:
            errors.append((record.id, f"{type(exc).__name__}: {exc}"))
            continue
        _outcomes.record_intent_status(store, snap)
        if snap.status in _lifecycle.MONEY_MOVING:
            orphaned.append(OrphanedIntent(record.cart_id, record.id, snap.amount, snap.currency))
    return ReconcileReport(tuple(checked), (), tuple(orphaned), tuple(errors))


@pytest.mark.skip(reason="needs the issue 12 fix: 7, reconcile makes progress across runs")
def test_finds_reconcile_blind_behind_abandoned_orders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_reconcile, "reconcile", reconcile_oldest_first)
    find(
        tmp_path,
        "reconcile-blind",
        ["abandoned", "dropped_events", "browser"],
        ("the gateway implies", "recorded on 0 orders"),
        max_steps=10,
    )
