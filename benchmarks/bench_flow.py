"""Figures 1 and 2: the checkout flow through the façade against a minimal
hand-written stripe-python integration, and the Stripe requests each operation
makes.

The baseline is what a careful developer writes without cartpay: create the
intent with the cart's amount, update the amount once when the cart changes,
confirm with the card, retrieve once to see it succeeded. On localstripe the
card must be attached by an update before the confirm (real Stripe takes both
in one confirm); that request is on both sides. No refund in the timed flow.

Both sides talk to the same localstripe process through one HTTP client that
counts the requests. localstripe slows down as its store grows, so it is flushed
before every batch of flows, on both sides alike.
"""

from __future__ import annotations

import functools
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

MINIMAL = (
    "minimal hand-written stripe-python: create, update amount, "
    "attach card + confirm, retrieve (5 requests)"
)
MINIMAL_RAW = "the same minimal integration through client.raw_request (no StripeObjects)"

#: What the façade sends beyond the minimal integration, and why. The benchmark
#: fails on any other difference.
EXPLAINED_EXTRAS = {
    "expand[0]=latest_charge": (
        "confirm_order's retrieve expands the latest charge: its refunded amount "
        "says whether a refund exists (no refund list) and its capture_before "
        "dates the authorization, in the same one request"
    ),
}

_ID = re.compile(r"\b(pi|re|ch|pm)_[A-Za-z0-9]+")

Sent = tuple[str, str, str]


class CountingHTTPClient(stripe.RequestsClient):
    """``stripe.RequestsClient`` that records each request as ``(method, path, body)``
    (object ids masked, so two flows' requests compare equal)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []

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
    """The demo's flow up to a paid order: cart, items, intent, quantity change +
    update, checkout, confirm_payment, confirm_order (no refund: the baseline
    has none)."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
    payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
    payments.create_payment_intent(cart.id)
    payments.set_quantity(cart.id, "tee", 3)
    payments.update_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    payments.confirm_payment(order.id, payment_method=CARD)
    order = payments.confirm_order(order.id)
    assert order.captured == UPDATED_AMOUNT and order.status == "complete", order


def minimal_flow(client: stripe.StripeClient) -> None:
    """The baseline: stripe-python as its README shows it, on a client made with
    ``max_network_retries`` (the SDK then sends an idempotency key with every
    POST). The cart's amounts are the façade's; the card is attached by an
    update, then confirmed, as localstripe needs."""
    intents = client.v1.payment_intents
    intent = intents.create(params={"amount": FIRST_AMOUNT, "currency": "usd"})
    intents.update(intent.id, params={"amount": UPDATED_AMOUNT})
    intents.update(intent.id, params={"payment_method": CARD})
    intents.confirm(intent.id)
    intent = intents.retrieve(intent.id)
    # (int(): localstripe echoes an updated amount back as the string it was sent)
    assert intent.status == "succeeded" and int(intent.amount) == UPDATED_AMOUNT, intent


def minimal_raw_request_flow(client: stripe.StripeClient) -> None:
    """The baseline's requests through ``client.raw_request``: the SDK's
    requestor and parsed JSON, no ``StripeObject`` built (what StripeGateway
    does), so the ratio against it is cartpay's own work."""

    def send(method: str, path: str, **params: object) -> Any:
        return client.raw_request(method, path, **params).data

    intent = send("post", "/v1/payment_intents", amount=FIRST_AMOUNT, currency="usd")
    path = f"/v1/payment_intents/{intent['id']}"
    send("post", path, amount=UPDATED_AMOUNT)
    send("post", path, payment_method=CARD)
    send("post", f"{path}/confirm")
    intent = send("get", path)
    assert intent["status"] == "succeeded" and int(intent["amount"]) == UPDATED_AMOUNT, intent


