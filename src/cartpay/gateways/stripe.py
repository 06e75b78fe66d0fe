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

* **One API version.** Every request carries ``Stripe-Version:
  STRIPE_API_VERSION`` (the version cartpay is written for), whatever version the
  ``StripeClient`` was built with: a client shared with other code keeps its own
  version for that code, and cartpay's requests keep cartpay's semantics (a
  client pinned before 2025-03-31 would make a partial capture refund the rest).
  Overriding per request rather than refusing such a client lets a host use one
  client for everything; the gateway logs the difference once, at INFO.

The gateway knows its mode from the client's key (``sk_live_``/``rk_live_``:
live, ``sk_test_``/``rk_test_``: test), so the façade's webhook mode check is on
by default; a key of another shape needs ``livemode=`` (else ``ValidationError``).
It reads only the key's prefix and keeps only the boolean.

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

import hashlib
import hmac
import logging
import re
import time
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
    StripeError,
    _util as stripe_util,
)
from stripe.params import (
    PaymentIntentCancelParams,
    PaymentIntentCaptureParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    PaymentIntentRetrieveParams,
    PaymentIntentUpdateParams,
    RefundCreateParams,
    RefundListParams,
)

from .. import _webhooks
from .._api_version import STRIPE_API_VERSION
from .._converter import dispute_from_payload, intent_from_payload, refund_from_payload
from .._effects import Flow, arun, run
from .._errors import (
    AuthenticationError,
    AuthenticationRequiredError,
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
from .._models import (
    DisputeSnapshot,
    IntentParams,
    IntentSnapshot,
    RefundSnapshot,
    WebhookEndpoint,
)
from .._options import create_body
from .._ports import IntentChanges

__all__ = ["AsyncStripeGateway", "StripeGateway", "translate_error"]

log = logging.getLogger("cartpay.gateways.stripe")

#: Operations whose only referenced object is the intent in the URL: a 404 there
#: means the intent does not exist.
_INTENT_PATH_ONLY = frozenset({"retrieve", "capture", "cancel", "list_refunds"})

_INTENTS = "/v1/payment_intents"
_REFUNDS = "/v1/refunds"
_ENDPOINTS = "/v1/webhook_endpoints"

_LIVE_KEYS = ("sk_live_", "rk_live_")
_TEST_KEYS = ("sk_test_", "rk_test_")


def _key_mode(client: stripe.StripeClient) -> bool | None:
    """``True`` for a live key, ``False`` for a test key, ``None`` when the key's
    prefix says neither (only the prefix is looked at; nothing is kept)."""
    requestor = getattr(client, "_requestor", None)
    key = getattr(requestor, "api_key", None)
    if not isinstance(key, str):
        return None
    if key.startswith(_LIVE_KEYS):
        return True
    if key.startswith(_TEST_KEYS):
        return False
    return None


def _client_version(client: stripe.StripeClient) -> str | None:
    options = getattr(getattr(client, "_requestor", None), "_options", None)
    version = getattr(options, "stripe_version", None)
    return version if isinstance(version, str) else None


_DISPUTES = "/v1/disputes"
#: A retrieve expands the latest charge: its card's ``capture_before`` (when an
#: authorization lapses) comes with the read the flows already make.
_RETRIEVE: PaymentIntentRetrieveParams = {"expand": ["latest_charge"]}


def _intent_path(intent_id: str, action: str | None = None) -> str:
    """``/v1/payment_intents/{id}[/action]``, the id quoted as the SDK quotes it."""
    return _path(_INTENTS, intent_id, "intent_id", action)


def _path(base: str, object_id: str, field: str, action: str | None = None) -> str:
    try:
        path = f"{base}/{quote_plus(object_id)}"
    except UnicodeEncodeError:
        raise ValidationError(field, "encodable", "is not valid Unicode") from None
    return path if action is None else f"{path}/{action}"


_CLIENT_SECRET = re.compile(r"\b((?:pi|seti)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+")
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9]+")


