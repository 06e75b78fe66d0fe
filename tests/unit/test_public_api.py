from __future__ import annotations

import subprocess
import sys

import cartpay

EXPECTED = [
    "AmountMismatchError",
    "AuthenticationError",
    "CardDeclinedError",
    "Cart",
    "CartPaymentIntent",
    "CartpayError",
    "ConcurrencyError",
    "Currency",
    "GatewayError",
    "GatewayUnavailableError",
    "IdempotencyError",
    "IllegalStateError",
    "IntentAlreadyUsedError",
    "IntentChanges",
    "IntentHandle",
    "IntentOptions",
    "IntentParams",
    "IntentRecord",
    "IntentSnapshot",
    "InvalidRequestError",
    "LineItem",
    "NotFoundError",
    "Order",
    "OrphanedIntent",
    "PaymentFailure",
    "PaymentGateway",
    "PendingOperation",
    "RateLimitedError",
    "ReconcileReport",
    "RefundSnapshot",
    "Store",
    "StoreTransaction",
    "Transaction",
    "ValidationError",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookResult",
    "WebhookSignatureError",
    "format_amount",
    "get_currency",
    "parse_amount",
]


def test_all_is_pinned_and_sorted() -> None:
    assert cartpay.__all__ == EXPECTED
    assert sorted(cartpay.__all__) == cartpay.__all__
    for name in cartpay.__all__:
        assert hasattr(cartpay, name)


def test_every_error_is_a_cartpay_error() -> None:
    errors = [getattr(cartpay, n) for n in cartpay.__all__ if n.endswith("Error")]
    assert len(errors) == 17, errors
    assert all(issubclass(e, cartpay.CartpayError) for e in errors)


def test_import_cartpay_does_not_import_stripe() -> None:
    code = (
        "import sys, cartpay, cartpay.testing, cartpay.stores.memory;print('stripe' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_retryable_flags() -> None:
    assert cartpay.GatewayUnavailableError("x").retryable
    assert cartpay.RateLimitedError("x").retryable
    assert cartpay.ConcurrencyError("x").retryable
    assert not cartpay.IdempotencyError("x").retryable
    assert not cartpay.CardDeclinedError("x").retryable
    assert not cartpay.ValidationError("f", "r", "m").retryable
