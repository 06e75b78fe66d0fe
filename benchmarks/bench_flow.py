"""Figures 1 and 2: the checkout flow through the façade vs the same Stripe calls
made directly with stripe-python, and the Stripe requests each operation makes.

Both sides talk to the same localstripe process through the same
``stripe.StripeClient`` (one HTTP client counting the requests). localstripe
slows down as its store grows, so it is flushed before every batch of flows, on
both sides alike.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import stripe
from _harness import Row, Target, interleave, median, timed

from cartpay import CartPaymentIntent
from cartpay._ports import Store
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import FakeStripeGateway, LocalStripe

SECTION_FLOW = "1. checkout flow"
SECTION_REQUESTS = "2. Stripe requests per order"

#: The flow's cart: 2 × 25.00 + 1 × 12.00, then 3 × 25.00 (62.00 → 87.00), refund 5.00.
FIRST_AMOUNT, UPDATED_AMOUNT, REFUND = 6200, 8700, 500
CARD = "pm_card_visa"
RETRIES = 2

_ID = re.compile(r"\b(pi|re|ch|pm)_[A-Za-z0-9]+")


class CountingHTTPClient(stripe.RequestsClient):
    """``stripe.RequestsClient`` that records each request as ``(method, path, body)``
    (object ids masked, so two flows' requests compare equal)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, str]] = []

    def request(  # type: ignore[override]  # (stripe's own RequestsClient differs too)
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        path = url.split("://", 1)[-1].partition("/")[2]
        body = post_data.decode() if isinstance(post_data, bytes) else str(post_data or "")
        self.sent.append((method.upper(), "/" + _ID.sub(r"\1_…", path), _ID.sub(r"\1_…", body)))
        return super().request(method, url, headers, post_data)


def facade_flow(payments: CartPaymentIntent) -> None:
    """The demo's flow: cart, items, intent, quantity change + update, checkout,
    confirm_payment, confirm_order, partial refund."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
    payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
    payments.create_payment_intent(cart.id)
    payments.set_quantity(cart.id, "tee", 3)
    payments.update_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method=CARD)
    payments.confirm_order(order.id)
    order = payments.refund_order(order.id, amount=REFUND)
    assert order.refunded == REFUND and order.captured == UPDATED_AMOUNT, order


def raw_flow(client: stripe.StripeClient, n: int) -> None:
    """The same requests with stripe-python alone (idempotency keys and retries as
    the gateway sends them; the payment method attached, then confirmed, as
    localstripe needs)."""
    intents, refunds = client.v1.payment_intents, client.v1.refunds

    def post(step: str) -> stripe.RequestOptions:
        return {"idempotency_key": f"raw:{n}:{step}", "max_network_retries": RETRIES}

    intent = intents.create(
        params={"amount": FIRST_AMOUNT, "currency": "usd"}, options=post("create")
    )
    intent = intents.update(intent.id, params={"amount": UPDATED_AMOUNT}, options=post("update"))
    intents.update(intent.id, params={"payment_method": CARD}, options=post("attach"))
    intent = intents.confirm(intent.id, params=None, options=post("confirm"))
    intent = intents.retrieve(intent.id, options={"max_network_retries": RETRIES})
    page = refunds.list(
        params={"payment_intent": intent.id, "limit": 100},
        options={"max_network_retries": RETRIES},
    )
    list(page.auto_paging_iter())
    refund = refunds.create(
        params={"payment_intent": intent.id, "amount": REFUND}, options=post("refund")
    )
    assert intent.status == "succeeded" and refund.amount == REFUND


def raw_dict_flow(client: stripe.StripeClient, n: int) -> None:
    """The same requests through ``client.raw_request``: the SDK's requestor and
    parsed JSON, no ``StripeObject`` built (what StripeGateway does)."""

    def post(path: str, step: str, **params: object) -> Any:
        options = {"idempotency_key": f"raw:{n}:{step}", "max_network_retries": RETRIES}
        return client.raw_request("post", path, **params, **options).data

    def get(path: str, **params: object) -> Any:
        return client.raw_request("get", path, **params, max_network_retries=RETRIES).data

    intent = post("/v1/payment_intents", "create", amount=FIRST_AMOUNT, currency="usd")
    path = f"/v1/payment_intents/{intent['id']}"
    post(path, "update", amount=UPDATED_AMOUNT)
    post(path, "attach", payment_method=CARD)
    post(f"{path}/confirm", "confirm")
    intent = get(path)
    page = get("/v1/refunds", payment_intent=intent["id"], limit=100)
    refund = post("/v1/refunds", "refund", payment_intent=intent["id"], amount=REFUND)
    assert intent["status"] == "succeeded" and refund["amount"] == REFUND, page


def _batch(server: LocalStripe, flows: int, one: Callable[[], None]) -> Callable[[], float]:
    def run() -> float:
        server.flush()

        def many() -> None:
            for _ in range(flows):
                one()

        return timed(many) / flows

    return run


def run(*, quick: bool) -> list[Row]:
    rounds, flows = (30, 4) if quick else (60, 5)
    rows: list[Row] = []
    counter = itertools.count()
    with LocalStripe() as server, tempfile.TemporaryDirectory(prefix="cartpay-bench-") as tmp:
        http = CountingHTTPClient()
        client = stripe.StripeClient(
            "sk_test_cartpay_bench", base_addresses={"api": server.url}, http_client=http
        )
        gateway = StripeGateway(
            client, attach_then_confirm=True, redirects=False, max_network_retries=RETRIES
        )
        stores: list[tuple[str, Store, Target]] = [
            ("memory", MemoryStore(), Target("<=", 1.05)),
            ("SQLite", SQLiteStore(os.path.join(tmp, "flow.sqlite3")), Target("<=", 1.15)),
        ]

        # The façade's requests, and the raw side's: the same list, in the same order.
        server.flush()
        http.sent.clear()
        facade_flow(
            CartPaymentIntent(
                return_url="https://shop.test/return", gateway=gateway, store=MemoryStore()
            )
        )
        facade_sent = list(http.sent)
        http.sent.clear()
        raw_flow(client, next(counter))
        raw_sent = list(http.sent)
        http.sent.clear()
        raw_dict_flow(client, next(counter))
        raw_dict_sent = list(http.sent)
        if not facade_sent == raw_sent == raw_dict_sent:
            raise AssertionError(
                f"the sides differ:\n façade {facade_sent}\n raw    {raw_sent}\n"
                f" raw_request {raw_dict_sent}"
            )
        http_row = (
            Row(
                SECTION_REQUESTS,
                "HTTP requests per flow, localstripe (façade = raw: same paths, bodies)",
                len(facade_sent),
                "requests",
                detail=", ".join(f"{m} {p}" for m, p, _ in facade_sent),
            ),
        )

        for name, store, target in stores:
            payments = CartPaymentIntent(
                return_url="https://shop.test/return", gateway=gateway, store=store
            )
            paired = interleave(
                _batch(server, flows, functools.partial(facade_flow, payments)),
                _batch(server, flows, lambda: raw_flow(client, next(counter))),
                rounds=rounds,
                warmup=2,
            )
            facade_ms, raw_ms = median(paired.a) * 1e3, median(paired.b) * 1e3
            # Shown without a target: cartpay's own cost (stores, models,
            # conversion) against a client that builds no StripeObjects either.
            bare = interleave(
                _batch(server, flows, functools.partial(facade_flow, payments)),
                _batch(server, flows, lambda: raw_dict_flow(client, next(counter))),
                rounds=rounds,
                warmup=1,
            )
            rows.append(
                Row(
                    SECTION_FLOW,
                    f"façade / raw stripe-python, {name} store",
                    round(paired.ratio, 3),
                    "×",
                    target,
                    detail=(
                        f"median per flow: façade {facade_ms:.2f} ms, raw {raw_ms:.2f} ms; "
                        f"{rounds} interleaved rounds of {flows} flows, "
                        f"{len(facade_sent)} requests each"
                    ),
                    extra={"facade_ms": facade_ms, "raw_ms": raw_ms, "rounds": rounds},
                )
            )
            rows.append(
                Row(
                    SECTION_FLOW,
                    f"façade / client.raw_request (no StripeObjects), {name} store",
                    round(bare.ratio, 3),
                    "×",
                    detail=(
                        f"median per flow: façade {median(bare.a) * 1e3:.2f} ms, "
                        f"raw_request {median(bare.b) * 1e3:.2f} ms (cartpay's own work)"
                    ),
                )
            )
            store.close()
    rows.extend(http_row)
    rows.extend(requests_per_operation())
    return rows


def requests_per_operation() -> list[Row]:
    """Gateway requests per façade operation on the happy path (FakeStripeGateway)."""
    fake = FakeStripeGateway()
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=fake, store=MemoryStore()
    )
    counts: list[tuple[str, int, Target | None]] = []

    def step(name: str, call: Callable[[], object], target: Target | None = None) -> Any:
        before = fake.count()
        result = call()
        counts.append((name, fake.count() - before, target))
        return result

    cart = step("create_cart", lambda: payments.create_cart("usd"), Target("==", 0))
    step(
        "add_item",
        lambda: payments.add_item(cart.id, sku="tee", name="T", unit_amount=2500, quantity=2),
        Target("==", 0),
    )
    step("create_payment_intent", lambda: payments.create_payment_intent(cart.id))
    step("set_quantity", lambda: payments.set_quantity(cart.id, "tee", 3), Target("==", 0))
    step("update_payment_intent (changed)", lambda: payments.update_payment_intent(cart.id))
    step(
        "update_payment_intent (no-op)",
        lambda: payments.update_payment_intent(cart.id),
        Target("==", 0),
    )
    order = step("checkout (cart unchanged)", lambda: payments.checkout(cart.id))
    step(
        "confirm_payment",
        lambda: payments.confirm_payment(order.id, payment_method=CARD),
    )
    step("confirm_order (paid: retrieve + refund list)", lambda: payments.confirm_order(order.id))
    step("refund_order (partial)", lambda: payments.refund_order(order.id, amount=REFUND))
    rows = [
        Row(SECTION_REQUESTS, name, count, "requests", target) for name, count, target in counts
    ]
    rows.append(
        Row(
            SECTION_REQUESTS,
            "total per order (FakeStripeGateway; localstripe adds 1 attach)",
            sum(c for _, c, _ in counts),
            "requests",
            detail=", ".join(f"{r.operation}" for r in fake.requests),
        )
    )
    return rows
