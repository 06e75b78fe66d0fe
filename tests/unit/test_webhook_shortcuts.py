"""The webhook path's shortcuts (issue 18): a re-delivery is answered from one
read of its id, without a write transaction, once the body is verified, parsed
and checked like any delivery's (so the id and type are what ``json.loads``
reads, whatever the layout); nothing is read from the body or the store before
the signature is verified."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cartpay import CartPaymentIntent, WebhookPayloadError, WebhookSignatureError
from cartpay._webhooks import MAX_PAYLOAD_BYTES
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway

from ..signing import CountingStore, signer

SECRET = "whsec_shortcuts"


sign = signer(SECRET)


def _body(event_id: str = "evt_1", event_type: str = "customer.updated") -> dict[str, Any]:
    """An event cartpay ignores (its effects are nothing), in Stripe's key order."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": None,
        "created": 1,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
        "livemode": False,
        "type": event_type,
    }


def _stripe_layout(body: dict[str, Any], *, indent: int | None = 2) -> bytes:
    return json.dumps(body, indent=indent).encode()


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def payments(store: CountingStore) -> CartPaymentIntent:
    return CartPaymentIntent(
        return_url="https://shop.test/return",
        gateway=FakeStripeGateway(webhook_secret=SECRET),
        store=store,
    )


# ---------------------------------------------------------------- layouts

LAYOUTS = [
    ("pretty-printed", _stripe_layout(_body()), ("evt_1", "customer.updated")),
    ("compact", _stripe_layout(_body(), indent=None), ("evt_1", "customer.updated")),
    (
        "no blanks",
        json.dumps(_body(), separators=(",", ":")).encode(),
        ("evt_1", "customer.updated"),
    ),
    (
        "CRLF, tabs and leading blanks",
        _stripe_layout(_body("evt_2", "a.b")).replace(b"\n", b"\r\n\t").join([b" \r\n", b""]),
        ("evt_2", "a.b"),
    ),
    ("type not last", json.dumps({**_body("evt_3", "a.b"), "x": 1}).encode(), ("evt_3", "a.b")),
    (
        "the last type is nested",
        json.dumps({**_body("evt_4", "a.b"), "z": {"type": "c.d"}}).encode(),
        ("evt_4", "a.b"),
    ),
    (
        "id not first",
        json.dumps({"object": "event", **_body("evt_5", "a.b")}).encode(),
        ("evt_5", "a.b"),
    ),
    (
        "an escape in the id",
        _stripe_layout(_body("evt_6")).replace(b'"evt_6"', b'"evt\\u005f6"', 1),
        ("evt_6", "customer.updated"),
    ),
    (
        "a byte-order mark",
        b"\xef\xbb\xbf" + _stripe_layout(_body("evt_7")),
        ("evt_7", "customer.updated"),
    ),
]


def test_a_too_big_body_is_refused_before_any_read(
    payments: CartPaymentIntent, store: CountingStore
) -> None:
    payload = _stripe_layout({**_body(), "pad": "x" * MAX_PAYLOAD_BYTES})
    with pytest.raises(WebhookPayloadError, match="bytes"):
        payments.handle_webhook(payload, sign(payload))
    assert (store.reads, store.transactions) == (0, 0)


# ------------------------------------------------------------- handle_webhook


@pytest.mark.parametrize(
    ("payload", "expected"), [c[1:] for c in LAYOUTS], ids=[c[0] for c in LAYOUTS]
)
def test_a_redelivery_is_answered_from_one_read_and_no_transaction(
    payments: CartPaymentIntent,
    store: CountingStore,
    payload: bytes,
    expected: tuple[str, str],
) -> None:
    first = payments.handle_webhook(payload, sign(payload))
    assert (first.event_id, first.event_type, first.action) == (*expected, "ignored")
    store.reads = store.transactions = 0
    again = payments.handle_webhook(payload, sign(payload))
    assert (again.event_id, again.event_type, again.action) == (*expected, "duplicate")
    assert (store.reads, store.transactions) == (1, 0)


def test_a_nested_id_is_never_taken_for_the_events(payments: CartPaymentIntent) -> None:
    first = _stripe_layout(_body("evt_1"))
    assert payments.handle_webhook(first, sign(first)).action == "ignored"
    # A recorded id nested before the top-level one: the event is evt_2, not a duplicate.
    body = {"data": {"object": {"id": "evt_1", "object": "customer"}}, **_body("evt_2")}
    payload = json.dumps(body).encode()
    result = payments.handle_webhook(payload, sign(payload))
    assert (result.event_id, result.action) == ("evt_2", "ignored")


def test_a_recorded_id_with_a_bad_signature_is_refused_before_any_read(
    payments: CartPaymentIntent, store: CountingStore
) -> None:
    payload = _stripe_layout(_body())
    payments.handle_webhook(payload, sign(payload))
    store.reads = store.transactions = 0
    with pytest.raises(WebhookSignatureError, match="signature") as caught:
        payments.handle_webhook(payload, sign(payload, "whsec_someone_else"))
    assert SECRET not in str(caught.value)
    assert (store.reads, store.transactions) == (0, 0)


@pytest.mark.parametrize(
    "payload",
    [b'[{"id": "evt_1", "type": "a"}]', b'"evt_1"', b'{"id": "evt_1", "type": "a"}'],
    ids=["a list", "a string", "not an event"],
)
def test_a_body_that_is_no_event_is_refused_as_before(
    payments: CartPaymentIntent, store: CountingStore, payload: bytes
) -> None:
    with pytest.raises(WebhookPayloadError, match="not a Stripe event"):
        payments.handle_webhook(payload, sign(payload))
    assert store.transactions == 0


def test_the_fakes_events_are_in_stripes_layout() -> None:
    fake = FakeStripeGateway(webhook_secret=SECRET)
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=fake, store=MemoryStore()
    )
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500)
    payments.create_payment_intent(cart.id)
    payload, _ = fake.events()[-1]
    keys = list(json.loads(payload))
    assert (keys[0], keys[-1]) == ("id", "type")
