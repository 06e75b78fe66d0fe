"""The stateful property suite in request-shape mode: the rules of
:class:`~tests.property.test_stateful.PaymentsMachine`, unchanged, with every
request the fake gateway answers also sent, first, through a real
``StripeGateway`` to stripe-mock, which checks it against Stripe's API
specification. No request may be refused.

The fake keeps the state and gives the answers the machine goes on; stripe-mock
is stateless and its answers are thrown away (they only have to parse). So the
state machine reaches every flow it reaches on the fake (faults, crashes,
retries, webhooks, reconcile), and each request cartpay makes on the way, in
whatever combination of options, amounts and currencies the rules produce, is
one Stripe would accept. The table in ``tests/integration/test_stripe_mock_requests.py``
checks each request shape once; this checks those the rules compose.

Parameters that stripe-mock's specification predates
(:data:`~cartpay.testing.STRIPE_MOCK_LACKS`) are left out of the copy sent to
stripe-mock, and counted; the rest of that request is still checked.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import stripe
from hypothesis import settings

from cartpay import CartpayError
from cartpay._models import (
    DisputeSnapshot,
    IntentOptions,
    IntentParams,
    IntentSnapshot,
    RefundSnapshot,
)
from cartpay._ports import PaymentGateway
from cartpay.gateways.stripe import StripeGateway
from cartpay.testing import FakeStripeGateway, StripeMock
from cartpay.testing._stripe_mock import operation_of, spec_gaps
from cartpay.testing.plugin import TEST_API_KEY

from .test_stateful import Backend, assert_explored, run_machine


@dataclass
class Shapes:
    """What was sent to stripe-mock over a run: request shapes, gaps, refusals."""

    #: ``"POST /v1/payment_intents/{id}/cancel cancellation_reason"`` → count
    seen: Counter[str] = field(default_factory=Counter)
    #: :data:`~cartpay.testing.STRIPE_MOCK_LACKS` entries left out → count
    gaps: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)

    def operations(self) -> set[str]:
        """``"POST /v1/payment_intents/{id}/cancel"``, … (method and path)."""
        return {" ".join(shape.split(" ")[:2]) for shape in self.seen}


def _shape(method: str, path: str, form: Sequence[tuple[str, str]]) -> str:
    parts = path.split("/")
    if len(parts) > 3:
        parts[3] = "{id}"  # /v1/payment_intents/{id}[/action]
    names = sorted({key.partition("[")[0] for key, _ in form})
    return " ".join([method, "/".join(parts), *names])


class ShapeCheckingHTTPClient(stripe.RequestsClient):
    """The SDK's HTTP client for the stripe-mock copies: leaves the listed lacks
    out of each POST body and writes down each request's shape."""

    def __init__(self, shapes: Shapes) -> None:
        super().__init__()
        self.shapes = shapes

    def request(  # type: ignore[override]  # RequestsClient narrows HTTPClient's signature
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        method = method.upper()
        split = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else str(post_data or "")
        form = parse_qsl(body or split.query, keep_blank_values=True)
        gaps = spec_gaps(method, split.path, {k: [v] for k, v in form})
        if gaps:
            lacking = {gap.split(":")[1].partition("=")[0] for gap in gaps}
            form = [(k, v) for k, v in form if k.partition("[")[0] not in lacking]
            post_data = urlencode(form)
            self.shapes.gaps.update(gaps)
        self.shapes.seen[_shape(method, split.path, form)] += 1
        return super().request(method, url, headers, post_data)


class RefusedRequest(AssertionError):
    """stripe-mock refused a request cartpay made (or could not be asked)."""


class StripeMockCheckedFake(FakeStripeGateway):
    """The fake, which keeps state and answers; each port call is first made
    through ``checker`` (a ``StripeGateway`` → stripe-mock), whose answer is
    dropped. A refusal is written down in ``shapes.refused`` (a crash mid-call
    swallows what the gateway raised) and raised as :class:`RefusedRequest`."""

    def __init__(self, checker: StripeGateway, shapes: Shapes) -> None:
        super().__init__(webhook_secret="whsec_property")
        self.checker = checker
        self.shapes = shapes

    def _check(self, operation: str, call: Any) -> None:
        try:
            call()
        except CartpayError as exc:
            refusal = f"{operation}: {type(exc).__name__}: {exc}"
            self.shapes.refused.append(refusal)
            raise RefusedRequest(f"stripe-mock refused {refusal}") from exc

    def create_intent(self, *args: Any, **kwargs: Any) -> IntentSnapshot:
        self._check("create_intent", lambda: self.checker.create_intent(*args, **kwargs))
        return super().create_intent(*args, **kwargs)

    def retrieve_intent(self, *args: Any, **kwargs: Any) -> IntentSnapshot:
        self._check("retrieve_intent", lambda: self.checker.retrieve_intent(*args, **kwargs))
        return super().retrieve_intent(*args, **kwargs)

    def update_intent(self, *args: Any, **kwargs: Any) -> IntentSnapshot:
        self._check("update_intent", lambda: self.checker.update_intent(*args, **kwargs))
        return super().update_intent(*args, **kwargs)

    def confirm_intent(self, *args: Any, **kwargs: Any) -> IntentSnapshot:
        self._check("confirm_intent", lambda: self.checker.confirm_intent(*args, **kwargs))
        return super().confirm_intent(*args, **kwargs)

    def capture_intent(self, *args: Any, **kwargs: Any) -> IntentSnapshot:
        self._check("capture_intent", lambda: self.checker.capture_intent(*args, **kwargs))
        return super().capture_intent(*args, **kwargs)

    def cancel_intent(self, *args: Any, **kwargs: Any) -> IntentSnapshot:
        self._check("cancel_intent", lambda: self.checker.cancel_intent(*args, **kwargs))
        return super().cancel_intent(*args, **kwargs)

    def create_refund(self, *args: Any, **kwargs: Any) -> RefundSnapshot:
        self._check("create_refund", lambda: self.checker.create_refund(*args, **kwargs))
        return super().create_refund(*args, **kwargs)

    def list_refunds(self, *args: Any, **kwargs: Any) -> Sequence[RefundSnapshot]:
        self._check("list_refunds", lambda: self.checker.list_refunds(*args, **kwargs))
        return super().list_refunds(*args, **kwargs)

    def retrieve_dispute(self, *args: Any, **kwargs: Any) -> DisputeSnapshot:
        # (The fake's dispute ids are unknown to stripe-mock, which answers any id.)
        self._check("retrieve_dispute", lambda: self.checker.retrieve_dispute(*args, **kwargs))
        return super().retrieve_dispute(*args, **kwargs)


#: The requests every run must have sent (so the mode cannot pass by sending none).
OPERATIONS = {
    "POST /v1/payment_intents",
    "POST /v1/payment_intents/{id}",
    "POST /v1/payment_intents/{id}/confirm",
    "POST /v1/payment_intents/{id}/capture",
    "POST /v1/payment_intents/{id}/cancel",
    "POST /v1/refunds",
    "GET /v1/payment_intents/{id}",
    "GET /v1/refunds",
}


def checker_for(server: StripeMock, shapes: Shapes) -> StripeGateway:
    client = stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": server.url},
        http_client=ShapeCheckingHTTPClient(shapes),
        max_network_retries=0,
    )
    return StripeGateway(client, max_network_retries=0)


