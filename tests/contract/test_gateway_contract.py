"""One contract for every PaymentGateway: FakeStripeGateway, StripeGateway against
localstripe, and StripeGateway against Stripe test mode (when
``STRIPE_TEST_SECRET_KEY`` is set). Everything goes through the port only.
stripe-mock keeps no state, so it runs the request half of this contract instead:
``tests/integration/test_stripe_mock_requests.py`` (each request accepted and parsed).

Where a backend lacks a behaviour, that case is marked ``xfail(strict=True)`` for
that backend alone, with the reason (``Backend.lacks``): the test still runs, so
the day the backend gains the behaviour the xfail turns into a failure to remove.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import stripe

from cartpay import (
    CardDeclinedError,
    IdempotencyError,
    IllegalStateError,
    InvalidRequestError,
    NotFoundError,
    WebhookSignatureError,
)
from cartpay._models import IntentOptions, IntentParams, IntentSnapshot
from cartpay._ports import PaymentGateway
from cartpay.gateways.stripe import AsyncStripeGateway, StripeGateway
from cartpay.testing import AsyncFakeStripeGateway, FakeStripeGateway, LocalStripe
from cartpay.testing.plugin import TEST_API_KEY, TEST_WEBHOOK_SECRET

from ..twins import Blocking, Twin

#: Every case runs on both gateways of a backend, sync and async (tests/twins.py).
pytestmark = pytest.mark.twins

LOCALSTRIPE_LACKS: Mapping[str, str] = {
    "idempotency": "localstripe ignores Idempotency-Key: a replay creates a second intent "
    "and a key reused with other parameters is accepted",
    "state_checks": "localstripe accepts an update after success and refuses illegal steps "
    "with a bare 400 'Bad request' (no payment_intent_unexpected_state)",
    "cancellation_reason": "localstripe rejects cancellation_reason "
    "('Unexpected cancellation_reason')",
    "refund_reason": "localstripe rejects a refund reason ('Unexpected reason')",
    "over_refund": "localstripe does not check over-refunds",
    "amounts": "localstripe returns no amount_received / amount_capturable",
    "decline_code": "localstripe's card errors carry no decline_code",
    "retry_after_decline": "localstripe cannot confirm an intent again after a decline "
    "(its failed latest_charge sticks: 400 'Bad request')",
    "capture_before": "localstripe's charges have no payment_method_details "
    "(no card.capture_before)",
    "disputes": "localstripe has no disputes (no /v1/disputes, no way to dispute a charge)",
}


#: Where Stripe would send the customer back after a redirect (none happens here).
RETURN_URL = "https://shop.test/return"


@dataclass
class Backend:
    """A gateway under contract, with its test payment methods and its gaps."""

    name: str
    gateway: PaymentGateway
    webhook_secret: str
    declining_pm: str
    succeeding_pm: str = "pm_card_visa"
    options: IntentOptions = field(default_factory=IntentOptions)
    lacks: Mapping[str, str] = field(default_factory=dict)
    #: Sent with every confirm (a cards-only server, localstripe, takes none).
    return_url: str | None = RETURN_URL
    #: Makes a chargeback of a paid intent the way this backend can; its id.
    dispute: Callable[[str], str] = lambda _: ""
    _keys: Iterator[int] = field(default_factory=itertools.count)
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def key(self) -> str:
        """A fresh idempotency key (unique per run: Stripe keeps keys for 24 h)."""
        return f"contract:{self._run}:{next(self._keys)}"

    def expect_lack(self, feature: str, request: pytest.FixtureRequest) -> None:
        """Mark the running test xfail (strict) if this backend lacks ``feature``."""
        if feature in self.lacks:
            request.applymarker(
                pytest.mark.xfail(reason=f"{self.name}: {self.lacks[feature]}", strict=True)
            )

    def params(self, amount: int = 1000, **options: object) -> IntentParams:
        base = {
            "capture_method": self.options.capture_method,
            "automatic_payment_methods": self.options.automatic_payment_methods,
            "allow_redirects": self.options.allow_redirects,
        }
        merged = {k: v for k, v in {**base, **options}.items() if v is not None}
        return IntentParams(amount, "usd", IntentOptions(**merged))  # type: ignore[arg-type]

    def create(self, amount: int = 1000, **options: object) -> IntentSnapshot:
        return self.gateway.create_intent(
            self.params(amount, **options), idempotency_key=self.key()
        )

    def paid(self, amount: int = 1000, **options: object) -> IntentSnapshot:
        intent = self.create(amount, **options)
        return self.gateway.confirm_intent(
            intent.id,
            payment_method=self.succeeding_pm,
            return_url=self.return_url,
            idempotency_key=self.key(),
        )


@pytest.fixture(
    params=[
        "fake",
        pytest.param("localstripe", marks=pytest.mark.localstripe),
        pytest.param("stripe_live", marks=pytest.mark.stripe_live),
    ]
)
def backend(request: pytest.FixtureRequest, twin: Twin, loop: asyncio.AbstractEventLoop) -> Backend:
    """The gateway under contract; for the async twin, its async counterpart
    (AsyncFakeStripeGateway, AsyncStripeGateway) behind blocking calls."""
    found = _backend(request, twin)
    if twin == "async":
        found.gateway = cast(PaymentGateway, Blocking(found.gateway, loop))
    return found


def _backend(request: pytest.FixtureRequest, twin: Twin) -> Backend:
    if request.param == "fake":
        fake = FakeStripeGateway(webhook_secret=TEST_WEBHOOK_SECRET)
        return Backend(
            "fake",
            fake if twin == "sync" else AsyncFakeStripeGateway(fake),  # type: ignore[arg-type]
            TEST_WEBHOOK_SECRET,
            declining_pm="pm_card_chargeDeclined",
            dispute=fake.dispute,
        )
    if request.param == "localstripe":
        server: LocalStripe = request.getfixturevalue("localstripe_server")
        server.flush()
        client = stripe.StripeClient(
            TEST_API_KEY, base_addresses={"api": server.url}, max_network_retries=0
        )
        settings: dict[str, Any] = {
            "webhook_secret": TEST_WEBHOOK_SECRET,
            "max_network_retries": 0,
            "attach_then_confirm": True,
            "redirects": False,
        }
        lister = StripeGateway(client, **settings)  # (lists disputes, in both runs)
        gateway = lister if twin == "sync" else AsyncStripeGateway(client, **settings)
        return Backend(
            "localstripe",
            gateway,  # type: ignore[arg-type]
            TEST_WEBHOOK_SECRET,
            declining_pm="pm_card_chargeCustomerFail",
            lacks=LOCALSTRIPE_LACKS,
            return_url=None,
            dispute=lambda intent_id: _find_dispute(lister, intent_id, wait=0.0),
        )
    live: StripeGateway = request.getfixturevalue("stripe_live_gateway")
    if twin == "async":
        pytest.skip("the async twin of the live gateway is left to the sync run (rate limits)")
    return Backend(
        "stripe_live",
        live,
        TEST_WEBHOOK_SECRET,
        declining_pm="pm_card_chargeDeclined",
        dispute=lambda intent_id: _find_dispute(live, intent_id, wait=30.0),
    )


def _find_dispute(gateway: StripeGateway, intent_id: str, *, wait: float) -> str:
    """The dispute of a charge paid with Stripe's ``pm_card_createDispute`` (Stripe
    opens it a moment after the payment), listed by intent."""
    deadline = time.monotonic() + wait
    while True:
        page = gateway._request(
            "get", "/v1/disputes", {"payment_intent": intent_id}, gateway._get()
        )
        found = page.get("data") or []
        if found:
            return str(found[0]["id"])
        if time.monotonic() >= deadline:
            raise AssertionError(f"no dispute of {intent_id} after {wait} s")
        time.sleep(1.0)


# ----------------------------------------------------------------- payments


def test_create_update_confirm_succeeds(backend: Backend) -> None:
    created = backend.create(1000, metadata={"cart": "c1"})
    assert created.status == "requires_payment_method"
    assert (created.amount, created.currency) == (1000, "usd")
    assert created.client_secret and created.client_secret.startswith(created.id)
    assert created.metadata == {"cart": "c1"}

    updated = backend.gateway.update_intent(
        created.id, {"amount": 1200}, idempotency_key=backend.key()
    )
    assert (updated.id, updated.amount) == (created.id, 1200)

    done = backend.gateway.confirm_intent(
        created.id,
        payment_method=backend.succeeding_pm,
        return_url=backend.return_url,
        idempotency_key=backend.key(),
    )
    assert (done.status, done.amount) == ("succeeded", 1200)
    assert done.latest_charge is not None
    assert backend.gateway.retrieve_intent(created.id).status == "succeeded"


def test_confirm_reports_amount_received(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("amounts", request)
    assert backend.paid(1000).amount_received == 1000


def test_decline_raises_and_leaves_the_intent_payable(backend: Backend) -> None:
    intent = backend.create()
    with pytest.raises(CardDeclinedError) as caught:
        backend.gateway.confirm_intent(
            intent.id,
            payment_method=backend.declining_pm,
            return_url=backend.return_url,
            idempotency_key=backend.key(),
        )
    assert caught.value.code == "card_declined"
    assert caught.value.intent_id == intent.id
    assert not caught.value.retryable
    after = backend.gateway.retrieve_intent(intent.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error is not None
    assert after.last_payment_error.code == "card_declined"


def test_decline_carries_a_decline_code(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("decline_code", request)
    intent = backend.create()
    with pytest.raises(CardDeclinedError) as caught:
        backend.gateway.confirm_intent(
            intent.id,
            payment_method=backend.declining_pm,
            return_url=backend.return_url,
            idempotency_key=backend.key(),
        )
    assert caught.value.decline_code


def test_confirm_again_after_a_decline(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("retry_after_decline", request)
    intent = backend.create()
    with pytest.raises(CardDeclinedError):
        backend.gateway.confirm_intent(
            intent.id,
            payment_method=backend.declining_pm,
            return_url=backend.return_url,
            idempotency_key=backend.key(),
        )
    done = backend.gateway.confirm_intent(
        intent.id,
        payment_method=backend.succeeding_pm,
        return_url=backend.return_url,
        idempotency_key=backend.key(),
    )
    assert done.status == "succeeded"


# ------------------------------------------------------------------ capture


def test_manual_capture_in_full(backend: Backend) -> None:
    authorized = backend.paid(1000, capture_method="manual")
    assert authorized.status == "requires_capture"
    assert authorized.capture_method == "manual"
    captured = backend.gateway.capture_intent(
        authorized.id, amount=None, idempotency_key=backend.key()
    )
    assert captured.status == "succeeded"


def test_manual_capture_partially(backend: Backend) -> None:
    authorized = backend.paid(1000, capture_method="manual")
    captured = backend.gateway.capture_intent(
        authorized.id, amount=600, idempotency_key=backend.key()
    )
    assert (captured.status, captured.amount) == ("succeeded", 1000)


def test_capture_amounts_are_reported(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("amounts", request)
    authorized = backend.paid(1000, capture_method="manual")
    assert authorized.amount_capturable == 1000
    captured = backend.gateway.capture_intent(
        authorized.id, amount=600, idempotency_key=backend.key()
    )
    assert (captured.amount_received, captured.amount_capturable) == (600, 0)


# ------------------------------------------------------------------- cancel


def test_cancel_without_reason(backend: Backend) -> None:
    intent = backend.create()
    canceled = backend.gateway.cancel_intent(intent.id, reason=None, idempotency_key=backend.key())
    assert canceled.status == "canceled"
    assert backend.gateway.retrieve_intent(intent.id).status == "canceled"


def test_cancel_an_authorization(backend: Backend) -> None:
    authorized = backend.paid(1000, capture_method="manual")
    canceled = backend.gateway.cancel_intent(
        authorized.id, reason=None, idempotency_key=backend.key()
    )
    assert canceled.status == "canceled"


def test_cancel_with_reason(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("cancellation_reason", request)
    intent = backend.create()
    canceled = backend.gateway.cancel_intent(
        intent.id, reason="requested_by_customer", idempotency_key=backend.key()
    )
    assert canceled.cancellation_reason == "requested_by_customer"


# ------------------------------------------------------------------ refunds


def test_full_refund(backend: Backend) -> None:
    paid = backend.paid(1000)
    refund = backend.gateway.create_refund(
        paid.id, amount=None, reason=None, idempotency_key=backend.key()
    )
    assert (refund.payment_intent_id, refund.amount, refund.currency) == (paid.id, 1000, "usd")
    assert refund.status == "succeeded"
    assert [r.id for r in backend.gateway.list_refunds(paid.id)] == [refund.id]


def test_partial_refunds_are_listed(backend: Backend) -> None:
    paid = backend.paid(1000)
    first = backend.gateway.create_refund(
        paid.id, amount=300, reason=None, idempotency_key=backend.key()
    )
    second = backend.gateway.create_refund(
        paid.id, amount=200, reason=None, idempotency_key=backend.key()
    )
    assert (first.amount, second.amount) == (300, 200)
    listed = {r.id: r.amount for r in backend.gateway.list_refunds(paid.id)}
    assert listed == {first.id: 300, second.id: 200}


def test_refund_with_reason(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("refund_reason", request)
    paid = backend.paid(1000)
    refund = backend.gateway.create_refund(
        paid.id, amount=100, reason="requested_by_customer", idempotency_key=backend.key()
    )
    assert refund.reason == "requested_by_customer"


def test_over_refund_is_refused(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("over_refund", request)
    paid = backend.paid(1000)
    backend.gateway.create_refund(paid.id, amount=300, reason=None, idempotency_key=backend.key())
    with pytest.raises(InvalidRequestError) as caught:
        backend.gateway.create_refund(
            paid.id, amount=800, reason=None, idempotency_key=backend.key()
        )
    assert caught.value.param == "amount"
    assert not caught.value.retryable


# ----------------------------------------------- disputes, authorization windows


def test_an_authorization_says_when_it_lapses(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """A retrieve carries the card charge's ``capture_before``, in the future."""
    backend.expect_lack("capture_before", request)
    authorized = backend.paid(1000, capture_method="manual")
    read = backend.gateway.retrieve_intent(authorized.id)
    assert read.capture_before is not None
    assert read.capture_before > time.time()


