from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import cartpay

EXPECTED = [
    "Adjustment",
    "AdjustmentKind",
    "AmountMismatchError",
    "AsyncCartPaymentIntent",
    "AsyncPaymentGateway",
    "AsyncPricing",
    "AsyncStore",
    "AsyncStoreReads",
    "AsyncStoreTransaction",
    "AuthenticationError",
    "AuthenticationRequiredError",
    "CaptureMethod",
    "CardDeclinedError",
    "Cart",
    "CartPaymentIntent",
    "CartpayError",
    "ConcurrencyError",
    "Currency",
    "DisputeSnapshot",
    "ExpiringAuthorization",
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
    "IntentStatus",
    "InvalidRequestError",
    "LineItem",
    "NextAction",
    "NotFoundError",
    "OperationName",
    "OperationPendingError",
    "Order",
    "OrderStatus",
    "OrphanedIntent",
    "PaymentFailure",
    "PaymentGateway",
    "PaymentStatus",
    "PendingOperation",
    "Pricing",
    "PricingError",
    "RateLimitedError",
    "ReconcileReport",
    "RefundSnapshot",
    "RefundStatus",
    "STRIPE_API_VERSION",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreReads",
    "StoreTransaction",
    "Transaction",
    "TransactionKind",
    "TransactionStatus",
    "ValidationError",
    "WEBHOOK_EVENTS",
    "WebhookAction",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookResult",
    "WebhookSignatureError",
    "format_amount",
    "from_json",
    "get_currency",
    "http_status",
    "parse_amount",
    "to_json",
]


def test_all_is_pinned_and_sorted() -> None:
    assert cartpay.__all__ == EXPECTED
    assert sorted(cartpay.__all__) == cartpay.__all__
    for name in cartpay.__all__:
        assert hasattr(cartpay, name)


def test_every_error_is_a_cartpay_error() -> None:
    errors = [getattr(cartpay, n) for n in cartpay.__all__ if n.endswith("Error")]
    assert len(errors) == 22, errors
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


def test_the_literal_types_of_public_fields_are_exported() -> None:
    from typing import get_args

    assert "paid" in get_args(cartpay.PaymentStatus)
    assert "cancelled" in get_args(cartpay.OrderStatus)
    assert "requires_capture" in get_args(cartpay.IntentStatus)
    assert "refund" in get_args(cartpay.TransactionKind)
    assert "duplicate" in get_args(cartpay.WebhookAction)
    assert "manual" in get_args(cartpay.CaptureMethod)


def test_the_facade_and_the_stores_close_as_context_managers(tmp_path: Path) -> None:
    from cartpay.stores.memory import MemoryStore
    from cartpay.stores.sqlite import SQLiteStore
    from cartpay.testing import FakeStripeGateway

    with SQLiteStore(str(tmp_path / "a.sqlite3")) as store:
        with cartpay.CartPaymentIntent(gateway=FakeStripeGateway(), store=store) as payments:
            cart = payments.create_cart("usd")
        with pytest.raises(cartpay.StoreError):  # closed with the façade
            store.read().__enter__()
    with SQLiteStore(str(tmp_path / "a.sqlite3")) as again:  # what was written stays
        with again.read() as tx:
            assert tx.get_cart(cart.id) == cart
    with MemoryStore() as memory:  # nothing to release: still usable
        with memory.transaction() as tx:
            tx.insert_cart(cart)
    memory.close()
    with memory.read() as tx:
        assert tx.get_cart(cart.id) == cart


def test_http_status_table_covers_every_error() -> None:
    from cartpay._errors import HTTP_STATUSES

    errors = {getattr(cartpay, n) for n in cartpay.__all__ if n.endswith("Error")}
    assert errors == set(HTTP_STATUSES)
    assert cartpay.http_status(cartpay.ValidationError("f", "r", "m")) == 422
    assert cartpay.http_status(cartpay.NotFoundError("order", "o")) == 404
    assert cartpay.http_status(cartpay.IntentAlreadyUsedError("pi", "o2", "o1")) == 409
    assert cartpay.http_status(cartpay.CardDeclinedError("no")) == 402
    assert cartpay.http_status(cartpay.GatewayUnavailableError("down")) == 503
    assert cartpay.http_status(cartpay.AuthenticationError("key")) == 500
    assert cartpay.http_status(cartpay.WebhookSignatureError("forged")) == 400
    assert cartpay.http_status(RuntimeError("boom")) == 500

    class Custom(cartpay.IllegalStateError):
        pass

    assert cartpay.http_status(Custom("order", "pay", "cancelled")) == 409
