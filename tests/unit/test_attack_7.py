"""Adversarial round 7: the refund path (docs/money.md, "Unknown outcomes", "A
refund's key"; ``refund_order``'s docstring), through the public API only.

Three tests were found breaks, all mended: a refund checked the order's state
before another call's lost capture or confirm was learned (now any lost answer
on the order is learned first, and "all that remains" is read again when it
moved either way), and a keyed retry with another reason was refused after its
lost refund was recorded (the key names its request: a call with it asks for
that request's arguments). The others are attacks that held."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from cartpay import (
    CartpayError,
    CartPaymentIntent,
    GatewayUnavailableError,
    IdempotencyError,
    IllegalStateError,
    IntentOptions,
    OperationPendingError,
    Order,
    ValidationError,
)
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway, FaultyGateway

from ..shops import (
    RETURN_URL,
    LateLandingGateway,
    fail_next,
    faulty_shop,
    paid_order,
    refunded_at_stripe,
)

KEY = "refund-request-7"


class StoredServerErrorGateway:
    """Stripe answering a refund with a 500 it keeps under the key (with its
    request id on the error): once ``arm()``-ed, the next ``create_refund``
    fails so, and every later request under that key gets the same 500."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = 0
        self.stored: dict[str, GatewayUnavailableError] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def arm(self, times: int = 1) -> None:
        self.armed = times

    def create_refund(self, intent_id: str, **kwargs: Any) -> object:
        key = kwargs["idempotency_key"]
        if key in self.stored:
            raise self.stored[key]
        if self.armed:
            self.armed -= 1
            self.stored[key] = GatewayUnavailableError(
                "Stripe: an error occurred on our side",
                http_status=500,
                request_id=f"req_{len(self.stored)}",
            )
            raise self.stored[key]
        return self.inner.create_refund(intent_id, **kwargs)


def stored_shop() -> tuple[
    FakeStripeGateway,
    FaultyGateway[FakeStripeGateway],
    StoredServerErrorGateway,
    LateLandingGateway,
    CartPaymentIntent,
]:
    """fake ← Faulty ← StoredServerError ← LateLanding ← façade: a late request
    reaches "Stripe" (and its stored 500s) when it lands."""
    fake = FakeStripeGateway()
    faulty = FaultyGateway(fake, seed=1, rate=0.0)
    stored = StoredServerErrorGateway(faulty)
    late = LateLandingGateway(stored)
    payments = CartPaymentIntent(
        return_url=RETURN_URL,
        gateway=late,  # type: ignore[arg-type]
        store=MemoryStore(),
    )
    return fake, faulty, stored, late, payments


def keyed(order: Order, key: str = KEY) -> list[int]:
    return [t.amount for t in order.transactions if t.idempotency_key == key]


def refund_requests(fake: FakeStripeGateway) -> int:
    return sum(1 for r in fake.requests if r.operation == "create_refund")


# --------------------------------------------------------------------------


def test_a_keyed_refund_after_a_stored_500_a_late_request_and_a_drop_is_made_once() -> None:
    """Stored 500 (request id) under the key → the claim moves to ``:r1``; the
    same call under ``:r1`` is held on the network; another call drops the
    claim; the same keyed call again (a new claim under the un-rotated key,
    which answers the stored 500 again) and once more; then the late request
    lands. One refund of 300 under K."""
    fake, _faulty, stored, late, payments = stored_shop()
    order = paid_order(payments)

    stored.arm()
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    payments.refund_order(order.id, 200)  # settles (drops) the claim
    answers: list[object] = []
    for _ in range(3):
        try:
            answers.append(payments.refund_order(order.id, 300, idempotency_key=KEY))
        except CartpayError as exc:
            answers.append(exc)
    late.land()
    done = payments.get_order(order.id)
    assert isinstance(answers[-1], Order), answers
    assert sorted(refunded_at_stripe(fake, order)) == [200, 300]
    assert done.refunded == 500
    assert keyed(done) == [300]
    assert done.pending is None


def test_an_unkeyed_refund_after_a_stored_500_is_made_once_by_the_same_call() -> None:
    """Stored 500 with Stripe's request id: the claim moves to a new key and the
    same call makes the refund once (the stored 500 is not answered again)."""
    fake, _faulty, stored, _late, payments = stored_shop()
    order = paid_order(payments)
    stored.arm()
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300)
    done = payments.refund_order(order.id, 300)
    assert done.refunded == 300
    assert refunded_at_stripe(fake, order) == [300]
    assert done.pending is None
    again = payments.refund_order(order.id, 300)  # no claim: a new refund (documented)
    assert again.refunded == 600


