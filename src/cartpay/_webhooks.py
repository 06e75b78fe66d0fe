"""Webhook deliveries: parse → route. Pure; the façade verifies (through the
gateway), dedupes and applies (docs/design.md, "Webhooks").

Parsing uses ``json.loads`` on the verified raw bytes and builds snapshots with
the shared converter: no stripe objects are built on the hot path.

Bounds (``docs/limits.md``): a body of more than :data:`MAX_PAYLOAD_BYTES`, JSON
nested deeper than :data:`MAX_DEPTH`, or text that is not valid Unicode (a lone
surrogate) or holds a NUL is refused with ``WebhookPayloadError`` before
anything is read from it. Stripe's events are a few kilobytes, nested about
seven levels.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from attrs import frozen

from ._converter import dispute_from_payload, intent_from_payload, refund_from_payload
from ._errors import WebhookPayloadError
from ._models import DisputeSnapshot, IntentSnapshot, RefundSnapshot

__all__ = [
    "CHARGE_REFUND_EVENTS",
    "DISPUTE_EVENTS",
    "INTENT_EVENTS",
    "MAX_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "REFUND_EVENTS",
    "ROUTES",
    "WEBHOOK_EVENTS",
    "Event",
    "Route",
    "load_event",
    "parse_event",
    "route_event",
    "signature_matches",
    "untrusted",
]

#: The largest webhook body accepted (1 MiB; a Stripe event is a few kilobytes).
MAX_PAYLOAD_BYTES = 1024 * 1024
#: The deepest nesting of objects and arrays accepted (the event itself is level 1).
MAX_DEPTH = 32

#: PaymentIntent events applied with the same mapping as ``confirm_order``.
INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
        "payment_intent.processing",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.requires_action",
        "payment_intent.created",
        "payment_intent.partially_funded",
    }
)
#: Refund events carrying a Refund object.
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})
#: Charge events that mean "re-read the intent's refunds".
CHARGE_REFUND_EVENTS = frozenset({"charge.refunded", "charge.refund.updated"})
#: Dispute events carrying a Dispute (each applied by its status, so any order of
#: them converges; docs/going-live.md, "Disputes").
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)

#: The router's table: every event type cartpay acts on, with the route it takes
#: (``intent``: a PaymentIntent snapshot; ``refund``: a Refund; ``refunds``: re-list
#: the refunds of the charge's intent; ``dispute``: a Dispute). Any other type is
#: recorded as ignored.
#: This is the one list of handled events: ``python -m cartpay endpoint create``
#: subscribes an endpoint to exactly these, and docs/going-live.md lists them.
ROUTES: Mapping[str, Literal["intent", "refund", "refunds", "dispute"]] = {
    **dict.fromkeys(sorted(INTENT_EVENTS), "intent"),
    **dict.fromkeys(sorted(REFUND_EVENTS), "refund"),
    **dict.fromkeys(sorted(CHARGE_REFUND_EVENTS), "refunds"),
    **dict.fromkeys(sorted(DISPUTE_EVENTS), "dispute"),
}
#: The event types a webhook endpoint for cartpay must send (sorted).
WEBHOOK_EVENTS: tuple[str, ...] = tuple(sorted(ROUTES))


@frozen
class Event:
    """The parts of a Stripe event cartpay uses. ``api_version`` is the version the
    event's object is written in (``None`` when the payload does not say)."""

    id: str
    type: str
    livemode: bool
    created: int
    object: Mapping[str, Any]
    api_version: str | None = None


@frozen
class Route:
    """Where an event goes: ``intent`` (apply a snapshot), ``refunds`` (apply a
    refund, or re-list the intent's refunds when ``refund`` is None),
    ``disputes`` (apply ``dispute``; when the event's copy does not name its
    intent, ``dispute`` is None and the dispute ``dispute_id`` is re-read),
    ``ignore``."""

    kind: Literal["intent", "refunds", "disputes", "ignore"]
    intent_id: str | None = None
    intent: IntentSnapshot | None = None
    refund: RefundSnapshot | None = None
    dispute: DisputeSnapshot | None = None
    dispute_id: str | None = None


