"""The request half of the gateway contract: every request StripeGateway can send,
sent through the real SDK to stripe-mock, which checks its path and parameters
against Stripe's API specification.

stripe-mock keeps no state, so this is what it can show: each request is
accepted (a refusal raises ``InvalidRequestError``), the parameter under test
is on the wire as the case expects (recorded at the SDK's HTTP client), and the
answer parses into a snapshot. Behaviour (statuses, amounts, idempotency) is the
stateful contract's, in ``tests/contract/test_gateway_contract.py``.

Parameters newer than stripe-mock's specification are strict xfails naming
their :data:`~cartpay.testing.STRIPE_MOCK_LACKS` entry. The coverage tests at
the end fail when the gateway gains an option, a reason or a keyword that no
case here sends.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
import stripe

from cartpay import STRIPE_API_VERSION, InvalidRequestError
from cartpay._models import (
    DisputeSnapshot,
    IntentOptions,
    IntentParams,
    IntentSnapshot,
    RefundSnapshot,
)
from cartpay._params import intent_changes
from cartpay._ports import IntentChanges
from cartpay._rules import CANCEL_REASONS, CAPTURE_METHODS, FUTURE_USAGES, REFUND_REASONS
from cartpay.gateways.stripe import StripeGateway
from cartpay.testing import STRIPE_MOCK_LACKS, StripeMock
from cartpay.testing._stripe_mock import spec_gaps

from .conftest import RecordedRequest, RecordingHTTPClient, recorded_gateway_for

pytestmark = pytest.mark.stripe_mock

T = TypeVar("T")
INTENT = "pi_cartpay0001"
FORM = Mapping[str, str]


@pytest.fixture
def gateway(stripe_mock_server: StripeMock, recorder: RecordingHTTPClient) -> StripeGateway:
    """StripeGateway → stripe-mock, observed by ``recorder`` (one-call confirms)."""
    return recorded_gateway_for(stripe_mock_server.url, recorder, attach_then_confirm=False)


def lacking(gap: str) -> pytest.MarkDecorator:
    """A strict xfail for a parameter stripe-mock's specification does not know."""
    return pytest.mark.xfail(
        raises=InvalidRequestError, strict=True, reason=f"{gap}: {STRIPE_MOCK_LACKS[gap]}"
    )


def case(name: str, *values: object, gap: str | None = None) -> Any:
    return pytest.param(*values, id=name, marks=[lacking(gap)] if gap else [])


def the_request(recorder: RecordingHTTPClient) -> RecordedRequest:
    (request,) = recorder.recorded
    return request


def assert_sent(request: RecordedRequest, method: str, path: str, form: FORM) -> None:
    """``request`` is ``method path`` with exactly the body parameters ``form``."""
    assert (request.method, urlsplit(request.url).path) == (method, path)
    assert request.form == {k: [v] for k, v in form.items()}


