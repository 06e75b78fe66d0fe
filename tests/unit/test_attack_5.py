"""Adversarial round 5: ``refund_order(..., idempotency_key=)`` attacked through
the public API only (docs/money.md, "Unknown outcomes", bullet "A refund's key",
and "What a host still handles").

The first section's tests were found breaks (each docstring says what happened
then); all are mended (the refund asked again by the same call is sent under
its own key, a keyed refund has a Stripe key derived from the host's, the lost
answer of the call is learned before the order's state is checked, the amount
is checked before the key's refund is looked up). The second section's are
attacks the feature withstood (each asserts something that could fail)."""

from __future__ import annotations

import asyncio
import threading
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cartpay import (
    AsyncCartPaymentIntent,
    CartpayError,
    CartPaymentIntent,
    GatewayUnavailableError,
    Order,
    ValidationError,
    to_json,
)
from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import (
    AsyncFakeStripeGateway,
    AsyncFaultyGateway,
    FakeStripeGateway,
    FaultyGateway,
)
from cartpay.testing._faulty import FaultKind

from .. import shops
from ..shops import (
    RETURN_URL,
    LateLandingGateway,
    deliver,
    faulty_shop,
    paid_order,
    refunded_at_stripe,
)

KEY = "support-ticket-7731"


# ------------------------------------------------------------------- helpers


def lose_keyed_refund(
    gateway: FaultyGateway[FakeStripeGateway],
    payments: CartPaymentIntent,
    order_id: str,
    amount: int | None,
    kind: FaultKind = "timeout_after",
    key: str = KEY,
) -> None:
    gateway.rate, gateway.faults = 1.0, (kind,)
    try:
        with pytest.raises(CartpayError) as lost:
            payments.refund_order(order_id, amount, idempotency_key=key)
        assert lost.value.retryable
    finally:
        gateway.rate = 0.0


def keyed(order: Order, key: str = KEY) -> list[int]:
    return shops.keyed(order, key)


class _Delegating:
    """A PaymentGateway that passes everything to ``inner`` (public port only)."""

    def __init__(self, inner: FakeStripeGateway) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CrashingGateway(_Delegating):
    """``create_refund`` acts at Stripe, then the process "dies" before anything
    is recorded or released (the claim keeps its live lease)."""

    crash_next = False

    def create_refund(self, intent_id: str, **kwargs: Any) -> object:
        refund = self.inner.create_refund(intent_id, **kwargs)
        if self.crash_next:
            self.crash_next = False
            raise GeneratorExit  # nothing below the gateway call runs
        return refund


# ============================================================ found, mended


