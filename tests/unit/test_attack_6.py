"""Adversarial round 6: the refund path's retry rules (docs/money.md, "Unknown
outcomes": the table, "A refund's key", the Dashboard bullet under "What a host
still handles"; docs/design.md, "Claim → call → record"), attacked through the
public API only.

The first section's tests were found breaks (each docstring says what happened
then). Mended: a refund under the host's key keeps its Stripe key after a server
error (so one host key never has two Stripe keys, and the same call always asks
Stripe again under it); an IdempotencyError under a host key names that key. Two
were Stripe's own rule, now documented (docs/money.md, "A refund's key": a key
names one request, and Stripe keeps its answer, a refusal too): those tests
assert that rule, and that a new key refunds. The second section's are attacks
the rules withstood (each asserts something that could fail)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cartpay import (
    AsyncCartPaymentIntent,
    CartpayError,
    CartPaymentIntent,
    GatewayUnavailableError,
    IdempotencyError,
    InvalidRequestError,
    Order,
)
from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import AsyncFakeStripeGateway, FakeStripeGateway, FaultyGateway

from .. import shops
from ..shops import (
    RETURN_URL,
    LateLandingGateway,
    deliver,
    fail_next,
    faulty_shop,
    paid_order,
    refunded_at_stripe,
)

KEY = "refund-request-4412"


# ------------------------------------------------------------------- helpers


def keyed(order: Order, key: str = KEY) -> list[int]:
    return shops.keyed(order, key)


def late_shop(
    store: Any = None,
) -> tuple[
    FakeStripeGateway, FaultyGateway[FakeStripeGateway], LateLandingGateway, CartPaymentIntent
]:
    """fake ← FaultyGateway (no faults until told) ← LateLandingGateway ← façade."""
    fake = FakeStripeGateway()
    faulty = FaultyGateway(fake, seed=1, rate=0.0)
    late = LateLandingGateway(faulty)
    payments = CartPaymentIntent(
        return_url=RETURN_URL,
        gateway=late,  # type: ignore[arg-type]  # a delegating wrapper
        store=store if store is not None else MemoryStore(),
    )
    return fake, faulty, late, payments


def outcome(call: Callable[[], Order]) -> Order | CartpayError:
    try:
        return call()
    except CartpayError as exc:
        return exc


# ============================================================ found breaks


def test_a_keyed_refund_after_a_server_error_and_a_late_request_is_made_twice() -> None:
    """MONEY. Promise ("A refund's key"): the Stripe key of a keyed refund "is
    derived from yours, so every call with it that reaches Stripe asks for the
    same refund"; "every later call with that key ... sends nothing".

    1. ``refund_order(300, K)`` gets a 5xx (FaultyGateway ``server_error``: Stripe
       did not act). The claim's key moves on to ``…k<digest>:r1``.
    2. The host repeats it: the refund list shows nothing, the claim is sent
       again under ``…:r1``; that request times out on the client but is still
       on its way to Stripe.
    3. Another call (a refund of 200) settles the claim from the refund list:
       the ``:r1`` request has not landed, so the claim is dropped.
    4. The host repeats ``refund_order(300, K)``: nothing pending, nothing under
       K, so a new claim under the *un-rotated* key ``…k<digest>`` — Stripe never
       saw it (the 5xx was not stored) and refunds 300.
    5. The ``:r1`` request lands: Stripe refunds 300 a second time.

    Stripe refunded 800 (200 + 300 + 300) for a host that asked for 500; the
    order says 500. The rotated key is forgotten once the claim is dropped, so
    two Stripe keys carry one host key."""
    fake, faulty, late, payments = late_shop()
    order = paid_order(payments)

    fail_next(faulty, "server_error")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    faulty.rate = 0.0

    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)

    payments.refund_order(order.id, 200)  # another call settles (drops) the claim
    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    late.land()

    assert done.refunded == 500
    assert sorted(refunded_at_stripe(fake, order)) == [200, 300]


def test_a_keyed_refund_of_all_that_remains_asked_again_sends_other_params_under_its_key() -> None:
    """Promise ("A refund's key"): "every call with it that reaches Stripe asks
    for the same refund"; without an amount, "all that remains".

    A Dashboard refund of 800 the order does not know yet. ``refund_order(K)``
    (all that remains: 1000 by the order) is refused by Stripe
    (``amount_too_large``), a definite answer, claim released. The webhooks
    arrive; the order now says 200 remains. The host asks ``refund_order(K)``
    again: cartpay sends ``amount=200`` under the same derived Stripe key that
    carried ``amount=1000``, and Stripe answers ``IdempotencyError`` ("Keys for
    idempotent requests can only be used with the same parameters") — for a
    key the host never saw. Every later call with K raises it too (24 h at
    Stripe): the key is bricked, and the 200 is never refunded. No money moved
    wrongly, but the call can never succeed and the error names an internal key."""
    fake, _, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())
    fake.refund_outside(order.intent_id or "", 800)

    with pytest.raises(InvalidRequestError):
        payments.refund_order(order.id, idempotency_key=KEY)
    deliver(payments, fake, seen)
    assert payments.get_order(order.id).refundable == 200

    answer = outcome(lambda: payments.refund_order(order.id, idempotency_key=KEY))

    # (Documented: the key names the refused request of 1000; all that remains
    # is now another request, so Stripe refuses it under that key.)
    assert isinstance(answer, IdempotencyError), answer
    assert repr(KEY) in str(answer) and "new key" in str(answer)
    assert "cartpay:" not in str(answer)  # (the Stripe key the host never saw)
    done = payments.refund_order(order.id, idempotency_key=KEY + "-2")
    assert keyed(done, KEY + "-2") == [200]
    assert refunded_at_stripe(fake, order) == [800, 200]


def test_a_keyed_refund_refused_during_a_dispute_stays_refused_after_the_dispute_is_won() -> None:
    """A keyed refund refused by Stripe (``charge_disputed``: a chargeback was
    open, the order did not know yet) is refused for good under that key: once
    the dispute is won (the order shows ``disputed == 0``, ``refundable ==
    1000``) the same call is answered from Stripe's idempotency cache with the
    stale ``charge_disputed`` refusal, and ``amount=None`` under K raises
    ``IdempotencyError``. The refusal was definite (the claim was released:
    nothing under the key can still land), yet the key stays spent although it
    names no refund; without a key the same retry would work (a new key per
    claim). The docs only say a key stays spent after a refund that *failed at
    the bank*; a refused request made no refund."""
    fake, _, payments = faulty_shop()
    order = paid_order(payments)
    dispute = fake.dispute(order.intent_id or "", amount=200)

    with pytest.raises(InvalidRequestError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    fake.close_dispute(dispute, won=True)
    deliver(payments, fake)
    now = payments.get_order(order.id)
    assert (now.disputed, now.refundable) == (0, 1000)

    answer = outcome(lambda: payments.refund_order(order.id, 300, idempotency_key=KEY))

    # (Documented: Stripe keeps the refusal under the key; a new key refunds.)
    assert isinstance(answer, InvalidRequestError), answer
    assert answer.code == "charge_disputed"
    assert refunded_at_stripe(fake, order) == []
    done = payments.refund_order(order.id, 300, idempotency_key=KEY + "-2")
    assert keyed(done, KEY + "-2") == [300]
    assert refunded_at_stripe(fake, order) == [300]


def test_the_same_keyed_call_after_a_server_error_takes_a_dashboard_refund_for_its_own() -> None:
    """Promise (money.md, "What a host still handles"): a Dashboard refund of the
    same amount is taken for a lost refund only by *another* call; "The same
    call repeated is not fooled (it asks Stripe again under its own key)".

    After a 5xx (Stripe did not act) the claim's key moves on, and the same call
    repeated decides from the refund list: a Dashboard refund of 300 made in
    between is recorded under the host's key K and nothing is sent. The host's
    refund of 300 is never made (Stripe: one refund of 300, the Dashboard's; the
    order calls it K's). The docs' exception for a rotated key (design.md) does
    not reach the Dashboard bullet, which promises the same call is not fooled."""
    fake, faulty, payments = faulty_shop()
    order = paid_order(payments)

    fail_next(faulty, "server_error")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    faulty.rate = 0.0
    fake.refund_outside(order.intent_id or "", 300)  # a colleague, in the Dashboard

    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    deliver(payments, fake)  # the Dashboard's refund reaches the order too

    assert refunded_at_stripe(fake, order) == [300, 300]
    assert payments.get_order(order.id).refunded == 600
    dashboard = next(r.id for r in fake.refunds(order.intent_id or ""))
    assert [t.reference for t in done.transactions if t.idempotency_key == KEY] != [dashboard]


# ============================================================ attacks that held


def test_the_same_call_whose_lost_answer_was_a_refusal_raises_it_and_frees_the_order() -> None:
    """A Dashboard refund of 800 unknown to the order; a refund of 300 is refused
    by Stripe (``amount_too_large``) and that answer is lost. The same call
    replays under its own key: the refusal is raised (typed, not retryable), the
    claim is released, and a refund that fits goes through."""
    fake, faulty, payments = faulty_shop()
    order = paid_order(payments)
    fake.refund_outside(order.intent_id or "", 800)
    fail_next(faulty, "timeout_after")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300)
    faulty.rate = 0.0

    with pytest.raises(InvalidRequestError) as refused:
        payments.refund_order(order.id, 300)

    assert not refused.value.retryable
    assert payments.get_order(order.id).pending is None
    done = payments.refund_order(order.id, 100)
    assert refunded_at_stripe(fake, order) == [800, 100]
    assert 100 in [t.amount for t in done.transactions if t.kind == "refund"]


def test_a_replay_after_the_order_was_refunded_elsewhere_raises_and_agrees_with_stripe() -> None:
    """A refund of 300 never left (timeout_before); the Dashboard then refunds
    all 1000 and the webhooks record it (the order is ``refunded``). The same
    call replays without checking the order's state: Stripe refuses, the error
    is typed, the claim is gone, and the order agrees with Stripe."""
    fake, faulty, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())
    fail_next(faulty, "timeout_before")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300)
    faulty.rate = 0.0
    fake.refund_outside(order.intent_id or "", 1000)
    deliver(payments, fake, seen)

    with pytest.raises(CartpayError) as refused:
        payments.refund_order(order.id, 300)

    assert not refused.value.retryable
    final = payments.get_order(order.id)
    assert final.pending is None
    assert refunded_at_stripe(fake, order) == [1000]
    assert final.refunded == 1000


def test_an_unkeyed_replay_after_the_webhooks_recorded_its_refund_records_it_once() -> None:
    fake, faulty, payments = faulty_shop()
    order = paid_order(payments)
    seen = len(fake.events())
    fail_next(faulty, "timeout_after")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 1000)
    faulty.rate = 0.0
    deliver(payments, fake, seen)

    done = payments.refund_order(order.id, 1000)

    assert refunded_at_stripe(fake, order) == [1000]
    assert done.refunded == 1000
    assert [t.amount for t in done.transactions if t.kind == "refund"] == [1000]


def test_an_unkeyed_replay_with_its_request_still_on_its_way_is_made_once() -> None:
    fake, _, late, payments = late_shop()
    order = paid_order(payments)
    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300)

    done = payments.refund_order(order.id, 300)
    late.land()

    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == 300


def test_a_keyed_server_error_then_a_late_request_then_the_same_call_is_made_once() -> None:
    """A server error, then the same call's request still on its way, then the
    same call: one key throughout (a refund's key never moves), so the late
    request is Stripe's replay."""
    fake, faulty, late, payments = late_shop()
    order = paid_order(payments)
    fail_next(faulty, "server_error")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    faulty.rate = 0.0
    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)

    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    late.land()
    again = payments.refund_order(order.id, idempotency_key=KEY)

    assert refunded_at_stripe(fake, order) == [300]
    assert keyed(done) == keyed(again) == [300]


@pytest.mark.parametrize("key", [KEY, None], ids=["keyed", "unkeyed"])
def test_server_errors_around_a_late_request_then_the_same_call_make_one_refund(
    key: str | None,
) -> None:
    """Found by the property suite (RefundKeysMachine, a CI replica): without a
    key, a server error moved the claim's key on (``…:r1``), the same call's
    request under it was late, a second server error moved it again (``…:r2``),
    and the same call then refunded under ``…:r2`` while the ``…:r1`` request
    landed: two refunds of 300. A refund's key never moves now."""
    fake, faulty, late, payments = late_shop()
    order = paid_order(payments)
    fail_next(faulty, "server_error")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=key)
    faulty.rate = 0.0
    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=key)
    fail_next(faulty, "server_error")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=key)
    faulty.rate = 0.0

    done = payments.refund_order(order.id, 300, idempotency_key=key)
    late.land()
    deliver(payments, fake)

    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == payments.get_order(order.id).refunded == 300