def query(request: RecordedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def send(gateway: StripeGateway, recorder: RecordingHTTPClient, call: Callable[[], T]) -> T:
    """``call()``; when stripe-mock refuses its (last) request, check that a listed
    lack is in it and that the same request without it is accepted, then raise
    the refusal again (the case's strict xfail expects it)."""
    try:
        return call()
    except InvalidRequestError:
        request = recorder.recorded[-1]
        path = urlsplit(request.url).path
        gaps = spec_gaps(request.method, path, request.form)
        assert gaps, f"stripe-mock refused a request with no listed lack: {request.form}"
        lacking = {gap.split(":")[1].partition("=")[0] for gap in gaps}
        rest = {k: v[0] for k, v in request.form.items() if k.partition("[")[0] not in lacking}
        gateway._request("post", path, rest, gateway._post("without-the-lacks"))
        raise


def assert_intent(snapshot: object, intent_id: str | None = None) -> None:
    """The answer parsed into an IntentSnapshot (of ``intent_id`` when given)."""
    assert isinstance(snapshot, IntentSnapshot)
    assert snapshot.id.startswith("pi_")
    assert intent_id is None or snapshot.id == intent_id


# ------------------------------------------------------------------- create

#: One create per option (and per value of the options that take a few), with
#: the form parameters it must send besides ``amount`` and ``currency``.
CREATE_CASES = [
    case("capture_method=manual", {"capture_method": "manual"}, {"capture_method": "manual"}),
    case(
        "capture_method=automatic", {"capture_method": "automatic"}, {"capture_method": "automatic"}
    ),
    case(
        "capture_method=automatic_async",
        {"capture_method": "automatic_async"},
        {"capture_method": "automatic_async"},
        gap="create:capture_method=automatic_async",
    ),
    case(
        "automatic_payment_methods=true",
        {"automatic_payment_methods": True},
        {"automatic_payment_methods[enabled]": "true"},
    ),
    case(
        "automatic_payment_methods=false",
        {"automatic_payment_methods": False},
        {"automatic_payment_methods[enabled]": "false"},
    ),
    case(
        "allow_redirects=never",
        {"automatic_payment_methods": True, "allow_redirects": "never"},
        {
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "never",
        },
    ),
    case(
        "allow_redirects=always",
        {"automatic_payment_methods": True, "allow_redirects": "always"},
        {
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "always",
        },
    ),
    case(
        "allowed_payment_method_types",
        {"allowed_payment_method_types": ("card", "link")},
        {"allowed_payment_method_types[0]": "card", "allowed_payment_method_types[1]": "link"},
        gap="create:allowed_payment_method_types",
    ),
    case(
        "excluded_payment_method_types",
        {"excluded_payment_method_types": ("klarna",)},
        {"excluded_payment_method_types[0]": "klarna"},
        gap="create:excluded_payment_method_types",
    ),
    case("customer", {"customer": "cus_cartpay1"}, {"customer": "cus_cartpay1"}),
    case("description", {"description": "Order 1 – 2 items"}, {"description": "Order 1 – 2 items"}),
    case(
        "statement_descriptor_suffix",
        {"statement_descriptor_suffix": "ORDER 1"},
        {"statement_descriptor_suffix": "ORDER 1"},
    ),
    case(
        "setup_future_usage=on_session",
        {"setup_future_usage": "on_session"},
        {"setup_future_usage": "on_session"},
    ),
    case(
        "setup_future_usage=off_session",
        {"setup_future_usage": "off_session"},
        {"setup_future_usage": "off_session"},
    ),
    case("receipt_email", {"receipt_email": "a@example.com"}, {"receipt_email": "a@example.com"}),
    case(
        "metadata",
        {"metadata": {"cart": "c1", "order": "o1"}},
        {"metadata[cart]": "c1", "metadata[order]": "o1"},
    ),
    case(
        "application_fee_amount", {"application_fee_amount": 100}, {"application_fee_amount": "100"}
    ),
    case(
        "transfer_destination",
        {"transfer_destination": "acct_cartpay1"},
        {"transfer_data[destination]": "acct_cartpay1"},
    ),
    case("on_behalf_of", {"on_behalf_of": "acct_cartpay2"}, {"on_behalf_of": "acct_cartpay2"}),
    case("transfer_group", {"transfer_group": "order_o1"}, {"transfer_group": "order_o1"}),
    case(
        "every option stripe-mock knows",
        {
            "capture_method": "manual",
            "automatic_payment_methods": True,
            "allow_redirects": "never",
            "customer": "cus_cartpay1",
            "description": "Order 1",
            "statement_descriptor_suffix": "ORDER 1",
            "setup_future_usage": "off_session",
            "receipt_email": "a@example.com",
            "metadata": {"cart": "c1"},
            "application_fee_amount": 100,
            "transfer_destination": "acct_cartpay1",
            "on_behalf_of": "acct_cartpay1",
            "transfer_group": "order_o1",
        },
        {
            "capture_method": "manual",
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "never",
            "customer": "cus_cartpay1",
            "description": "Order 1",
            "statement_descriptor_suffix": "ORDER 1",
            "setup_future_usage": "off_session",
            "receipt_email": "a@example.com",
            "metadata[cart]": "c1",
            "application_fee_amount": "100",
            "transfer_data[destination]": "acct_cartpay1",
            "on_behalf_of": "acct_cartpay1",
            "transfer_group": "order_o1",
        },
    ),
]


def test_create_with_no_option(gateway: StripeGateway, recorder: RecordingHTTPClient) -> None:
    assert_intent(gateway.create_intent(IntentParams(1000, "usd"), idempotency_key="k"))
    assert_sent(
        the_request(recorder), "POST", "/v1/payment_intents", {"amount": "1000", "currency": "usd"}
    )


@pytest.mark.parametrize(("options", "form"), CREATE_CASES)
def test_create_with_each_option(
    gateway: StripeGateway,
    recorder: RecordingHTTPClient,
    options: dict[str, Any],
    form: FORM,
) -> None:
    params = IntentParams(1000, "usd", IntentOptions(**options))
    assert_intent(
        send(gateway, recorder, lambda: gateway.create_intent(params, idempotency_key="k"))
    )
    expected = {"amount": "1000", "currency": "usd", **form}
    assert_sent(the_request(recorder), "POST", "/v1/payment_intents", expected)


@pytest.mark.parametrize("currency", ["usd", "eur", "jpy", "kwd"])
def test_create_in_each_kind_of_currency(
    gateway: StripeGateway, recorder: RecordingHTTPClient, currency: str
) -> None:
    """Zero-, two- and three-decimal currencies are all integer minor units."""
    assert_intent(gateway.create_intent(IntentParams(1010, currency), idempotency_key="k"))
    assert the_request(recorder).form == {"amount": ["1010"], "currency": [currency]}


# ------------------------------------------------------------------- update

BASE = IntentOptions(
    capture_method="automatic",
    description="Order 1",
    statement_descriptor_suffix="ORDER 1",
    setup_future_usage="on_session",
    receipt_email="a@example.com",
    customer="cus_cartpay1",
    application_fee_amount=100,
    metadata={"cart": "c1", "gone": "x"},
)

#: ``(changes, wanted, form)``: the options (or amount/currency) changed from
#: ``BASE`` at 1000 usd, and the update the diff must send.
UPDATE_CASES = [
    case("amount", {}, (1500, "usd"), {"amount": "1500"}),
    case("currency", {}, (1000, "eur"), {"currency": "eur"}),
    case("amount and currency", {}, (150, "jpy"), {"amount": "150", "currency": "jpy"}),
    case("description", {"description": "Order 2"}, None, {"description": "Order 2"}),
    case(
        "statement_descriptor_suffix",
        {"statement_descriptor_suffix": "ORDER 2"},
        None,
        {"statement_descriptor_suffix": "ORDER 2"},
    ),
    case(
        "receipt_email",
        {"receipt_email": "b@example.com"},
        None,
        {"receipt_email": "b@example.com"},
    ),
    case(
        "setup_future_usage",
        {"setup_future_usage": "off_session"},
        None,
        {"setup_future_usage": "off_session"},
    ),
    case("customer", {"customer": "cus_cartpay2"}, None, {"customer": "cus_cartpay2"}),
    case(
        "application_fee_amount",
        {"application_fee_amount": 50},
        None,
        {"application_fee_amount": "50"},
    ),
    case(
        "transfer_group added", {"transfer_group": "order_o1"}, None, {"transfer_group": "order_o1"}
    ),
    case(
        "metadata: a key changed, one added, one removed",
        {"metadata": {"cart": "c2", "new": "y"}},
        None,
        {"metadata[cart]": "c2", "metadata[new]": "y", "metadata[gone]": ""},
    ),
    case(
        "capture_method",
        {"capture_method": "manual"},
        None,
        {"capture_method": "manual"},
        gap="update:capture_method",
    ),
    case(
        "allowed_payment_method_types",
        {"allowed_payment_method_types": ("card",)},
        None,
        {"allowed_payment_method_types[0]": "card"},
        gap="update:allowed_payment_method_types",
    ),
    case(
        "excluded_payment_method_types",
        {"excluded_payment_method_types": ("klarna",)},
        None,
        {"excluded_payment_method_types[0]": "klarna"},
        gap="update:excluded_payment_method_types",
    ),
    case(
        "every change stripe-mock knows",
        {
            "description": "Order 2",
            "statement_descriptor_suffix": "ORDER 2",
            "setup_future_usage": "off_session",
            "receipt_email": "b@example.com",
            "customer": "cus_cartpay2",
            "application_fee_amount": 50,
            "metadata": {"cart": "c2"},
        },
        (2000, "usd"),
        {
            "amount": "2000",
            "description": "Order 2",
            "statement_descriptor_suffix": "ORDER 2",
            "setup_future_usage": "off_session",
            "receipt_email": "b@example.com",
            "customer": "cus_cartpay2",
            "application_fee_amount": "50",
            "metadata[cart]": "c2",
            "metadata[gone]": "",
        },
    ),
]


@pytest.mark.parametrize(("changed", "money", "form"), UPDATE_CASES)
def test_update_sends_the_diff(
    gateway: StripeGateway,
    recorder: RecordingHTTPClient,
    changed: dict[str, Any],
    money: tuple[int, str] | None,
    form: FORM,
) -> None:
    amount, currency = money or (1000, "usd")
    sent = IntentParams(1000, "usd", BASE)
    wanted = IntentParams(amount, currency, attrs.evolve(BASE, **changed))
    changes = intent_changes(sent, wanted)
    update = send(
        gateway, recorder, lambda: gateway.update_intent(INTENT, changes, idempotency_key="k")
    )
    assert_intent(update, INTENT)
    assert_sent(the_request(recorder), "POST", f"/v1/payment_intents/{INTENT}", form)


@pytest.mark.parametrize(
    ("before", "form"),
    [
        case(
            "excluded_payment_method_types cleared",
            ("klarna",),
            {"excluded_payment_method_types": ""},
            gap="update:excluded_payment_method_types",
        )
    ],
)
def test_update_clears_the_exclusions(
    gateway: StripeGateway, recorder: RecordingHTTPClient, before: tuple[str, ...], form: FORM
) -> None:
    sent = IntentParams(1000, "usd", IntentOptions(excluded_payment_method_types=before))
    changes = intent_changes(sent, IntentParams(1000, "usd"))
    update = send(
        gateway, recorder, lambda: gateway.update_intent(INTENT, changes, idempotency_key="k")
    )
    assert_intent(update, INTENT)
    assert_sent(the_request(recorder), "POST", f"/v1/payment_intents/{INTENT}", form)


def test_an_empty_diff_retrieves(gateway: StripeGateway, recorder: RecordingHTTPClient) -> None:
    sent = IntentParams(1000, "usd", BASE)
    assert_intent(gateway.update_intent(INTENT, intent_changes(sent, sent), idempotency_key="k"))
    assert_sent(the_request(recorder), "GET", f"/v1/payment_intents/{INTENT}", {})


# ------------------------------------------------------------------ confirm

RETURN_URL = "https://shop.example/checkout/done?order=o1"


@pytest.mark.parametrize("return_url", [None, RETURN_URL], ids=["no return_url", "return_url"])
def test_confirm_in_one_call(
    gateway: StripeGateway, recorder: RecordingHTTPClient, return_url: str | None
) -> None:
    done = gateway.confirm_intent(
        INTENT, payment_method="pm_card_visa", return_url=return_url, idempotency_key="k"
    )
    assert_intent(done, INTENT)
    form = {"payment_method": "pm_card_visa"}
    if return_url is not None:
        form["return_url"] = return_url
    assert_sent(the_request(recorder), "POST", f"/v1/payment_intents/{INTENT}/confirm", form)


@pytest.mark.parametrize("return_url", [None, RETURN_URL], ids=["no return_url", "return_url"])
def test_confirm_in_two_calls(
    stripe_mock_server: StripeMock, recorder: RecordingHTTPClient, return_url: str | None
) -> None:
    """``attach_then_confirm`` (for localstripe): an update with the payment
    method, then a confirm without it."""
    gateway = recorded_gateway_for(stripe_mock_server.url, recorder, attach_then_confirm=True)
    done = gateway.confirm_intent(
        INTENT, payment_method="pm_card_visa", return_url=return_url, idempotency_key="k"
    )
    assert_intent(done, INTENT)
    attach, confirm = recorder.recorded
    assert_sent(attach, "POST", f"/v1/payment_intents/{INTENT}", {"payment_method": "pm_card_visa"})
    form = {} if return_url is None else {"return_url": return_url}
    assert_sent(confirm, "POST", f"/v1/payment_intents/{INTENT}/confirm", form)


def test_confirm_off_session(gateway: StripeGateway, recorder: RecordingHTTPClient) -> None:
    """A saved card charged while the customer is away: ``off_session=true``."""
    done = gateway.confirm_intent(
        INTENT, payment_method="pm_card_visa", off_session=True, idempotency_key="k"
    )
    assert_intent(done, INTENT)
    form = {"payment_method": "pm_card_visa", "off_session": "true"}
    assert_sent(the_request(recorder), "POST", f"/v1/payment_intents/{INTENT}/confirm", form)


def test_confirm_off_session_with_a_return_url(
    gateway: StripeGateway, recorder: RecordingHTTPClient
) -> None:
    gateway.confirm_intent(
        INTENT,
        payment_method="pm_card_visa",
        return_url=RETURN_URL,
        off_session=True,
        idempotency_key="k",
    )
    form = {"payment_method": "pm_card_visa", "off_session": "true", "return_url": RETURN_URL}
    assert_sent(the_request(recorder), "POST", f"/v1/payment_intents/{INTENT}/confirm", form)


# ------------------------------------------------------- capture and cancel


@pytest.mark.parametrize(("amount", "form"), [(None, {}), (600, {"amount_to_capture": "600"})])
def test_capture(
    gateway: StripeGateway, recorder: RecordingHTTPClient, amount: int | None, form: FORM
) -> None:
    assert_intent(gateway.capture_intent(INTENT, amount=amount, idempotency_key="k"), INTENT)
    assert_sent(the_request(recorder), "POST", f"/v1/payment_intents/{INTENT}/capture", form)


@pytest.mark.parametrize("reason", [None, *sorted(CANCEL_REASONS)])
def test_cancel_with_each_reason(
    gateway: StripeGateway, recorder: RecordingHTTPClient, reason: str | None
) -> None:
    assert_intent(gateway.cancel_intent(INTENT, reason=reason, idempotency_key="k"), INTENT)
    form = {} if reason is None else {"cancellation_reason": reason}
    assert_sent(the_request(recorder), "POST", f"/v1/payment_intents/{INTENT}/cancel", form)


# ------------------------------------------------------------------ refunds


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (None, None),
        (300, None),
        *((None, reason) for reason in sorted(REFUND_REASONS)),
        (300, "requested_by_customer"),
    ],
)
def test_refund_with_each_option(
    gateway: StripeGateway, recorder: RecordingHTTPClient, amount: int | None, reason: str | None
) -> None:
    refund = gateway.create_refund(INTENT, amount=amount, reason=reason, idempotency_key="k")
    assert isinstance(refund, RefundSnapshot)
    assert refund.id.startswith("re_") and refund.payment_intent_id
    form = {"payment_intent": INTENT}
    if amount is not None:
        form["amount"] = str(amount)
    if reason is not None:
        form["reason"] = reason
    assert_sent(the_request(recorder), "POST", "/v1/refunds", form)