def test_two_stored_500s_in_a_row_then_the_same_keyed_call_makes_one_refund() -> None:
    """The rotation goes on (``:r1``, ``:r2``) while Stripe keeps answering 500s
    with its request id; the third try refunds; later calls send nothing."""
    fake, _faulty, stored, _late, payments = stored_shop()
    order = paid_order(payments)
    stored.arm(2)
    for _ in range(2):
        with pytest.raises(GatewayUnavailableError):
            payments.refund_order(order.id, 300, idempotency_key=KEY)
    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    sent = refund_requests(fake)
    again = payments.refund_order(order.id, idempotency_key=KEY)
    assert refund_requests(fake) == sent
    assert again.refunded == done.refunded == 300
    assert refunded_at_stripe(fake, order) == [300]
    assert keyed(again) == [300]


def test_a_proxy_502_without_a_request_id_keeps_the_keyed_claims_key() -> None:
    """A 502 from something in front of Stripe (no request id) while the first
    request is still on its way: the key stays, so the retry and the late
    request are one refund."""
    fake, _faulty, _stored, late, payments = stored_shop()
    order = paid_order(payments)
    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)

    class Proxy502:
        def __init__(self, inner: Any) -> None:
            self.inner, self.once = inner, True

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def create_refund(self, intent_id: str, **kwargs: Any) -> object:
            if self.once:
                self.once = False
                raise GatewayUnavailableError("bad gateway", http_status=502)
            return self.inner.create_refund(intent_id, **kwargs)

    proxied = CartPaymentIntent(
        return_url=RETURN_URL,
        gateway=Proxy502(late),  # type: ignore[arg-type]
        store=payments.store,
    )
    with pytest.raises(GatewayUnavailableError):
        proxied.refund_order(order.id, 300, idempotency_key=KEY)
    late.land()
    done = proxied.refund_order(order.id, 300, idempotency_key=KEY)
    assert refunded_at_stripe(fake, order) == [300]
    assert done.refunded == 300
    assert keyed(done) == [300]


def test_a_keyed_retry_with_another_reason_after_its_lost_refund_landed() -> None:
    """FOUND (no money error). Promise ("A refund's key"): "every later call with
    that key returns the order and sends nothing, however its claim was
    settled". The first keyed call (300, reason requested_by_customer) timed
    out after Stripe acted; the retry under the same key without the reason
    settles the claim (the refund is recorded under K) and then raises
    ``OperationPendingError`` saying the refund's "outcome is unknown; repeat it
    with those arguments" — it was just learned and recorded. Only a third call
    returns the order. (The key's ``reused`` rule compares the amount only, so
    a reason difference should be the key's answer, not a pending error.)"""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    fail_next(gateway, "timeout_after")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, reason="requested_by_customer", idempotency_key=KEY)
    gateway.rate = 0.0
    try:
        answer: object = payments.refund_order(order.id, 300, idempotency_key=KEY)
    except CartpayError as exc:
        answer = exc
    after = payments.get_order(order.id)
    assert refunded_at_stripe(fake, order) == [300]
    assert after.refunded == 300
    assert keyed(after) == [300]
    assert after.pending is None
    assert isinstance(answer, Order), f"the keyed retry raised {answer!r}"


def test_a_keyed_refund_of_an_authorized_order_is_refused_and_leaves_nothing() -> None:
    """Manual capture: a refund while only authorized is refused before any
    call, with no claim left; after a partial capture, all that remains under
    the key is the captured amount, and the key answers after that."""
    fake, _gateway, payments = faulty_shop()
    cart = payments.create_cart("usd", options=IntentOptions(capture_method="manual"))
    payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    order = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    before = refund_requests(fake)
    version = payments.get_order(order.id).version
    with pytest.raises((IllegalStateError, ValidationError)):
        payments.refund_order(order.id, idempotency_key=KEY)
    assert refund_requests(fake) == before
    assert payments.get_order(order.id).version == version
    payments.capture_order(order.id, 600)
    done = payments.refund_order(order.id, idempotency_key=KEY)
    assert done.refunded == 600
    assert keyed(done) == [600]
    assert refunded_at_stripe(fake, order) == [600]
    with pytest.raises(ValidationError) as caught:
        payments.refund_order(order.id, 400, idempotency_key=KEY)
    assert (caught.value.field, caught.value.rule) == ("idempotency_key", "reused")
    assert payments.refund_order(order.id, 600, idempotency_key=KEY).refunded == 600


