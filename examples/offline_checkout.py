"""A whole checkout with the in-memory fake gateway and an SQLite store.

    python examples/offline_checkout.py

Hosts use the same wiring in their own tests: only the gateway changes in production.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cartpay import CartPaymentIntent, IntentOptions, format_amount
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import FakeStripeGateway


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "shop.sqlite3")
        fake = FakeStripeGateway(webhook_secret="whsec_example")
        payments = CartPaymentIntent(
            return_url="https://shop.test/return", gateway=fake, store=store
        )

        cart = payments.create_cart("eur", options=IntentOptions(capture_method="manual"))
        cart = payments.add_item(cart.id, sku="book", name="Book", unit_amount=1999, quantity=2)
        intent = payments.create_payment_intent(cart.id)
        print("intent", intent)  # the client secret is never shown

        order = payments.checkout(cart.id)
        order = payments.confirm_payment(order.id, payment_method="pm_card_visa")
        print("authorized", order.payment, format_amount(order.authorized, order.currency))

        order = payments.capture_order(order.id, amount=1999)  # ship one book, release the rest
        print("captured", order.payment, format_amount(order.captured, order.currency))

        # Stripe would deliver these to your webhook endpoint: replaying them is harmless.
        for payload, signature in fake.events():
            result = payments.handle_webhook(payload, signature)
            print("webhook", result.event_type, result.action)
        store.close()


if __name__ == "__main__":
    main()