def compare_requests(facade: list[Sent], minimal: list[Sent]) -> list[str]:
    """The façade's requests must be the minimal integration's (same methods,
    paths and bodies, in order); query parameters it adds must be in
    ``EXPLAINED_EXTRAS``. Returns the extras found; raises on anything else."""
    if len(facade) != len(minimal):
        raise AssertionError(f"request counts differ:\n façade  {facade}\n minimal {minimal}")
    extras: list[str] = []
    for (fm, fpath, fbody), (mm, mpath, mbody) in zip(facade, minimal, strict=True):
        fbase, _, fquery = fpath.partition("?")
        mbase, _, mquery = mpath.partition("?")
        added = set(filter(None, fquery.split("&"))) - set(filter(None, mquery.split("&")))
        unexplained = added - set(EXPLAINED_EXTRAS)
        if (fm, fbase, fbody) != (mm, mbase, mbody) or unexplained:
            raise AssertionError(
                f"the façade's request {fm} {fpath} {fbody!r} is not the minimal "
                f"integration's {mm} {mpath} {mbody!r}"
            )
        extras.extend(f"{fm} {fbase}?{q}" for q in sorted(added))
    return extras


def _batch(server: LocalStripe, flows: int, one: Callable[[], None]) -> Callable[[], float]:
    def run() -> float:
        server.flush()

        def many() -> None:
            for _ in range(flows):
                one()

        return timed(many) / flows

    return run


def run(*, quick: bool) -> list[Row]:
    # --quick: fewer rounds, and no raw_request rows (shown, without a target).
    rounds, flows = (12, 3) if quick else (60, 5)
    rows: list[Row] = []
    with LocalStripe() as server, tempfile.TemporaryDirectory(prefix="cartpay-bench-") as tmp:
        http = CountingHTTPClient()
        client = stripe.StripeClient(
            "sk_test_cartpay_bench", base_addresses={"api": server.url}, http_client=http
        )
        # The baseline's own client, as its author would make it (the same HTTP
        # client, so the same connection pool and request counter).
        minimal_client = stripe.StripeClient(
            "sk_test_cartpay_bench",
            base_addresses={"api": server.url},
            http_client=http,
            max_network_retries=RETRIES,
        )
        gateway = StripeGateway(
            client, attach_then_confirm=True, redirects=False, max_network_retries=RETRIES
        )
        stores: list[tuple[str, Store, Target]] = [
            ("MemoryStore", MemoryStore(), Target("<=", 1.00)),
            ("SQLiteStore", SQLiteStore(os.path.join(tmp, "flow.sqlite3")), Target("<=", 1.10)),
        ]

        # The requests each side sends: the façade's are the minimal ones.
        server.flush()
        http.sent.clear()
        facade_flow(
            CartPaymentIntent(
                return_url="https://shop.test/return", gateway=gateway, store=MemoryStore()
            )
        )
        facade_sent = list(http.sent)
        http.sent.clear()
        minimal_flow(minimal_client)
        minimal_sent = list(http.sent)
        http.sent.clear()
        minimal_raw_request_flow(minimal_client)
        if http.sent != minimal_sent:
            raise AssertionError(f"raw_request side differs: {http.sent} vs {minimal_sent}")
        extras = compare_requests(facade_sent, minimal_sent)
        request_rows = [
            Row(
                SECTION_REQUESTS,
                "HTTP requests per flow, façade, localstripe",
                len(facade_sent),
                "requests",
                Target("<=", len(minimal_sent)),
                detail=(
                    "same methods, paths, bodies as the baseline: "
                    + ", ".join(f"{m} {p}" for m, p, _ in facade_sent)
                    + "".join(
                        f"; extra {e}: {EXPLAINED_EXTRAS[e.rpartition('?')[2]]}" for e in extras
                    )
                ),
                baseline=MINIMAL,
            )
        ]

        for name, store, target in stores:
            payments = CartPaymentIntent(
                return_url="https://shop.test/return", gateway=gateway, store=store
            )
            facade = _batch(server, flows, functools.partial(facade_flow, payments))
            paired = interleave(
                facade,
                _batch(server, flows, functools.partial(minimal_flow, minimal_client)),
                rounds=rounds,
                warmup=2,
            )
            facade_ms, minimal_ms = median(paired.a) * 1e3, median(paired.b) * 1e3
            rows.append(
                Row(
                    SECTION_FLOW,
                    f"façade / minimal stripe-python, {name}",
                    round(paired.ratio, 3),
                    "×",
                    target,
                    detail=(
                        f"median per flow: façade {facade_ms:.2f} ms, minimal "
                        f"{minimal_ms:.2f} ms; {rounds} interleaved rounds of {flows} flows"
                    ),
                    extra={"facade_ms": facade_ms, "baseline_ms": minimal_ms, "rounds": rounds},
                    baseline=MINIMAL,
                )
            )
            if not quick:
                rows.append(_bare_row(server, flows, rounds, name, facade, minimal_client))
            store.close()
    rows.extend(request_rows)
    rows.extend(requests_per_operation())
    return rows


