"""The web suites: FastAPI, Django and the Flask example through each framework's own
test client, and the example shop in headless Chromium.

Each suite has a marker (``fastapi``, ``django``, ``flask``, ``browser``) that
CI requires (``CARTPAY_REQUIRE_SUITES``). A suite whose framework is not
installed is not collected; ``test_suites_present.py`` then skips a test with
its marker, so the required-suites guard fails CI instead of passing quietly.
"""

from __future__ import annotations

import http.server
import importlib
import queue
import threading
import time
from typing import Any

import pytest

from cartpay import CartPaymentIntent
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from cartpay.testing import LocalStripe
from cartpay.testing.plugin import TEST_WEBHOOK_SECRET

from .support import Delivery

#: Module → what it needs importable (each entry: one of these names). Starlette's
#: TestClient takes httpx2 (Starlette ≥ 1.x, which warns about httpx) or httpx.
_NEEDS = {
    "test_fastapi.py": ("fastapi", "httpx2|httpx"),
    "test_django.py": ("django",),
    "test_flask_example.py": ("flask",),
    "test_shop_browser.py": ("fastapi", "uvicorn", "selenium"),
    "test_docs.py": ("fastapi", "uvicorn"),
}


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _missing(names: tuple[str, ...]) -> bool:
    """Whether one of ``names`` (each ``a|b``: either) cannot be imported."""
    return not all(any(map(_importable, choice.split("|"))) for choice in names)


collect_ignore = [module for module, names in _NEEDS.items() if _missing(names)]


class _Receiver:
    """A local endpoint that queues each POSTed body with its signature header."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[tuple[bytes, str]] = queue.Queue()
        received = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put((body, self.headers.get("Stripe-Signature", "")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def deliver_on_localstripe(
    payments: CartPaymentIntent, gateway: StripeGateway, server: LocalStripe
) -> Delivery:
    """A checked-out order of ``payments`` (over ``gateway`` on localstripe ``server``)
    that the "browser" confirmed, with localstripe's own signed
    ``payment_intent.succeeded`` (caught by a local receiver, not yet given to
    cartpay: the order is unpaid)."""
    receiver = _Receiver()
    server.register_webhook("web", receiver.url, TEST_WEBHOOK_SECRET, ["payment_intent.succeeded"])
    try:
        cart = payments.create_cart("usd")
        payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
        handle = payments.create_payment_intent(cart.id)
        order = payments.checkout(cart.id)
        # The customer's browser confirms: cartpay hears of it only through the webhook.
        gateway.confirm_intent(handle.id, payment_method="pm_card_visa", idempotency_key="js")
        deadline = time.monotonic() + 15
        while True:
            body, signature = receiver.deliveries.get(timeout=max(0.1, deadline - time.monotonic()))
            if handle.id.encode() in body:
                return Delivery(payments, order.id, order.version, body, signature)
    finally:
        server.register_webhook("web", "http://127.0.0.1:9/", "whsec_none", [])
        receiver.close()


@pytest.fixture
def localstripe_delivery(
    stripe_gateway: StripeGateway, localstripe_server: LocalStripe
) -> Delivery:
    """:func:`deliver_on_localstripe` on a memory store."""
    payments = CartPaymentIntent(gateway=stripe_gateway, store=MemoryStore())
    return deliver_on_localstripe(payments, stripe_gateway, localstripe_server)
