"""The HTTP status a web host answers for each cartpay error, as one table.

The web integrations (``cartpay.contrib.fastapi``, ``cartpay.contrib.django``)
and the Flask example answer with :func:`http_status`; docs/web.md prints the
same table (a test keeps the two equal). Core module: no I/O, imports only
``_errors``.

The status of an error is the one of the nearest class in its MRO that the
table names. A retryable error whose status is a server error (5xx) answers
503, so that clients (and Stripe, for webhooks) try again later; a retryable
4xx (``ConcurrencyError``: 409) keeps its status.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._errors import (
    AmountMismatchError,
    AuthenticationError,
    CardDeclinedError,
    CartpayError,
    ConcurrencyError,
    GatewayError,
    GatewayUnavailableError,
    IdempotencyError,
    IllegalStateError,
    IntentAlreadyUsedError,
    InvalidRequestError,
    NotFoundError,
    OperationPendingError,
    RateLimitedError,
    SchemaVersionError,
    StoreError,
    ValidationError,
    WebhookError,
)

__all__ = ["HTTP_STATUSES", "http_status", "render_http_table"]

#: Error class → (HTTP status, why), in the order docs/web.md lists them.
HTTP_STATUSES: Mapping[type[CartpayError], tuple[int, str]] = MappingProxyType(
    {
        ValidationError: (400, "bad input; `field` and `rule` say which and why"),
        WebhookError: (400, "a delivery that is not Stripe's; nothing was written"),
        NotFoundError: (404, "no cart or order with that id"),
        IllegalStateError: (409, "the cart's, order's or intent's status forbids the operation"),
        ConcurrencyError: (409, "another request holds the record: repeat the call"),
        OperationPendingError: (409, "an earlier call with other arguments has an unknown outcome"),
        IntentAlreadyUsedError: (409, "the intent pays another order"),
        AmountMismatchError: (409, "the intent's amount differs from the order's (order flagged)"),
        CardDeclinedError: (402, "the card was declined; the order stays payable"),
        InvalidRequestError: (400, "Stripe refused a parameter, usually an id the client sent"),
        IdempotencyError: (500, "a key reused with other parameters: a bug, not the client's"),
        AuthenticationError: (500, "the server's Stripe key is wrong: not the client's fault"),
        RateLimitedError: (503, "Stripe asked to slow down: repeat later"),
        GatewayUnavailableError: (503, "Stripe's answer was lost: repeat the same call"),
        GatewayError: (502, "Stripe refused or failed the request"),
        StoreError: (500, "the database failed (503 when the same call may succeed later)"),
        SchemaVersionError: (500, "the database was written by a newer cartpay"),
        CartpayError: (500, "any other cartpay error (503 when retryable)"),
    }
)

#: What a retryable server error answers instead.
RETRY_STATUS = 503


def http_status(exc: CartpayError) -> int:
    """The HTTP status for ``exc``: the table's entry for the nearest class in its
    MRO, and 503 instead of a 5xx when ``exc.retryable`` (docs/web.md, "Errors").

    Raises ``TypeError`` for anything that is not a :class:`CartpayError`.
    """
    if not isinstance(exc, CartpayError):
        raise TypeError(f"http_status takes a CartpayError, not {type(exc).__name__}")
    for cls in type(exc).__mro__:
        entry = HTTP_STATUSES.get(cls)
        if entry is not None:
            status: int = entry[0]
            return RETRY_STATUS if exc.retryable and status >= 500 else status
    raise AssertionError("unreachable: CartpayError is in the table")  # pragma: no cover


def render_http_table() -> str:
    """The table as Markdown, as docs/web.md shows it."""
    lines = ["| error | status | meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{cls.__name__}` | {status} | {why} |" for cls, (status, why) in HTTP_STATUSES.items()
    ]
    return "\n".join(lines) + "\n"