class _MaskClientSecrets(logging.Filter):
    """Masks ``pi_…_secret_…`` and webhook signing secrets (``whsec_…``, in the
    answer to an endpoint's creation) in records of the SDK's ``stripe`` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "_secret_" in record.msg:
            record.msg = _CLIENT_SECRET.sub(r"\1_secret_***", record.msg)
        if isinstance(record.msg, str) and "whsec_" in record.msg:
            record.msg = _WEBHOOK_SECRET.sub("whsec_***", record.msg)
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
        redirects: bool = True,
        livemode: bool | None = None,
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
        for name, flag in (("redirects", redirects), ("attach_then_confirm", attach_then_confirm)):
            if not isinstance(flag, bool):
                raise ValidationError(name, "type", "must be a bool")
        if livemode is not None and not isinstance(livemode, bool):
            raise ValidationError("livemode", "type", "must be a bool or None")
        mode = _key_mode(client) if livemode is None else livemode
        if mode is None:
            raise ValidationError(
                "client",
                "key_mode",
                "the client's API key is neither a live (sk_live_/rk_live_) nor a test"
                " (sk_test_/rk_test_) key: pass livemode=True or False",
            )
        if _sdk_prints_debug() and not allow_sdk_debug_output:
            raise _refuse_sdk_debug_output()
        self.allow_sdk_debug_output = allow_sdk_debug_output
        self.redirects = redirects
        self.livemode: bool = mode
        self.api_version = STRIPE_API_VERSION
        built = _client_version(client)
        if built is not None and built != STRIPE_API_VERSION:
            log.info(
                "the StripeClient is built for API version %s; cartpay's requests carry %s",
                built,
                STRIPE_API_VERSION,
            )
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
            f"attach_then_confirm={self.attach_then_confirm}, livemode={self.livemode})"
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
            intent = yield from self._requesting(
                "get", _intent_path(intent_id), _RETRIEVE, self._get()
            )
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
        off_session: bool = False,
        idempotency_key: str,
    ) -> Flow[IntentSnapshot]:
        confirm: PaymentIntentConfirmParams = {}
        if return_url is not None:
            confirm["return_url"] = return_url
        if off_session:
            confirm["off_session"] = True
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
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> Flow[RefundSnapshot]:
        params: RefundCreateParams = {"payment_intent": intent_id}
        if amount is not None:
            params["amount"] = amount
        if reason is not None:
            params["reason"] = reason
        if reverse_transfer is not None:
            params["reverse_transfer"] = reverse_transfer
        if refund_application_fee is not None:
            params["refund_application_fee"] = refund_application_fee
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

    # ------------------------------------------------------- webhook endpoints

    def _create_webhook_endpoint(
        self,
        url: str,
        *,
        events: Sequence[str],
        description: str | None = None,
        idempotency_key: str,
    ) -> Flow[WebhookEndpoint]:
        params: dict[str, Any] = {
            "url": url,
            "enabled_events": list(events),
            "api_version": STRIPE_API_VERSION,
        }
        if description is not None:
            params["description"] = description
        self._log("create_webhook_endpoint", None, idempotency_key)
        try:
            data = yield from self._requesting(
                "post", _ENDPOINTS, params, self._post(idempotency_key)
            )
        except StripeError as exc:
            translate_error(exc, "create_webhook_endpoint", None)
        return _endpoint(data)

    def _list_webhook_endpoints(self) -> Flow[list[WebhookEndpoint]]:
        params: dict[str, Any] = {"limit": 100}
        endpoints: list[WebhookEndpoint] = []
        try:
            while True:
                page = yield from self._requesting("get", _ENDPOINTS, params, self._get())
                items = page.get("data") or []
                endpoints.extend(_endpoint(e) for e in items)
                if not (page.get("has_more") and items):
                    return endpoints
                params = {**params, "starting_after": endpoints[-1].id}
        except StripeError as exc:
            translate_error(exc, "list_webhook_endpoints", None)

    # ---------------------------------------------------------------- disputes

    def _retrieve_dispute(self, dispute_id: str) -> Flow[DisputeSnapshot]:
        self._log("retrieve_dispute", None, None)
        try:
            dispute = yield from self._requesting(
                "get", _path(_DISPUTES, dispute_id, "dispute_id"), None, self._get()
            )
        except StripeInvalidRequestError as exc:
            if exc.http_status == 404 and exc.code in (None, "resource_missing"):
                raise NotFoundError("dispute", dispute_id) from exc
            translate_error(exc, "retrieve_dispute", None)
        except StripeError as exc:
            translate_error(exc, "retrieve_dispute", None)
        try:
            return dispute_from_payload(dispute)
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("Dispute", exc) from exc

    # ---------------------------------------------------------------- webhooks

    def verify_webhook(self, payload: bytes, signature_header: str, *, tolerance: int) -> None:
        """Stripe's signature scheme over the raw bytes with the endpoint secret,
        with the verdicts and messages of the SDK's ``WebhookSignature.verify_header``
        (``t=<ts>,v1=<hex>[,v1=…]``: HMAC-SHA256 of ``<ts>.<payload>``, any ``v1``
        may match, compared in constant time; older than ``tolerance`` seconds is
        stale), computed here with :mod:`hmac` (no SDK objects: this is the hot path
        of every delivery). Raises ``WebhookSignatureError`` (also when no
        ``webhook_secret`` was given or ``payload`` is not UTF-8 bytes)."""
        secret = self._webhook_secret
        if not secret or not secret.strip(" \t\r\n\f\v"):
            raise WebhookSignatureError("StripeGateway has no webhook_secret to verify with")
        if not isinstance(payload, bytes):
            raise WebhookSignatureError("the payload must be the raw request bytes")
        try:
            payload.decode("utf-8")  # (the SDK signs the text: refuse what is not text)
        except UnicodeDecodeError as exc:
            raise WebhookSignatureError("the payload is not UTF-8") from exc
        if not isinstance(signature_header, str) or not signature_header:
            raise WebhookSignatureError("No Stripe-Signature header value was provided.")
        try:
            # Parsed as the SDK does: items split on "," then on "="; the first "t"
            # read with int() (every "t" item indexed: a bare "t" fails the header).
            items = [item.split("=", 2) for item in signature_header.split(",")]
            timestamp = int([item[1] for item in items if item[0] == "t"][0])  # noqa: RUF015
            signatures = [item[1] for item in items if item[0] == "v1"]
        except (IndexError, ValueError):
            raise WebhookSignatureError(
                "Unable to extract timestamp and signatures from header"
            ) from None
        if not signatures:
            raise WebhookSignatureError("No signatures found with expected scheme v1")
        try:
            key = secret.encode("utf-8")
        except UnicodeEncodeError:  # (from None: the error's text holds the secret)
            raise WebhookSignatureError("the webhook_secret is not valid text") from None
        expected = hmac.new(key, b"%d." % timestamp + payload, hashlib.sha256).hexdigest()
        if not _webhooks.signature_matches(expected, signatures):
            raise WebhookSignatureError(
                "No signatures found matching the expected signature for payload"
            )
        if tolerance and timestamp < time.time() - tolerance:
            raise WebhookSignatureError(f"Timestamp outside the tolerance zone ({timestamp:d})")

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
        return {
            "idempotency_key": idempotency_key,
            "max_network_retries": self.max_network_retries,
            "stripe_version": STRIPE_API_VERSION,
        }

    def _get(self) -> stripe.RequestOptions:
        return {
            "max_network_retries": self.max_network_retries,
            "stripe_version": STRIPE_API_VERSION,
        }

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
    ``redirects=False`` says no payment can redirect on this server (cards only,
    no ``return_url``: localstripe); the façade then asks no return URL.
    ``livemode`` is the mode of the key (read from its prefix when ``None``).
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
        """``GET /v1/payment_intents/{id}?expand[]=latest_charge`` (carries the client
        secret, and a card authorization's ``capture_before``)."""
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
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot:
        """``POST /v1/payment_intents/{id}/confirm`` with ``payment_method`` (and
        ``return_url``, ``off_session=true`` when given); with
        ``attach_then_confirm``, an update with the payment method (key
        ``<key>:attach``) then a confirm (key ``<key>:confirm``).

        A decline raises ``CardDeclinedError`` carrying the intent id;
        ``authentication_required`` raises ``AuthenticationRequiredError``.
        """
        return run(
            self._confirm_intent(
                intent_id,
                payment_method=payment_method,
                return_url=return_url,
                off_session=off_session,
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
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> RefundSnapshot:
        """``POST /v1/refunds`` for the intent (``amount``, ``reason``,
        ``reverse_transfer``, ``refund_application_fee`` only when given)."""
        return run(
            self._create_refund(
                intent_id,
                amount=amount,
                reason=reason,
                idempotency_key=idempotency_key,
                reverse_transfer=reverse_transfer,
                refund_application_fee=refund_application_fee,
            )
        )

    def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        """``GET /v1/refunds?payment_intent=…``, every page (``starting_after`` the
        last refund of the page before, as the SDK's ``auto_paging_iter`` does)."""
        return run(self._list_refunds(intent_id))

    def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:
        """``GET /v1/disputes/{id}``. An unknown dispute raises ``NotFoundError``
        (kind ``dispute``)."""
        return run(self._retrieve_dispute(dispute_id))

    def create_webhook_endpoint(
        self,
        url: str,
        *,
        events: Sequence[str],
        description: str | None = None,
        idempotency_key: str,
    ) -> WebhookEndpoint:
        """``POST /v1/webhook_endpoints`` for ``url`` with ``enabled_events`` and the
        pinned ``api_version``. The answer carries the endpoint's signing secret,
        the only time Stripe shows it."""
        return run(
            self._create_webhook_endpoint(
                url, events=events, description=description, idempotency_key=idempotency_key
            )
        )

    def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        """``GET /v1/webhook_endpoints``, every page (no secrets in a list)."""
        return run(self._list_webhook_endpoints())


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
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot:
        flow = self._confirm_intent(
            intent_id,
            payment_method=payment_method,
            return_url=return_url,
            off_session=off_session,
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
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> RefundSnapshot:
        flow = self._create_refund(
            intent_id,
            amount=amount,
            reason=reason,
            idempotency_key=idempotency_key,
            reverse_transfer=reverse_transfer,
            refund_application_fee=refund_application_fee,
        )
        return await arun(flow)

    async def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        return await arun(self._list_refunds(intent_id))

    async def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:
        return await arun(self._retrieve_dispute(dispute_id))

    async def create_webhook_endpoint(
        self,
        url: str,
        *,
        events: Sequence[str],
        description: str | None = None,
        idempotency_key: str,
    ) -> WebhookEndpoint:
        flow = self._create_webhook_endpoint(
            url, events=events, description=description, idempotency_key=idempotency_key
        )
        return await arun(flow)

    async def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        return await arun(self._list_webhook_endpoints())


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


def _endpoint(data: object) -> WebhookEndpoint:
    try:
        if not isinstance(data, Mapping):
            raise TypeError(f"an endpoint must be a JSON object, not {type(data).__name__}")
        events = data.get("enabled_events") or []
        if not isinstance(events, list):
            raise TypeError("enabled_events is not a list")
        secret = data.get("secret")
        version = data.get("api_version")
        return WebhookEndpoint(
            id=str(data["id"]),
            url=str(data.get("url", "")),
            enabled_events=tuple(str(e) for e in events),
            api_version=version if isinstance(version, str) else None,
            status=str(data.get("status", "")),
            livemode=bool(data.get("livemode", False)),
            secret=secret if isinstance(secret, str) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed("WebhookEndpoint", exc) from exc


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
        declined = (
            AuthenticationRequiredError
            if "authentication_required" in (code, error.get("decline_code"))
            else CardDeclinedError
        )
        raise declined(
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
