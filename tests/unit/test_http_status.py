"""cartpay.http_status: every error has a status, the nearest class decides, and
a retryable server error is a 503 (docs/howto/errors.md prints the table:
tests/unit/test_docs.py keeps it equal)."""

from __future__ import annotations

import pytest

import cartpay
from cartpay import http_status
from cartpay._errors import HTTP_STATUSES


def test_every_public_error_is_in_the_table() -> None:
    errors = {getattr(cartpay, n) for n in cartpay.__all__ if n.endswith("Error")}
    named = set(HTTP_STATUSES)
    assert errors <= named


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (cartpay.ValidationError("quantity", "positive", "no"), 422),
        (cartpay.WebhookSignatureError("forged"), 400),
        (cartpay.WebhookPayloadError("not json"), 400),
        (cartpay.NotFoundError("order", "o_1"), 404),
        (cartpay.IllegalStateError("order", "refund", "incomplete"), 409),
        (cartpay.ConcurrencyError("busy"), 409),  # retryable, but a 4xx stays
        (cartpay.CardDeclinedError("declined", code="card_declined"), 402),
        (cartpay.InvalidRequestError("no such payment method", param="payment_method"), 400),
        (cartpay.AuthenticationError("bad key"), 500),
        (cartpay.GatewayError("refused"), 502),
        (cartpay.GatewayError("5xx", retryable=True), 503),
        (cartpay.GatewayUnavailableError("timeout"), 503),
        (cartpay.RateLimitedError("slow down"), 503),
        (cartpay.StoreError("disk full", reason="full", retryable=False), 500),
        (cartpay.StoreError("unreachable", reason="unavailable", retryable=True), 503),
        (cartpay.SchemaVersionError("newer"), 500),
        (cartpay.CartpayError("other"), 500),
        (cartpay.CartpayError("other", retryable=True), 503),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_statuses(error: cartpay.CartpayError, status: int) -> None:
    assert http_status(error) == status


def test_a_subclass_takes_its_nearest_entry() -> None:
    class HostDeclined(cartpay.CardDeclinedError):
        pass

    assert http_status(HostDeclined("declined")) == 402


def test_any_other_exception_is_a_500() -> None:
    assert http_status(ValueError("x")) == 500