def test_every_request_the_rules_make_is_accepted_by_stripe_mock(
    stripe_mock_server: StripeMock, record_property: Any
) -> None:
    shapes = Shapes()
    checker = checker_for(stripe_mock_server, shapes)
    backend = Backend(
        "fake+faults+stripe-mock/memory",
        "memory",
        lambda: StripeMockCheckedFake(checker, shapes),
    )
    # A quarter of the fake suite's examples, as long: every request is also an HTTP
    # round trip (measured: 320 examples, 18k steps, ~12k requests in ~22 s on 2 busy
    # cores with the ci profile).
    default = settings()
    config = settings(default, max_examples=max(10, default.max_examples // 4))
    run = run_machine(backend, config)
    record_property("request_shapes", dict(shapes.seen))
    record_property("stripe_mock_gaps", dict(shapes.gaps))

    assert not shapes.refused, f"stripe-mock refused {len(shapes.refused)}: {shapes.refused[:5]}"
    assert_explored(run)
    assert shapes.operations() == OPERATIONS, sorted(shapes.seen)
    sent = " ".join(shapes.seen)
    for parameter in ("capture_method", "cancellation_reason", "reason"):
        assert f" {parameter}" in sent, f"no request carried {parameter}: {sorted(shapes.seen)}"


def test_every_port_call_is_checked() -> None:
    """A call added to the gateway port must be sent to stripe-mock too."""
    port = {
        name
        for name, _ in inspect.getmembers(PaymentGateway, inspect.isfunction)
        if not name.startswith("_")
    }
    checked = {
        name
        for name, member in vars(StripeMockCheckedFake).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert checked == port - {"verify_webhook"}  # no request: a local HMAC check
    assert operation_of("POST", "/v1/refunds") == "refund"


def test_a_refused_request_fails_the_mode(stripe_mock_server: StripeMock) -> None:
    """The mode can fail: a request stripe-mock refuses raises and is written down."""
    shapes = Shapes()
    gateway = StripeMockCheckedFake(checker_for(stripe_mock_server, shapes), shapes)
    intent = gateway.create_intent(_params(), idempotency_key="k1")
    with pytest.raises(RefusedRequest, match="cancel_intent: InvalidRequestError"):
        gateway.cancel_intent(intent.id, reason="changed_my_mind", idempotency_key="k2")
    assert len(shapes.refused) == 1
    assert gateway.intent(intent.id).status == "requires_payment_method"  # the fake never acted


def test_listed_lacks_are_left_out_and_counted(stripe_mock_server: StripeMock) -> None:
    shapes = Shapes()
    gateway = StripeMockCheckedFake(checker_for(stripe_mock_server, shapes), shapes)
    gateway.create_intent(_params(allowed_payment_method_types=("card",)), idempotency_key="k")
    assert shapes.gaps == Counter({"create:allowed_payment_method_types": 1})
    assert list(shapes.seen) == ["POST /v1/payment_intents amount currency"]
    assert not shapes.refused


def _params(**options: Any) -> IntentParams:
    return IntentParams(1000, "usd", IntentOptions(**options))
