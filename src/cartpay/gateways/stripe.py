"""StripeGateway: the :class:`~cartpay._ports.PaymentGateway` over ``stripe.StripeClient``.

The only module of cartpay that imports ``stripe`` when loaded (the command line and
the pytest plugin import it inside functions; ``import cartpay`` does not).
It makes the calls, nothing else: what to send is decided by the façade
(``_params``, ``_options``), what a snapshot means by ``_decisions`` and
``_ledger``. Four rules hold for every call:

* **Idempotency.** Every POST carries the caller's idempotency key (two-step
  confirms carry keys derived from it). ``StripeClient`` 16.x does *not* retry
  by default (its ``max_network_retries`` defaults to 0), so the gateway sets
  ``max_network_retries`` on each request; the SDK's retries resend the same
  key, so Stripe replays the first outcome instead of acting twice.
* **Only what is set.** Fields that are ``None`` are not sent, metadata only
  when non-empty, and ``payment_method_types`` never (the API version stripe
  16.x pins refuses it). The params are stripe's own typed ``TypedDict``\\ s.
* **Translate at the edge.** Every ``stripe.StripeError`` becomes a cartpay
  error in :func:`translate_error`, chained with ``from exc``. An answer the SDK
  itself chokes on (a proxy's ``{"error": "..."}`` makes it raise
  ``AttributeError``) is ``GatewayUnavailableError``: the outcome is unknown.
* **No objects that are not read.** Requests go through
  ``StripeClient.raw_request``: the SDK's own requestor (the same encoding,
  headers, retries, idempotency keys and typed errors as ``client.v1``), but the
  JSON answer is handed to ``_converter`` as the plain dict the SDK parsed,
  without building a ``StripeObject`` tree first (that tree costs ~0.3 ms per
  PaymentIntent, about a fifth of a request against a local server). The paths
  are those of ``client.v1.payment_intents`` and ``client.v1.refunds``.

Secrets: the API key stays inside the client; the client secret is returned in
the snapshot and never logged; ``repr`` shows neither. The gateway logs method,
intent id and idempotency key at DEBUG on ``cartpay.gateways.stripe``. The SDK's
own ``stripe`` logger writes whole response bodies (client secrets included) at
DEBUG; the gateway installs a filter on it that masks client secrets. The SDK's
debug *printing* (``stripe.log = "debug"`` or ``STRIPE_LOG=debug`` in the
environment) writes the same bodies to stderr, past any logging filter: the
gateway refuses to start, and to send, while it is on, unless the host opts in
with ``allow_sdk_debug_output=True``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NoReturn, cast
from urllib.parse import quote_plus

import stripe
from stripe import (
    APIConnectionError,
    APIError,
    AuthenticationError as StripeAuthenticationError,
    CardError,
    IdempotencyError as StripeIdempotencyError,
    InvalidRequestError as StripeInvalidRequestError,
    PermissionError as StripePermissionError,
    RateLimitError,
    SignatureVerificationError,
    StripeError,
    WebhookSignature,
    _util as stripe_util,
)
from stripe.params import (
    PaymentIntentCancelParams,
    PaymentIntentCaptureParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    PaymentIntentUpdateParams,
    RefundCreateParams,
    RefundListParams,
)

from .._converter import intent_from_payload, refund_from_payload
from .._effects import Flow, arun, run
from .._errors import (
    AuthenticationError,
    CardDeclinedError,
    GatewayError,
    GatewayUnavailableError,
    IdempotencyError,
    IllegalStateError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    WebhookSignatureError,
)
from .._models import IntentParams, IntentSnapshot, RefundSnapshot
from .._options import create_body
from .._ports import IntentChanges

__all__ = ["AsyncStripeGateway", "StripeGateway", "translate_error"]

log = logging.getLogger("cartpay.gateways.stripe")

#: Operations whose only referenced object is the intent in the URL: a 404 there
#: means the intent does not exist.
_INTENT_PATH_ONLY = frozenset({"retrieve", "capture", "cancel", "list_refunds"})

_INTENTS = "/v1/payment_intents"
_REFUNDS = "/v1/refunds"


def _intent_path(intent_id: str, action: str | None = None) -> str:
    """``/v1/payment_intents/{id}[/action]``, the id quoted as the SDK quotes it."""
    try:
        path = f"{_INTENTS}/{quote_plus(intent_id)}"
    except UnicodeEncodeError:
        raise ValidationError("intent_id", "encodable", "is not valid Unicode") from None
    return path if action is None else f"{path}/{action}"


_CLIENT_SECRET = re.compile(r"\b((?:pi|seti)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+")


class _MaskClientSecrets(logging.Filter):
    """Masks ``pi_…_secret_…`` in records of the SDK's ``stripe`` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "_secret_" in record.msg:
            record.msg = _CLIENT_SECRET.sub(r"\1_secret_***", record.msg)
        return True


