"""The async twin on a real event loop: it never blocks the loop while a call
waits on a slow Stripe, and many tasks racing on one loop converge as threads do
on the sync façade (the rules themselves run on both twins in tests/unit).

Plain ``asyncio.run`` (no asyncio test plugin): each test is one coroutine.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cartpay import AsyncCartPaymentIntent, AsyncStore, Order
from cartpay.gateways.stripe import AsyncStripeGateway
from cartpay.stores.memory import AsyncMemoryStore
from cartpay.stores.sqlite import AsyncSQLiteStore
from cartpay.testing import AsyncFakeStripeGateway

#: How late a 10 ms heartbeat may tick while calls wait on Stripe.
MAX_GAP = 0.050
#: How many times the heartbeat is measured before the test fails (see below).
ATTEMPTS = 3
#: Where Stripe sends the customer back (the fake asks one for a confirm).
RETURN_URL = "https://shop.test/return"


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AsyncStore]:
    if request.param == "memory":
        return AsyncMemoryStore
    return lambda: AsyncSQLiteStore(tmp_path / "cartpay.db")


async def _checkout(payments: AsyncCartPaymentIntent, sku: str) -> Order:
    cart = await payments.create_cart("usd")
    await payments.add_item(cart.id, sku=sku, name=sku, unit_amount=1500, quantity=2)
    await payments.create_payment_intent(cart.id)
    order = await payments.checkout(cart.id)
    return await payments.confirm_payment(order.id, payment_method="pm_card_visa")


async def _heartbeat(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.010)
        now = time.perf_counter()
        gaps.append(now - last - 0.010)
        last = now


def test_the_loop_keeps_ticking_while_calls_wait_on_a_slow_stripe(
    make_store: Callable[[], AsyncStore],
) -> None:
    """A call that blocked the loop would hold it for a whole 300 ms Stripe call,
    on every run: each of the ten calls per checkout would show as a gap of 300
    ms. A loaded machine (CI shares its cores) may also deschedule the loop's
    thread for a moment, once in a while: the measurement is taken again (up to
    ``ATTEMPTS`` runs, each with fresh stores and checkouts), and one run in
    which every tick came within ``MAX_GAP`` proves the loop was never held;
    a blocking twin cannot produce that run. The collector stays off during a
    run (its pauses are the process's, not the loop's)."""

    async def main() -> tuple[list[Order], list[float], float]:
        store = make_store()
        slow = AsyncFakeStripeGateway(latency=0.3)  # every Stripe call takes 300 ms
        payments = AsyncCartPaymentIntent(gateway=slow, store=store, return_url=RETURN_URL)
        stop, gaps = asyncio.Event(), list[float]()
        beat = asyncio.create_task(_heartbeat(stop, gaps))
        started = time.perf_counter()
        orders = await asyncio.gather(*(_checkout(payments, f"sku{i}") for i in range(5)))
        took = time.perf_counter() - started
        stop.set()
        await beat
        await store.close()
        return orders, gaps, took

    worst: list[float] = []
    for _ in range(ATTEMPTS):
        gc.collect()
        gc.disable()
        try:
            orders, gaps, took = asyncio.run(main())
        finally:
            gc.enable()
        assert [o.payment for o in orders] == ["paid"] * 5
        assert len(gaps) > 20  # it ticked all along the ~0.6 s of Stripe calls
        # Five checkouts of two 300 ms calls each, waiting side by side (not 3 s in a row).
        assert took < 1.5, f"five checkouts took {took:.2f} s"
        worst.append(max(gaps))
        if max(gaps) < MAX_GAP:
            break
    ms = ", ".join(f"{w * 1000:.0f}" for w in worst)
    assert min(worst) < MAX_GAP, f"the loop stalled in every run (worst gaps: {ms} ms)"


def test_many_tasks_confirming_one_order_record_one_payment(
    make_store: Callable[[], AsyncStore],
) -> None:
    async def main() -> tuple[list[object], Order, int]:
        fake = AsyncFakeStripeGateway(latency=0.005)  # calls interleave at every await
        payments = AsyncCartPaymentIntent(gateway=fake, store=make_store(), return_url=RETURN_URL)
        cart = await payments.create_cart("usd")
        await payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500)
        await payments.create_payment_intent(cart.id)
        order = await payments.checkout(cart.id)

        async def pay_or_sync(i: int) -> Order:
            if i % 2:
                return await payments.confirm_payment(order.id, payment_method="pm_card_visa")
            return await payments.confirm_order(order.id)

        results: list[object] = list(
            await asyncio.gather(*(pay_or_sync(i) for i in range(20)), return_exceptions=True)
        )
        after = await payments.get_order(order.id)
        await payments.store.close()
        confirms: int = fake.count("confirm_intent")
        return results, after, confirms

    results, order, confirms = asyncio.run(main())
    assert not [r for r in results if not isinstance(r, (Order, Exception))]
    assert order.payment == "paid"
    assert [(t.kind, t.status) for t in order.transactions] == [("purchase", "complete")]
    assert confirms >= 1


def test_many_tasks_checking_out_one_cart_make_one_order(
    make_store: Callable[[], AsyncStore],
) -> None:
    async def main() -> tuple[list[object], int]:
        fake = AsyncFakeStripeGateway(latency=0.005)
        payments = AsyncCartPaymentIntent(gateway=fake, store=make_store(), return_url=RETURN_URL)
        cart = await payments.create_cart("usd")
        await payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500)
        results: list[object] = list(
            await asyncio.gather(
                *(payments.create_payment_intent(cart.id) for _ in range(10)),
                return_exceptions=True,
            )
        )
        results += await asyncio.gather(
            *(payments.checkout(cart.id) for _ in range(10)), return_exceptions=True
        )
        await payments.store.close()
        creates: int = fake.count("create_intent", replayed=False)
        return results, creates

    results, creates = asyncio.run(main())
    orders = {r.id for r in results if isinstance(r, Order)}
    assert len(orders) == 1, results
    assert creates == 1  # one intent, whatever the race


@pytest.mark.localstripe
def test_the_plugins_async_gateways_pay_an_order(
    async_stripe_gateway: AsyncStripeGateway, async_fake_gateway: AsyncFakeStripeGateway
) -> None:
    """The pytest plugin's async fixtures: the real SDK against localstripe, and the fake."""

    async def main() -> list[str]:
        paid: list[str] = []
        for gateway in (async_stripe_gateway, async_fake_gateway):
            payments = AsyncCartPaymentIntent(
                gateway=gateway, store=AsyncMemoryStore(), return_url=RETURN_URL
            )
            paid.append((await _checkout(payments, "tee")).payment)
        return paid

    assert asyncio.run(main()) == ["paid", "paid"]