def load_event(payload: bytes) -> dict[str, Any]:
    """The JSON object of a verified delivery, within the bounds, or
    ``WebhookPayloadError``: the one ``json.loads`` of a delivery."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WebhookPayloadError(
            f"the payload is {len(payload)} bytes; more than {MAX_PAYLOAD_BYTES} is no Stripe event"
        )
    try:
        # Decoded as UTF-8 first, as Stripe signs and sends it: json.loads on bytes
        # would also take UTF-16 or UTF-32 (an ASCII body in UTF-16 is valid UTF-8
        # too), where a NUL or a lone surrogate need no backslash-u escape.
        data = json.loads(payload.decode("utf-8-sig"))
    except RecursionError:
        raise WebhookPayloadError(f"the payload nests deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookPayloadError(f"the payload is not JSON: {exc}") from None
    # Shortcuts that only skip a walk that could not fail: nesting deeper than
    # MAX_DEPTH needs more than MAX_DEPTH brackets, and json.loads refuses a raw
    # control character in a string, so a NUL or a lone surrogate can only come
    # from a \u escape.
    if payload.count(b"{") + payload.count(b"[") > MAX_DEPTH or b"\\u" in payload:
        _check_bounds(data)
    if not isinstance(data, dict) or data.get("object") != "event":
        raise WebhookPayloadError("the payload is not a Stripe event (object != 'event')")
    return data


def parse_event(payload: bytes | Mapping[str, Any]) -> Event:
    """The event in a verified delivery (its raw bytes, or the object
    :func:`load_event` read from them), or ``WebhookPayloadError``."""
    data = load_event(payload) if isinstance(payload, bytes) else payload
    event_id, event_type = data.get("id"), data.get("type")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, dict) else None
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise WebhookPayloadError("the event has no id or type")
    if not isinstance(obj, dict):
        raise WebhookPayloadError(f"event {event_id} has no data.object")
    created = data.get("created")
    version = data.get("api_version")
    return Event(
        event_id,
        event_type,
        bool(data.get("livemode", False)),
        created if isinstance(created, int) else 0,
        obj,
        version if isinstance(version, str) and version else None,
    )


def _check_bounds(data: object) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and text no store can hold
    (a lone surrogate, which a JSON ``\\ud83d`` escape produces, or a NUL).
    Iterative: the depth of the JSON costs no Python stack."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise WebhookPayloadError(f"the payload nests deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise WebhookPayloadError("the payload holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookPayloadError(
            "the payload holds a lone surrogate (not valid Unicode)"
        ) from None


def _text(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def untrusted(route: Route) -> Route:
    """``route`` without the event's copy of its object: what to do with an event
    written in another API version than cartpay's (its object is read again from
    Stripe: the intent retrieved, the refunds listed, the dispute retrieved)."""
    if route.kind == "ignore":
        return route
    return Route(route.kind, route.intent_id, dispute_id=route.dispute_id)


def route_event(event: Event) -> Route:
    """Decide what an event means for cartpay (``WebhookPayloadError`` if the object
    does not have the shape its type promises), by :data:`ROUTES`."""
    obj = event.object
    route = ROUTES.get(event.type)
    try:
        if route == "intent" and obj.get("object") == "payment_intent":
            snapshot = intent_from_payload(obj)
            return Route("intent", snapshot.id, intent=snapshot)
        if route == "refund" and obj.get("object") == "refund":
            refund = refund_from_payload(obj)
            return Route("refunds", refund.payment_intent_id or None, refund=refund)
        if route == "refunds":
            return Route("refunds", _text(obj, "payment_intent"))
        if route == "dispute" and obj.get("object") == "dispute":
            dispute = dispute_from_payload(obj)
            if dispute.payment_intent_id is None:  # (a thin or older copy): re-read it
                return Route("disputes", dispute_id=dispute.id)
            return Route(
                "disputes", dispute.payment_intent_id, dispute=dispute, dispute_id=dispute.id
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise WebhookPayloadError(
            f"event {event.id}: malformed {event.type} object ({exc})"
        ) from None
    return Route("ignore")


def signature_matches(expected: str, signatures: Sequence[str]) -> bool:
    """Whether one of the header's ``v1`` signatures is ``expected``, tried in order
    as the SDK does: its constant-time compare fails on a non-ASCII signature, so
    no signature after one is tried (the same verdict, header for header)."""
    for signature in signatures:
        if not signature.isascii():
            return False
        if hmac.compare_digest(expected, signature):
            return True
    return False
