"""The fourth attack: the fast webhook path (issue 18: the signature computed with
hmac, a re-delivery recognised from the id read from the raw body before it is
parsed), attacked through the public API as a hostile or unlucky host would.

Findings are the tests under a ``# FINDING n`` comment: each FAILS today (no fix
here, as for the earlier attacks) and passes once the finding is mended. The
other tests are interleavings and verdicts that held; they guard the fast path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import stripe

from cartpay import (
    AsyncCartPaymentIntent,
    CartPaymentIntent,
    Order,
    ValidationError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import AsyncFakeStripeGateway, FakeStripeGateway

from ..signing import CountingStore, mac, signer

SECRET = "whsec_attack4"
UNICODE_SECRET = "whsec_\u00fcn\u00efc\u00f6de_\u20ac_\U0001f600"
RETURN_URL = "https://shop.test/return"
DSN_VARIABLE = "CARTPAY_TEST_POSTGRES_DSN"


sign = signer(SECRET)


def _payments(store: Any, gateway: Any | None = None) -> CartPaymentIntent:
    return CartPaymentIntent(
        return_url=RETURN_URL,
        gateway=gateway if gateway is not None else FakeStripeGateway(webhook_secret=SECRET),
        store=store,
    )


def _order_paid_remotely(payments: CartPaymentIntent, fake: FakeStripeGateway) -> Order:
    """An order whose intent the browser confirmed (Stripe took the money);
    cartpay has not heard of it yet: only a webhook can book it."""
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    fake.confirm_intent(
        order.intent_id or "",
        payment_method="pm_card_visa",
        return_url=RETURN_URL,
        idempotency_key="browser",
    )
    return order


def _deliveries(fake: FakeStripeGateway, intent_id: str) -> list[tuple[bytes, str]]:
    found = []
    for payload, header in fake.events():
        obj = json.loads(payload)["data"]["object"]
        if intent_id in (obj.get("id"), obj.get("payment_intent")):
            found.append((payload, header))
    return found


def _of_type(deliveries: list[tuple[bytes, str]], event_type: str) -> bytes:
    return next(p for p, _ in deliveries if json.loads(p)["type"] == event_type)


def _ignored_event(event_id: str, **extra: Any) -> bytes:
    """An event cartpay records as ignored, pretty-printed in Stripe's key order."""
    body = {
        "id": event_id,
        "object": "event",
        "api_version": None,
        "created": 1,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
        "livemode": False,
        **extra,
        "type": "customer.updated",
    }
    return json.dumps(body, indent=2).encode()


# =====================================================================
# 1. Signature: verdict for verdict with the SDK, a typed error, no store I/O
# =====================================================================

NOW = int(time.time())

PAYLOADS: dict[str, bytes] = {
    "compact": b'{"id":"evt_1","object":"event"}',
    "a byte-order mark": b'\xef\xbb\xbf{"id":"evt_1","object":"event"}',
    "unicode text": '{"id":"evt_1","object":"event","n":"caf\u00e9 \u20ac \U0001f600"}'.encode(),
    "CRLF and a trailing newline": b'{\r\n  "id": "evt_1",\r\n  "object": "event"\r\n}\r\n',
    "empty": b"",
}


def _headers(payload: bytes, secret: str) -> dict[str, str]:
    good = mac(payload, NOW, secret)
    return {
        "good": f"t={NOW},v1={good}",
        "missing": "",
        "no t": f"v1={good}",
        "several t, the first good": f"t={NOW},t=1,v1={good}",
        "several t, the second good": f"t=1,t={NOW},v1={good}",
        "non-integer t": f"t=abc,v1={good}",
        "t as a float": f"t={NOW}.5,v1={good}",
        "stale": f"t={NOW - 301},v1={mac(payload, NOW - 301, secret)}",
        "just within the tolerance": f"t={NOW - 200},v1={mac(payload, NOW - 200, secret)}",
        "from the future": f"t={NOW + 86400},v1={mac(payload, NOW + 86400, secret)}",
        "empty v1": f"t={NOW},v1=",
        "v0 only": f"t={NOW},v0={good}",
        "several v1, one good": f"t={NOW},v1={'0' * 64},v1={good},v1=zz",
        "uppercase hex": f"t={NOW},v1={good.upper()}",
        "a space after the comma": f"t={NOW}, v1={good}",
        "blanks around the timestamp": f"t= {NOW} ,v1={good}",
        "a trailing blank on v1": f"t={NOW},v1={good} ",
        "a truncated v1": f"t={NOW},v1={good[:-1]}",
        "signed with another secret": f"t={NOW},v1={mac(payload, NOW, 'whsec_other')}",
        "signed over the body without the timestamp": (
            f"t={NOW},v1={hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()}"
        ),
    }


