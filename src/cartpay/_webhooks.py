"""Webhook deliveries: parse → route. Pure; the façade verifies (through the
gateway), dedupes and applies (docs/design.md, "Webhooks").

Parsing uses ``json.loads`` on the verified raw bytes and builds snapshots with
the shared converter: no stripe objects are built on the hot path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from attrs import frozen

from ._converter import intent_from_payload, refund_from_payload
from ._errors import WebhookPayloadError
from ._models import IntentSnapshot, RefundSnapshot

__all__ = ["INTENT_EVENTS", "REFUND_EVENTS", "Event", "Route", "parse_event", "route_event"]

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


@frozen
class Event:
    """The parts of a Stripe event cartpay uses."""

    id: str
    type: str
    livemode: bool
    created: int
    object: Mapping[str, Any]


@frozen
class Route:
    """Where an event goes: ``intent`` (apply a snapshot), ``refunds`` (apply a
    refund, or re-list the intent's refunds when ``refund`` is None), ``ignore``."""

    kind: Literal["intent", "refunds", "ignore"]
    intent_id: str | None = None
    intent: IntentSnapshot | None = None
    refund: RefundSnapshot | None = None


def parse_event(payload: bytes) -> Event:
    """The event in a verified delivery, or ``WebhookPayloadError``."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookPayloadError(f"the payload is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("object") != "event":
        raise WebhookPayloadError("the payload is not a Stripe event (object != 'event')")
    event_id, event_type = data.get("id"), data.get("type")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, dict) else None
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise WebhookPayloadError("the event has no id or type")
    if not isinstance(obj, dict):
        raise WebhookPayloadError(f"event {event_id} has no data.object")
    created = data.get("created")
    return Event(
        event_id,
        event_type,
        bool(data.get("livemode", False)),
        created if isinstance(created, int) else 0,
        obj,
    )


def _text(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def route_event(event: Event) -> Route:
    """Decide what an event means for cartpay (``WebhookPayloadError`` if the object
    does not have the shape its type promises)."""
    obj = event.object
    try:
        if event.type in INTENT_EVENTS and obj.get("object") == "payment_intent":
            snapshot = intent_from_payload(obj)
            return Route("intent", snapshot.id, intent=snapshot)
        if event.type in REFUND_EVENTS and obj.get("object") == "refund":
            refund = refund_from_payload(obj)
            return Route("refunds", refund.payment_intent_id or None, refund=refund)
        if event.type in CHARGE_REFUND_EVENTS:
            return Route("refunds", _text(obj, "payment_intent"))
    except (KeyError, TypeError, ValueError) as exc:
        raise WebhookPayloadError(
            f"event {event.id}: malformed {event.type} object ({exc})"
        ) from None
    return Route("ignore")
