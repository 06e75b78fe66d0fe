"""The webhook path's shortcuts (issue 18): a re-delivery is answered from one
lookup of its id, read where Stripe writes it, before the body is parsed; every
other layout falls back to parsing the whole body, and nothing is read from the
body or the store before the signature is verified."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from cartpay import CartPaymentIntent, WebhookPayloadError, WebhookSignatureError
from cartpay._webhooks import MAX_PAYLOAD_BYTES, peek_event
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway

SECRET = "whsec_shortcuts"


def sign(payload: bytes, secret: str = SECRET) -> str:
    ts = int(time.time())
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


class CountingStore(MemoryStore):
    """A MemoryStore that counts its units of work."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = self.transactions = 0

    def read(self) -> Any:
        self.reads += 1
        return super().read()

    def transaction(self) -> Any:
        self.transactions += 1
        return super().transaction()


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


# ------------------------------------------------------------------ peek_event

PEEKED = [
    ("pretty-printed", _stripe_layout(_body()), ("evt_1", "customer.updated")),
    ("compact", _stripe_layout(_body(), indent=None), ("evt_1", "customer.updated")),
    (
        "no blanks",
        json.dumps(_body(), separators=(",", ":")).encode(),
        ("evt_1", "customer.updated"),
    ),
    (
        "CRLF, tabs and leading blanks",
        b' \r\n\t{\r\n\t"id"\t:\r\n "evt_2",\r\n\t"type" :\t"a.b"\r\n}\r\n',
        ("evt_2", "a.b"),
    ),
    ("type not last", json.dumps({"id": "evt_3", "type": "a.b", "x": 1}).encode(), ("evt_3", None)),
    (
        "the last type is nested",
        json.dumps({"id": "evt_4", "type": "a.b", "data": {"type": "c.d"}}).encode(),
        ("evt_4", None),
    ),
    (
        "a type only inside a string",
        b'{"id": "evt_5", "note": "\\"type\\": \\"c.d\\"}"}',
        ("evt_5", None),
    ),
]

NOT_PEEKED = [
    ("first key is not id", json.dumps({"object": "event", "id": "evt_1", "type": "a"}).encode()),
    (
        "a nested id before the top-level one",
        json.dumps({"data": {"object": {"id": "evt_1"}}, "id": "evt_2", "type": "a"}).encode(),
    ),
    ("a list", json.dumps([{"id": "evt_1", "type": "a"}]).encode()),
    ("a string", json.dumps('{"id": "evt_1"}').encode()),
    ("an escape in the id", b'{"id": "evt\\u005f1", "type": "a"}'),
    ("an id that is not a string", b'{"id": 1, "type": "a"}'),
    ("a form feed (not JSON whitespace)", b'\x0c{"id": "evt_1", "type": "a"}'),
    ("a byte-order mark", b'\xef\xbb\xbf{"id": "evt_1", "type": "a"}'),
    ("an empty id", b'{"id": "", "type": "a"}'),
    ("empty", b""),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [c[1:] for c in PEEKED], ids=[c[0] for c in PEEKED]
)
def test_peek_reads_the_top_level_id_and_last_type(
    payload: bytes, expected: tuple[str, str | None]
) -> None:
    assert peek_event(payload) == expected
    assert json.loads(payload)["id"] == expected[0]  # what the full parse reads too


@pytest.mark.parametrize("payload", [c[1] for c in NOT_PEEKED], ids=[c[0] for c in NOT_PEEKED])
def test_peek_leaves_every_other_layout_to_the_full_parse(payload: bytes) -> None:
    assert peek_event(payload) is None


def test_peek_refuses_a_body_too_big_to_be_an_event() -> None:
    payload = b'{"id": "evt_1", "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'", "type": "a"}'
    assert peek_event(payload) is None


# ------------------------------------------------------------- handle_webhook


def test_a_redelivery_is_answered_from_one_read_and_no_transaction(
    payments: CartPaymentIntent, store: CountingStore
) -> None:
    payload = _stripe_layout(_body())
    assert payments.handle_webhook(payload, sign(payload)).action == "ignored"
    store.reads = store.transactions = 0
    again = payments.handle_webhook(payload, sign(payload))
    assert (again.event_id, again.event_type, again.action) == (
        "evt_1",
        "customer.updated",
        "duplicate",
    )
    assert (store.reads, store.transactions) == (1, 0)


def test_a_redelivery_whose_type_is_not_last_reads_it_from_the_body(
    payments: CartPaymentIntent, store: CountingStore
) -> None:
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "x.y", "data": {"object": {}}})
    raw = payload.encode()
    assert payments.handle_webhook(raw, sign(raw)).action == "ignored"
    store.transactions = 0
    again = payments.handle_webhook(raw, sign(raw))
    assert (again.event_type, again.action, store.transactions) == ("x.y", "duplicate", 0)


@pytest.mark.parametrize("name", ["first key is not id", "an escape in the id"])
def test_other_layouts_are_deduplicated_by_the_transaction(
    payments: CartPaymentIntent, store: CountingStore, name: str
) -> None:
    body = {k: v for k, v in _body().items() if k != "id"}
    payload = json.dumps({**body, "id": "evt_1"}).encode()
    if name == "an escape in the id":
        payload = _stripe_layout(_body()).replace(b'"evt_1"', b'"evt\\u005f1"', 1)
    assert peek_event(payload) is None
    assert payments.handle_webhook(payload, sign(payload)).action == "ignored"
    store.reads = 0
    again = payments.handle_webhook(payload, sign(payload))
    assert (again.event_id, again.action, store.reads) == ("evt_1", "duplicate", 0)


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
    assert peek_event(payload) == (json.loads(payload)["id"], "payment_intent.created")
