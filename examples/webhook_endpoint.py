"""A minimal webhook endpoint (standard-library WSGI) around ``handle_webhook``.

    STRIPE_SECRET_KEY=sk_test_… STRIPE_WEBHOOK_SECRET=whsec_… python examples/webhook_endpoint.py

Stripe needs a 2xx quickly; a ``WebhookError`` (bad signature, not an event,
wrong mode) is a 400 and nothing was written; anything retryable is a 503 so
Stripe delivers again later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

import stripe

from cartpay import CartpayError, CartPaymentIntent, WebhookError
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.sqlite import SQLiteStore

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def make_app(
    payments: CartPaymentIntent,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)  # the raw bytes, never re-serialised JSON
        try:
            result = payments.handle_webhook(body, environ.get("HTTP_STRIPE_SIGNATURE", ""))
        except WebhookError as exc:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [str(exc).encode()]
        except CartpayError as exc:
            status = "503 Service Unavailable" if exc.retryable else "500 Internal Server Error"
            start_response(status, [("Content-Type", "text/plain")])
            return [type(exc).__name__.encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [result.action.encode()]

    return app


def main() -> None:
    client = stripe.StripeClient(os.environ["STRIPE_SECRET_KEY"], max_network_retries=2)
    gateway = StripeGateway(client, webhook_secret=os.environ["STRIPE_WEBHOOK_SECRET"])
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=gateway, store=SQLiteStore("cartpay.sqlite3")
    )
    with make_server("127.0.0.1", 8000, make_app(payments)) as server:
        print("listening on http://127.0.0.1:8000/")
        server.serve_forever()


if __name__ == "__main__":
    main()
