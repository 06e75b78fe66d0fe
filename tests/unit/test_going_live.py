"""Issue 14 on the fake: server-side confirms on Stripe's defaults (return URLs,
off-session charges), 3-D Secure seen by the host, Connect options and refund
flags, per-currency maximums, the pinned API version and the mode from the key.
Each bad input is refused before any call, with nothing written."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from cartpay import (
    STRIPE_API_VERSION,
    WEBHOOK_EVENTS,
    AuthenticationRequiredError,
    CardDeclinedError,
    CartPaymentIntent,
    IntentOptions,
    NextAction,
    Order,
    ValidationError,
    WebhookPayloadError,
)
from cartpay._money import CARD_MAXIMUM, MAX_AMOUNT, maximum_amount
from cartpay._options import may_redirect
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway, FaultyGateway

#: Every case runs on both façades (tests/twins.py).
pytestmark = pytest.mark.twins

URL = "https://shop.test/checkout/done"
CARDS = IntentOptions(allowed_payment_method_types=("card",))
NEVER = IntentOptions(automatic_payment_methods=True, allow_redirects="never")
SAVED = IntentOptions(customer="cus_saved", allowed_payment_method_types=("card",))


@pytest.fixture
def bare(
    make_payments: Callable[..., CartPaymentIntent], fake: FakeStripeGateway, store: MemoryStore
) -> CartPaymentIntent:
    """A façade with no default return URL."""
    return make_payments(gateway=fake, store=store)


def order_on(payments: CartPaymentIntent, options: IntentOptions | None = None, **kw: Any) -> Order:
    cart = payments.create_cart(kw.get("currency", "usd"), options=options)
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=kw.get("amount", 6200))
    payments.create_payment_intent(cart.id)
    return payments.checkout(cart.id)


# ------------------------------------------------------ 1. return URLs


def test_stripes_defaults_need_a_return_url_before_any_call(
    bare: CartPaymentIntent, fake: FakeStripeGateway, store_state: Callable[[], object]
) -> None:
    order = order_on(bare)
    before, calls = store_state(), len(fake.requests)
    with pytest.raises(ValidationError) as caught:
        bare.confirm_payment(order.id, payment_method="pm_card_visa")
    assert (caught.value.field, caught.value.rule) == ("return_url", "required")
    assert (store_state(), len(fake.requests)) == (before, calls)


def test_a_return_url_given_to_the_call_is_sent(
    bare: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    order = bare.confirm_payment(order_on(bare).id, payment_method="pm_card_visa", return_url=URL)
    assert order.payment == "paid"
    (confirm,) = [r for r in fake.requests if r.operation == "confirm_intent"]
    assert confirm.params == {"payment_method": "pm_card_visa", "return_url": URL}


def test_the_facades_return_url_is_the_default(
    make_payments: Callable[..., CartPaymentIntent], fake: FakeStripeGateway
) -> None:
    payments = make_payments(gateway=fake, store=MemoryStore(), return_url=URL)
    assert (
        payments.confirm_payment(order_on(payments).id, payment_method="pm_card_visa").payment
        == "paid"
    )
    (confirm,) = [r for r in fake.requests if r.operation == "confirm_intent"]
    assert confirm.params["return_url"] == URL


@pytest.mark.parametrize("options", [CARDS, NEVER], ids=["cards only", "redirects never"])
def test_intents_that_cannot_redirect_need_no_return_url(
    bare: CartPaymentIntent, fake: FakeStripeGateway, options: IntentOptions
) -> None:
    order = bare.confirm_payment(order_on(bare, options).id, payment_method="pm_card_visa")
    assert order.payment == "paid"
    (confirm,) = [r for r in fake.requests if r.operation == "confirm_intent"]
    assert "return_url" not in confirm.params


def test_a_cards_only_gateway_needs_no_return_url(
    make_payments: Callable[..., CartPaymentIntent], store: MemoryStore
) -> None:
    fake = FakeStripeGateway(redirects=False)
    payments = make_payments(gateway=FaultyGateway(fake, seed=1, rate=0), store=store)
    order = payments.confirm_payment(order_on(payments).id, payment_method="pm_card_visa")
    assert order.payment == "paid"


def test_the_fake_keeps_stripes_return_url_rule(fake: FakeStripeGateway) -> None:
    from cartpay import IntentParams, InvalidRequestError

    intent = fake.create_intent(IntentParams(1000, "usd"), idempotency_key="c")
    with pytest.raises(InvalidRequestError) as caught:
        fake.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k")
    assert caught.value.param == "return_url"
    assert fake.intent(intent.id).status == "requires_payment_method"


@pytest.mark.parametrize(
    ("options", "redirects"),
    [
        (IntentOptions(), True),
        (IntentOptions(automatic_payment_methods=True), True),
        (IntentOptions(automatic_payment_methods=True, allow_redirects="always"), True),
        (NEVER, False),
        (CARDS, False),
        (IntentOptions(allowed_payment_method_types=("card", "ideal")), True),
        (IntentOptions(excluded_payment_method_types=("klarna",)), True),
    ],
)
def test_may_redirect(options: IntentOptions, redirects: bool) -> None:
    assert may_redirect(options) is redirects


# -------------------------------------------------------- 1. off-session


def test_an_off_session_charge_of_a_saved_card(
    bare: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    order = bare.confirm_payment(
        order_on(bare, SAVED).id, payment_method="pm_card_visa", off_session=True
    )
    assert order.payment == "paid"
    (confirm,) = [r for r in fake.requests if r.operation == "confirm_intent"]
    assert confirm.params == {"payment_method": "pm_card_visa", "off_session": True}


def test_authentication_required_off_session_is_typed_and_recorded(
    bare: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    order = order_on(bare, SAVED)
    with pytest.raises(AuthenticationRequiredError) as caught:
        bare.confirm_payment(
            order.id, payment_method="pm_card_authenticationRequired", off_session=True
        )
    assert isinstance(caught.value, CardDeclinedError)  # old handlers still catch it
    assert (caught.value.code, caught.value.decline_code) == ("authentication_required",) * 2
    after = bare.get_order(order.id)
    assert (after.status, after.payment) == ("incomplete", "failed")
    assert [(t.status, t.code) for t in after.transactions] == [
        ("failed", "authentication_required")
    ]
    # The customer comes back: the browser confirms with the client secret.
    handle = bare.intent_for_order(order.id)
    assert handle.status == "requires_payment_method" and handle.client_secret
    fake.confirm_intent(handle.id, payment_method="pm_card_visa", idempotency_key="browser")
    assert bare.confirm_order(order.id).payment == "paid"


@pytest.mark.parametrize(
    ("options", "off_session", "field", "rule"),
    [
        (CARDS, True, "off_session", "customer"),
        (SAVED, "yes", "off_session", "type"),
    ],
)
def test_bad_off_session_is_refused_first(
    bare: CartPaymentIntent,
    fake: FakeStripeGateway,
    store_state: Callable[[], object],
    options: IntentOptions,
    off_session: Any,
    field: str,
    rule: str,
) -> None:
    order = order_on(bare, options)
    before, calls = store_state(), len(fake.requests)
    with pytest.raises(ValidationError) as caught:
        bare.confirm_payment(order.id, payment_method="pm_card_visa", off_session=off_session)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert (store_state(), len(fake.requests)) == (before, calls)


def test_a_bad_default_return_url_is_refused(
    make_payments: Callable[..., CartPaymentIntent], fake: FakeStripeGateway
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_payments(gateway=fake, store=MemoryStore(), return_url="javascript:alert(1)")
    assert caught.value.field == "return_url"


# ------------------------------------------------------- 2. 3-D Secure


def test_three_d_secure_leaves_the_order_unpaid_and_tells_the_host_what_to_do(
    payments: CartPaymentIntent, fake: FakeStripeGateway, store: MemoryStore
) -> None:
    order = order_on(payments)
    after = payments.confirm_payment(order.id, payment_method="pm_card_threeDSecure2Required")
    assert after.payment == "unpaid"
    handle = payments.intent_for_order(order.id)
    assert handle.status == "requires_action"
    assert handle.next_action is not None
    assert handle.next_action.type == "redirect_to_url"  # a return URL was sent
    assert handle.next_action.redirect_url and handle.next_action.redirect_url.startswith(
        "https://"
    )
    assert handle.client_secret and handle.client_secret.startswith(handle.id)
    # Never stored, never shown.
    assert "_secret_" not in repr(store._intents) + repr(store._orders) + repr(handle)
    assert handle.next_action.redirect_url not in repr(handle) + repr(store._intents)
    assert all(
        r.snapshot is None or r.snapshot.next_action is None for r in store._intents.values()
    )
    fake.authenticate(handle.id)
    assert payments.confirm_order(order.id).payment == "paid"
    assert payments.intent_for_order(order.id).next_action is None


def test_without_a_return_url_the_browser_authenticates_with_stripe_js(
    bare: CartPaymentIntent,
) -> None:
    order = order_on(bare, CARDS)
    bare.confirm_payment(order.id, payment_method="pm_card_authenticationRequired")
    assert bare.intent_for_order(order.id).next_action == NextAction("use_stripe_sdk")


def test_the_next_action_of_a_webhook_is_not_stored(
    payments: CartPaymentIntent, fake: FakeStripeGateway, store: MemoryStore
) -> None:
    order = order_on(payments)
    payments.confirm_payment(order.id, payment_method="pm_card_threeDSecure2Required")
    for payload, header in fake.events():
        payments.handle_webhook(payload, header)
    assert "hooks.stripe.com" not in repr(store._intents) + repr(store._orders)


def test_intent_for_order_of_an_unknown_order(payments: CartPaymentIntent) -> None:
    from cartpay import NotFoundError

    with pytest.raises(NotFoundError):
        payments.intent_for_order("ord_nothere")


# ----------------------------------------------------------- 5. Connect


def test_connect_options_are_sent_on_create_and_transfer_group_set_once(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    options = IntentOptions(
        transfer_destination="acct_seller", on_behalf_of="acct_seller", transfer_group="o1"
    )
    cart = payments.create_cart("usd", options=options)
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=6200)
    payments.create_payment_intent(cart.id)
    (create,) = [r for r in fake.requests if r.operation == "create_intent"]
    assert (create.params["on_behalf_of"], create.params["transfer_group"]) == ("acct_seller", "o1")
    for changed, rule in (
        ({"on_behalf_of": "acct_other"}, "create_only"),
        ({"transfer_group": "o2"}, "set_once"),
    ):
        with pytest.raises(ValidationError) as caught:
            payments.update_payment_intent(
                cart.id, options=IntentOptions(**{**_fields(options), **changed})
            )
        assert caught.value.rule == rule


def test_transfer_group_may_be_added_by_an_update(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="Tee", unit_amount=6200)
    payments.create_payment_intent(cart.id)
    payments.update_payment_intent(cart.id, options=IntentOptions(transfer_group="o1"))
    (update,) = [r for r in fake.requests if r.operation == "update_intent"]
    assert update.params == {"transfer_group": "o1"}


@pytest.mark.parametrize("value", ["", "acct with spaces", 5])
def test_bad_on_behalf_of_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        IntentOptions(on_behalf_of=value)
    assert caught.value.field == "on_behalf_of"


@pytest.mark.parametrize(
    ("flags", "sent"),
    [
        ({}, {}),
        ({"reverse_transfer": True}, {"reverse_transfer": True}),
        (
            {"reverse_transfer": False, "refund_application_fee": True},
            {"reverse_transfer": False, "refund_application_fee": True},
        ),
    ],
)
def test_refund_flags_are_passed_to_stripe(
    payments: CartPaymentIntent,
    fake: FakeStripeGateway,
    flags: dict[str, Any],
    sent: dict[str, bool],
) -> None:
    order = payments.confirm_payment(order_on(payments).id, payment_method="pm_card_visa")
    order = payments.refund_order(order.id, 1000, **flags)
    assert order.refunded == 1000
    (refund,) = [r for r in fake.requests if r.operation == "create_refund"]
    assert {
        k: v
        for k, v in refund.params.items()
        if k in ("reverse_transfer", "refund_application_fee")
    } == sent


@pytest.mark.parametrize("field", ["reverse_transfer", "refund_application_fee"])
def test_bad_refund_flags_are_refused_first(
    payments: CartPaymentIntent, fake: FakeStripeGateway, field: str
) -> None:
    order = payments.confirm_payment(order_on(payments).id, payment_method="pm_card_visa")
    calls = len(fake.requests)
    with pytest.raises(ValidationError) as caught:
        payments.refund_order(order.id, 1000, **{field: "yes"})  # type: ignore[arg-type]
    assert (caught.value.field, len(fake.requests)) == (field, calls)


def _fields(options: IntentOptions) -> dict[str, Any]:
    import attrs

    return {f.name: getattr(options, f.name) for f in attrs.fields(IntentOptions)}


# --------------------------------------------------- 6. per-currency maximums


def test_an_indonesian_cart_of_rp_1_500_000_goes_through(payments: CartPaymentIntent) -> None:
    order = order_on(payments, currency="idr", amount=150_000_000)
    order = payments.confirm_payment(order.id, payment_method="pm_card_visa")
    assert (order.payment, order.captured) == ("paid", 150_000_000)


@pytest.mark.parametrize(("currency", "amount"), [("cop", 100_000_000), ("huf", 200_000_000)])
def test_ordinary_carts_above_eight_digits_go_through(
    payments: CartPaymentIntent, currency: str, amount: int
) -> None:
    assert order_on(payments, currency=currency, amount=amount).total == amount


def test_maximums_per_currency_and_method() -> None:
    assert maximum_amount("usd") == CARD_MAXIMUM
    assert maximum_amount("usd", cards=False) == MAX_AMOUNT
    assert maximum_amount("idr", cards=False) == 999_999_999_999
    assert maximum_amount("cop", cards=False) == 9_999_999_999
    assert maximum_amount("inr", cards=False) == 999_999_999
    assert maximum_amount("kwd") % 10 == 0 and maximum_amount("isk") % 100 == 0
    assert maximum_amount("usd", ceilings={"usd": 1_000_000}) == 1_000_000


def test_a_cart_limited_to_other_methods_keeps_their_maximum(payments: CartPaymentIntent) -> None:
    cart = payments.create_cart(
        "eur", options=IntentOptions(allowed_payment_method_types=("sepa_debit",))
    )
    with pytest.raises(ValidationError) as caught:
        payments.add_item(cart.id, sku="car", name="Car", unit_amount=MAX_AMOUNT + 1)
    assert (caught.value.field, caught.value.rule) == ("quantity", "maximum")


def test_the_hosts_ceiling_is_lower(
    make_payments: Callable[..., CartPaymentIntent], fake: FakeStripeGateway
) -> None:
    payments = make_payments(gateway=fake, store=MemoryStore(), max_amounts={"idr": 100_000_000})
    cart = payments.create_cart("idr")
    with pytest.raises(ValidationError) as caught:
        payments.add_item(cart.id, sku="tv", name="TV", unit_amount=150_000_000)
    assert (caught.value.field, caught.value.rule) == ("quantity", "maximum")
    payments.add_item(cart.id, sku="tv", name="TV", unit_amount=100_000_000)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("ceilings", "rule"),
    [
        ({"usd": CARD_MAXIMUM + 1}, "range"),
        ({"usd": 10}, "range"),
        ({"USD": 1000}, "lowercase"),
        ({"usd": 10.5}, "integer"),
        ([("usd", 1000)], "type"),
    ],
)
def test_bad_ceilings_are_refused(
    make_payments: Callable[..., CartPaymentIntent],
    fake: FakeStripeGateway,
    ceilings: Any,
    rule: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_payments(gateway=fake, store=MemoryStore(), max_amounts=ceilings)
    assert (caught.value.field, caught.value.rule) == ("max_amounts", rule)


# ---------------------------------------------------- 7. the pinned version


def _event(event_type: str, obj: dict[str, Any], version: str | None, event_id: str) -> bytes:
    body: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "livemode": False,
        "created": int(time.time()),
        "data": {"object": obj},
    }
    if version is not None:
        body["api_version"] = version
    return json.dumps(body).encode()


def test_an_event_of_another_version_is_read_again_and_logged_once(
    payments: CartPaymentIntent, fake: FakeStripeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    order = order_on(payments)
    intent_id = order.intent_id or ""
    fake.confirm_intent(
        intent_id, payment_method="pm_card_visa", return_url=URL, idempotency_key="b"
    )
    # The event's copy lies (an old version's shape): cartpay reads the intent itself.
    lying = {"id": intent_id, "object": "payment_intent", "status": "canceled", "amount": 6200,
             "currency": "usd"}  # fmt: skip
    retrieves = fake.count("retrieve_intent")
    with caplog.at_level(logging.WARNING, logger="cartpay"):
        for n in range(3):
            payload = _event("payment_intent.canceled", lying, "2019-02-19", f"evt_old{n}")
            payments.handle_webhook(*fake.sign(payload))
    assert fake.count("retrieve_intent") == retrieves + 3  # each read again
    after = payments.get_order(order.id)
    assert (after.status, after.payment) == ("complete", "paid")
    warnings = [r for r in caplog.records if "2019-02-19" in r.getMessage()]
    assert len(warnings) == 1 and STRIPE_API_VERSION in warnings[0].getMessage()


def test_an_event_of_the_pinned_version_is_trusted(
    payments: CartPaymentIntent, fake: FakeStripeGateway
) -> None:
    order = order_on(payments)
    fake.confirm_intent(
        order.intent_id or "", payment_method="pm_card_visa", return_url=URL, idempotency_key="b"
    )
    retrieves = fake.count("retrieve_intent")
    for payload, header in fake.events():
        assert json.loads(payload)["api_version"] == STRIPE_API_VERSION
        payments.handle_webhook(payload, header)
    assert fake.count("retrieve_intent") == retrieves
    assert payments.get_order(order.id).payment == "paid"


def test_the_handled_events_come_from_the_router() -> None:
    from cartpay._webhooks import Event, route_event

    assert tuple(sorted(WEBHOOK_EVENTS)) == WEBHOOK_EVENTS
    for event_type in WEBHOOK_EVENTS:
        kind = "dispute" if event_type.startswith("charge.dispute.") else event_type.split(".")[0]
        obj: dict[str, Any] = {"id": "x_1", "object": kind, "status": "succeeded"}
        obj.update(payment_intent="pi_1", amount=1, currency="usd")
        if kind == "payment_intent":
            obj["id"] = "pi_1"
        route = route_event(Event("evt", event_type, False, 0, obj))
        assert route.kind != "ignore", event_type
    assert (
        route_event(Event("evt", "customer.created", False, 0, {"object": "customer"})).kind
        == "ignore"
    )


# -------------------------------------------------------- 8. mode from key


@pytest.mark.parametrize(
    ("key", "livemode"),
    [("sk_live_abc", True), ("rk_live_abc", True), ("sk_test_abc", False), ("rk_test_abc", False)],
)
def test_the_stripe_gateway_knows_its_mode_from_its_key(key: str, livemode: bool) -> None:
    gateway = StripeGateway(stripe.StripeClient(key), webhook_secret="whsec_x")
    assert gateway.livemode is livemode
    assert key not in repr(gateway) and f"livemode={livemode}" in repr(gateway)


def test_a_key_of_no_known_mode_needs_livemode() -> None:
    with pytest.raises(ValidationError) as caught:
        StripeGateway(stripe.StripeClient("pk_live_abc"))
    assert (caught.value.field, caught.value.rule) == ("client", "key_mode")
    assert StripeGateway(stripe.StripeClient("pk_x"), livemode=False).livemode is False


def test_a_test_event_never_reaches_a_live_shop(
    make_payments: Callable[..., CartPaymentIntent], store: MemoryStore
) -> None:
    gateway = StripeGateway(stripe.StripeClient("sk_live_abc"), webhook_secret="whsec_x")
    payments = make_payments(gateway=gateway, store=store)
    signer = FakeStripeGateway(webhook_secret="whsec_x")
    payload = _event(
        "payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}, None, "evt_t"
    )
    with pytest.raises(WebhookPayloadError, match="test mode"):
        payments.handle_webhook(*signer.sign(payload))
    assert store._events == {}
