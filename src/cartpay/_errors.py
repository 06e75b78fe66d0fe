"""The cartpay error tree.

Every error cartpay raises is a :class:`CartpayError`. Each carries structured
fields a caller can branch on, a message a developer can act on, and a
``retryable`` flag: ``True`` means the same call may be repeated as it is (the
idempotency keys make the repeat safe).

::

    CartpayError
    ├── ValidationError             bad input: .field, .rule (nothing was sent or written)
    ├── NotFoundError               unknown cart / order: .kind, .id
    ├── IllegalStateError           the state machine forbids it: .entity, .operation, .status
    ├── ConcurrencyError            lost a race or an operation is in progress (retryable)
    ├── OperationPendingError       an earlier call with other arguments has an unknown
    │                               outcome: .operation, .amount, .reason, .payment_method
    ├── IntentAlreadyUsedError      the intent already pays another order (docs/design.md, rule 6)
    ├── AmountMismatchError         the intent's amount/currency differ from the order's
    ├── PricingError                the host's pricing port failed or returned bad
    │                               adjustments: .cart_id (nothing was sent or written)
    ├── SchemaVersionError          the database was written by a newer cartpay
    ├── StoreError                  the store failed the transaction: .reason (nothing was written)
    ├── GatewayError                the payment gateway refused or failed: .code, .http_status
    │   ├── CardDeclinedError       .code, .decline_code
    │   │   └── AuthenticationRequiredError  an off-session charge needs the customer
    │   ├── IdempotencyError        same key, different parameters
    │   ├── RateLimitedError        retryable after backoff
    │   ├── GatewayUnavailableError connection failure, timeout, 5xx, 409 (retryable, same key)
    │   ├── AuthenticationError     bad API key or missing permission
    │   └── InvalidRequestError     the gateway rejected the parameters: .param
    └── WebhookError                the host answers HTTP 400; nothing was written
        ├── WebhookSignatureError   forged, stale, altered or unsigned delivery
        └── WebhookPayloadError     not JSON, not an event, or the wrong livemode
"""

from __future__ import annotations

__all__ = [
    "AmountMismatchError",
    "AuthenticationError",
    "AuthenticationRequiredError",
    "CardDeclinedError",
    "CartpayError",
    "ConcurrencyError",
    "GatewayError",
    "GatewayUnavailableError",
    "IdempotencyError",
    "IllegalStateError",
    "IntentAlreadyUsedError",
    "InvalidRequestError",
    "NotFoundError",
    "OperationPendingError",
    "PricingError",
    "RateLimitedError",
    "SchemaVersionError",
    "StoreError",
    "ValidationError",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookSignatureError",
]


def _rebuild(cls: type[CartpayError], message: str, state: dict[str, object]) -> CartpayError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class CartpayError(Exception):
    """Root of every error raised by cartpay. Errors pickle (for worker pools)."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


class ValidationError(CartpayError, ValueError):
    """Bad input, refused before any gateway call; nothing was written.

    ``field`` names the input (``"amount"``, ``"metadata"``, ``"items[2].quantity"``);
    ``rule`` names the rule it broke (``"positive"``, ``"max_keys"``, ...).
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message} [{rule}]")
        self.field = field
        self.rule = rule


class NotFoundError(CartpayError, LookupError):
    """No cart or order with that id."""

    def __init__(self, kind: str, id: str) -> None:
        super().__init__(f"{kind} {id!r} not found")
        self.kind = kind
        self.id = id
        self.field = f"{kind}_id"
        self.rule = "exists"


class IllegalStateError(CartpayError):
    """The operation is not allowed in the current status; nothing changed.

    ``entity`` is ``"intent"``, ``"order"`` or ``"cart"``; ``status`` is the status
    that forbids ``operation`` (for intents, the remote status when Stripe said so).
    """

    def __init__(
        self,
        entity: str,
        operation: str,
        status: str,
        *,
        entity_id: str | None = None,
        detail: str = "",
    ) -> None:
        what = f"{entity} {entity_id}" if entity_id else entity
        message = f"cannot {operation} {what} in status {status!r}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.entity = entity
        self.operation = operation
        self.status = status
        self.entity_id = entity_id


class ConcurrencyError(CartpayError):
    """Another caller changed the record or holds its pending operation.

    Retryable: re-read and repeat the call.
    """

    retryable = True


