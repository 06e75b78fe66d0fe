"""The demo: cart with three items → intent → update → checkout → confirm payment →
confirm order → partial refund, printing each step.

By default it starts localstripe (a local Stripe-compatible server) and runs
through the real ``StripeGateway``; ``--offline`` uses ``FakeStripeGateway``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ._models import Order
from ._money import format_amount
from ._ports import PaymentGateway
from ._service import CartPaymentIntent
from .stores.memory import MemoryStore


def _say(step: str, text: str) -> None:
    print(f"{step:<22} {text}", flush=True)


def _say_transactions(order: Order) -> None:
    for txn in order.transactions:
        amount = format_amount(txn.amount, txn.currency)
        _say("   transaction", f"{txn.kind} {txn.status} {amount} ref={txn.reference}")


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
            StripeGateway(client, attach_then_confirm=True),
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
            StripeGateway(client, attach_then_confirm=True),
            f"StripeGateway → localstripe at {server.url}",
            "pm_card_visa",
            None,
        )


def run_demo(*, offline: bool = False, stripe_url: str | None = None) -> int:
    with _gateway(offline, stripe_url) as (gateway, description, card, reason):
        payments = CartPaymentIntent(gateway=gateway, store=MemoryStore())
        _say("gateway", description)
        cart = payments.create_cart(currency="usd")
        _say("1. create cart", f"{cart.id} ({cart.currency})")
        cart = payments.add_item(
            cart.id, sku="tee-m", name="T-shirt (M)", unit_amount=2500, quantity=2
        )
        cart = payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
        cart = payments.add_item(
            cart.id, sku="sticker", name="Sticker pack", unit_amount=350, quantity=3
        )
        for item in cart.items:
            price = format_amount(item.unit_amount, cart.currency)
            _say("   add item", f"{item.quantity} × {item.name} at {price}")
        _say("   cart total", f"{format_amount(cart.total, cart.currency)} USD")
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
        _say("4. checkout", _describe(order) + f", intent={order.payment_intent_id}")
        order = payments.confirm_payment(order.id, payment_method=card)
        _say("5. confirm payment", f"with {card}: " + _describe(order))
        order = payments.confirm_order(order.id)
        _say("6. confirm order", _describe(order))
        _say_transactions(order)
        order = payments.refund_order(order.id, amount=500, reason=reason)
        _say("7. partial refund", "5.00 USD: " + _describe(order))
        order = payments.get_order(order.id)
        _say("final state", _describe(order))
        _say_transactions(order)
        _say(
            "   amounts",
            f"captured={format_amount(order.captured, order.currency)} "
            f"refunded={format_amount(order.refunded, order.currency)} "
            f"refundable={format_amount(order.refundable, order.currency)}",
        )
    return 0
