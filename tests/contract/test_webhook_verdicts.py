"""FakeStripeGateway gives the stripe SDK's signature verdicts on every header
variant (the two run side by side on the same table), and both gateways refuse
a correctly signed body that is too deep or too big, with nothing written."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from cartpay import CartPaymentIntent, PaymentGateway, WebhookError, WebhookPayloadError
from cartpay._webhooks import MAX_DEPTH, MAX_PAYLOAD_BYTES
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from cartpay.testing import FakeStripeGateway

SECRET = "whsec_verdicts"
PAYLOAD = b'{"id":"evt_1","object":"event"}'
NOW = int(time.time())


def _mac(timestamp: int | str, payload: bytes = PAYLOAD) -> str:
    return hmac.new(SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


GOOD = _mac(NOW)
BAD = "0" * 64
HEADERS: list[tuple[str, str]] = [
    ("plain", f"t={NOW},v1={GOOD}"),
    ("a space after a comma", f"t={NOW}, v1={GOOD}"),
    ("a leading space", f" t={NOW},v1={GOOD}"),
    ("a trailing newline", f"t={NOW},v1={GOOD}\n"),
    ("a newline after the timestamp", f"t={NOW}\n,v1={GOOD}"),
    ("a tab before v1", f"t={NOW},\tv1={GOOD}"),
    ("a tab inside the timestamp", f"t=\t{NOW},v1={GOOD}"),
    ("two t, the first valid", f"t={NOW},t=1,v1={GOOD}"),
    ("two t, the second valid", f"t=1,t={NOW},v1={GOOD}"),
    ("a second, wrong v1 first", f"t={NOW},v1={BAD},v1={GOOD}"),
    ("v0 only", f"t={NOW},v0={GOOD}"),
    ("no timestamp", f"v1={GOOD}"),
    ("no signature", f"t={NOW}"),
    ("a bare t", f"t,t={NOW},v1={GOOD}"),
    ("a bare v1", f"t={NOW},v1,v1={GOOD}"),
    ("an empty item", f"t={NOW},,v1={GOOD}"),
    ("a trailing comma", f"t={NOW},v1={GOOD},"),
    ("uppercase signature", f"t={NOW},v1={GOOD.upper()}"),
    ("v1 with an extra =", f"t={NOW},v1={GOOD}=x"),
    ("t with an extra =", f"t={NOW}=1,v1={GOOD}"),
    ("a timestamp with underscores", f"t={NOW:_},v1={_mac(NOW)}"),
    ("a timestamp with a plus sign", f"t=+{NOW},v1={GOOD}"),
    ("a timestamp with leading zeros", f"t=0{NOW},v1={GOOD}"),
    ("a negative timestamp", f"t=-5,v1={_mac(-5)}"),
    ("a stale timestamp", f"t={NOW - 3600},v1={_mac(NOW - 3600)}"),
    ("a timestamp in the future", f"t={NOW + 3600},v1={_mac(NOW + 3600)}"),
    ("a float timestamp", f"t={NOW}.0,v1={GOOD}"),
    ("Arabic-Indic digits", "t=\u0661\u0662,v1=" + _mac(12)),
    ("a non-ASCII signature", f"t={NOW},v1=\u00e9{GOOD[1:]}"),
    ("a lone surrogate", f"t={NOW},v1=\ud83d"),
    ("spaces around =", f"t = {NOW},v1 = {GOOD}"),
    ("semicolons", f"t={NOW};v1={GOOD}"),
    ("empty", ""),
    ("a huge timestamp", "t=" + "9" * 5000 + f",v1={GOOD}"),
]


def _sdk_accepts(header: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(PAYLOAD.decode(), header, SECRET, 300)
    except Exception:  # (the SDK raises TypeError for a non-ASCII signature)
        return False
    return True


def _accepts(gateway: PaymentGateway, header: str) -> bool:
    try:
        gateway.verify_webhook(PAYLOAD, header, tolerance=300)
    except WebhookError:
        return False
    return True


def _stripe_gateway() -> StripeGateway:
    return StripeGateway(stripe.StripeClient("sk_test_verdicts"), webhook_secret=SECRET)


@pytest.mark.parametrize("header", [h for _, h in HEADERS], ids=[n for n, _ in HEADERS])
def test_the_fake_gives_the_sdks_verdict(header: str) -> None:
    sdk = _sdk_accepts(header)
    assert _accepts(_stripe_gateway(), header) is sdk
    assert _accepts(FakeStripeGateway(webhook_secret=SECRET), header) is sdk


def test_the_table_has_both_verdicts() -> None:
    verdicts = {_sdk_accepts(h) for _, h in HEADERS}
    assert verdicts == {True, False}


def _signed(gateway: PaymentGateway, payload: bytes) -> str:
    ts = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def _event(obj: object) -> bytes:
    body = {
        "id": "evt_deep",
        "object": "event",
        "type": "customer.updated",  # (an event cartpay ignores, once read)
        "livemode": False,
        "created": 1,
        "data": {"object": {"id": "cus_1", "object": "customer", "metadata": obj}},
    }
    return json.dumps(body).encode()


BODIES = [
    pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="100000 levels of objects"),
    pytest.param(b"[" * 5_000 + b"]" * 5_000, id="5000 levels of arrays"),
    pytest.param(_event(json.loads("[" * (MAX_DEPTH) + "]" * MAX_DEPTH)), id="just too deep"),
    pytest.param(_event("x" * (MAX_PAYLOAD_BYTES + 1)), id="too big"),
    pytest.param(_event("\ud83d"), id="a lone surrogate"),
]


@pytest.mark.parametrize("gateway_kind", ["fake", "stripe"])
@pytest.mark.parametrize("payload", BODIES)
def test_a_signed_body_too_deep_or_too_big_is_refused(gateway_kind: str, payload: bytes) -> None:
    gateway: PaymentGateway = (
        FakeStripeGateway(webhook_secret=SECRET) if gateway_kind == "fake" else _stripe_gateway()
    )
    store = MemoryStore()
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=gateway, store=store
    )
    with pytest.raises(WebhookPayloadError):
        payments.handle_webhook(payload, _signed(gateway, payload))
    assert store._events == {}


def _nested(levels: int) -> bytes:
    """An ignored event nested ``levels`` deep (the event is level 1, its object 3)."""
    body = {
        "id": f"evt_{levels}",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"nested": json.loads("[" * (levels - 3) + "]" * (levels - 3))}},
    }
    return json.dumps(body).encode()


def test_the_depth_limit_is_exact() -> None:
    gateway = FakeStripeGateway(webhook_secret=SECRET)
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=gateway, store=MemoryStore()
    )
    at_limit = _nested(MAX_DEPTH)
    assert payments.handle_webhook(at_limit, _signed(gateway, at_limit)).action == "ignored"
    beyond = _nested(MAX_DEPTH + 1)
    with pytest.raises(WebhookPayloadError, match=f"deeper than {MAX_DEPTH}"):
        payments.handle_webhook(beyond, _signed(gateway, beyond))