def _sdk_prints_debug() -> bool:
    """Whether the SDK prints response bodies to stderr (its ``_console_log_level``:
    ``stripe.log`` first, then ``STRIPE_LOG`` as read when stripe was imported)."""
    level = getattr(stripe, "log", None)
    if level not in ("debug", "info"):
        level = getattr(stripe_util, "STRIPE_LOG", None)
    return level == "debug"


def _refuse_sdk_debug_output() -> ValidationError:
    return ValidationError(
        "stripe.log",
        "sdk_debug_output",
        "the stripe SDK's debug printing is on (stripe.log or STRIPE_LOG is 'debug'): it "
        "prints every response body, client secrets included, to stderr. Turn it off, or "
        "pass allow_sdk_debug_output=True to StripeGateway to accept that",
    )


def _mask_sdk_logs() -> None:
    sdk = logging.getLogger("stripe")
    if not any(isinstance(f, _MaskClientSecrets) for f in sdk.filters):
        sdk.addFilter(_MaskClientSecrets())


class _StripeCalls:
    """What both Stripe gateways share: settings, request bodies, keys, retries,
    error translation, webhook verification. Each call is a flow
    (:mod:`cartpay._effects`) that yields its request (``_send``: the client's
    ``raw_request`` or ``raw_request_async``); the two gateways below differ in
    that, and in running the flows with the sync or the async driver. The
    settings are described on :class:`StripeGateway`.
    """

    def __init__(
        self,
        client: stripe.StripeClient,
        *,
        webhook_secret: str | None = None,
        max_network_retries: int = 2,
        attach_then_confirm: bool = False,
        allow_sdk_debug_output: bool = False,
    ) -> None:
        if not isinstance(client, stripe.StripeClient):
            raise ValidationError("client", "stripe_client", "must be a stripe.StripeClient")
        if isinstance(max_network_retries, bool) or not isinstance(max_network_retries, int):
            raise ValidationError("max_network_retries", "integer", "must be an int")
        if max_network_retries < 0:
            raise ValidationError("max_network_retries", "non_negative", "must be 0 or more")
        if webhook_secret is not None and not isinstance(webhook_secret, str):
            raise ValidationError("webhook_secret", "string", "must be the whsec_… string")
        if not isinstance(allow_sdk_debug_output, bool):
            raise ValidationError("allow_sdk_debug_output", "type", "must be a bool")
        if _sdk_prints_debug() and not allow_sdk_debug_output:
            raise _refuse_sdk_debug_output()
        self.allow_sdk_debug_output = allow_sdk_debug_output
        self._client = client
        self._webhook_secret = webhook_secret
        self.max_network_retries = max_network_retries
        self.attach_then_confirm = attach_then_confirm
        _mask_sdk_logs()

    def __repr__(self) -> str:
        secret = "set" if self._webhook_secret else "unset"
        return (
            f"{type(self).__name__}(webhook_secret={secret}, "
            f"max_network_retries={self.max_network_retries}, "
            f"attach_then_confirm={self.attach_then_confirm})"
        )

    # ----------------------------------------------------------------- intents

    def _create_intent(self, params: IntentParams, *, idempotency_key: str) -> Flow[IntentSnapshot]:
        self._log("create", None, idempotency_key)
        try:
            intent = yield from self._requesting(
                "post", _INTENTS, create_params(params), self._post(idempotency_key)
            )
        except StripeError as exc:
            translate_error(exc, "create", None)
        return _intent(intent)

    def _retrieve_intent(self, intent_id: str) -> Flow[IntentSnapshot]:
        self._log("retrieve", intent_id, None)
        try:
            intent = yield from self._requesting("get", _intent_path(intent_id), None, self._get())
        except StripeError as exc:
            translate_error(exc, "retrieve", intent_id)
        return _intent(intent)

    def _update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> Flow[IntentSnapshot]:
        operation = "update_amount" if "amount" in changes else "update_fields"
        params = update_params(changes)
        if not params:
            return (yield from self._retrieve_intent(intent_id))
        self._log("update", intent_id, idempotency_key)
        try:
            intent = yield from self._requesting(
                "post", _intent_path(intent_id), params, self._post(idempotency_key)
            )
        except StripeError as exc:
            translate_error(exc, operation, intent_id)
        return _intent(intent)

    def _confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        idempotency_key: str,
    ) -> Flow[IntentSnapshot]:
        confirm: PaymentIntentConfirmParams = {}
        if return_url is not None:
            confirm["return_url"] = return_url
        try:
            if self.attach_then_confirm:
                self._log("attach", intent_id, f"{idempotency_key}:attach")
                attach: PaymentIntentUpdateParams = {"payment_method": payment_method}
                yield from self._requesting(
                    "post",
                    _intent_path(intent_id),
                    attach,
                    self._post(f"{idempotency_key}:attach"),
                )
                key = f"{idempotency_key}:confirm"
            else:
                confirm["payment_method"] = payment_method
                key = idempotency_key
            self._log("confirm", intent_id, key)
            intent = yield from self._requesting(
                "post", _intent_path(intent_id, "confirm"), confirm, self._post(key)
            )
        except StripeError as exc:
            translate_error(exc, "confirm", intent_id)
        return _intent(intent)

    def _capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> Flow[IntentSnapshot]:
        params: PaymentIntentCaptureParams = {}
        if amount is not None:
            params["amount_to_capture"] = amount
        self._log("capture", intent_id, idempotency_key)
        try:
            intent = yield from self._requesting(
                "post", _intent_path(intent_id, "capture"), params, self._post(idempotency_key)
            )
        except StripeError as exc:
            translate_error(exc, "capture", intent_id)
        return _intent(intent)

    def _cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> Flow[IntentSnapshot]:
        params: PaymentIntentCancelParams = {}
        if reason is not None:
            params["cancellation_reason"] = reason
        self._log("cancel", intent_id, idempotency_key)
        try:
            intent = yield from self._requesting(
                "post", _intent_path(intent_id, "cancel"), params, self._post(idempotency_key)
            )
        except StripeError as exc:
            translate_error(exc, "cancel", intent_id)
        return _intent(intent)

    # ----------------------------------------------------------------- refunds

    def _create_refund(
        self, intent_id: str, *, amount: int | None, reason: str | None, idempotency_key: str
    ) -> Flow[RefundSnapshot]:
        params: RefundCreateParams = {"payment_intent": intent_id}
        if amount is not None:
            params["amount"] = amount
        if reason is not None:
            params["reason"] = reason
        self._log("refund", intent_id, idempotency_key)
        try:
            refund = yield from self._requesting(
                "post", _REFUNDS, params, self._post(idempotency_key)
            )
        except StripeError as exc:
            translate_error(exc, "refund", intent_id)
        return _refund(refund, intent_id)

    def _list_refunds(self, intent_id: str) -> Flow[Sequence[RefundSnapshot]]:
        params: RefundListParams = {"payment_intent": intent_id, "limit": 100}
        self._log("list_refunds", intent_id, None)
        refunds: list[RefundSnapshot] = []
        try:
            while True:
                page = yield from self._requesting("get", _REFUNDS, params, self._get())
                items = page.get("data") or []
                refunds.extend(_refund(r, intent_id) for r in items)
                if not (page.get("has_more") and items):
                    return refunds
                params = {**params, "starting_after": refunds[-1].id}
        except StripeError as exc:
            translate_error(exc, "list_refunds", intent_id)

    # ---------------------------------------------------------------- webhooks

    def verify_webhook(self, payload: bytes, signature_header: str, *, tolerance: int) -> None:
        """``WebhookSignature.verify_header`` over the raw bytes with the
        endpoint secret. Raises ``WebhookSignatureError`` (also when no
        ``webhook_secret`` was given or ``payload`` is not UTF-8 bytes)."""
        if not self._webhook_secret:
            raise WebhookSignatureError("StripeGateway has no webhook_secret to verify with")
        if not isinstance(payload, bytes):
            raise WebhookSignatureError("the payload must be the raw request bytes")
        try:
            WebhookSignature.verify_header(
                payload.decode("utf-8"), signature_header, self._webhook_secret, tolerance
            )
        except UnicodeDecodeError as exc:
            raise WebhookSignatureError("the payload is not UTF-8") from exc
        except SignatureVerificationError as exc:
            raise WebhookSignatureError(str(exc.user_message or exc)) from exc
        except (TypeError, ValueError) as exc:
            # The SDK compares signatures with hmac.compare_digest, which raises
            # TypeError for a non-ASCII str (and encoding raises on a lone surrogate).
            raise WebhookSignatureError(
                "no signatures found matching the expected signature for payload"
            ) from exc

    # ---------------------------------------------------------------- internal

    def _requesting(
        self,
        method: Literal["get", "post"],
        path: str,
        params: Mapping[str, object] | None,
        options: stripe.RequestOptions,
    ) -> Flow[Mapping[str, Any]]:
        """One request through the SDK's requestor (``_send``); the answer as the
        JSON object it parsed. A non-2xx answer raises the SDK's typed ``StripeError``.

        ``raw_request`` takes params and options as one set of keywords: it picks
        out the option names (``idempotency_key``, ``max_network_retries``, …)
        and ``base``/``usage``. No PaymentIntent or Refund parameter has one of
        those names; the request-equality test would catch one that did.
        """
        if _sdk_prints_debug() and not self.allow_sdk_debug_output:
            raise _refuse_sdk_debug_output()  # (switched on after the gateway started)
        try:
            response = yield self._send(method, path, **(params or {}), **options)
        except StripeError:
            raise
        except UnicodeEncodeError as exc:  # encoding the request: nothing was sent
            raise ValidationError(
                "request", "encodable", f"{method.upper()} {path}: a parameter is not valid Unicode"
            ) from exc
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            # The SDK choked on the answer (e.g. a proxy's {"error": "<text>"}):
            # what the server did is unknown, as after a timeout.
            raise GatewayUnavailableError(
                f"{method.upper()} {path}: the stripe SDK could not read the answer "
                f"({type(exc).__name__})",
                retryable=True,
            ) from exc
        data = response.data
        if not isinstance(data, Mapping):
            raise APIError(f"{method.upper()} {path}: the answer is not a JSON object")
        return data

    def _post(self, idempotency_key: str) -> stripe.RequestOptions:
        return {"idempotency_key": idempotency_key, "max_network_retries": self.max_network_retries}

    def _get(self) -> stripe.RequestOptions:
        return {"max_network_retries": self.max_network_retries}

    @staticmethod
    def _log(method: str, intent_id: str | None, key: str | None) -> None:
        log.debug("stripe %s intent=%s idempotency_key=%s", method, intent_id, key)

    def _send(self, method: str, path: str, **params: Any) -> Any:
        raise NotImplementedError  # (each gateway sends its own way)


