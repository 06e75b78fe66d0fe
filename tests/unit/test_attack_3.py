"""Adversarial user, round 3: failing tests only, each a problem a real shop meets
through cartpay's public API (no underscore module is imported here)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cartpay import (
    AsyncCartPaymentIntent,
    CartPaymentIntent,
    Order,
    ValidationError,
    to_json,
)
from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
from cartpay.testing import AsyncFakeStripeGateway, FakeStripeGateway

RETURN_URL = "https://shop.example/return"


def test_to_json_of_a_handle_leaks_the_redirect_url_that_carries_a_secret() -> None:
    """``to_json`` is documented as the form "for a web answer, a queue or a log
    line", and leaves out every client secret unless ``include_client_secret=True``.
    But an :class:`~cartpay.IntentHandle` in ``requires_action`` keeps
    ``next_action.redirect_url`` in that default form (and ``to_json(NextAction)``
    too), although docs/design.md#rule-10 says the URL "may carry a one-time
    secret" and is never logged (``repr`` hides it). On Stripe that URL is
    ``https://hooks.stripe.com/redirect/authenticate/src_…?client_secret=src_client_secret_…``:
    a shop that logs or queues ``to_json(handle)`` as the docs suggest writes a
    live authentication secret into its logs, where anyone with log access can
    complete (or hijack) the customer's 3-D Secure step."""
    fake = FakeStripeGateway()
    payments = CartPaymentIntent(gateway=fake, store=MemoryStore(), return_url=RETURN_URL)
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method="pm_card_threeDSecure2Required")
    handle = payments.intent_for_order(order.id)
    assert handle.next_action is not None
    assert handle.next_action.redirect_url  # the secret-bearing URL exists
    assert "redirect_url" not in repr(handle)  # repr already hides it

    logged = to_json(handle)  # the default, log-safe form

    assert handle.next_action.redirect_url not in str(logged)
    assert handle.next_action.redirect_url not in str(to_json(handle.next_action))


def test_refund_of_all_that_remains_fails_as_bad_input_when_a_partial_refund_races() -> None:
    """``refund_order(order_id)`` (no amount) promises to refund "all that
    remains". When it runs while another task refunds part of the same order
    (an admin's "refund the rest" while a support agent refunds a line), the
    default is resolved from the order read before the other refund landed and
    then checked against the fresh order: the call raises ``ValidationError(
    "amount", "refundable")`` ("3000 exceeds the 2000 still refundable") for an
    amount the caller never passed. That is a 422 "fix your input", not
    retryable: the customer is left 2000 short of the full refund the shop
    asked for, and an automated refund job drops it instead of retrying. Either
    refund what remains now, or answer a retryable conflict (409)."""

    async def scenario() -> tuple[list[object], Order]:
        fake = AsyncFakeStripeGateway()
        payments = AsyncCartPaymentIntent(
            gateway=fake, store=AsyncMemoryStore(), return_url=RETURN_URL
        )
        cart = await payments.create_cart("usd")
        await payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=1000, quantity=3)
        await payments.create_payment_intent(cart.id)
        order = await payments.checkout(cart.id)
        await payments.confirm_payment(order.id, payment_method="pm_card_visa")
        results = await asyncio.gather(
            payments.refund_order(order.id, 1000),
            payments.refund_order(order.id),
            return_exceptions=True,
        )
        return list(results), await payments.get_order(order.id)

    results, final = asyncio.run(scenario())

    wrongly_blamed = [r for r in results if isinstance(r, ValidationError) and r.field == "amount"]
    assert wrongly_blamed == [], f"refund-all blamed an amount it was never given: {results}"
    assert final.refunded == final.captured == 3000


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"older_than": "15m"},
        {"refund_orphans": "yes"},
        {"abandon_after": timedelta(days=-1)},
    ],
    ids=["limit", "older_than", "refund_orphans", "abandon_after"],
)
def test_reconcile_lifespan_accepts_bad_settings_and_then_never_reconciles(
    bad: dict[str, object],
) -> None:
    """``reconcile_lifespan`` checks ``every`` when it is built, but passes
    ``limit``, ``older_than``, ``refund_orphans`` and ``abandon_after`` through
    unchecked. A typo (``limit=0``, ``older_than="15m"``) builds fine, the app
    starts and serves, and every run raises the ``ValidationError`` that the
    lifespan only logs ("the schedule goes on"): the shop believes it
    reconciles, while lost webhooks, stuck claims and orphaned payments are
    never repaired, for as long as the process runs. Bad input should get its
    typed error when the lifespan is built (docs/design.md, rule 11), as
    ``every`` does."""
    pytest.importorskip("fastapi")
    from cartpay.contrib.fastapi import reconcile_lifespan

    payments = CartPaymentIntent(gateway=FakeStripeGateway(), store=MemoryStore())

    with pytest.raises(ValidationError):
        reconcile_lifespan(payments, every=timedelta(hours=1), **bad)  # type: ignore[arg-type]