@pytest.mark.parametrize(
    ("flags", "form"),
    [
        ({"reverse_transfer": True}, {"reverse_transfer": "true"}),
        ({"reverse_transfer": False}, {"reverse_transfer": "false"}),
        ({"refund_application_fee": True}, {"refund_application_fee": "true"}),
        (
            {"reverse_transfer": True, "refund_application_fee": False},
            {"reverse_transfer": "true", "refund_application_fee": "false"},
        ),
    ],
)
def test_refund_with_connect_flags(
    gateway: StripeGateway, recorder: RecordingHTTPClient, flags: dict[str, bool], form: FORM
) -> None:
    refund = gateway.create_refund(INTENT, amount=300, reason=None, idempotency_key="k", **flags)
    assert isinstance(refund, RefundSnapshot)
    expected = {"payment_intent": INTENT, "amount": "300", **form}
    assert_sent(the_request(recorder), "POST", "/v1/refunds", expected)


def test_list_refunds(gateway: StripeGateway, recorder: RecordingHTTPClient) -> None:
    refunds = gateway.list_refunds(INTENT)
    assert refunds and all(isinstance(r, RefundSnapshot) for r in refunds)
    request = the_request(recorder)
    assert_sent(request, "GET", "/v1/refunds", {})
    assert query(request) == {"payment_intent": [INTENT], "limit": ["100"]}