class StripeGateway(_StripeCalls):
    """PaymentIntents and refunds over ``StripeClient`` (see the module docstring).

    ``webhook_secret`` is the endpoint's ``whsec_…`` (needed only by
    :meth:`verify_webhook`). ``max_network_retries`` is set on every request.
    Wrong settings raise ``ValidationError``.
    ``attach_then_confirm=True`` confirms in two POSTs (update the payment method,
    then confirm with no parameters) for servers that cannot confirm with a
    ``payment_method`` parameter (localstripe); the default is one confirm call.
    While the SDK's debug printing is on, the gateway raises ``ValidationError``
    (field ``stripe.log``) at construction and before each request, unless
    ``allow_sdk_debug_output=True``.
    """

    def _send(self, method: str, path: str, **params: Any) -> Any:
        return self._client.raw_request(method, path, **params)

    def _request(
        self,
        method: Literal["get", "post"],
        path: str,
        params: Mapping[str, object] | None,
        options: stripe.RequestOptions,
    ) -> Mapping[str, Any]:
        """One request, as the calls make it (for tests that send around them)."""
        return run(self._requesting(method, path, params, options))

    def create_intent(self, params: IntentParams, *, idempotency_key: str) -> IntentSnapshot:
        """``POST /v1/payment_intents`` with the amount, currency and the options set."""
        return run(self._create_intent(params, idempotency_key=idempotency_key))

    def retrieve_intent(self, intent_id: str) -> IntentSnapshot:
        """``GET /v1/payment_intents/{id}`` (carries the client secret)."""
        return run(self._retrieve_intent(intent_id))

    def update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot:
        """``POST /v1/payment_intents/{id}`` with the changed fields only.

        Empty ``changes`` make no POST (the intent is retrieved).
        """
        return run(self._update_intent(intent_id, changes, idempotency_key=idempotency_key))

    def confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        idempotency_key: str,
    ) -> IntentSnapshot:
        """``POST /v1/payment_intents/{id}/confirm`` with ``payment_method`` (and
        ``return_url``); with ``attach_then_confirm``, an update with the payment
        method (key ``<key>:attach``) then a confirm (key ``<key>:confirm``).

        A decline raises ``CardDeclinedError`` carrying the intent id.
        """
        return run(
            self._confirm_intent(
                intent_id,
                payment_method=payment_method,
                return_url=return_url,
                idempotency_key=idempotency_key,
            )
        )

    def capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot:
        """``POST /v1/payment_intents/{id}/capture`` (``amount_to_capture`` when given)."""
        return run(self._capture_intent(intent_id, amount=amount, idempotency_key=idempotency_key))

    def cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot:
        """``POST /v1/payment_intents/{id}/cancel`` (``cancellation_reason`` only when given)."""
        return run(self._cancel_intent(intent_id, reason=reason, idempotency_key=idempotency_key))

    def create_refund(
        self, intent_id: str, *, amount: int | None, reason: str | None, idempotency_key: str
    ) -> RefundSnapshot:
        """``POST /v1/refunds`` for the intent (``amount``, ``reason`` only when given)."""
        return run(
            self._create_refund(
                intent_id, amount=amount, reason=reason, idempotency_key=idempotency_key
            )
        )

    def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        """``GET /v1/refunds?payment_intent=…``, every page (``starting_after`` the
        last refund of the page before, as the SDK's ``auto_paging_iter`` does)."""
        return run(self._list_refunds(intent_id))


