"""Error translation for the answers localstripe never gives (Stripe's own error
bodies): each is served by a scripted HTTP client under the real SDK, so the
SDK's status → exception mapping runs for real, then ``translate_error``.
No server is needed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import stripe

from cartpay import (
    AuthenticationError,
    CardDeclinedError,
    CartpayError,
    GatewayUnavailableError,
    IdempotencyError,
    IllegalStateError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from cartpay.gateways.stripe import StripeGateway


class ScriptedHTTPClient(stripe.HTTPClient):
    """Answers every request with one fixed (status, JSON body)."""

    name = "scripted"

    def __init__(self, status: int, body: Mapping[str, Any] | list[Any] | str) -> None:
        super().__init__()
        self.status = status
        self.body = body if isinstance(body, str) else json.dumps(body)

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        return self.body, self.status, {"request-id": "req_scripted"}

    def close(self) -> None:
        pass


def _gateway(status: int, error: Mapping[str, Any]) -> StripeGateway:
    client = stripe.StripeClient(
        "sk_test_scripted", http_client=ScriptedHTTPClient(status, {"error": error})
    )
    return StripeGateway(client, max_network_retries=0)


def _update(gateway: StripeGateway) -> None:
    gateway.update_intent("pi_1", {"amount": 1500}, idempotency_key="k")


def test_unexpected_state_is_an_illegal_state_with_the_remote_status() -> None:
    gateway = _gateway(
        400,
        {
            "type": "invalid_request_error",
            "code": "payment_intent_unexpected_state",
            "message": "This PaymentIntent's amount could not be updated because it has a "
            "status of succeeded.",
            "payment_intent": {"id": "pi_1", "object": "payment_intent", "status": "succeeded"},
        },
    )
    with pytest.raises(IllegalStateError) as caught:
        _update(gateway)
    error = caught.value
    assert (error.entity, error.operation, error.status, error.entity_id) == (
        "intent",
        "update_amount",
        "succeeded",
        "pi_1",
    )
    assert not error.retryable
    assert isinstance(error.__cause__, stripe.InvalidRequestError)


def test_unexpected_state_without_the_intent_says_unknown() -> None:
    gateway = _gateway(
        400,
        {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"},
    )
    with pytest.raises(IllegalStateError) as caught:
        gateway.cancel_intent("pi_1", reason=None, idempotency_key="k")
    assert (caught.value.operation, caught.value.status) == ("cancel", "unknown")


def test_a_decline_keeps_its_decline_code() -> None:
    gateway = _gateway(
        402,
        {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_intent": {
                "id": "pi_1",
                "object": "payment_intent",
                "status": "requires_payment_method",
            },
        },
    )
    with pytest.raises(CardDeclinedError) as caught:
        gateway.confirm_intent("pi_1", payment_method="pm_card_visa", idempotency_key="k")
    error = caught.value
    assert (error.code, error.decline_code, error.intent_id) == (
        "card_declined",
        "insufficient_funds",
        "pi_1",
    )
    assert (error.http_status, error.request_id) == (402, "req_scripted")


@pytest.mark.parametrize(
    ("status", "error", "expected", "retryable"),
    [
        (400, {"type": "idempotency_error", "message": "Keys ..."}, IdempotencyError, False),
        (429, {"type": "invalid_request_error", "code": "rate_limit"}, RateLimitedError, True),
        (
            409,
            {"type": "api_error", "code": "idempotency_key_in_use"},
            GatewayUnavailableError,
            True,
        ),
        (500, {"type": "api_error", "message": "boom"}, GatewayUnavailableError, True),
        (503, {"type": "api_error"}, GatewayUnavailableError, True),
        (401, {"type": "invalid_request_error", "message": "bad key"}, AuthenticationError, False),
        (
            403,
            {"type": "invalid_request_error", "message": "no access"},
            AuthenticationError,
            False,
        ),
        (
            400,
            {"type": "invalid_request_error", "code": "amount_too_large", "param": "amount"},
            InvalidRequestError,
            False,
        ),
    ],
)
def test_error_classes(
    status: int, error: dict[str, Any], expected: type[CartpayError], retryable: bool
) -> None:
    with pytest.raises(expected) as caught:
        _update(_gateway(status, error))
    assert type(caught.value) is expected
    assert caught.value.retryable is retryable
    assert isinstance(caught.value.__cause__, stripe.StripeError)
    assert getattr(caught.value, "http_status", None) == status
    assert getattr(caught.value, "request_id", None) == "req_scripted"


def test_invalid_request_keeps_param_and_code() -> None:
    gateway = _gateway(
        400,
        {"type": "invalid_request_error", "code": "amount_too_large", "param": "amount"},
    )
    with pytest.raises(InvalidRequestError) as caught:
        gateway.create_refund("pi_1", amount=5000, reason=None, idempotency_key="k")
    assert (caught.value.param, caught.value.code) == ("amount", "amount_too_large")


def test_a_missing_intent_is_not_found() -> None:
    gateway = _gateway(
        404,
        {"type": "invalid_request_error", "code": "resource_missing", "param": "intent"},
    )
    with pytest.raises(NotFoundError) as caught:
        gateway.retrieve_intent("pi_gone")
    assert caught.value.id == "pi_gone"


@pytest.mark.parametrize(
    ("body", "call"),
    [
        pytest.param({}, "retrieve", id="an intent without id"),
        pytest.param({"id": "pi_1"}, "retrieve", id="an intent without status"),
        pytest.param(
            {"data": [{"amount": 1}], "has_more": False}, "list_refunds", id="refund without id"
        ),
        pytest.param(
            {"data": ["re_1"], "has_more": False}, "list_refunds", id="refund not an object"
        ),
        pytest.param({"amount": 100}, "refund", id="a created refund without id"),
    ],
)
def test_an_answer_that_is_not_the_object_it_should_be_is_retryable_unavailability(
    body: dict[str, Any], call: str
) -> None:
    client = stripe.StripeClient("sk_test_scripted", http_client=ScriptedHTTPClient(200, body))
    gateway = StripeGateway(client, max_network_retries=0)
    with pytest.raises(GatewayUnavailableError) as caught:
        if call == "retrieve":
            gateway.retrieve_intent("pi_1")
        elif call == "list_refunds":
            gateway.list_refunds("pi_1")
        else:
            gateway.create_refund("pi_1", amount=None, reason=None, idempotency_key="k")
    assert caught.value.retryable
    assert "not a valid" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="a JSON list"),
        pytest.param("<html>502 Bad Gateway</html>", id="not JSON"),
    ],
)
def test_an_answer_that_is_not_a_json_object_is_retryable_unavailability(
    body: list[Any] | str,
) -> None:
    client = stripe.StripeClient("sk_test_scripted", http_client=ScriptedHTTPClient(200, body))
    gateway = StripeGateway(client, max_network_retries=0)
    with pytest.raises(GatewayUnavailableError) as caught:
        gateway.retrieve_intent("pi_1")
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("settings", "field", "rule"),
    [
        ({"max_network_retries": -1}, "max_network_retries", "non_negative"),
        ({"max_network_retries": True}, "max_network_retries", "integer"),
        ({"max_network_retries": 2.0}, "max_network_retries", "integer"),
        ({"webhook_secret": b"whsec_x"}, "webhook_secret", "string"),
    ],
)
def test_wrong_settings_are_validation_errors(
    settings: dict[str, Any], field: str, rule: str
) -> None:
    client = stripe.StripeClient("sk_test_scripted", http_client=ScriptedHTTPClient(200, {}))
    with pytest.raises(ValidationError) as caught:
        StripeGateway(client, **settings)
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_the_stripe_module_is_not_a_client() -> None:
    with pytest.raises(ValidationError) as caught:
        StripeGateway(stripe)  # type: ignore[arg-type]  # the mistake this catches
    assert (caught.value.field, caught.value.rule) == ("client", "stripe_client")


def test_an_intent_with_an_unknown_status_is_retryable_unavailability() -> None:
    body = {"id": "pi_1", "object": "payment_intent", "status": "bogus", "amount": 100}
    client = stripe.StripeClient("sk_test_scripted", http_client=ScriptedHTTPClient(200, body))
    with pytest.raises(GatewayUnavailableError, match="unknown PaymentIntent status"):
        StripeGateway(client, max_network_retries=0).retrieve_intent("pi_1")