CASES: list[tuple[str, str, str, str]] = [
    (secret_name, secret, name, header_name)
    for secret_name, secret in (("ascii secret", SECRET), ("unicode secret", UNICODE_SECRET))
    for name in PAYLOADS
    for header_name in _headers(b"", SECRET)
]
GRID = [pytest.param(s, p, h, id=f"{n}-{p}-{h}") for n, s, p, h in CASES]


def _sdk_accepts(payload: bytes, header: str, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, 300)
    except Exception:  # (TypeError for a non-ASCII signature, as well as its own error)
        return False
    return True


def _cartpay_verdict(payload: bytes, header: str, secret: str) -> bool | BaseException:
    gateway = StripeGateway(stripe.StripeClient("sk_test_attack4"), webhook_secret=secret)
    try:
        gateway.verify_webhook(payload, header, tolerance=300)
    except WebhookSignatureError:
        return False
    except BaseException as exc:  # any other error is a finding of its own
        return exc
    return True


@pytest.mark.parametrize(("secret", "payload_name", "header_name"), GRID)
def test_stripe_gateway_gives_the_sdks_verdict(
    secret: str, payload_name: str, header_name: str
) -> None:
    payload = PAYLOADS[payload_name]
    header = _headers(payload, secret)[header_name]
    assert _cartpay_verdict(payload, header, secret) is _sdk_accepts(payload, header, secret)


def test_the_grid_has_both_verdicts() -> None:
    verdicts = {_sdk_accepts(PAYLOADS[p], _headers(PAYLOADS[p], s)[h], s) for _, s, p, h in CASES}
    assert verdicts == {True, False}


# FINDING 3: a non-ASCII v1 listed before a good one is accepted; the SDK refuses
# it (its compare_digest raises TypeError on the first, any() never reaches the second).
def test_a_non_ascii_signature_before_a_good_one_is_refused_as_the_sdk_does() -> None:
    payload = PAYLOADS["compact"]
    header = f"t={NOW},v1=\u00e9,v1={mac(payload, NOW, SECRET)}"
    assert _sdk_accepts(payload, header, SECRET) is False  # (TypeError in compare_digest)
    assert _cartpay_verdict(payload, header, SECRET) is False


@pytest.mark.parametrize("gateway_kind", ["stripe", "fake"])
@pytest.mark.parametrize(
    "header_name",
    [
        h
        for h in _headers(b"", SECRET)
        if h
        not in (
            "good",
            "several t, the first good",
            "just within the tolerance",
            "from the future",
            "several v1, one good",
            "blanks around the timestamp",
        )
    ],
)
def test_a_refused_header_reads_and_writes_nothing(gateway_kind: str, header_name: str) -> None:
    payload = _ignored_event("evt_refused")
    header = _headers(payload, SECRET)[header_name]
    assert not _sdk_accepts(payload, header, SECRET)
    store = CountingStore()
    gateway: Any = (
        FakeStripeGateway(webhook_secret=SECRET)
        if gateway_kind == "fake"
        else StripeGateway(stripe.StripeClient("sk_test_attack4"), webhook_secret=SECRET)
    )
    payments = _payments(store, gateway)
    with pytest.raises(WebhookSignatureError) as caught:
        payments.handle_webhook(payload, header)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert (store.reads, store.transactions, store._events) == (0, 0, {})