class OperationPendingError(CartpayError):
    """An earlier call of the same operation on this record, with other arguments,
    has an unknown outcome (its answer was lost). Nothing was sent.

    Repeat the earlier call with its own arguments (``amount``, ``reason``,
    ``payment_method`` here): it is replayed with its idempotency key, so Stripe
    acts at most once; then make the new call. ``confirm_order`` also settles it.
    """

    def __init__(
        self,
        entity_id: str,
        operation: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        payment_method: str | None = None,
    ) -> None:
        sent = ", ".join(
            f"{name}={value!r}"
            for name, value in (
                ("amount", amount),
                ("reason", reason),
                ("payment_method", payment_method),
            )
            if value is not None
        )
        super().__init__(
            f"{entity_id} has a {operation} ({sent or 'default arguments'}) whose outcome is "
            f"unknown; repeat it with those arguments before a {operation} with others"
        )
        self.entity_id = entity_id
        self.operation = operation
        self.amount = amount
        self.reason = reason
        self.payment_method = payment_method


class IntentAlreadyUsedError(CartpayError):
    """The intent already pays another order; this order gets no transaction."""

    def __init__(self, intent_id: str, order_id: str, paid_order_id: str) -> None:
        super().__init__(
            f"payment intent {intent_id} already pays order {paid_order_id}; "
            f"order {order_id} must be paid with a new intent"
        )
        self.intent_id = intent_id
        self.order_id = order_id
        self.paid_order_id = paid_order_id


class AmountMismatchError(CartpayError):
    """The intent's amount or currency differs from the order's; the order is flagged."""

    def __init__(
        self,
        order_id: str,
        *,
        expected_amount: int,
        expected_currency: str,
        actual_amount: int,
        actual_currency: str,
    ) -> None:
        super().__init__(
            f"order {order_id} totals {expected_amount} {expected_currency} but its intent "
            f"is for {actual_amount} {actual_currency}; the order was flagged, not paid"
        )
        self.order_id = order_id
        self.expected_amount = expected_amount
        self.expected_currency = expected_currency
        self.actual_amount = actual_amount
        self.actual_currency = actual_currency


class PricingError(CartpayError):
    """The pricing port (``CartPaymentIntent(pricing=...)``) raised, or returned
    something that is not a valid list of adjustments for the cart. Nothing was
    sent to the gateway and nothing was written; the port's own exception is
    the ``__cause__``. ``retryable`` is the cause's when it is a cartpay error
    (else ``False``: whether the host's engine may be asked again is the host's
    to know)."""

    def __init__(self, cart_id: str, detail: str, *, retryable: bool | None = None) -> None:
        super().__init__(f"pricing cart {cart_id} failed: {detail}", retryable=retryable)
        self.cart_id = cart_id
        self.detail = detail


class SchemaVersionError(CartpayError):
    """The database was written by a newer cartpay (its schema version is above this code's)."""


class StoreError(CartpayError):
    """The store could not run the transaction; it was rolled back, nothing was written.

    ``reason`` says why: ``"full"`` (no space left), ``"read_only"`` (the
    database or its folder cannot be written), ``"io"`` (an I/O error),
    ``"unavailable"`` (the database cannot be reached), ``"not_a_database"``,
    ``"cannot_open"``, ``"corrupt"``, ``"unstorable"`` (a value the database
    refuses) or ``"failed"``. ``retryable`` is ``True`` when the same call can
    succeed once the condition passes without changing the call (space freed,
    the database reachable again).
    """

    def __init__(self, message: str, *, reason: str, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)
        self.reason = reason


class GatewayError(CartpayError):
    """The payment gateway refused or failed the request.

    ``code`` is the gateway's error code when it sent one, ``http_status`` the
    HTTP status, ``request_id`` the gateway's request id (for support tickets).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.code = code
        self.http_status = http_status
        self.request_id = request_id


class CardDeclinedError(GatewayError):
    """The card was declined; the intent is payable again with another method."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        decline_code: str | None = None,
        intent_id: str | None = None,
        http_status: int | None = 402,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, request_id=request_id)
        self.decline_code = decline_code
        self.intent_id = intent_id


class AuthenticationRequiredError(CardDeclinedError):
    """An off-session charge (``confirm_payment(..., off_session=True)``) that the
    bank wants the customer to authenticate (Stripe's ``authentication_required``
    decline). The failed attempt is recorded and the order stays payable: bring
    the customer back on-session and let the browser confirm with the intent's
    client secret (``intent_for_order``), e.g. with the same saved card."""


class IdempotencyError(GatewayError):
    """The idempotency key was reused with different parameters. Not retryable."""


class RateLimitedError(GatewayError):
    """Too many requests; retry after a backoff."""

    retryable = True


