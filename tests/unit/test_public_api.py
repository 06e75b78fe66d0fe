from __future__ import annotations

import subprocess
import sys

import cartpay

EXPECTED = [
    "AmountMismatchError",
    "AsyncCartPaymentIntent",
    "AsyncPaymentGateway",
    "AsyncStore",
    "AsyncStoreReads",
    "AsyncStoreTransaction",
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
    "OperationPendingError",
    "Order",
    "OrphanedIntent",
    "PaymentFailure",
    "PaymentGateway",
    "PendingOperation",
    "RateLimitedError",
    "ReconcileReport",
    "RefundSnapshot",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreReads",
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
    assert len(errors) == 20, errors
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
    assert cartpay.StoreError("x", reason="full", retryable=True).retryable
    assert not cartpay.StoreError("x", reason="not_a_database", retryable=False).retryable


def test_every_error_pickles() -> None:
    import pickle

    samples = [
        cartpay.ValidationError("amount", "positive", "must be positive"),
        cartpay.NotFoundError("order", "ord_1"),
        cartpay.IllegalStateError("intent", "capture", "succeeded", entity_id="pi_1"),
        cartpay.IntentAlreadyUsedError("pi_1", "ord_2", "ord_1"),
        cartpay.AmountMismatchError(
            "ord_1",
            expected_amount=1,
            expected_currency="usd",
            actual_amount=2,
            actual_currency="usd",
        ),
        cartpay.CardDeclinedError("declined", code="card_declined", decline_code="generic_decline"),
        cartpay.InvalidRequestError("bad", param="amount", code="amount_too_large"),
        cartpay.GatewayUnavailableError("timeout", http_status=503),
        cartpay.StoreError("disk full", reason="full", retryable=True),
        cartpay.OperationPendingError("order ord_1", "capture", amount=1000),
    ]
    for error in samples:
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__
        assert copy.retryable == error.retryable