def test_a_lost_capture_then_a_keyed_refund_settles_it_and_refunds_once() -> None:
    """FOUND (no money error; a refund blocked on a wrong answer). docs/money.md,
    "Unknown outcomes": a claim on an order (confirm, capture, cancel) whose
    answer was lost is settled by the next caller, which "retrieves the intent".
    ``_refund_once`` checks the order's state (``check_order_operation``) on the
    order as read, *before* ``order_operation`` settles another call's claim:
    the capture Stripe made is never learned, and every refund raises
    ``IllegalStateError("cannot refund order … in status 'processing'")``
    (not retryable) while the money is captured, until ``confirm_order`` or
    reconcile settles the capture."""
    fake, gateway, payments = faulty_shop()
    cart = payments.create_cart("usd", options=IntentOptions(capture_method="manual"))
    payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    order = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    fail_next(gateway, "timeout_after")
    with pytest.raises(GatewayUnavailableError):
        payments.capture_order(order.id, 700)
    gateway.rate = 0.0
    done = payments.refund_order(order.id, idempotency_key=KEY)
    sent = refund_requests(fake)
    again = payments.refund_order(order.id, idempotency_key=KEY)
    assert refund_requests(fake) == sent
    assert done.refunded == again.refunded == 700
    assert refunded_at_stripe(fake, order) == [700]


def test_a_keyed_all_that_remains_after_a_stored_500_and_a_moving_remainder() -> None:
    """K (all that remains, 1000) gets a stored 500 (claim → ``:r1``); its
    retry is held on the network; an unkeyed refund of 100 drops the claim; K
    again asks for 900 under the un-rotated key (stored 500 → ``:r1``), then
    again under ``:r1``; the held 1000 lands. Stripe must not refund more than
    1000 in all, and the order must agree with Stripe."""
    fake, _faulty, stored, late, payments = stored_shop()
    order = paid_order(payments)
    stored.arm()
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, idempotency_key=KEY)
    late.hold_next = True
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, idempotency_key=KEY)
    payments.refund_order(order.id, 100)
    for _ in range(3):
        with contextlib.suppress(GatewayUnavailableError, IdempotencyError, OperationPendingError):
            payments.refund_order(order.id, idempotency_key=KEY)
    late.land()
    for body, header in fake.events():
        payments.handle_webhook(body, header)
    after = payments.get_order(order.id)
    at_stripe = refunded_at_stripe(fake, order)
    assert sum(at_stripe) <= 1000
    assert after.refunded == sum(at_stripe)
    assert after.pending is None


def test_a_bad_key_with_a_lost_claim_pending_writes_nothing() -> None:
    """A bad key is refused before anything is read or sent: the pending claim
    of a lost refund stays exactly as it was."""
    fake, gateway, payments = faulty_shop()
    order = paid_order(payments)
    fail_next(gateway, "timeout_before")
    with pytest.raises(GatewayUnavailableError):
        payments.refund_order(order.id, 300, idempotency_key=KEY)
    gateway.rate = 0.0
    snapshot = payments.get_order(order.id)
    sent = len(fake.requests)
    for bad in ("", "x" * 256, "a\x00b", "\ud800", 7, b"k"):
        with pytest.raises(ValidationError) as caught:
            payments.refund_order(order.id, 300, idempotency_key=bad)  # type: ignore[arg-type]
        assert caught.value.field == "idempotency_key"
    assert len(fake.requests) == sent
    assert payments.get_order(order.id) == snapshot
    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    assert refunded_at_stripe(fake, order) == [300]
    assert keyed(done) == [300]


def test_a_lost_confirm_then_a_refund_settles_it_and_refunds() -> None:
    """FOUND (no money error), the same cause as the lost capture above: the
    confirm Stripe applied (its answer lost) is not learned by a refund, which
    raises ``IllegalStateError(... status 'incomplete')`` on a paid intent and
    leaves the confirm claim in place."""
    fake, gateway, payments = faulty_shop()
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="a", name="A", unit_amount=1000)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    fail_next(gateway, "timeout_after")
    with pytest.raises(GatewayUnavailableError):
        payments.confirm_payment(order.id, payment_method="pm_card_visa")
    gateway.rate = 0.0
    done = payments.refund_order(order.id, 300, idempotency_key=KEY)
    assert done.refunded == 300
    assert refunded_at_stripe(fake, order) == [300]
    assert done.pending is None