class MorePages(RecordingHTTPClient):
    """Says the first refund page has more (stripe-mock's lists never do), so the
    gateway asks for the next page."""

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        content, status, answer_headers = super().request(method, url, headers, post_data)
        if len(self.recorded) == 1:
            page = json.loads(content)
            content = json.dumps({**page, "has_more": True}).encode()
        return content, status, answer_headers


def test_list_refunds_asks_for_the_next_page(stripe_mock_server: StripeMock) -> None:
    recorder = MorePages()
    gateway = recorded_gateway_for(stripe_mock_server.url, recorder, attach_then_confirm=False)
    refunds = gateway.list_refunds(INTENT)
    _, second = recorder.recorded
    assert_sent(second, "GET", "/v1/refunds", {})
    assert query(second) == {
        "payment_intent": [INTENT],
        "limit": ["100"],
        "starting_after": [refunds[0].id],
    }
    assert len(refunds) == 2  # one on each page


# --------------------------------------------------------------- retrieve


def test_retrieve(gateway: StripeGateway, recorder: RecordingHTTPClient) -> None:
    """One GET, asking for the latest charge expanded (its card's
    ``capture_before`` comes with the read: no second request). stripe-mock's
    intent has no charge to expand; it shows the expansion is accepted."""
    assert_intent(gateway.retrieve_intent(INTENT), INTENT)
    request = the_request(recorder)
    assert_sent(request, "GET", f"/v1/payment_intents/{INTENT}", {})
    assert query(request) == {"expand[0]": ["latest_charge"]}


