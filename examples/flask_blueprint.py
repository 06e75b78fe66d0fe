"""A Flask blueprint around cartpay: the Stripe webhook route and the error handler.

    pip install cartpay flask          # from a clone: pip install -e /path/to/cartpay flask
    export STRIPE_SECRET_KEY=sk_test_… STRIPE_WEBHOOK_SECRET=whsec_…
    flask --app examples/flask_blueprint run

There is no ``cartpay.contrib.flask``: this file is the whole integration, written
with cartpay's public API only (``handle_webhook`` and ``cartpay.http_status``),
so it can be copied into a Flask app as it is. It answers as the FastAPI and
Django integrations do (docs/web.md): 415 unless JSON, 413 over the size limit,
400 without a signature or for a delivery that is not Stripe's (nothing
written), 503 with Retry-After when Stripe should try again, 200 once applied.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from cartpay import CartpayError, CartPaymentIntent, http_status

#: Stripe's events are a few kilobytes; refuse bodies meant to exhaust memory.
MAX_BODY_BYTES = 1024 * 1024


def _error(status: int, type_: str, message: str, **headers: str) -> Response:
    response = jsonify({"error": {"type": type_, "message": message}})
    response.status_code = status
    response.headers.update(headers)
    return response


def cartpay_blueprint(
    payments: CartPaymentIntent, *, max_body_bytes: int = MAX_BODY_BYTES
) -> Blueprint:
    """``POST /stripe/webhook`` for Stripe's deliveries, and every ``CartpayError``
    raised by the app's views answered with ``cartpay.http_status``."""
    blueprint = Blueprint("cartpay", __name__)

    @blueprint.post("/stripe/webhook")
    def stripe_webhook() -> Response:
        if request.mimetype != "application/json":
            return _error(415, "UnsupportedMediaType", "a Stripe event is application/json")
        if request.content_length is not None and request.content_length > max_body_bytes:
            return _error(413, "PayloadTooLarge", f"the body exceeds {max_body_bytes} bytes")
        signature = request.headers.get("Stripe-Signature", "")
        if not signature:
            return _error(400, "WebhookSignatureError", "the Stripe-Signature header is missing")
        body = request.stream.read(max_body_bytes + 1)  # the raw bytes, never parsed JSON
        if len(body) > max_body_bytes:
            return _error(413, "PayloadTooLarge", f"the body exceeds {max_body_bytes} bytes")
        result = payments.handle_webhook(body, signature)  # errors: the handler below
        return jsonify(
            {"event_id": result.event_id, "event_type": result.event_type, "action": result.action}
        )

    @blueprint.app_errorhandler(CartpayError)
    def cartpay_error(exc: CartpayError) -> Response:
        status = http_status(exc)
        # A server error's message may name the database: the client gets the type only.
        message = str(exc) if status < 500 else "try again later" if exc.retryable else "error"
        headers = {"Retry-After": "1"} if exc.retryable else {}
        error: dict[str, Any] = {"type": type(exc).__name__, "message": message}
        if status < 500:
            error.update(
                {k: v for k, v in vars(exc).items() if k in ("field", "rule", "code", "kind", "id")}
            )
        response = jsonify({"error": error})
        response.status_code = status
        response.headers.update(headers)
        return response

    return blueprint


def create_app(payments: CartPaymentIntent | None = None) -> Flask:
    """A Flask app with the blueprint (``flask --app`` calls it with no argument: the
    façade is then built from the environment)."""
    app = Flask(__name__)
    app.register_blueprint(cartpay_blueprint(payments or payments_from_environment()))
    return app


def payments_from_environment() -> CartPaymentIntent:
    """The façade from the settings ``python -m cartpay dev`` prints (or real test keys),
    on ``cartpay.sqlite3``."""
    import stripe

    from cartpay.gateways.stripe import StripeGateway
    from cartpay.stores.sqlite import SQLiteStore

    base = os.environ.get("CARTPAY_STRIPE_API_BASE")  # `python -m cartpay dev` prints it
    client = stripe.StripeClient(
        os.environ["STRIPE_SECRET_KEY"],
        max_network_retries=2,
        **({"base_addresses": {"api": base}} if base else {}),  # type: ignore[arg-type]
    )
    gateway = StripeGateway(
        client,
        webhook_secret=os.environ["STRIPE_WEBHOOK_SECRET"],
        attach_then_confirm=os.environ.get("CARTPAY_ATTACH_THEN_CONFIRM") == "1",
        redirects=os.environ.get("CARTPAY_REDIRECTS") != "0",  # localstripe: cards only
    )
    return CartPaymentIntent(gateway=gateway, store=SQLiteStore("cartpay.sqlite3"))
