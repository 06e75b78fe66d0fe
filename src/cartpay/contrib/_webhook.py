"""What every web integration answers, framework-free: the checks made before a
webhook delivery is read (content type, size, signature header), the answer to
a delivery, and the JSON body of an error (docs/web.md).

The checks run before ``handle_webhook`` and write nothing, so a refused
request leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from .._errors import (
    CardDeclinedError,
    CartpayError,
    IllegalStateError,
    InvalidRequestError,
    NotFoundError,
    ValidationError,
    http_status,
)
from .._models import WebhookResult

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Answer",
    "check_delivery",
    "error_answer",
    "error_body",
    "result_answer",
    "too_large",
]

#: The largest webhook body accepted by default. Stripe's event payloads are
#: a few kilobytes (an intent with its charge: about 4 KiB); 1 MiB leaves room
#: for the largest objects while refusing a body meant to exhaust memory.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

#: The media type Stripe sends (``application/json; charset=utf-8``).
JSON = "application/json"

#: What a retryable error tells the client about when to try again (seconds).
RETRY_AFTER = "1"


@frozen
class Answer:
    """An HTTP answer: status, a JSON body, extra headers."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(factory=dict)


def _refused(status: int, type_: str, message: str) -> Answer:
    return Answer(status, {"error": {"type": type_, "message": message}})


def too_large(max_body_bytes: int) -> Answer:
    """413: the body is larger than ``max_body_bytes``."""
    return _refused(413, "PayloadTooLarge", f"the body exceeds {max_body_bytes} bytes")


def check_delivery(
    *,
    content_type: str | None,
    content_length: str | None,
    signature: str | None,
    max_body_bytes: int,
) -> Answer | None:
    """The answer to a webhook request refused before its body is read, or ``None``.

    415 when the content type is not ``application/json``; 413 when the declared
    ``Content-Length`` exceeds ``max_body_bytes`` (a body without one is counted
    as it is read: :func:`too_large`); 400 when the length is not a number or the
    ``Stripe-Signature`` header is missing or empty.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != JSON:
        return _refused(
            415, "UnsupportedMediaType", f"a Stripe event is {JSON}, not {media or 'no type'}"
        )
    if content_length is not None and content_length.strip():
        if not content_length.strip().isdigit():
            return _refused(400, "BadRequest", "Content-Length is not a number")
        if int(content_length) > max_body_bytes:
            return too_large(max_body_bytes)
    if not signature:
        return _refused(400, "WebhookSignatureError", "the Stripe-Signature header is missing")
    return None


def result_answer(result: WebhookResult) -> Answer:
    """200 with what was done: ``{"event_id", "event_type", "action"}``."""
    return Answer(
        200,
        {"event_id": result.event_id, "event_type": result.event_type, "action": result.action},
    )


#: Structured fields an error body carries, when the error has them and its
#: status is a client error (they describe the client's request, never a secret).
_FIELDS: Mapping[type[CartpayError], tuple[str, ...]] = {
    ValidationError: ("field", "rule"),
    NotFoundError: ("kind", "id"),
    IllegalStateError: ("entity", "operation", "status"),
    CardDeclinedError: ("code", "decline_code"),
    InvalidRequestError: ("code", "param"),
}


def error_body(exc: CartpayError) -> dict[str, Any]:
    """``{"error": {"type", "message", "retryable", …fields}}``.

    A client error (4xx) carries the message and the structured fields; a
    server error (5xx) only its type: its message may name the database or
    Stripe's request, which the client has no use for (the host logs it).
    """
    status = http_status(exc)
    error: dict[str, Any] = {"type": type(exc).__name__, "retryable": exc.retryable}
    if status < 500:
        error["message"] = str(exc)
        for cls, names in _FIELDS.items():
            if isinstance(exc, cls):
                error.update({name: getattr(exc, name, None) for name in names})
    else:
        error["message"] = "try again later" if exc.retryable else "server error"
    return {"error": error}


def error_answer(exc: CartpayError) -> Answer:
    """:func:`cartpay.http_status` with :func:`error_body`; a retryable error
    also gets ``Retry-After``."""
    headers = {"Retry-After": RETRY_AFTER} if exc.retryable else {}
    return Answer(http_status(exc), error_body(exc), headers)