class GatewayUnavailableError(GatewayError):
    """The outcome is unknown (connection failure, timeout, 5xx, 409).

    Retry the same call: it reuses the same idempotency key, so the gateway
    replays the first outcome instead of acting twice.
    """

    retryable = True


class AuthenticationError(GatewayError):
    """The API key is invalid or lacks the permission. Not retryable."""


class InvalidRequestError(GatewayError):
    """The gateway rejected the parameters; ``param`` names the one it blamed."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        http_status: int | None = 400,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, request_id=request_id)
        self.param = param


class WebhookError(CartpayError):
    """A webhook delivery was rejected; answer HTTP 400. Nothing was written."""


class WebhookSignatureError(WebhookError):
    """The signature header is missing, malformed, stale, or does not match."""


class WebhookPayloadError(WebhookError):
    """The payload is not JSON, not an event, or from the other mode (live/test)."""


#: The HTTP status a web endpoint answers for each error, the most specific
#: class first found along the error's class tree (:func:`http_status`). One
#: table for every host: the docs' error table is rendered from it
#: (``python -m cartpay tables``) and the web integrations answer from it.
HTTP_STATUSES: dict[type[CartpayError], tuple[int, str]] = {
    CartpayError: (500, "an error cartpay did not expect: log it"),
    ValidationError: (422, "the request's data breaks a rule: the client fixes its input"),
    NotFoundError: (404, "no such cart or order"),
    IllegalStateError: (409, "the cart's or order's state forbids the operation now"),
    ConcurrencyError: (409, "another request holds the record: the same call may be repeated"),
    OperationPendingError: (409, "an earlier call with other arguments is still unsettled"),
    IntentAlreadyUsedError: (409, "the payment already pays another order"),
    AmountMismatchError: (409, "the payment's amount differs from the order's: nothing was booked"),
    PricingError: (502, "the pricing port failed: nothing was sent, the cart is unchanged"),
    SchemaVersionError: (500, "the database was written by a newer cartpay: deploy it"),
    StoreError: (500, "the database failed: nothing was written (503 when retryable)"),
    GatewayError: (502, "Stripe refused or failed the call"),
    CardDeclinedError: (402, "the card was declined: the customer pays another way"),
    AuthenticationRequiredError: (
        402,
        "the bank wants the customer to authenticate: bring them back to pay",
    ),
    IdempotencyError: (500, "a key was reused with other parameters: a bug to report"),
    RateLimitedError: (503, "Stripe's rate limit: the same call may be repeated later"),
    GatewayUnavailableError: (503, "Stripe could not be reached: the same call may be repeated"),
    AuthenticationError: (500, "the API key is wrong or lacks a permission: fix the setup"),
    InvalidRequestError: (400, "Stripe rejected a parameter, e.g. the payment method sent"),
    WebhookError: (400, "a webhook delivery was rejected: Stripe retries it"),
    WebhookSignatureError: (400, "forged, stale, altered or unsigned delivery"),
    WebhookPayloadError: (400, "not JSON, not an event, or the other mode's event"),
}


def http_status(error: BaseException) -> int:
    """The HTTP status to answer for ``error`` (:data:`HTTP_STATUSES`): 422 for a
    ``ValidationError``, 404 ``NotFoundError``, 409 for state and concurrency
    conflicts, 402 ``CardDeclinedError``, 400 ``WebhookError``, 503 for what may
    pass later (a retryable store error, Stripe unreachable or rate-limited), 502 for other
    gateway errors, 500 for anything else, including any exception that is not a
    ``CartpayError``. A retryable error whose entry is a server error answers 503
    (clients, and Stripe for webhooks, try again later); a retryable 4xx
    (``ConcurrencyError``: 409) keeps its status.

    >>> http_status(NotFoundError("order", "ord_1"))
    404
    >>> http_status(CardDeclinedError("declined", code="card_declined"))
    402
    >>> http_status(KeyError("x"))
    500
    """
    for cls in type(error).__mro__:
        found = HTTP_STATUSES.get(cls)
        if found is not None:
            status = found[0]
            break
    else:
        return 500
    return 503 if status >= 500 and getattr(error, "retryable", False) else status


def render_http_table() -> str:
    """:data:`HTTP_STATUSES` as a Markdown table (class, status, meaning), in the
    order of the error tree."""
    lines = ["| error | HTTP status | meaning |", "| --- | --- | --- |"]
    for cls, (status, meaning) in HTTP_STATUSES.items():
        lines.append(f"| `{cls.__name__}` | {status} | {meaning} |")
    return "\n".join(lines) + "\n"