class AsyncStripeGateway(_StripeCalls):
    """:class:`StripeGateway`'s asyncio twin (the same settings, requests, keys,
    retries and errors; each port call a coroutine) over the client's
    ``raw_request_async``. Give the ``StripeClient`` an async HTTP client
    (``http_client=stripe.HTTPXClient()``; the ``async`` extra installs httpx), or
    leave the SDK to pick its async fallback. ``verify_webhook`` is a plain call."""

    async def _send(self, method: str, path: str, **params: Any) -> Any:
        return await self._client.raw_request_async(method, path, **params)

    async def create_intent(self, params: IntentParams, *, idempotency_key: str) -> IntentSnapshot:
        return await arun(self._create_intent(params, idempotency_key=idempotency_key))

    async def retrieve_intent(self, intent_id: str) -> IntentSnapshot:
        return await arun(self._retrieve_intent(intent_id))

    async def update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot:
        return await arun(self._update_intent(intent_id, changes, idempotency_key=idempotency_key))

    async def confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        idempotency_key: str,
    ) -> IntentSnapshot:
        flow = self._confirm_intent(
            intent_id,
            payment_method=payment_method,
            return_url=return_url,
            idempotency_key=idempotency_key,
        )
        return await arun(flow)

    async def capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot:
        flow = self._capture_intent(intent_id, amount=amount, idempotency_key=idempotency_key)
        return await arun(flow)

    async def cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot:
        flow = self._cancel_intent(intent_id, reason=reason, idempotency_key=idempotency_key)
        return await arun(flow)

    async def create_refund(
        self, intent_id: str, *, amount: int | None, reason: str | None, idempotency_key: str
    ) -> RefundSnapshot:
        flow = self._create_refund(
            intent_id, amount=amount, reason=reason, idempotency_key=idempotency_key
        )
        return await arun(flow)

    async def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        return await arun(self._list_refunds(intent_id))