DISPUTE = "du_cartpay0001"


def test_retrieve_dispute(gateway: StripeGateway, recorder: RecordingHTTPClient) -> None:
    dispute = gateway.retrieve_dispute(DISPUTE)
    assert isinstance(dispute, DisputeSnapshot)
    assert dispute.id == DISPUTE and dispute.status and dispute.amount > 0
    assert_sent(the_request(recorder), "GET", f"/v1/disputes/{DISPUTE}", {})
    assert query(the_request(recorder)) == {}


def test_the_plugin_gateway_reaches_stripe_mock(stripe_mock_gateway: StripeGateway) -> None:
    snapshot = stripe_mock_gateway.retrieve_intent(INTENT)
    assert_intent(snapshot, INTENT)
    assert snapshot.client_secret  # the fixture's answer carries one, as Stripe's does


def test_a_malformed_request_is_refused(stripe_mock_server: StripeMock) -> None:
    """What every test above relies on: stripe-mock refuses a value outside the
    specification (the façade checks reasons; the gateway passes them on) and
    an unknown parameter (sent around the gateway: it never sends one)."""
    gateway = recorded_gateway_for(
        stripe_mock_server.url, RecordingHTTPClient(), attach_then_confirm=False
    )
    with pytest.raises(InvalidRequestError) as caught:
        gateway.cancel_intent(INTENT, reason="changed_my_mind", idempotency_key="k")
    assert caught.value.http_status == 400
    assert "'cancellation_reason' validation failed" in str(caught.value)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        gateway._request(
            "post", "/v1/refunds", {"payment_intent": INTENT, "amout": 1}, gateway._post("k")
        )
    assert unknown.value.http_status == 400
    assert "additional properties are not allowed" in str(unknown.value)