def test_two_facades_replaying_one_expired_keyed_claim_on_sqlite_make_one_refund(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shop.sqlite3"
    fake, _, late, first = late_shop(SQLiteStore(path))
    order = paid_order(first)
    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        first.refund_order(order.id, 300, idempotency_key=KEY)

    barrier = threading.Barrier(2)
    answers: list[object] = []

    def worker() -> None:
        payments = CartPaymentIntent(return_url=RETURN_URL, gateway=late, store=SQLiteStore(path))  # type: ignore[arg-type]
        barrier.wait()
        for _ in range(50):
            try:
                answers.append(payments.refund_order(order.id, 300, idempotency_key=KEY))
                break
            except CartpayError as exc:
                if not exc.retryable:
                    answers.append(exc)
                    break
        payments.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    late.land()
    for t in threads:
        t.join(10)

    assert all(isinstance(a, Order) for a in answers) and len(answers) == 2, answers
    assert refunded_at_stripe(fake, order) == [300]
    assert keyed(first.get_order(order.id)) == [300]


def test_the_async_twin_replays_a_lost_keyed_refund_once() -> None:
    class AsyncLate:
        def __init__(self, inner: AsyncFakeStripeGateway) -> None:
            self.inner = inner
            self.hold_next = False
            self.in_flight: list[tuple[str, dict[str, Any]]] = []

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def create_refund(self, intent_id: str, **kwargs: Any) -> object:
            if self.hold_next:
                self.hold_next = False
                self.in_flight.append((intent_id, kwargs))
                raise GatewayUnavailableError("read timeout")
            return await self.inner.create_refund(intent_id, **kwargs)

    async def scenario() -> tuple[Order, list[int]]:
        fake = AsyncFakeStripeGateway()
        gateway = AsyncLate(fake)
        payments = AsyncCartPaymentIntent(
            return_url=RETURN_URL,
            gateway=gateway,  # type: ignore[arg-type]
            store=AsyncMemoryStore(),
        )
        cart = await payments.create_cart("usd")
        await payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
        await payments.create_payment_intent(cart.id)
        order = await payments.checkout(cart.id)
        await payments.confirm_payment(order.id, payment_method="pm_card_visa")
        gateway.hold_next = True
        with pytest.raises(GatewayUnavailableError):
            await payments.refund_order(order.id, 300, idempotency_key=KEY)
        done = await payments.refund_order(order.id, 300, idempotency_key=KEY)
        for intent_id, kwargs in gateway.in_flight:
            await fake.create_refund(intent_id, **kwargs)
        refunds = await fake.list_refunds(order.intent_id or "")
        return done, [r.amount for r in refunds]

    done, refunds = asyncio.run(scenario())
    assert refunds == [300]
    assert keyed(done) == [300]