def _bare_row(
    server: LocalStripe,
    flows: int,
    rounds: int,
    name: str,
    facade: Callable[[], float],
    client: stripe.StripeClient,
) -> Row:
    """Shown without a target: cartpay's own cost (stores, models, conversion)
    against the minimal integration through a client that builds no
    StripeObjects either."""
    bare = interleave(
        facade,
        _batch(server, flows, functools.partial(minimal_raw_request_flow, client)),
        rounds=max(rounds // 2, 6),
        warmup=1,
    )
    return Row(
        SECTION_FLOW,
        f"façade / minimal through client.raw_request, {name}",
        round(bare.ratio, 3),
        "×",
        detail=(
            f"median per flow: façade {median(bare.a) * 1e3:.2f} ms, "
            f"raw_request {median(bare.b) * 1e3:.2f} ms (cartpay's own work)"
        ),
        baseline=MINIMAL_RAW,
    )


#: The baseline of the per-method counts: a careful integration's requests for
#: the step each façade call stands for (on real Stripe; localstripe adds an
#: attach to the confirm).
CAREFUL = "what a careful hand-written integration sends for the same step"


def requests_per_operation() -> list[Row]:
    """Gateway requests per façade operation on the happy path (FakeStripeGateway),
    each against what a careful integration needs for that step."""
    fake = FakeStripeGateway()
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=fake, store=MemoryStore()
    )
    counts: list[tuple[str, int, Target]] = []

    def step(name: str, call: Callable[[], object], careful: int) -> Any:
        before = fake.count()
        result = call()
        counts.append((name, fake.count() - before, Target("<=", careful)))
        return result

    cart = step("create_cart", lambda: payments.create_cart("usd"), 0)
    step(
        "add_item",
        lambda: payments.add_item(cart.id, sku="tee", name="T", unit_amount=2500, quantity=2),
        0,
    )
    step("create_payment_intent", lambda: payments.create_payment_intent(cart.id), 1)
    step("set_quantity", lambda: payments.set_quantity(cart.id, "tee", 3), 0)
    step("update_payment_intent (changed)", lambda: payments.update_payment_intent(cart.id), 1)
    step("update_payment_intent (no-op)", lambda: payments.update_payment_intent(cart.id), 0)
    order = step("checkout (cart unchanged)", lambda: payments.checkout(cart.id), 0)
    step("confirm_payment", lambda: payments.confirm_payment(order.id, payment_method=CARD), 1)
    step("confirm_order (freshly paid)", lambda: payments.confirm_order(order.id), 1)
    step("refund_order (partial)", lambda: payments.refund_order(order.id, amount=REFUND), 1)
    rows = [
        Row(SECTION_REQUESTS, name, count, "requests", target, baseline=CAREFUL)
        for name, count, target in counts
    ]
    rows.append(
        Row(
            SECTION_REQUESTS,
            "total per order, with a partial refund (FakeStripeGateway; localstripe adds 1 attach)",
            sum(c for _, c, _ in counts),
            "requests",
            Target("<=", sum(int(t.bound) for _, _, t in counts)),
            detail=", ".join(f"{r.operation}" for r in fake.requests),
            baseline=CAREFUL,
        )
    )
    return rows