def test_a_keyed_retry_after_webhooks_recorded_its_full_refund_returns_the_order() -> None:
    """Promise: every later call with the key returns the order and sends
    nothing, "whoever learns of it". Here the refund of everything (1000) was
    made, its answer lost, and the webhooks recorded it (untagged) before the
    host's retry. The retry runs the lifecycle check before settling its own
    claim: the order is ``refunded``, so it raises ``IllegalStateError``. The key
    is never put on the order (nothing else settles a refund claim on a refunded
    order: confirm_order and reconcile leave it), so every retry keeps raising."""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())
    lose_keyed_refund(gateway, payments, order.id, 1000)
    deliver(payments, fake, seen)  # refund.created, charge.refunded

    done = payments.refund_order(order.id, 1000, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [1000]
    assert done.refunded == 1000
    assert keyed(done) == [1000]


def test_a_keyed_retry_after_webhooks_recorded_most_of_the_order_returns_the_order() -> None:
    """Same root, a partial refund: 600 of 1000 made, its answer lost, the
    webhooks recorded it. The retry checks 600 against what remains (400)
    before it settles its claim and raises ``ValidationError(amount,
    refundable)`` — a non-retryable "your input is wrong" for the very call the
    docs tell the host to repeat. (The feature's own test uses 300 of 1000,
    where 300 still fits in what remains.)"""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())
    lose_keyed_refund(gateway, payments, order.id, 600)
    deliver(payments, fake, seen)

    done = payments.refund_order(order.id, 600, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [600]
    assert done.refunded == 600
    assert keyed(done) == [600]


def test_the_async_twin_also_refuses_the_keyed_retry_after_webhooks() -> None:
    """The async twin has the same break as the two tests above."""

    async def scenario() -> tuple[object, list[int]]:
        fake = AsyncFakeStripeGateway()
        gateway = AsyncFaultyGateway(fake, seed=1, rate=0.0)
        payments = AsyncCartPaymentIntent(
            return_url=RETURN_URL, gateway=gateway, store=AsyncMemoryStore()
        )
        cart = await payments.create_cart("usd")
        await payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
        await payments.create_payment_intent(cart.id)
        order = await payments.checkout(cart.id)
        await payments.confirm_payment(order.id, payment_method="pm_card_visa")
        seen = len(fake.events())
        gateway.rate, gateway.faults = 1.0, ("timeout_after",)
        with pytest.raises(CartpayError):
            await payments.refund_order(order.id, 1000, idempotency_key=KEY)
        gateway.rate = 0.0
        for body, header in fake.events()[seen:]:
            await payments.handle_webhook(body, header)
        try:
            answer: object = await payments.refund_order(order.id, 1000, idempotency_key=KEY)
        except CartpayError as exc:
            answer = exc
        refunds = await fake.list_refunds(order.intent_id or "")
        return answer, [r.amount for r in refunds]

    answer, refunds = asyncio.run(scenario())
    assert refunds == [1000]
    assert isinstance(answer, Order), answer
    assert keyed(answer) == [1000]


def test_a_keyed_retry_of_all_that_remains_while_its_lost_answer_is_unsettled() -> None:
    """Promise: "without an amount ("all that remains") it matches the key's
    refund". The first call asked for 300 and lost its answer; the host's retry
    says ``amount=None`` under the same key. It raises ``OperationPendingError``
    ("repeat it with those arguments") instead of returning the order; only the
    retry after that (the claim now settled and tagged) returns it."""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    lose_keyed_refund(gateway, payments, order.id, 300)

    done = payments.refund_order(order.id, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == 300
    assert keyed(done) == [300]


def test_the_same_key_with_another_amount_while_unsettled_raises_reused() -> None:
    """Promise: the same key with another amount raises ``ValidationError``
    (field ``idempotency_key``, rule ``reused``). While the key's lost answer is
    unsettled it raises ``OperationPendingError`` instead (after settling it: the
    key's refund of 300 is known by then, so the call can say ``reused``);
    the identical call a moment later does raise ``reused``."""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    lose_keyed_refund(gateway, payments, order.id, 300)

    with pytest.raises(ValidationError) as refused:
        payments.refund_order(order.id, 400, idempotency_key=KEY)

    assert (refused.value.field, refused.value.rule) == ("idempotency_key", "reused")
    assert refunded_at_stripe(fake, order) == [300]


def test_a_keyed_refund_whose_request_lands_after_the_timeout_is_made_once() -> None:
    """MONEY. A read timeout (the client gave up; the request is still on its
    way to Stripe) is retried with the same key, as the docs ask. The retry
    settles the claim by listing the refunds — the first request has not landed
    yet, so the claim is dropped — and makes a new refund under a NEW Stripe
    idempotency key (the order's version moved). Then the first request lands:
    Stripe refunds 300 twice for one host key, and the order ends at 600
    refunded for a request of 300. Had the Stripe key of a keyed refund been
    derived from the host's key (or the claim replayed with its own key, as a
    cart's is), Stripe would have answered the retry with the first refund."""
    fake = FakeStripeGateway()
    gateway = LateLandingGateway(fake)
    payments = CartPaymentIntent(return_url=RETURN_URL, gateway=gateway, store=MemoryStore())  # type: ignore[arg-type]
    order = paid_order(payments)
    seen = len(fake.events())

    gateway.hold_next = True
    with pytest.raises(GatewayUnavailableError) as lost:
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    assert lost.value.retryable
    payments.refund_order(order.id, 300, idempotency_key=KEY)  # the host's retry
    gateway.land()  # the first request reaches Stripe
    deliver(payments, fake, seen)
    done = payments.refund_order(order.id, 300, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == 300


@pytest.mark.parametrize("settled_by", ["the retry", "another amount"])
def test_a_refund_whose_request_lands_after_the_timeout_without_a_key(settled_by: str) -> None:
    """The same late landing without a key. The host's retry is the same call
    (its claim is pending): it asks Stripe again under the claim's own key, so
    the late request is answered with that refund: one refund of 200. When
    another call settles the claim first (a refund of 300: the list does not
    show the 200 yet, so the claim is dropped and the 300 made), the 200 lands
    as the first call's; the host's unkeyed retry after that is a new refund
    (docs/money.md, "A refund's key"): 300 + 200 + 200."""
    fake = FakeStripeGateway()
    gateway = LateLandingGateway(fake)
    payments = CartPaymentIntent(return_url=RETURN_URL, gateway=gateway, store=MemoryStore())  # type: ignore[arg-type]
    order = paid_order(payments)

    gateway.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 200)
    if settled_by == "another amount":
        payments.refund_order(order.id, 300)
    payments.refund_order(order.id, 200)  # the host's retry
    gateway.land()

    expected = [200] if settled_by == "the retry" else [300, 200, 200]
    assert sorted(refunded_at_stripe(fake, order)) == sorted(expected)


def test_a_dashboard_refund_made_before_the_keyed_call_is_not_taken_for_its_refund() -> None:
    """A Dashboard refund of 300 is made (its webhook not yet in); then the host's
    keyed refund of 300 times out before it is sent. The retry settles the claim
    with the refund list: the Dashboard refund is "unknown when the claim was
    made" (the order had not heard of it) and of the claimed amount, so it is
    taken for the key's refund and tagged with the key; the host's refund is
    never made. docs/money.md only warns about a Dashboard refund made *while*
    a refund's outcome is unknown; this one was made before the call, and
    Stripe's refund list already had it (the claim records only what the
    order knew). The customer gets 300 of the 600 both parties gave."""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    assert order.intent_id is not None
    seen = len(fake.events())
    fake.refund_outside(order.intent_id, 300)  # before the host's call

    lose_keyed_refund(gateway, payments, order.id, 300, "timeout_before")  # never sent
    payments.refund_order(order.id, 300, idempotency_key=KEY)  # the host's retry
    deliver(payments, fake, seen)
    done = payments.get_order(order.id)

    assert refunded_at_stripe(fake, order) == [300, 300]
    assert done.refunded == 600


def test_a_keyed_repeat_with_a_float_amount_is_refused_like_any_other_call() -> None:
    """``amount`` must be an int of minor units: ``refund_order(id, 300.0)``
    raises ``ValidationError(amount, integer)``. With a key whose refund is 300,
    ``300.0`` (or ``Decimal("300")``) is compared with ``==`` before the amount
    is checked, and the call returns the order: the key bypasses the input
    check (and ``"300"`` is reported as a ``reused`` key, not a bad amount)."""
    _, _, payments = faulty_shop()
    order = paid_order(payments)
    payments.refund_order(order.id, 300, idempotency_key=KEY)
    with pytest.raises(ValidationError) as plain:
        payments.refund_order(order.id, 300.0)  # type: ignore[arg-type]
    assert plain.value.field == "amount"

    with pytest.raises(ValidationError) as keyed_call:
        payments.refund_order(order.id, 300.0, idempotency_key=KEY)  # type: ignore[arg-type]

    assert keyed_call.value.field == "amount"


# ================================================================ withstood


@pytest.mark.parametrize("fault", ["server_error", "lock_timeout", "rate_limited"])
def test_other_lost_answers_then_another_amount_then_the_keyed_retry(fault: FaultKind) -> None:
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    lose_keyed_refund(gateway, payments, order.id, 300, fault)  # Stripe did nothing

    other = payments.refund_order(order.id, 500)  # settles: nothing happened
    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    again = payments.refund_order(order.id, 300, idempotency_key=KEY)

    assert sorted(refunded_at_stripe(fake, order)) == [300, 500]
    assert other.refunded == 500
    assert again.refunded == done.refunded == 800
    assert keyed(again) == [300]


def test_a_crash_with_a_live_lease_then_a_new_facade_once_the_lease_is_over(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.sqlite3"
    fake = FakeStripeGateway()
    crashing = CrashingGateway(fake)
    first = CartPaymentIntent(return_url=RETURN_URL, gateway=crashing, store=SQLiteStore(path))  # type: ignore[arg-type]
    order = paid_order(first)
    crashing.crash_next = True
    with pytest.raises(GeneratorExit):
        first.refund_order(order.id, 300, idempotency_key=KEY)
    assert first.get_order(order.id).pending is not None  # the claim kept its lease

    def later() -> datetime:
        return datetime.now(timezone.utc) + timedelta(minutes=10)

    restarted = CartPaymentIntent(
        return_url=RETURN_URL, gateway=fake, store=SQLiteStore(path), clock=later
    )
    done = restarted.refund_order(order.id, 300, idempotency_key=KEY)
    again = restarted.refund_order(order.id, 300, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == again.refunded == 300 and keyed(again) == [300]
    assert again.pending is None


def test_a_key_whose_refund_failed_at_the_bank_sends_nothing_again() -> None:
    """Not documented either way: after ``refund.failed`` the money is back on the
    order (``refunded`` 0, ``refundable`` 1000) but the key still names the failed
    refund, so the host's retry with it returns the order and sends nothing; a
    host that wants the money sent again must use a new key. Pinned here:
    nothing is sent twice and the order agrees with Stripe."""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())
    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    refund_id = next(t.reference for t in done.transactions if t.kind == "refund")
    fake.fail_refund(refund_id)
    deliver(payments, fake, seen)
    calls = gateway.calls

    again = payments.refund_order(order.id, 300, idempotency_key=KEY)
    rest = payments.refund_order(order.id, idempotency_key=KEY)

    assert gateway.calls == calls
    assert again.refunded == rest.refunded == 0 and again.refundable == 1000
    assert [t.status for t in again.transactions if t.idempotency_key == KEY] == ["failed"]
    assert refunded_at_stripe(fake, order) == []


def test_a_lost_keyed_refund_that_failed_before_the_retry_is_recorded_once() -> None:
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    assert order.intent_id is not None
    seen = len(fake.events())
    lose_keyed_refund(gateway, payments, order.id, 300)
    fake.fail_refund(fake.refunds(order.intent_id)[0].id)
    deliver(payments, fake, seen)

    done = payments.refund_order(order.id, 300, idempotency_key=KEY)

    assert len(fake.refunds(order.intent_id)) == 1
    assert done.refunded == 0
    assert [t.status for t in done.transactions if t.idempotency_key == KEY] == ["failed"]


def test_two_keys_racing_from_four_facades_on_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    fake = FakeStripeGateway()
    setup = CartPaymentIntent(return_url=RETURN_URL, gateway=fake, store=SQLiteStore(path))
    order = paid_order(setup)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        payments = CartPaymentIntent(return_url=RETURN_URL, gateway=fake, store=SQLiteStore(path))
        barrier.wait()
        for _ in range(50):
            try:
                payments.refund_order(order.id, 200, idempotency_key=f"k{i % 2}")
                return
            except CartpayError as exc:
                if not exc.retryable:
                    errors.append(exc)
                    return
        payments.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    final = setup.get_order(order.id)
    assert errors == []
    assert refunded_at_stripe(fake, order) == [200, 200]
    assert final.refunded == 400
    assert keyed(final, "k0") == keyed(final, "k1") == [200]


def test_one_key_two_amounts_racing_makes_one_refund(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    fake = FakeStripeGateway()
    setup = CartPaymentIntent(return_url=RETURN_URL, gateway=fake, store=SQLiteStore(path))
    order = paid_order(setup)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def worker(amount: int) -> None:
        payments = CartPaymentIntent(return_url=RETURN_URL, gateway=fake, store=SQLiteStore(path))
        barrier.wait()
        for _ in range(50):
            try:
                outcomes.append(payments.refund_order(order.id, amount, idempotency_key=KEY))
                return
            except CartpayError as exc:
                if not exc.retryable:
                    outcomes.append(exc)
                    return

    threads = [threading.Thread(target=worker, args=(a,)) for a in (300, 400)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert len(refunded_at_stripe(fake, order)) == 1
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(refused) == 1 and refused[0].rule == "reused"
    assert setup.get_order(order.id).refunded == refunded_at_stripe(fake, order)[0]


def test_the_async_twin_cancelled_mid_refund_then_gathered_keys() -> None:
    class SlowAnswer:
        def __init__(self, inner: AsyncFakeStripeGateway) -> None:
            self.inner = inner
            self.slow = True

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def create_refund(self, intent_id: str, **kwargs: Any) -> object:
            refund = await self.inner.create_refund(intent_id, **kwargs)
            if self.slow:
                self.slow = False
                await asyncio.sleep(5)  # the answer never comes back in time
            return refund

    async def scenario() -> tuple[Order, list[int]]:
        fake = AsyncFakeStripeGateway()
        gateway = SlowAnswer(fake)
        payments = AsyncCartPaymentIntent(
            return_url=RETURN_URL,
            gateway=gateway,  # type: ignore[arg-type]  # a delegating wrapper
            store=AsyncMemoryStore(),
        )
        cart = await payments.create_cart("usd")
        await payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
        await payments.create_payment_intent(cart.id)
        order = await payments.checkout(cart.id)
        await payments.confirm_payment(order.id, payment_method="pm_card_visa")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(payments.refund_order(order.id, 300, idempotency_key=KEY), 0.05)
        await payments.refund_order(order.id, 300, idempotency_key=KEY)
        await asyncio.gather(
            payments.refund_order(order.id, 100, idempotency_key="x"),
            payments.refund_order(order.id, 100, idempotency_key="y"),
            payments.refund_order(order.id, 300, idempotency_key=KEY),
        )
        final = await payments.get_order(order.id)
        refunds = await fake.list_refunds(order.intent_id or "")
        return final, sorted(r.amount for r in refunds)

    final, refunds = asyncio.run(scenario())
    assert refunds == [100, 100, 300]
    assert final.refunded == 500
    assert keyed(final) == [300] and keyed(final, "x") == keyed(final, "y") == [100]


def test_keys_are_compared_exactly_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    fake = FakeStripeGateway()
    payments = CartPaymentIntent(return_url=RETURN_URL, gateway=fake, store=SQLiteStore(path))
    order = paid_order(payments, 10_000)
    keys = [
        unicodedata.normalize("NFC", "café"),
        unicodedata.normalize("NFD", "café"),
        " k",
        "k",
        "K",
        "k\n",
        "\u200b",
        "😀" * 255,
    ]
    for key in keys:
        payments.refund_order(order.id, 100, idempotency_key=key)
    payments.close()

    reopened = CartPaymentIntent(return_url=RETURN_URL, gateway=fake, store=SQLiteStore(path))
    for key in keys:
        reopened.refund_order(order.id, 100, idempotency_key=key)
    final = reopened.get_order(order.id)
    reopened.close()

    assert len(refunded_at_stripe(fake, order)) == len(keys)
    assert final.refunded == 100 * len(keys)
    assert sorted(t.idempotency_key or "" for t in final.transactions if t.kind == "refund") == (
        sorted(keys)
    )


def test_the_key_survives_disputes_refund_updates_and_to_json() -> None:
    fake, _, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())
    payments.refund_order(order.id, 300, idempotency_key=KEY)
    deliver(payments, fake, seen)  # the refund's own events re-merge it
    deliver(payments, fake, seen)  # duplicates
    payments.confirm_order(order.id)
    final = payments.get_order(order.id)

    assert keyed(final) == [300]
    dumped = to_json(final)
    assert [t["idempotency_key"] for t in dumped["transactions"] if t["kind"] == "refund"] == [KEY]
    assert "cartpay:order" not in str(dumped)  # the internal Stripe key is not exposed


def test_a_bad_key_with_a_bad_order_id_is_a_key_error_and_nothing_is_read() -> None:
    _, gateway, payments = faulty_shop()
    calls = gateway.calls
    with pytest.raises(ValidationError) as refused:
        payments.refund_order("ord_missing", 300, idempotency_key="\x00")
    assert refused.value.field == "idempotency_key"
    assert gateway.calls == calls