# --------------------------------------------------------------------- params


def create_params(params: IntentParams) -> PaymentIntentCreateParams:
    """The create request: amount, currency, and only the options that are set
    (in Stripe's names, from the options table)."""
    body = {"amount": params.amount, "currency": params.currency}
    return cast("PaymentIntentCreateParams", {**body, **create_body(params.options)})


def update_params(changes: IntentChanges) -> PaymentIntentUpdateParams:
    """The update request: the fields of ``changes``, in Stripe's names (every
    updatable option has its own name at the top level)."""
    sent: dict[str, Any] = {name: value for name, value in changes.items() if value is not None}
    if not changes.get("metadata"):
        sent.pop("metadata", None)
    if "excluded_payment_method_types" in changes:
        # An empty list would encode to nothing; "" is how Stripe removes the exclusions.
        sent["excluded_payment_method_types"] = changes["excluded_payment_method_types"] or ""
    return cast("PaymentIntentUpdateParams", sent)


# --------------------------------------------------------- snapshots and errors


def _intent(data: Mapping[str, Any]) -> IntentSnapshot:
    try:
        return intent_from_payload(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed("PaymentIntent", exc) from exc


def _refund(data: object, intent_id: str) -> RefundSnapshot:
    try:
        if not isinstance(data, Mapping):
            raise TypeError(f"a refund must be a JSON object, not {type(data).__name__}")
        return refund_from_payload(data, intent_id=intent_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed("Refund", exc) from exc


def _malformed(what: str, exc: Exception) -> GatewayUnavailableError:
    """An answer that is not the object it should be (a proxy's page, a body cut
    short): what happened is unknown, as after a timeout, so the caller retries
    with the same idempotency key."""
    return GatewayUnavailableError(f"the answer is not a valid {what}: {exc}", retryable=True)


def translate_error(exc: StripeError, operation: str, intent_id: str | None) -> NoReturn:
    """Raise the cartpay error for ``exc`` (chained ``from exc``); docs/stripe.md, section 9.

    ``operation`` names what was attempted (``create``, ``update_amount``,
    ``confirm``, ``capture``, ``cancel``, ``refund``, …), ``intent_id`` the intent.
    """
    error = exc.error.to_dict() if exc.error is not None else {}
    code = exc.code or error.get("code")
    status = exc.http_status
    request_id = exc.request_id
    message = str(exc.user_message or error.get("message") or exc)
    if isinstance(exc, StripeIdempotencyError):
        raise IdempotencyError(
            message, code=code, http_status=status, request_id=request_id, retryable=False
        ) from exc
    if isinstance(exc, CardError):
        remote = error.get("payment_intent")
        raise CardDeclinedError(
            message,
            code=code,
            decline_code=error.get("decline_code"),
            intent_id=remote.get("id", intent_id) if isinstance(remote, dict) else intent_id,
            http_status=status,
            request_id=request_id,
        ) from exc
    if isinstance(exc, StripeInvalidRequestError):
        if code == "payment_intent_unexpected_state":
            remote = error.get("payment_intent")
            remote_status = remote.get("status") if isinstance(remote, dict) else None
            raise IllegalStateError(
                "intent",
                operation,
                str(remote_status or "unknown"),
                entity_id=intent_id,
                detail=f"{message} (http {status}, request {request_id})",
            ) from exc
        if (
            status == 404
            and intent_id is not None
            and code in (None, "resource_missing")
            and (exc.param == "intent" or (exc.param is None and operation in _INTENT_PATH_ONLY))
        ):
            raise NotFoundError("payment_intent", intent_id) from exc
        raise InvalidRequestError(
            message, param=exc.param, code=code, http_status=status, request_id=request_id
        ) from exc
    if isinstance(exc, RateLimitError):
        raise RateLimitedError(
            message, code=code, http_status=status, request_id=request_id, retryable=True
        ) from exc
    if isinstance(exc, (APIConnectionError, APIError)):
        raise GatewayUnavailableError(
            message, code=code, http_status=status, request_id=request_id, retryable=True
        ) from exc
    if isinstance(exc, (StripeAuthenticationError, StripePermissionError)):
        raise AuthenticationError(
            message, code=code, http_status=status, request_id=request_id, retryable=False
        ) from exc
    raise GatewayError(message, code=code, http_status=status, request_id=request_id) from exc