# ---------------------------------------------------------------- coverage


def _values(hint: object) -> set[object]:
    """The ``Literal`` values in a type hint (through ``| None``)."""
    if typing.get_origin(hint) is typing.Literal:
        return set(typing.get_args(hint))
    return {v for arg in typing.get_args(hint) for v in _values(arg)}


def _sent_values(cases: list[Any], name: str) -> set[object]:
    return {c.values[0][name] for c in cases if name in c.values[0]}


def test_every_option_and_value_is_sent_by_a_create_case() -> None:
    named = {name for c in CREATE_CASES for name in c.values[0]}
    assert named == set(attrs.fields_dict(IntentOptions))
    hints = typing.get_type_hints(IntentOptions)
    for name in ("capture_method", "allow_redirects", "setup_future_usage"):
        assert _sent_values(CREATE_CASES, name) == _values(hints[name]), name
    assert _sent_values(CREATE_CASES, "capture_method") == CAPTURE_METHODS
    assert _sent_values(CREATE_CASES, "setup_future_usage") == FUTURE_USAGES


def test_every_updatable_field_is_sent_by_an_update_case() -> None:
    sent = IntentParams(1000, "usd", BASE)
    covered: set[str] = set()
    for c in UPDATE_CASES:
        changed, money, _ = c.values
        amount, currency = money or (1000, "usd")
        covered |= set(
            intent_changes(sent, IntentParams(amount, currency, attrs.evolve(BASE, **changed)))
        )
    assert covered == set(typing.get_type_hints(IntentChanges))