def test_a_dispute_is_read_back(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("disputes", request)
    pm = "pm_card_createDispute" if backend.name == "stripe_live" else backend.succeeding_pm
    intent = backend.create(1000)
    paid = backend.gateway.confirm_intent(
        intent.id, payment_method=pm, return_url=backend.return_url, idempotency_key=backend.key()
    )
    dispute_id = backend.dispute(paid.id)
    dispute = backend.gateway.retrieve_dispute(dispute_id)
    assert (dispute.id, dispute.payment_intent_id) == (dispute_id, paid.id)
    assert (dispute.amount, dispute.currency) == (1000, "usd")
    assert dispute.status in ("needs_response", "warning_needs_response", "under_review")
    assert dispute.charge == paid.latest_charge


def test_an_unknown_dispute_is_not_found(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("disputes", request)
    with pytest.raises(NotFoundError) as caught:
        backend.gateway.retrieve_dispute("du_doesnotexist0000")
    assert (caught.value.kind, caught.value.id) == ("dispute", "du_doesnotexist0000")


# ------------------------------------------------------------ illegal states


def test_update_after_success_is_an_illegal_state(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    backend.expect_lack("state_checks", request)
    paid = backend.paid(1000)
    with pytest.raises(IllegalStateError) as caught:
        backend.gateway.update_intent(paid.id, {"amount": 1500}, idempotency_key=backend.key())
    assert (caught.value.entity, caught.value.status) == ("intent", "succeeded")
    assert caught.value.operation == "update_amount"
    assert backend.gateway.retrieve_intent(paid.id).amount == 1000


def test_cancel_after_success_is_an_illegal_state(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    backend.expect_lack("state_checks", request)
    paid = backend.paid(1000)
    with pytest.raises(IllegalStateError) as caught:
        backend.gateway.cancel_intent(paid.id, reason=None, idempotency_key=backend.key())
    assert caught.value.status == "succeeded"


def test_unknown_intent_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError) as caught:
        backend.gateway.retrieve_intent("pi_doesnotexist0000")
    assert caught.value.id == "pi_doesnotexist0000"


# -------------------------------------------------------------- idempotency


def test_same_key_same_params_replays(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("idempotency", request)
    key = backend.key()
    first = backend.gateway.create_intent(backend.params(1000), idempotency_key=key)
    again = backend.gateway.create_intent(backend.params(1000), idempotency_key=key)
    assert again.id == first.id


def test_same_key_other_params_is_refused(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.expect_lack("idempotency", request)
    key = backend.key()
    backend.gateway.create_intent(backend.params(1000), idempotency_key=key)
    with pytest.raises(IdempotencyError) as caught:
        backend.gateway.create_intent(backend.params(2000), idempotency_key=key)
    assert not caught.value.retryable


# ----------------------------------------------------------------- webhooks


def _signed(payload: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def test_webhook_signature_is_checked(backend: Backend) -> None:
    payload = b'{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}'
    now = int(time.time())
    header = _signed(payload, backend.webhook_secret, now)
    backend.gateway.verify_webhook(payload, header, tolerance=300)
    rolled = f"{header},v1={'0' * 64}"
    backend.gateway.verify_webhook(payload, rolled, tolerance=300)  # any v1 may match
    with pytest.raises(WebhookSignatureError):
        backend.gateway.verify_webhook(payload + b" ", header, tolerance=300)
    with pytest.raises(WebhookSignatureError):
        backend.gateway.verify_webhook(payload, _signed(payload, "whsec_other", now), tolerance=300)
    with pytest.raises(WebhookSignatureError):
        stale = _signed(payload, backend.webhook_secret, now - 1000)
        backend.gateway.verify_webhook(payload, stale, tolerance=300)
    with pytest.raises(WebhookSignatureError):
        backend.gateway.verify_webhook(payload, "", tolerance=300)