def test_a_recorded_id_with_a_refused_header_is_not_answered_duplicate() -> None:
    """The id is peeked only after the signature: a replay of a recorded event with
    a stale or forged header is refused, not answered 'duplicate'."""
    store = CountingStore()
    payments = _payments(store)
    payload = _ignored_event("evt_known")
    assert payments.handle_webhook(payload, sign(payload)).action == "ignored"
    store.reads = store.transactions = 0
    for header in (
        sign(payload, timestamp=NOW - 3600),
        sign(payload, "whsec_forger"),
        sign(payload).replace("t=", "t=1", 1),
        "",
    ):
        with pytest.raises(WebhookSignatureError):
            payments.handle_webhook(payload, header)
    assert (store.reads, store.transactions) == (0, 0)


@pytest.mark.parametrize(
    ("make", "accepted"),
    [
        (bytes, True),
        (bytearray, True),
        (memoryview, False),
        (lambda p: p.decode(), False),
    ],
    ids=["bytes", "bytearray", "memoryview", "str"],
)
def test_payload_types(make: Callable[[bytes], Any], accepted: bool) -> None:
    """bytes and bytearray are the raw body (a re-delivery of either is a
    duplicate); anything else is a typed error before any read."""
    store = CountingStore()
    payments = _payments(store)
    payload = _ignored_event("evt_types")
    if accepted:
        assert payments.handle_webhook(make(payload), sign(payload)).action == "ignored"
        again = payments.handle_webhook(make(payload), sign(payload))
        assert again.action == "duplicate"
        return
    with pytest.raises(WebhookError):
        payments.handle_webhook(make(payload), sign(payload))
    assert (store.reads, store.transactions) == (0, 0)


def test_a_header_as_bytes_is_a_signature_error() -> None:
    store = CountingStore()
    payload = _ignored_event("evt_bytes_header")
    with pytest.raises(WebhookSignatureError):
        _payments(store).handle_webhook(payload, sign(payload).encode())  # type: ignore[arg-type]
    assert (store.reads, store.transactions) == (0, 0)


# =====================================================================
# 2. No secret in any error, repr or log record
# =====================================================================


def test_no_secret_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = StripeGateway(stripe.StripeClient("sk_test_attack4"), webhook_secret=SECRET)
    fake = FakeStripeGateway(webhook_secret=SECRET)
    texts = [repr(gateway), repr(fake)]
    for gw in (gateway, fake):
        payments = _payments(MemoryStore(), gw)
        texts.append(repr(payments))
        payload = _ignored_event("evt_logs")
        good = sign(payload)
        signature = good.split("v1=")[1]
        for header in _headers(payload, SECRET).values():
            try:
                payments.handle_webhook(payload, header)
            except WebhookError as exc:
                texts += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
        payments.handle_webhook(payload, good)
        payments.handle_webhook(payload, good)  # the duplicate path logs too
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(r.__dict__) for r in caplog.records]
    assert caplog.records  # (something was logged, so the check below means something)
    for text in texts:
        assert SECRET not in text
        assert signature not in text


# FINDING 4: a webhook secret that is not UTF-8-encodable escapes verify_webhook as
# a bare UnicodeEncodeError whose repr (its args) holds the whole secret; before
# issue 18 it was a WebhookSignatureError.
def test_a_secret_that_cannot_be_encoded_is_a_typed_error_without_the_secret() -> None:
    secret = "whsec_leak\ud800me"
    payload = _ignored_event("evt_secret")
    try:
        gateway = StripeGateway(stripe.StripeClient("sk_test_attack4"), webhook_secret=secret)
        _payments(MemoryStore(), gateway).handle_webhook(payload, sign(payload))
    except (ValidationError, WebhookSignatureError) as exc:
        assert "leak" not in repr(exc) and "leak" not in str(exc)
        return
    except BaseException as exc:
        pytest.fail(f"{type(exc).__name__}: {exc!r}")
    pytest.fail("accepted")