def test_every_gateway_keyword_has_a_case() -> None:
    """A keyword added to a gateway call needs a case above (and maybe a lack)."""

    def keywords(method: object) -> set[str]:
        names = set(inspect.signature(method).parameters)  # type: ignore[arg-type]
        return names - {"self", "intent_id", "idempotency_key"}

    assert keywords(StripeGateway.confirm_intent) <= {"payment_method", "return_url", "off_session"}
    assert keywords(StripeGateway.capture_intent) == {"amount"}
    assert keywords(StripeGateway.cancel_intent) == {"reason"}
    assert keywords(StripeGateway.create_refund) == {
        "amount",
        "reason",
        "reverse_transfer",
        "refund_application_fee",
    }
    assert keywords(StripeGateway.update_intent) == {"changes"}
    assert keywords(StripeGateway.create_intent) == {"params"}


def test_every_lack_is_named_by_a_case() -> None:
    """No stale entry: each STRIPE_MOCK_LACKS entry is a strict xfail above."""
    named = {
        mark.kwargs["reason"].split(": ")[0]
        for c in (*CREATE_CASES, *UPDATE_CASES)
        for mark in c.marks
    }
    named.add("update:excluded_payment_method_types")  # test_update_clears_the_exclusions
    assert named == set(STRIPE_MOCK_LACKS)
    assert spec_gaps("POST", "/v1/payment_intents", {"customer": ["cus_1"]}) == []


# ------------------------------------------------------------- API version


def test_every_request_carries_the_pinned_version_whatever_the_client_says(
    stripe_mock_server: StripeMock, recorder: RecordingHTTPClient
) -> None:
    """A client built for another API version: cartpay's requests still carry its own."""
    client = stripe.StripeClient(
        "sk_test_cartpay",
        base_addresses={"api": stripe_mock_server.url},
        http_client=recorder,
        max_network_retries=0,
        stripe_version="2024-06-20",
    )
    gateway = StripeGateway(client, max_network_retries=0)
    gateway.retrieve_intent(INTENT)
    gateway.confirm_intent(
        INTENT, payment_method="pm_card_visa", return_url=RETURN_URL, idempotency_key="k"
    )
    gateway.create_refund(INTENT, amount=None, reason=None, idempotency_key="r")
    versions = [r.headers.get("Stripe-Version") for r in recorder.recorded]
    assert versions == [STRIPE_API_VERSION] * 3
    assert stripe.api_version == STRIPE_API_VERSION  # the SDK this cartpay pins agrees
