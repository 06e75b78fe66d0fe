"""(De)serialisation of store rows and of Stripe payloads.

Store rows: one cattrs converter turns the stored models (``Cart``, ``Order``,
``IntentRecord``) into JSON and back (:func:`dumps`, :func:`loads`); the SQLite
and PostgreSQL stores use it.

Stripe payloads go one way only, dict → snapshot, through three plain functions
(not the cattrs converter): :func:`intent_from_payload`,
:func:`refund_from_payload` and :func:`dispute_from_payload` read a
PaymentIntent, a Refund or a Dispute given as a plain dict, either the JSON
object the SDK parsed from an answer (``StripeGateway`` requests through
``raw_request``) or the ``data.object`` of a webhook event
(``_webhooks``). Nothing here turns a snapshot back into a payload:
``FakeStripeGateway`` builds its snapshots directly and writes its events'
objects itself, which come back through :func:`intent_from_payload` when they
are delivered. Expandable fields may arrive as ids or as objects, and servers
differ in what they include, so missing fields take the snapshot's defaults.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from ._models import (
    Cart,
    DisputeSnapshot,
    IntentRecord,
    IntentSnapshot,
    IntentStatus,
    NextAction,
    Order,
    PaymentFailure,
    RefundSnapshot,
)

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "converter",
    "dispute_from_payload",
    "dumps",
    "intent_from_payload",
    "loads",
    "refund_from_payload",
]

T = TypeVar("T")


@functools.cache
def converter() -> cattrs.Converter:
    """The converter for store rows, built on first use (``import cartpay`` stays
    free of cattrs until a store needs it)."""
    import cattrs

    built = cattrs.Converter(forbid_extra_keys=False, omit_if_default=True)
    built.register_unstructure_hook(datetime, lambda dt: dt.isoformat())
    built.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    return built


#: Bodies decoded (or encoded) lately, by (class, text): a store re-reads the same
#: row several times per façade call, and a body the store just wrote is read
#: back by the next call. The models are frozen, so sharing one is safe (as the
#: memory store does); a changed record has a new body, hence a new key.
_RECENT: OrderedDict[tuple[type[Any], str | bytes], Any] = OrderedDict()
_RECENT_SIZE = 64  # a few calls' records; more only adds GC work


def _remember(cls: type[Any], text: str | bytes, record: Any) -> None:
    if len(_RECENT) >= _RECENT_SIZE:
        with suppress(KeyError):  # (emptied by another thread meanwhile)
            _RECENT.popitem(last=False)  # the oldest entry
    _RECENT[cls, text] = record


def dumps(record: Cart | Order | IntentRecord) -> str:
    """A model as compact JSON (a store row's body)."""
    text = json.dumps(converter().unstructure(record), separators=(",", ":"), sort_keys=True)
    _remember(type(record), text, record)
    return text


def loads(text: str | bytes, cls: type[T]) -> T:
    """A model from :func:`dumps` output."""
    found: T | None = _RECENT.get((cls, text))
    if found is None:
        found = converter().structure(json.loads(text), cls)
        _remember(cls, text, found)
    return found


def _id_of(value: Any) -> str | None:
    """An expandable field: an id, an object with an ``id``, or nothing."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def _int(value: Any, default: int = 0) -> int:
    # Some servers send integers as strings after an update (localstripe).
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


_INTENT_STATUSES: frozenset[str] = frozenset(get_args(IntentStatus))


def _capture_before(charge: Any) -> int | None:
    """``payment_method_details.card.capture_before`` of an expanded charge (an id,
    or a charge that is not a card's, says nothing)."""
    if not isinstance(charge, Mapping):
        return None
    details = charge.get("payment_method_details")
    card = details.get("card") if isinstance(details, Mapping) else None
    moment = card.get("capture_before") if isinstance(card, Mapping) else None
    return moment if isinstance(moment, int) and not isinstance(moment, bool) else None


def intent_from_payload(data: Mapping[str, Any]) -> IntentSnapshot:
    """An ``IntentSnapshot`` from a PaymentIntent as a plain dict (``KeyError``,
    ``TypeError`` or ``ValueError`` when it is not one, e.g. an unknown status)."""
    error = data.get("last_payment_error")
    payment_error = None
    if isinstance(error, Mapping):
        payment_error = PaymentFailure(
            code=error.get("code"),
            decline_code=error.get("decline_code"),
            message=error.get("message"),
            charge=_id_of(error.get("charge")),
        )
    metadata = data.get("metadata") or {}
    status = data["status"]
    if status not in _INTENT_STATUSES:  # (an unhashable value raises TypeError)
        raise ValueError(f"unknown PaymentIntent status {status!r}")
    return IntentSnapshot(
        id=str(data["id"]),
        status=status,
        amount=_int(data.get("amount")),
        currency=str(data.get("currency", "")).lower(),
        client_secret=data.get("client_secret"),
        amount_capturable=_int(data.get("amount_capturable")),
        amount_received=_int(data.get("amount_received")),
        capture_method=data.get("capture_method") or "automatic",
        created=_int(data.get("created")),
        livemode=bool(data.get("livemode", False)),
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
        last_payment_error=payment_error,
        cancellation_reason=data.get("cancellation_reason"),
        latest_charge=_id_of(data.get("latest_charge")),
        payment_method=_id_of(data.get("payment_method")),
        next_action=next_action_from_payload(data.get("next_action")),
        capture_before=_capture_before(data.get("latest_charge")),
        transfer_destination=_transfer_destination(data.get("transfer_data")),
        amount_refunded=_amount_refunded(data.get("latest_charge")),
    )


def _amount_refunded(charge: Any) -> int | None:
    """``amount_refunded`` of an expanded charge (an id says nothing)."""
    if not isinstance(charge, Mapping):
        return None
    value = charge.get("amount_refunded")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _transfer_destination(data: object) -> str | None:
    """``transfer_data.destination`` (an id, or an expanded account), else ``None``."""
    if not isinstance(data, Mapping):
        return None
    return _id_of(data.get("destination"))


def next_action_from_payload(data: object) -> NextAction | None:
    """A PaymentIntent's ``next_action``: its type, and the URL to send the browser
    to when it is a redirect (``redirect_to_url.url``, or the ``url`` of a
    ``…redirect…`` action such as ``alipay_handle_redirect``)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        return None
    kind: str = data["type"]
    body = data.get(kind)
    url = body.get("url") if isinstance(body, Mapping) and "redirect" in kind else None
    return NextAction(kind, url if isinstance(url, str) and url else None)


def refund_from_payload(data: Mapping[str, Any], *, intent_id: str | None = None) -> RefundSnapshot:
    """A ``RefundSnapshot`` from a Refund as a plain dict."""
    return RefundSnapshot(
        id=str(data["id"]),
        payment_intent_id=_id_of(data.get("payment_intent")) or intent_id or "",
        amount=_int(data.get("amount")),
        currency=str(data.get("currency", "")).lower(),
        status=data.get("status") or "pending",
        reason=data.get("reason"),
        failure_reason=data.get("failure_reason"),
    )


def dispute_from_payload(data: Mapping[str, Any]) -> DisputeSnapshot:
    """A ``DisputeSnapshot`` from a Dispute as a plain dict (``KeyError``,
    ``TypeError`` or ``ValueError`` when it is not one)."""
    status = data["status"]
    if not isinstance(status, str) or not status:
        raise ValueError(f"a dispute status must be a string, not {status!r}")
    reason = data.get("reason")
    return DisputeSnapshot(
        id=str(data["id"]),
        payment_intent_id=_id_of(data.get("payment_intent")),
        amount=_int(data.get("amount")),
        currency=str(data.get("currency", "")).lower(),
        status=status,
        reason=reason if isinstance(reason, str) else None,
        charge=_id_of(data.get("charge")),
    )
