"""Figure 6: the async twin is not serialised (issue 15). 100 checkouts started at
once on one event loop, against a Stripe-compatible server that answers in
50 ms, take at most 1.5 times as long as one checkout alone.

The target rows use ``AsyncFakeStripeGateway(latency=0.05)``: every Stripe call
answered 50 ms later, on the loop, so the ratio measures cartpay's own work
(the flows, the store) and whether anything in it serialises the checkouts.
A checkout is the host's whole path: create the cart, add an item, create the
intent, check out, confirm. Measured on ``AsyncMemoryStore`` and, when
``CARTPAY_TEST_POSTGRES_DSN`` is set, ``AsyncPostgresStore``.

The rows without a target take the real stripe SDK and ``AsyncStripeGateway``
(over ``stripe.HTTPXClient``) to localstripe, each request answered 50 ms late
(the client's ``request_async`` waits 50 ms on the loop first; three requests
per checkout: create, attach, confirm). localstripe is one Python process that
answers a few hundred requests a second, so there the ratio is its queue, not
cartpay's: the row prints its rate beside the ratio.

The ratio is the median of the rounds' ``time(100 at once) / time(one)``, each
round measuring both back to back (ABBA order, as the other figures).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import stripe
from _harness import Row, Target, interleave

from cartpay import AsyncCartPaymentIntent, AsyncStore
from cartpay.gateways.stripe import AsyncStripeGateway
from cartpay.stores.memory import AsyncMemoryStore
from cartpay.testing import AsyncFakeStripeGateway, LocalStripe

SECTION = "6. async twin"
LATENCY = 0.050
CONCURRENT = 100
TARGET = Target("<=", 1.5)


class SlowHTTPXClient(stripe.HTTPXClient):
    """``stripe.HTTPXClient`` whose every async request is answered ``LATENCY`` late."""

    async def request_async(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(LATENCY)
        return await super().request_async(*args, **kwargs)


async def _checkout(payments: AsyncCartPaymentIntent, i: int) -> None:
    cart = await payments.create_cart("usd")
    await payments.add_item(cart.id, sku=f"tee{i}", name="T-shirt", unit_amount=2500)
    await payments.create_payment_intent(cart.id)
    order = await payments.checkout(cart.id)
    paid = await payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert paid.payment == "paid", paid


def _rounds(make: Callable[[], AsyncCartPaymentIntent], rounds: int) -> float:
    """The median ratio of ``CONCURRENT`` checkouts at once to one alone."""
    loop = asyncio.new_event_loop()
    payments = make()

    def at_once(count: int) -> Callable[[], float]:
        async def many() -> None:
            await asyncio.gather(*(_checkout(payments, i) for i in range(count)))

        def run() -> float:
            started = time.perf_counter()
            loop.run_until_complete(many())
            return time.perf_counter() - started

        return run

    try:
        return interleave(at_once(CONCURRENT), at_once(1), rounds=rounds).ratio
    finally:
        loop.run_until_complete(payments.close())
        loop.close()


def _server_rate(url: str) -> float:
    """Requests per second localstripe answers alone (100 list calls at once,
    through the SDK's own async HTTP client, no latency added)."""

    async def many() -> float:
        http = stripe.HTTPXClient()
        headers = {"Authorization": "Bearer sk_test_x"}
        started = time.perf_counter()
        await asyncio.gather(
            *(http.request_async("get", f"{url}/v1/payment_intents", headers) for _ in range(100))
        )
        took = time.perf_counter() - started
        await http.close_async()  # type: ignore[no-untyped-call]
        return 100 / took

    return asyncio.run(many())


#: Store calls one checkout makes on the async twin (transactions and reads,
#: counted on AsyncPostgresStore: 7 + 4), and its Stripe calls (create, confirm).
STORE_CALLS, STRIPE_CALLS = 11, 2


def _postgres_floor(dsn: str, rounds: int) -> float:
    """The same ratio for a hand-written asyncio integration with no cartpay in
    it: per checkout, ``STORE_CALLS`` one-row transactions through psycopg's own
    async pool (the same ``max_size``) and ``STRIPE_CALLS`` waits of 50 ms. What
    PostgreSQL on this machine allows at best: a checkout needs that many round
    trips whoever writes it."""
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    table = f"bench_floor_{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, body text)")
    loop = asyncio.new_event_loop()
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=20, open=False)
    loop.run_until_complete(pool.open())
    counter = iter(range(10**9))

    async def checkout() -> None:
        key = f"k{next(counter)}"
        for step in range(STORE_CALLS):
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(
                    f"INSERT INTO {table} VALUES (%s, %s)"  # noqa: S608 - our own name
                    " ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                    (key, str(step)),
                )
            if step in (4, 8):  # (create, confirm: where the façade calls Stripe)
                await asyncio.sleep(LATENCY)

    def at_once(count: int) -> Callable[[], float]:
        async def many() -> None:
            await asyncio.gather(*(checkout() for _ in range(count)))

        def run() -> float:
            started = time.perf_counter()
            loop.run_until_complete(many())
            return time.perf_counter() - started

        return run

    try:
        return interleave(at_once(CONCURRENT), at_once(1), rounds=rounds).ratio
    finally:
        loop.run_until_complete(pool.close())
        loop.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def run(*, quick: bool) -> list[Row]:
    rounds = 3 if quick else 7
    rows: list[Row] = []
    stores: list[tuple[str, Callable[[], AsyncStore]]] = [("memory", AsyncMemoryStore)]
    dsn = os.environ.get("CARTPAY_TEST_POSTGRES_DSN")
    if dsn:
        from cartpay.stores.postgres import AsyncPostgresStore

        schema = f"bench_async_{os.getpid()}"
        stores.append(("PostgreSQL", lambda: AsyncPostgresStore(dsn, schema=schema, max_size=20)))
    for label, store in stores:

        def fake(store: Callable[[], AsyncStore] = store) -> AsyncCartPaymentIntent:
            return AsyncCartPaymentIntent(
                gateway=AsyncFakeStripeGateway(latency=LATENCY, redirects=False), store=store()
            )

        rows.append(
            Row(
                SECTION,
                f"{CONCURRENT} checkouts at once / one, a Stripe answering in 50 ms, {label}",
                _rounds(fake, rounds),
                "x",
                TARGET,
                detail="AsyncFakeStripeGateway(latency=0.05): cartpay's own work, no HTTP",
                baseline="one checkout alone, same store and gateway",
            )
        )
    if dsn:
        rows.append(
            Row(
                SECTION,
                f"the floor: {CONCURRENT} hand-written checkouts at once / one, PostgreSQL",
                _postgres_floor(dsn, rounds),
                "x",
                detail=f"psycopg's async pool alone, {STORE_CALLS} one-row transactions and"
                f" {STRIPE_CALLS} waits of 50 ms per checkout: the PostgreSQL target cannot"
                " go below it on this machine",
                baseline="one hand-written checkout alone (psycopg, no cartpay)",
            )
        )
    if quick:  # (the rows through localstripe have no target: full runs only)
        return rows
    with LocalStripe() as server:
        rate = _server_rate(server.url)
        for label, store in stores:

            def make(store: Callable[[], AsyncStore] = store) -> AsyncCartPaymentIntent:
                client = stripe.StripeClient(
                    "sk_test_cartpay_bench",
                    base_addresses={"api": server.url},
                    http_client=SlowHTTPXClient(),
                )
                gateway = AsyncStripeGateway(
                    client, attach_then_confirm=True, redirects=False, max_network_retries=0
                )
                return AsyncCartPaymentIntent(gateway=gateway, store=store())

            server.flush()
            rows.append(
                Row(
                    SECTION,
                    f"{CONCURRENT} checkouts at once / one, localstripe + 50 ms, {label}",
                    _rounds(make, rounds),
                    "x",
                    detail=f"AsyncStripeGateway over stripe.HTTPXClient; localstripe alone"
                    f" answers {rate:.0f} requests/s (one process): the {3 * CONCURRENT}"
                    " requests queue there",
                    baseline="one checkout alone through localstripe",
                )
            )
    return rows