# =====================================================================
# 3. The dedup shortcut: the peeked id/type against json.loads
# =====================================================================


def _paid_remotely() -> tuple[CartPaymentIntent, FakeStripeGateway, Order]:
    fake = FakeStripeGateway(webhook_secret=SECRET)
    payments = _payments(MemoryStore(), fake)
    return payments, fake, _order_paid_remotely(payments, fake)


# FINDING 1: the peek reads the first "id", json.loads keeps the last: a new event
# whose body repeats the key, the first with a recorded id, is answered 'duplicate'
# and never applied (its order stays unpaid).
def test_a_repeated_id_key_does_not_lose_a_new_event() -> None:
    payments, fake, order = _paid_remotely()
    deliveries = _deliveries(fake, order.intent_id or "")
    created = _of_type(deliveries, "payment_intent.created")
    assert payments.handle_webhook(created, sign(created)).action == "applied"
    succeeded = _of_type(deliveries, "payment_intent.succeeded")
    recorded = json.loads(created)["id"]
    crafted = b'{"id": "' + recorded.encode() + b'",' + succeeded[1:]
    assert json.loads(crafted)["id"] == json.loads(succeeded)["id"] != recorded
    result = payments.handle_webhook(crafted, sign(crafted))
    assert (result.event_id, result.action) == (json.loads(succeeded)["id"], "applied")
    assert payments.get_order(order.id).payment == "paid"


# FINDING 1b: the trailing-type regex also matches after an escaped quote (a last
# key 'x"type'): a re-delivery of the same bytes reports another type than the
# first delivery did (and one json.loads would refuse: the event has no type).
def test_a_redelivery_reports_the_type_the_first_delivery_did() -> None:
    payments = _payments(MemoryStore())
    payload = (
        b'{"id": "evt_esc", "object": "event", "created": 1, "livemode": false,'
        b' "data": {"object": {"id": "cus_1", "object": "customer"}},'
        b' "type": "customer.updated", "x\\"type": "payment_intent.succeeded"}'
    )
    assert json.loads(payload)["type"] == "customer.updated"
    first = payments.handle_webhook(payload, sign(payload))
    again = payments.handle_webhook(payload, sign(payload))
    assert (first.event_type, first.action) == ("customer.updated", "ignored")
    assert (again.event_type, again.action) == ("customer.updated", "duplicate")


# FINDING 1c: on a hit the body is never parsed, so a signed body the full path
# refuses (not JSON, not an event, the other mode) is answered 'duplicate' (HTTP
# 200) when its first key is a recorded id, and refused (400) otherwise.
@pytest.mark.parametrize(
    "tail",
    [
        b', "object": "event" ]] "type": "customer.updated"}',
        b', "object": "invoice", "type": "customer.updated"}',
        b', "object": "event", "livemode": true, "created": 1,'
        b' "data": {"object": {"id": "cus_1", "object": "customer"}}, "type": "customer.updated"}',
    ],
    ids=["not JSON", "not an event", "the other mode"],
)
def test_a_body_the_full_parse_refuses_is_refused_even_with_a_recorded_id(tail: bytes) -> None:
    store = CountingStore()
    payments = _payments(store)
    known = _ignored_event("evt_known")
    assert payments.handle_webhook(known, sign(known)).action == "ignored"
    unknown = b'{"id": "evt_unknown"' + tail
    with pytest.raises(WebhookPayloadError):
        payments.handle_webhook(unknown, sign(unknown))
    crafted = b'{"id": "evt_known"' + tail
    with pytest.raises(WebhookPayloadError):
        payments.handle_webhook(crafted, sign(crafted))


