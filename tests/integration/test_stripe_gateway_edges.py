"""StripeGateway at its edges, under the real SDK with a scripted HTTP client (no
server): answers the SDK chokes on, requests it cannot encode, and the SDK's
own debug printing, which must not put a client secret on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from cartpay import (
    CartPaymentIntent,
    GatewayUnavailableError,
    ValidationError,
)
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from tests.integration.test_stripe_errors import ScriptedHTTPClient

SECRET = "pi_123_secret_abcdefghijklmnop"
INTENT = {
    "id": "pi_123",
    "object": "payment_intent",
    "status": "requires_payment_method",
    "amount": 2500,
    "currency": "usd",
    "client_secret": SECRET,
    "capture_method": "automatic_async",
    "created": 1_700_000_000,
    "livemode": False,
    "metadata": {},
}


class CountingClient(ScriptedHTTPClient):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status, body)
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> tuple[str, int, Any]:
        self.calls += 1
        return super().request(*args, **kwargs)


def _gateway(status: int, body: Any, **settings: Any) -> tuple[StripeGateway, CountingClient]:
    http = CountingClient(status, body)
    client = stripe.StripeClient("sk_test_scripted", http_client=http)
    return StripeGateway(client, max_network_retries=0, **settings), http


@pytest.mark.parametrize("status", [400, 402, 403, 404, 429, 500])
def test_an_error_that_is_a_string_is_retryable_unavailability(status: int) -> None:
    """A proxy or WAF answering {"error": "<text>"} made the SDK raise AttributeError."""
    gateway, _ = _gateway(status, {"error": "Request blocked by the firewall"})
    with pytest.raises(GatewayUnavailableError) as caught:
        gateway.update_intent("pi_1", {"amount": 1500}, idempotency_key="k")
    assert caught.value.retryable
    assert caught.value.__cause__ is not None


def test_a_request_that_cannot_be_encoded_is_refused_before_sending() -> None:
    """(The façade's validation keeps such text out; this is the gateway's own guard.)"""
    gateway, http = _gateway(200, INTENT)
    with pytest.raises(ValidationError) as caught:
        gateway.update_intent("pi_1", {"description": "Tee \ud83d"}, idempotency_key="k")
    assert (caught.value.field, caught.value.rule) == ("request", "encodable")
    with pytest.raises(ValidationError) as caught:
        gateway.retrieve_intent("pi_\ud83d")
    assert (caught.value.field, caught.value.rule) == ("intent_id", "encodable")
    assert http.calls == 0


@pytest.fixture
def sdk_debug_printing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(stripe, "log", "debug")
    yield


def test_the_sdk_debug_printing_is_refused_without_an_opt_in(
    sdk_debug_printing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        _gateway(200, INTENT)
    assert (caught.value.field, caught.value.rule) == ("stripe.log", "sdk_debug_output")
    assert "client secrets" in str(caught.value)
    assert SECRET not in capsys.readouterr().err


def test_stripe_log_from_the_environment_is_refused_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stripe import _util

    monkeypatch.setattr(stripe, "log", None)
    monkeypatch.setattr(_util, "STRIPE_LOG", "debug")  # STRIPE_LOG=debug at import
    with pytest.raises(ValidationError):
        _gateway(200, INTENT)


def test_debug_printing_switched_on_later_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway, http = _gateway(200, INTENT)
    payments = CartPaymentIntent(gateway=gateway, store=MemoryStore())
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500)
    monkeypatch.setattr(stripe, "log", "debug")
    with pytest.raises(ValidationError):
        payments.create_payment_intent(cart.id)
    assert http.calls == 0
    assert SECRET not in capsys.readouterr().err
    assert payments.get_cart(cart.id).pending is None  # a definite failure: no claim left


def test_an_explicit_opt_in_lets_the_sdk_print(
    sdk_debug_printing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway, _ = _gateway(200, INTENT, allow_sdk_debug_output=True)
    assert gateway.retrieve_intent("pi_123").client_secret == SECRET
    assert SECRET in capsys.readouterr().err  # what the host asked for


def test_without_debug_printing_nothing_reaches_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway, _ = _gateway(200, INTENT)
    gateway.retrieve_intent("pi_123")
    assert SECRET not in capsys.readouterr().err


@pytest.mark.parametrize(
    "header",
    ["t=1,v1=\u00e9\u00e9", "t=1,v1=\ud83d", "t=\ud83d,v1=ab"],
    ids=["non-ASCII signature", "lone surrogate signature", "lone surrogate timestamp"],
)
def test_a_header_the_sdk_cannot_compare_is_a_signature_error(header: str) -> None:
    from cartpay import WebhookSignatureError

    gateway, _ = _gateway(200, INTENT, webhook_secret="whsec_x")
    with pytest.raises(WebhookSignatureError):
        gateway.verify_webhook(b"{}", header, tolerance=300)
