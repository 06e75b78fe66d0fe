"""The demo: cart with three items, a shipping line and a discount code → intent
→ update → checkout → the browser confirms → confirm order → partial refund,
printing each step, on a SQLite file.

By default it starts localstripe (a local Stripe-compatible server) and runs
through the real ``StripeGateway``; ``--offline`` uses ``FakeStripeGateway``.
The store is :class:`~cartpay.stores.sqlite.SQLiteStore`, the embedded default,
in the file ``--db`` names (``cartpay-demo.sqlite3`` in the current directory
unless given); the file is kept so it can be opened afterwards, and each run
adds its own cart and order to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager

from ._models import Order, Transaction
from ._money import format_amount
from ._ports import PaymentGateway
from ._service import CartPaymentIntent
from .stores.sqlite import SQLiteStore

#: Where the demo keeps its database unless told otherwise (``*.sqlite3`` is git-ignored).
DEFAULT_DB = "cartpay-demo.sqlite3"


def _say(step: str, text: str) -> None:
    print(f"{step:<22} {text}", flush=True)


def _say_transactions(transactions: Sequence[Transaction]) -> None:
    for txn in transactions:
        amount = format_amount(txn.amount, txn.currency)
        _say("   transaction", f"{txn.kind} {txn.status} {amount} ref={txn.reference}")


def _new_transactions(before: Order, after: Order) -> list[Transaction]:
    known = {t.id for t in before.transactions}
    return [t for t in after.transactions if t.id not in known]


def _describe(order: Order) -> str:
    return (
        f"order {order.id}: status={order.status} payment={order.payment} "
        f"total={format_amount(order.total, order.currency)} {order.currency.upper()}"
    )


@contextmanager
def _gateway(
    offline: bool, stripe_url: str | None
) -> Iterator[tuple[PaymentGateway, str, str, str | None]]:
    """(gateway, description, a test payment method that succeeds, a refund reason).

    localstripe refuses a refund ``reason`` (and a ``cancellation_reason``), so
    the demo sends none to a server.
    """
    if offline:
        from .testing import FakeStripeGateway

        fake = FakeStripeGateway()
        yield fake, "FakeStripeGateway (offline)", "pm_card_visa", "requested_by_customer"
        return
    import stripe

    from .gateways.stripe import StripeGateway
    from .testing._localstripe import LocalStripe

    if stripe_url:
        client = stripe.StripeClient(
            "sk_test_cartpay_demo", base_addresses={"api": stripe_url}, max_network_retries=2
        )
        yield (
            StripeGateway(client, attach_then_confirm=True, redirects=False),
            f"StripeGateway → {stripe_url}",
            "pm_card_visa",
            None,
        )
        return
    with LocalStripe() as server:
        client = stripe.StripeClient(
            "sk_test_cartpay_demo", base_addresses={"api": server.url}, max_network_retries=2
        )
        yield (
            StripeGateway(client, attach_then_confirm=True, redirects=False),
            f"StripeGateway → localstripe at {server.url}",
            "pm_card_visa",
            None,
        )


#: Where the demo shop would take a customer back after a redirect.
RETURN_URL = "https://shop.example/checkout/done"


def run_demo(
    *, offline: bool = False, stripe_url: str | None = None, db: str | os.PathLike[str] = DEFAULT_DB
) -> int:
    path = os.path.abspath(db)
    with _gateway(offline, stripe_url) as (gateway, description, card, reason):
        _say("gateway", description)
        with closing(SQLiteStore(path)) as store:
            _say("store", f"SQLiteStore at {path} (kept after the demo)")
            # The return URL: where Stripe would send a customer back after a
            # redirect (3-D Secure, a bank's page); cards on localstripe need none.
            payments = CartPaymentIntent(gateway=gateway, store=store, return_url=RETURN_URL)
            order_id = _flow(payments, gateway, card, reason)
    # A new store on the same file: everything above was committed to it.
    with closing(SQLiteStore(path)) as store:
        order = CartPaymentIntent(gateway=gateway, store=store).get_order(order_id)
        _say(
            "8. read back",
            f"order {order.id} (version {order.version}) from the file by a new SQLiteStore: "
            f"captured={format_amount(order.captured, order.currency)} "
            f"refunded={format_amount(order.refunded, order.currency)} "
            f"refundable={format_amount(order.refundable, order.currency)}, "
            f"{len(order.transactions)} transactions",
        )
    return 0


def _flow(
    payments: CartPaymentIntent, gateway: PaymentGateway, card: str, reason: str | None
) -> str:
    """Steps 1 to 7; returns the order's id."""
    cart = payments.create_cart(currency="usd")
    _say("1. create cart", f"{cart.id} ({cart.currency})")
    cart = payments.add_item(cart.id, sku="tee-m", name="T-shirt (M)", unit_amount=2500, quantity=2)
    cart = payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
    cart = payments.add_item(
        cart.id, sku="sticker", name="Sticker pack", unit_amount=350, quantity=3
    )
    for item in cart.items:
        price = format_amount(item.unit_amount, cart.currency)
        _say("   add item", f"{item.quantity} × {item.name} at {price}")
    cart = payments.add_adjustment(
        cart.id, kind="shipping", code="standard", label="Standard shipping", amount=495
    )
    cart = payments.add_adjustment(
        cart.id, kind="discount", code="WELCOME10", label="Welcome, 10.00 off", amount=1000
    )
    for adjustment in cart.adjustments:
        sign = "-" if adjustment.kind == "discount" else "+"
        amount = format_amount(adjustment.amount, cart.currency)
        _say("   add adjustment", f"{adjustment.kind} {adjustment.code}: {sign}{amount}")
    _say(
        "   cart total",
        f"{format_amount(cart.total, cart.currency)} USD "
        f"(items {format_amount(cart.subtotal, cart.currency)})",
    )
    intent = payments.create_payment_intent(cart.id)
    _say("2. create intent", f"{intent!r}")
    cart = payments.set_quantity(cart.id, "tee-m", 3)
    _say(
        "3. change quantity",
        f"3 × T-shirt, total now {format_amount(cart.total, cart.currency)} USD",
    )
    intent = payments.update_payment_intent(cart.id)
    _say("   update intent", f"amount={intent.amount} status={intent.status}")
    again = payments.update_payment_intent(cart.id)
    _say("   update again", f"nothing changed → no Stripe call (amount={again.amount})")
    order = payments.checkout(cart.id)
    intent_id = order.payment_intent_id
    assert intent_id is not None  # checkout of a cart with an intent links it
    _say("4. checkout", _describe(order) + f", intent={intent_id}")
    # What Stripe.js does in the browser (with the shop's return URL, unless the
    # server takes cards only); cartpay is not told.
    cards_only = getattr(gateway, "redirects", True) is False
    snap = gateway.confirm_intent(
        intent_id,
        payment_method=card,
        return_url=None if cards_only else RETURN_URL,
        idempotency_key=f"demo-browser-{order.id}",
    )
    order = payments.get_order(order.id)
    _say(
        "5. browser confirms",
        f"with {card}: intent {snap.status} at Stripe; order still payment={order.payment}",
    )
    paid = payments.confirm_order(order.id)
    _say("6. confirm order", "synchronised from Stripe: " + _describe(paid))
    _say_transactions(_new_transactions(order, paid))
    # The host's own id of the refund request: a retry of this call never
    # refunds twice (docs/money.md, "Unknown outcomes").
    key = f"demo-refund-{paid.id}-1"
    refunded = payments.refund_order(paid.id, amount=500, reason=reason, idempotency_key=key)
    _say("7. partial refund", "5.00 USD: " + _describe(refunded))
    _say_transactions(_new_transactions(paid, refunded))
    retried = payments.refund_order(paid.id, amount=500, reason=reason, idempotency_key=key)
    total = format_amount(retried.refunded, retried.currency)
    _say("   retried", f"same idempotency_key: no second refund, {total} refunded in all")
    return refunded.id