def _utf16(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    raw.decode("utf-8")  # (valid UTF-8 too: the signature check lets it through)
    return raw


# FINDING 2: a UTF-16 body (ASCII in UTF-16 is valid UTF-8, so the signature check
# passes it; json.loads(bytes) detects UTF-16) has no b"\\u" byte pair, so the
# bounds walk is skipped: a NUL or a lone surrogate reaches the store (recorded, or
# a StoreError: HTTP 500, retried by Stripe) instead of WebhookPayloadError.
@pytest.mark.parametrize("escape", ["\\u0000", "\\ud83d"], ids=["a NUL", "a lone surrogate"])
@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_a_utf16_body_is_held_to_the_same_bounds(
    escape: str, store_kind: str, tmp_path: Path
) -> None:
    store: Any = MemoryStore() if store_kind == "memory" else SQLiteStore(tmp_path / "a.db")
    payments = _payments(store)
    text = (
        '{"id":"evt_u16","object":"event","created":1,"livemode":false,'
        '"data":{"object":{"id":"cus_1","object":"customer"}},'
        f'"type":"customer.updated{escape}"}}'
    )
    utf8 = text.encode()
    with pytest.raises(WebhookPayloadError):  # the same text in UTF-8: refused
        payments.handle_webhook(utf8, sign(utf8))
    raw = _utf16(text)
    with pytest.raises(WebhookPayloadError):
        payments.handle_webhook(raw, sign(raw))


# Shapes Stripe writes, or that a relay could plausibly produce: the peek must
# agree with json.loads, or step aside.
SHAPES: dict[str, Callable[[bytes], bytes]] = {
    "as sent (compact)": lambda p: p,
    "pretty-printed": lambda p: json.dumps(json.loads(p), indent=2).encode(),
    "CRLF line ends": lambda p: (
        json.dumps(json.loads(p), indent=2).encode().replace(b"\n", b"\r\n")
    ),
    "trailing newlines": lambda p: p + b"\n\r\n  \n",
    "leading blanks": lambda p: b" \n\t\r" + p,
    "type first, not last": lambda p: json.dumps(
        {"id": json.loads(p)["id"], "type": json.loads(p)["type"], **json.loads(p)}
    ).encode(),
    "id not first": lambda p: json.dumps(
        {"object": "event", **json.loads(p)}, sort_keys=True
    ).encode(),
    "escaped slashes and unicode escapes": lambda p: (
        json.dumps({**json.loads(p), "request": {"id": None, "note": "a/b \u00e9"}})
        .encode()
        .replace(b"/", b"\\/")
    ),
    "a nested object whose last key is type": lambda p: (
        p[:-1] + b',"zz":{"type":"payment_intent.canceled"}}'
    ),
    "a string holding a type member": lambda p: (
        p[:-1] + b',"zz":"\\"type\\":\\"payment_intent.canceled\\"}"}'
    ),
    "a BOM": lambda p: b"\xef\xbb\xbf" + p,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_shape_applies_once_then_is_a_duplicate(shape: str) -> None:
    """The succeeded event of an order Stripe paid, in each shape: the first
    delivery books the payment, every re-delivery (in any shape) is a duplicate
    with the event's own id and type, and the order has one purchase."""
    payments, fake, order = _paid_remotely()
    sent = _of_type(_deliveries(fake, order.intent_id or ""), "payment_intent.succeeded")
    body = SHAPES[shape](sent)
    parsed = json.loads(body)
    first = payments.handle_webhook(body, sign(body))
    assert (first.event_id, first.event_type, first.action) == (
        parsed["id"],
        "payment_intent.succeeded",
        "applied",
    )
    for other in SHAPES.values():
        again_body = other(sent)
        again = payments.handle_webhook(again_body, sign(again_body))
        assert (again.event_id, again.event_type, again.action) == (
            parsed["id"],
            "payment_intent.succeeded",
            "duplicate",
        )
    paid = payments.get_order(order.id)
    assert (paid.status, paid.payment) == ("complete", "paid")
    assert [(t.kind, t.status) for t in paid.transactions] == [("purchase", "complete")]


def test_a_recorded_id_inside_a_new_events_body_does_not_make_it_a_duplicate() -> None:
    """Ids of recorded events appear in a new event's body (nested, in strings,
    right after the opening brace of a nested object): only the top-level id counts."""
    payments, fake, order = _paid_remotely()
    deliveries = _deliveries(fake, order.intent_id or "")
    created = _of_type(deliveries, "payment_intent.created")
    payments.handle_webhook(created, sign(created))
    recorded = json.loads(created)["id"]
    succeeded = json.loads(_of_type(deliveries, "payment_intent.succeeded"))
    body = json.dumps(
        {
            "id": succeeded["id"],
            "object": "event",
            **{k: v for k, v in succeeded.items() if k not in ("id", "object", "type")},
            "request": {"id": recorded, "note": f'{{"id":"{recorded}"}}'},
            "type": succeeded["type"],
        }
    ).encode()
    result = payments.handle_webhook(body, sign(body))
    assert (result.event_id, result.action) == (succeeded["id"], "applied")
    assert payments.get_order(order.id).payment == "paid"


def test_an_id_differing_only_in_case_is_another_event() -> None:
    payments = _payments(MemoryStore())
    low, high = _ignored_event("evt_case"), _ignored_event("EVT_CASE")
    assert payments.handle_webhook(low, sign(low)).action == "ignored"
    assert payments.handle_webhook(high, sign(high)).action == "ignored"


def test_the_async_twin_answers_a_redelivery_from_the_same_shortcut() -> None:
    async def scenario() -> tuple[str, str, str]:
        fake = FakeStripeGateway(webhook_secret=SECRET)
        payments = AsyncCartPaymentIntent(
            return_url=RETURN_URL,
            gateway=AsyncFakeStripeGateway(fake),
            store=AsyncMemoryStore(MemoryStore()),
        )
        payload = _ignored_event("evt_async")
        first = await payments.handle_webhook(payload, sign(payload))
        again = await payments.handle_webhook(payload, sign(payload))
        with pytest.raises(WebhookSignatureError):
            await payments.handle_webhook(payload, sign(payload, "whsec_forger"))
        return first.action, again.action, again.event_type

    assert asyncio.run(scenario()) == ("ignored", "duplicate", "customer.updated")


# =====================================================================
# 4. Ordering and races: applied exactly once, in any order
# =====================================================================


def _deliver_concurrently(deliver: Callable[[int], str], count: int) -> list[str]:
    barrier = threading.Barrier(count)
    actions: list[str] = [""] * count
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            actions[i] = deliver(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return actions


def test_the_same_event_from_many_threads_on_one_sqlite_file(tmp_path: Path) -> None:
    """Eight deliveries of one event at once, through four store objects on one
    file (as four processes would): applied once, seven duplicates, one purchase."""
    path = tmp_path / "shop.db"
    fake = FakeStripeGateway(webhook_secret=SECRET)
    first = _payments(SQLiteStore(path), fake)
    order = _order_paid_remotely(first, fake)
    payload = _of_type(_deliveries(fake, order.intent_id or ""), "payment_intent.succeeded")
    facades = [first] + [_payments(SQLiteStore(path), fake) for _ in range(3)]
    actions = _deliver_concurrently(
        lambda i: facades[i % 4].handle_webhook(payload, sign(payload)).action, 8
    )
    assert sorted(actions) == ["applied"] + ["duplicate"] * 7
    paid = first.get_order(order.id)
    assert [(t.kind, t.status) for t in paid.transactions] == [("purchase", "complete")]


class GatedStore(SQLiteStore):
    """An SQLiteStore whose first write transaction holds its commit until
    ``release`` is set (the event is recorded, not yet committed)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.holding = threading.Event()
        self.release = threading.Event()

    @contextmanager
    def transaction(self) -> Iterator[Any]:  # type: ignore[override]
        with super().transaction() as tx:
            yield tx
            if not self.holding.is_set():
                self.holding.set()
                assert self.release.wait(10)


class ProbedStore(SQLiteStore):
    """An SQLiteStore that says when one of its reads (the peek) has ended."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read_done = threading.Event()

    @contextmanager
    def read(self) -> Iterator[Any]:  # type: ignore[override]
        with super().read() as tx:
            yield tx
        self.read_done.set()


def test_a_redelivery_racing_the_first_deliverys_commit(tmp_path: Path) -> None:
    """The re-delivery's peek runs while the first delivery's record is written
    but not committed: it finds nothing, takes the transaction (which waits for
    the first commit) and is answered duplicate there; booked once."""
    path = tmp_path / "shop.db"
    fake = FakeStripeGateway(webhook_secret=SECRET)
    payments = _payments(SQLiteStore(path), fake)
    order = _order_paid_remotely(payments, fake)
    payload = _of_type(_deliveries(fake, order.intent_id or ""), "payment_intent.succeeded")
    gated, probed = GatedStore(path), ProbedStore(path)
    racing, other = _payments(gated, fake), _payments(probed, fake)
    results: dict[str, str] = {}

    def deliver(name: str, facade: CartPaymentIntent) -> threading.Thread:
        def run() -> None:
            results[name] = facade.handle_webhook(payload, sign(payload)).action

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    first = deliver("first", racing)
    assert gated.holding.wait(10)
    second = deliver("second", other)
    assert probed.read_done.wait(10)  # the peek found nothing committed
    gated.release.set()
    first.join(30)
    second.join(30)
    assert results == {"first": "applied", "second": "duplicate"}
    paid = payments.get_order(order.id)
    assert [(t.kind, t.status) for t in paid.transactions] == [("purchase", "complete")]


def _deliver_in_process(path: str, payload: bytes, header: str, barrier: Any) -> str:
    payments = _payments(SQLiteStore(path))
    barrier.wait(30)
    return payments.handle_webhook(payload, header).action


def test_the_same_event_from_several_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    fake = FakeStripeGateway(webhook_secret=SECRET)
    payments = _payments(SQLiteStore(path), fake)
    order = _order_paid_remotely(payments, fake)
    payload = _of_type(_deliveries(fake, order.intent_id or ""), "payment_intent.succeeded")
    header = sign(payload)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(3)
        with context.Pool(3) as pool:
            actions = pool.starmap(_deliver_in_process, [(str(path), payload, header, barrier)] * 3)
    assert sorted(actions) == ["applied", "duplicate", "duplicate"]
    paid = payments.get_order(order.id)
    assert [(t.kind, t.status) for t in paid.transactions] == [("purchase", "complete")]


def test_a_decline_delivered_after_the_success_leaves_the_order_paid() -> None:
    fake = FakeStripeGateway(webhook_secret=SECRET)
    payments = _payments(MemoryStore(), fake)
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500)
    payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    for key, method in (("b1", "pm_card_chargeDeclined"), ("b2", "pm_card_visa")):
        with contextlib.suppress(Exception):  # (a decline may be an error for the browser)
            fake.confirm_intent(
                order.intent_id or "",
                payment_method=method,
                return_url=RETURN_URL,
                idempotency_key=key,
            )
    deliveries = _deliveries(fake, order.intent_id or "")
    types = [json.loads(p)["type"] for p, _ in deliveries]
    assert "payment_intent.payment_failed" in types and types[-1] == "payment_intent.succeeded"
    # Newest first, each delivered twice, the re-deliveries interleaved.
    for payload, _ in reversed(deliveries):
        assert payments.handle_webhook(payload, sign(payload)).action == "applied"
    for payload, _ in deliveries:
        assert payments.handle_webhook(payload, sign(payload)).action == "duplicate"
    paid = payments.get_order(order.id)
    assert (paid.status, paid.payment) == ("complete", "paid")
    assert [t.status for t in paid.transactions if t.kind == "purchase"][-1] == "complete"
    assert sum(1 for t in paid.transactions if t.status == "complete") == 1


def test_a_refund_delivered_before_the_payment_is_booked(tmp_path: Path) -> None:
    fake = FakeStripeGateway(webhook_secret=SECRET)
    payments = _payments(SQLiteStore(tmp_path / "shop.db"), fake)
    order = _order_paid_remotely(payments, fake)
    fake.refund_outside(order.intent_id or "", 700)
    deliveries = _deliveries(fake, order.intent_id or "")
    types = [json.loads(p)["type"] for p, _ in deliveries]
    assert types[-2:] == ["refund.created", "charge.refunded"]
    for payload, _ in reversed(deliveries):
        payments.handle_webhook(payload, sign(payload))
    for payload, _ in deliveries:
        assert payments.handle_webhook(payload, sign(payload)).action == "duplicate"
    booked = payments.get_order(order.id)
    assert (booked.payment, booked.refunded) == ("partially_refunded", 700)
    assert sum(1 for t in booked.transactions if t.kind == "purchase") == 1


@pytest.fixture
def postgres_store() -> Iterator[Any]:
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"{DSN_VARIABLE} is not set; start a server with .ci/postgres-up")
    import uuid

    import psycopg

    from cartpay.stores.postgres import PostgresStore

    schema = f"attack4_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(dsn, schema=schema, max_size=8)
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.postgres
def test_the_same_event_from_many_threads_on_postgresql(postgres_store: Any) -> None:
    fake = FakeStripeGateway(webhook_secret=SECRET)
    payments = _payments(postgres_store, fake)
    order = _order_paid_remotely(payments, fake)
    payload = _of_type(_deliveries(fake, order.intent_id or ""), "payment_intent.succeeded")
    actions = _deliver_concurrently(
        lambda i: payments.handle_webhook(payload, sign(payload)).action, 8
    )
    assert sorted(actions) == ["applied"] + ["duplicate"] * 7
    paid = payments.get_order(order.id)
    assert [(t.kind, t.status) for t in paid.transactions] == [("purchase", "complete")]
    again = payments.handle_webhook(payload, sign(payload))
    assert again.action == "duplicate"


def test_a_truncated_redelivery_of_a_recorded_id_is_refused() -> None:
    """A body cut before its closing brace (what an unlucky proxy would pass on, if
    it were signed that way) has no trailing type: the hit parses it and refuses."""
    payments = _payments(CountingStore())
    known = _ignored_event("evt_known")
    assert payments.handle_webhook(known, sign(known)).action == "ignored"
    cut = known.rstrip()[:-1]
    with pytest.raises(WebhookPayloadError, match="not JSON"):
        payments.handle_webhook(cut, sign(cut))


def test_the_fastapi_route_answers_a_redelivery_and_refuses_a_stale_one(tmp_path: Path) -> None:
    """Through cartpay.contrib.fastapi's route and FastAPI's TestClient: 200
    applied, 200 duplicate for the re-delivery (same body, new signature), 400 for
    a stale or forged header with the store unchanged and no secret in the body."""
    pytest.importorskip("fastapi")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from cartpay.contrib.fastapi import webhook_router

    fake = FakeStripeGateway(webhook_secret=SECRET)
    store = SQLiteStore(tmp_path / "shop.db")
    payments = _payments(store, fake)
    order = _order_paid_remotely(payments, fake)
    payload = _of_type(_deliveries(fake, order.intent_id or ""), "payment_intent.succeeded")
    app = FastAPI()
    app.include_router(webhook_router(payments))
    headers = {"content-type": "application/json"}
    with TestClient(app) as client:

        def post(header: str) -> Any:
            return client.post(
                "/stripe/webhook", content=payload, headers={**headers, "stripe-signature": header}
            )

        first, again = post(sign(payload)), post(sign(payload))
        assert (first.status_code, first.json()["action"]) == (200, "applied")
        assert (again.status_code, again.json()["action"]) == (200, "duplicate")
        before = payments.get_order(order.id)
        for header in (sign(payload, timestamp=NOW - 3600), sign(payload, "whsec_forger")):
            refused = post(header)
            assert refused.status_code == 400
            assert refused.json()["error"]["type"] == "WebhookSignatureError"
            assert SECRET not in refused.text
    assert payments.get_order(order.id) == before
    assert [(t.kind, t.status) for t in before.transactions] == [("purchase", "complete")]
