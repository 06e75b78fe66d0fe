"""FakeStripeGateway: an in-memory PaymentGateway with Stripe's semantics.

Shipped for hosts' own tests. It keeps the seven statuses and what each allows,
honours idempotency keys like Stripe (same key + same parameters replays the
first outcome, errors included; same key + other parameters raises
``IdempotencyError``), knows Stripe's test payment methods, captures (also
partially), cancels, refunds (refusing over-refunds), logs every request, and
emits the signed webhook events Stripe would send for what it did.

Test payment methods:

=================================  ==============================================
``pm_card_visa`` (and most others)  succeeds (``requires_capture`` when manual)
``pm_card_chargeDeclined``          declined ``generic_decline``
``pm_card_chargeDeclinedInsufficientFunds``  declined ``insufficient_funds``
``pm_card_chargeCustomerFail``      declined (localstripe's declining method)
``pm_card_authenticationRequired``  ``requires_action`` until :meth:`authenticate`
(and ``pm_card_threeDSecure2Required``)  (3-D Secure); off-session: declined
                                    ``authentication_required``
``pm_card_processing``              ``processing`` until :meth:`settle`
=================================  ==============================================

Stripe's return-URL rule is kept: a confirm of an intent that may redirect
(automatic payment methods with redirects allowed, Stripe's default; or a type
other than ``card``) without ``return_url`` is refused (``InvalidRequestError``,
``param="return_url"``), unless the fake was made with ``redirects=False`` (a
cards-only server, as localstripe). An ``off_session`` confirm needs a
``customer`` on the intent, and no ``setup_future_usage``. A 3-D Secure step is
announced in ``next_action``:
``redirect_to_url`` (with a URL) when the confirm had a ``return_url``, else
``use_stripe_sdk``.

Every state change Stripe announces with an event emits that event, also those
made by the test-only actions (:meth:`authenticate`, :meth:`settle`,
:meth:`expire_authorization`, :meth:`refund_outside`, :meth:`fail_refund`,
:meth:`dispute`, :meth:`close_dispute`).

Disputes are played as Stripe plays a card chargeback: :meth:`dispute` withdraws
the funds (``charge.dispute.created`` then ``charge.dispute.funds_withdrawn``,
status ``needs_response``), :meth:`close_dispute` decides it
(``charge.dispute.closed``, status ``won`` or ``lost``; a won one also sends
``charge.dispute.funds_reinstated``). A charge is disputed at most once, and
while a dispute is open or lost the charge refuses refunds (``charge_disputed``).
A manual-capture authorization carries ``capture_before`` (seven days after it
was made, on the fake's clock), as a retrieve with its charge expanded shows it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from attrs import define, evolve, field, frozen

from .._api_version import STRIPE_API_VERSION
from .._errors import (
    AuthenticationRequiredError,
    CardDeclinedError,
    IdempotencyError,
    IllegalStateError,
    InvalidRequestError,
    NotFoundError,
    WebhookSignatureError,
)
from .._lifecycle import check_intent_operation
from .._models import (
    DisputeSnapshot,
    IntentParams,
    IntentSnapshot,
    NextAction,
    PaymentFailure,
    RefundSnapshot,
)
from .._money import CARD_MAXIMUM
from .._options import IntentOptions, create_body, may_redirect
from .._ports import IntentChanges
from .._webhooks import signature_matches

__all__ = ["FakeRequest", "FakeStripeGateway"]

R = TypeVar("R")

_DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeCustomerFail": "generic_decline",
    "pm_card_visa_chargeDeclinedExpiredCard": "expired_card",
}
#: Test cards that always ask for 3-D Secure (Stripe's 4000 0027 6000 3184 and its
#: 3DS2 card): ``requires_action`` on-session, ``authentication_required`` off-session.
_AUTHENTICATION_REQUIRED = frozenset(
    {"pm_card_authenticationRequired", "pm_card_threeDSecure2Required"}
)


@frozen
class FakeRequest:
    """One request the fake received. ``replayed``: answered from the idempotency cache."""

    method: str
    operation: str
    intent_id: str | None
    params: dict[str, Any]
    idempotency_key: str | None
    replayed: bool = False


#: How long the fake's card authorizations last (Stripe: 7 days for most
#: card-not-present authorizations; docs/going-live.md, "Authorization windows").
AUTHORIZATION_WINDOW = 7 * 24 * 3600
#: Dispute statuses in which the funds are withdrawn (open or lost).
_WITHDRAWN = frozenset({"needs_response", "under_review", "lost"})


@define
class _Intent:
    snapshot: IntentSnapshot
    refunds: list[RefundSnapshot] = field(factory=list)
    options: IntentOptions = field(factory=IntentOptions)
    disputes: list[DisputeSnapshot] = field(factory=list)


class FakeStripeGateway:
    """An in-memory Stripe for tests. Thread-safe.

    ``clock`` returns Unix seconds (for ``created`` and event timestamps).
    ``redirects=False`` plays a cards-only server on which no payment can
    redirect (as localstripe): confirms need no ``return_url`` there.
    """

    def __init__(
        self,
        *,
        webhook_secret: str = "whsec_fake",  # noqa: S107 - a test double's secret
        livemode: bool = False,
        clock: Callable[[], float] = time.time,
        redirects: bool = True,
    ) -> None:
        self._webhook_secret = webhook_secret
        self.livemode = livemode
        self.redirects = redirects
        self._clock = clock
        self._lock = threading.RLock()
        self._intents: dict[str, _Intent] = {}
        self._refund_requests: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, tuple[str, object]] = {}
        self._events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.requests: list[FakeRequest] = []

    def __repr__(self) -> str:
        return f"FakeStripeGateway(intents={len(self._intents)}, requests={len(self.requests)})"

    # --------------------------------------------------------------- queries

    def count(self, operation: str | None = None, *, replayed: bool | None = None) -> int:
        """How many requests (of ``operation``) the fake received."""
        return sum(
            1
            for r in self.requests
            if (operation is None or r.operation == operation)
            and (replayed is None or r.replayed == replayed)
        )

    def intent(self, intent_id: str) -> IntentSnapshot:
        """The intent as the fake holds it now (no request logged)."""
        with self._lock:
            return self._get(intent_id).snapshot

    def intent_ids(self) -> list[str]:
        with self._lock:
            return list(self._intents)

    def refunds(self, intent_id: str) -> list[RefundSnapshot]:
        with self._lock:
            return list(self._get(intent_id).refunds)

    def disputes(self, intent_id: str) -> list[DisputeSnapshot]:
        """The intent's disputes as the fake holds them now (no request logged)."""
        with self._lock:
            return list(self._get(intent_id).disputes)

    def events(self) -> list[tuple[bytes, str]]:
        """``(payload, Stripe-Signature header)`` pairs, in the order they happened."""
        with self._lock:
            events = list(self._events)
        return [self.sign(json.dumps(e, separators=(",", ":")).encode()) for e in events]

    def sign(self, payload: bytes, *, timestamp: int | None = None) -> tuple[bytes, str]:
        """Sign ``payload`` as Stripe does (``t=…,v1=…``) with the webhook secret."""
        ts = int(self._clock()) if timestamp is None else timestamp
        mac = hmac.new(
            self._webhook_secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256
        ).hexdigest()
        return payload, f"t={ts},v1={mac}"

    # ----------------------------------------------------- test-only actions

    def authenticate(self, intent_id: str, *, success: bool = True) -> IntentSnapshot:
        """Finish (or fail) the customer's 3-D Secure step of a ``requires_action`` intent."""
        with self._lock:
            intent = self._get(intent_id)
            check = intent.snapshot.status
            if check != "requires_action":
                raise IllegalStateError("intent", "authenticate", check, entity_id=intent_id)
            self._set(intent, next_action=None)
            if success:
                return self._succeed(intent)
            return self._fail(intent, "payment_intent_authentication_failure", None)

    def settle(self, intent_id: str, *, success: bool = True) -> IntentSnapshot:
        """Finish an asynchronous (``processing``) payment."""
        with self._lock:
            intent = self._get(intent_id)
            if intent.snapshot.status != "processing":
                raise IllegalStateError(
                    "intent", "settle", intent.snapshot.status, entity_id=intent_id
                )
            if success:
                return self._succeed(intent, async_ok=True)
            return self._fail(
                intent, "payment_intent_payment_attempt_failed", None, same_charge=True
            )

    def expire_authorization(self, intent_id: str) -> IntentSnapshot:
        """Let a ``requires_capture`` authorization lapse: Stripe cancels the intent
        with ``cancellation_reason="expired"`` (the reason the pinned SDK documents
        for an authorization Stripe let expire) and sends ``payment_intent.canceled``."""
        with self._lock:
            intent = self._get(intent_id)
            if intent.snapshot.status != "requires_capture":
                raise IllegalStateError(
                    "intent", "expire_authorization", intent.snapshot.status, entity_id=intent_id
                )
            snap = self._set(
                intent, status="canceled", amount_capturable=0, cancellation_reason="expired"
            )
            self._emit("payment_intent.canceled", snap)
            return snap

    def refund_outside(self, intent_id: str, amount: int | None = None) -> RefundSnapshot:
        """A refund made in the Stripe dashboard (not through cartpay)."""
        with self._lock:
            return self._refund(self._get(intent_id), amount, "requested_by_customer")

    def fail_refund(self, refund_id: str, *, reason: str = "lost_or_stolen_card") -> RefundSnapshot:
        """Fail a refund, also one that had succeeded (Stripe: the card was closed;
        the funds return to the balance). Emits ``refund.failed``."""
        with self._lock:
            for intent in self._intents.values():
                for i, refund in enumerate(intent.refunds):
                    if refund.id != refund_id:
                        continue
                    if refund.status not in ("pending", "succeeded"):
                        raise IllegalStateError(
                            "refund", "fail", refund.status, entity_id=refund_id
                        )
                    failed = evolve(refund, status="failed", failure_reason=reason)
                    intent.refunds[i] = failed
                    self._append_event("refund.failed", self._refund_object(failed, intent))
                    return failed
            raise NotFoundError("refund", refund_id)

    def dispute(
        self, intent_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> str:
        """The cardholder disputes the intent's charge: a chargeback of ``amount``
        (all that was received and not refunded when ``None``). Stripe withdraws
        the funds: ``charge.dispute.created`` and ``charge.dispute.funds_withdrawn``
        are sent, status ``needs_response``. Returns the dispute id. Raises
        ``IllegalStateError`` unless the intent succeeded and its charge was never
        disputed, ``InvalidRequestError`` for an amount outside 1 … what is left."""
        with self._lock:
            intent = self._get(intent_id)
            snap = intent.snapshot
            if snap.status != "succeeded":
                raise IllegalStateError("intent", "dispute", snap.status, entity_id=intent_id)
            if intent.disputes:
                raise IllegalStateError(
                    "charge", "dispute", "disputed", entity_id=snap.latest_charge
                )
            left = snap.amount_received - sum(
                r.amount for r in intent.refunds if r.status != "failed"
            )
            wanted = left if amount is None else amount
            if wanted <= 0 or wanted > left:
                raise InvalidRequestError(
                    f"a dispute of {wanted} on a charge with {left} left", param="amount"
                )
            dispute = DisputeSnapshot(
                f"du_fake{next(self._ids):06d}",
                intent_id,
                wanted,
                snap.currency,
                "needs_response",
                reason,
                snap.latest_charge,
            )
            intent.disputes.append(dispute)
            self._append_event("charge.dispute.created", self._dispute_object(dispute, 1))
            self._append_event("charge.dispute.funds_withdrawn", self._dispute_object(dispute, 1))
            return dispute.id

    def close_dispute(self, dispute_id: str, *, won: bool) -> DisputeSnapshot:
        """Decide an open dispute: ``won`` (the funds are reinstated:
        ``charge.dispute.closed`` then ``charge.dispute.funds_reinstated``) or lost
        (``charge.dispute.closed``). Raises ``IllegalStateError`` once it is closed."""
        with self._lock:
            for intent in self._intents.values():
                for i, dispute in enumerate(intent.disputes):
                    if dispute.id != dispute_id:
                        continue
                    if dispute.status not in ("needs_response", "under_review"):
                        raise IllegalStateError(
                            "dispute", "close", dispute.status, entity_id=dispute_id
                        )
                    closed = evolve(dispute, status="won" if won else "lost")
                    intent.disputes[i] = closed
                    moves = 2 if won else 1
                    self._append_event("charge.dispute.closed", self._dispute_object(closed, moves))
                    if won:
                        self._append_event(
                            "charge.dispute.funds_reinstated", self._dispute_object(closed, 2)
                        )
                    return closed
            raise NotFoundError("dispute", dispute_id)

    # ------------------------------------------------------------- the port

    def create_intent(self, params: IntentParams, *, idempotency_key: str) -> IntentSnapshot:
        sent = _create_params(params)

        def run() -> IntentSnapshot:
            if not isinstance(params.amount, int) or params.amount <= 0:
                raise InvalidRequestError("amount must be a positive integer", param="amount")
            if params.amount > CARD_MAXIMUM:
                raise InvalidRequestError(
                    f"Amount must be no more than {CARD_MAXIMUM}",
                    param="amount",
                    code="amount_too_large",
                )
            intent_id = f"pi_fake{next(self._ids):06d}"
            snap = IntentSnapshot(
                intent_id,
                "requires_payment_method",
                params.amount,
                params.currency,
                client_secret=f"{intent_id}_secret_{secrets.token_hex(8)}",
                capture_method=params.options.capture_method or "automatic_async",
                created=int(self._clock()),
                livemode=self.livemode,
                metadata=dict(params.options.metadata),
                transfer_destination=params.options.transfer_destination,
            )
            self._intents[intent_id] = _Intent(snap, options=params.options)
            self._emit("payment_intent.created", snap)
            return snap

        return self._idempotent("POST", "create_intent", None, sent, idempotency_key, run)

    def retrieve_intent(self, intent_id: str) -> IntentSnapshot:
        with self._lock:
            self.requests.append(FakeRequest("GET", "retrieve_intent", intent_id, {}, None))
            intent = self._get(intent_id)
            if intent.snapshot.latest_charge is None:
                return intent.snapshot
            # A retrieve expands the latest charge (as StripeGateway asks): what it refunded.
            refunded = sum(r.amount for r in intent.refunds if r.status in ("pending", "succeeded"))
            return evolve(intent.snapshot, amount_refunded=refunded)

    def update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot:
        def run() -> IntentSnapshot:
            intent = self._get(intent_id)
            status = intent.snapshot.status
            check_intent_operation(
                "update_amount" if "amount" in changes else "update_fields",
                status,
                intent_id=intent_id,
            )
            snap = intent.snapshot
            metadata = dict(snap.metadata)
            for key, value in changes.get("metadata", {}).items():
                if value == "":
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
            capture_method = changes.get("capture_method", snap.capture_method)
            if "allowed_payment_method_types" in changes or "customer" in changes:
                opts = intent.options
                intent.options = evolve(
                    opts,
                    allowed_payment_method_types=changes.get(
                        "allowed_payment_method_types", opts.allowed_payment_method_types
                    ),
                    customer=changes.get("customer", opts.customer),
                )
            return self._set(
                intent,
                amount=changes.get("amount", snap.amount),
                currency=changes.get("currency", snap.currency),
                metadata=metadata,
                capture_method=capture_method,
                last_payment_error=None,
            )

        return self._idempotent(
            "POST", "update_intent", intent_id, dict(changes), idempotency_key, run
        )

    def confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot:
        sent: dict[str, Any] = {"payment_method": payment_method}
        if return_url is not None:
            sent["return_url"] = return_url
        if off_session:
            sent["off_session"] = True

        def run() -> IntentSnapshot:
            intent = self._get(intent_id)
            check_intent_operation("confirm", intent.snapshot.status, intent_id=intent_id)
            if return_url is None and self.redirects and may_redirect(intent.options):
                raise InvalidRequestError(
                    "This PaymentIntent is configured to accept payment methods enabled in"
                    " your Dashboard, because some of these payment methods might redirect"
                    " your customer off of your page, you must provide a `return_url`.",
                    param="return_url",
                    http_status=400,
                )
            if off_session and not intent.options.customer:
                raise InvalidRequestError(
                    "off_session can only be used with a PaymentMethod attached to a Customer",
                    param="off_session",
                    http_status=400,
                )
            if off_session and intent.options.setup_future_usage is not None:
                raise InvalidRequestError(
                    "You cannot confirm with the `off_session` parameter when"
                    " `setup_future_usage` is also set on the PaymentIntent",
                    param="off_session",
                    http_status=400,
                )
            self._set(
                intent, payment_method=payment_method, last_payment_error=None, next_action=None
            )
            if payment_method in _DECLINES:
                self._fail(intent, "card_declined", _DECLINES[payment_method])
                raise CardDeclinedError(
                    "Your card was declined.",
                    code="card_declined",
                    decline_code=_DECLINES[payment_method],
                    intent_id=intent_id,
                )
            if payment_method in _AUTHENTICATION_REQUIRED and off_session:
                code = "authentication_required"
                self._fail(intent, code, code)
                raise AuthenticationRequiredError(
                    "Your card was declined. This transaction requires authentication.",
                    code=code,
                    decline_code=code,
                    intent_id=intent_id,
                )
            if payment_method in _AUTHENTICATION_REQUIRED:
                action = (
                    NextAction("use_stripe_sdk")
                    if return_url is None
                    else NextAction(
                        "redirect_to_url",
                        f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent_id}",
                    )
                )
                snap = self._set(intent, status="requires_action", next_action=action)
                self._emit("payment_intent.requires_action", snap)
                return snap
            if payment_method == "pm_card_processing":
                snap = self._set(intent, status="processing", latest_charge=self._charge_id())
                self._emit("payment_intent.processing", snap)
                return snap
            return self._succeed(intent)

        return self._idempotent("POST", "confirm_intent", intent_id, sent, idempotency_key, run)

    def capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot:
        sent = {} if amount is None else {"amount_to_capture": amount}

        def run() -> IntentSnapshot:
            intent = self._get(intent_id)
            snap = intent.snapshot
            check_intent_operation("capture", snap.status, intent_id=intent_id)
            captured = snap.amount_capturable if amount is None else amount
            if captured > snap.amount_capturable or captured <= 0:
                raise InvalidRequestError(
                    f"amount_to_capture {captured} is not between 1 and {snap.amount_capturable}",
                    param="amount_to_capture",
                    code="amount_too_large",
                )
            done = self._set(
                intent, status="succeeded", amount_capturable=0, amount_received=captured
            )
            self._emit("payment_intent.succeeded", done)
            return done

        return self._idempotent("POST", "capture_intent", intent_id, sent, idempotency_key, run)

    def cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot:
        sent = {} if reason is None else {"cancellation_reason": reason}

        def run() -> IntentSnapshot:
            intent = self._get(intent_id)
            check_intent_operation("cancel", intent.snapshot.status, intent_id=intent_id)
            snap = self._set(
                intent,
                status="canceled",
                amount_capturable=0,
                cancellation_reason=reason,
                next_action=None,
            )
            self._emit("payment_intent.canceled", snap)
            return snap

        return self._idempotent("POST", "cancel_intent", intent_id, sent, idempotency_key, run)

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
        sent: dict[str, Any] = {"payment_intent": intent_id}
        if amount is not None:
            sent["amount"] = amount
        if reason is not None:
            sent["reason"] = reason
        if reverse_transfer is not None:
            sent["reverse_transfer"] = reverse_transfer
        if refund_application_fee is not None:
            sent["refund_application_fee"] = refund_application_fee

        def run() -> RefundSnapshot:
            refund = self._refund(self._get(intent_id), amount, reason)
            self._refund_requests[refund.id] = dict(sent)
            return refund

        return self._idempotent("POST", "create_refund", intent_id, sent, idempotency_key, run)

    def refund_request(self, refund_id: str) -> Mapping[str, Any]:
        """The parameters of the request that made the refund ``refund_id`` (its
        amount, reason and Connect flags as sent); ``{}`` for a refund made at the
        Dashboard (:meth:`refund_outside`) or unknown."""
        with self._lock:
            return dict(self._refund_requests.get(refund_id, {}))

    def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        with self._lock:
            self.requests.append(FakeRequest("GET", "list_refunds", intent_id, {}, None))
            return list(self._get(intent_id).refunds)

    def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:
        with self._lock:
            self.requests.append(FakeRequest("GET", "retrieve_dispute", None, {}, None))
            for intent in self._intents.values():
                for dispute in intent.disputes:
                    if dispute.id == dispute_id:
                        return dispute
            raise NotFoundError("dispute", dispute_id)

    def verify_webhook(self, payload: bytes, signature_header: str, *, tolerance: int) -> None:
        """Stripe's scheme: ``t=<ts>,v1=<hex>[,v1=…]``, HMAC-SHA256 of ``<ts>.<payload>``.

        The verdicts are the stripe SDK's (``WebhookSignature.verify_header``) on
        every header, parsed the same way: items split on ``,`` then on ``=``, keys
        compared exactly (``" v1"`` is not ``"v1"``), the first ``t`` read with
        ``int()`` (which allows surrounding blanks), signatures compared exactly (a
        trailing newline does not match). A test table runs both side by side.
        """
        if not isinstance(payload, bytes):
            raise WebhookSignatureError("the payload must be the raw request bytes")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookSignatureError("the payload is not UTF-8") from None
        if not isinstance(signature_header, str) or not signature_header:
            raise WebhookSignatureError("no Stripe-Signature header value was provided")
        try:
            items = [item.split("=", 2) for item in signature_header.split(",")]
            # Every "t" item is indexed, as in the SDK: a bare "t" fails the header.
            timestamp = int([item[1] for item in items if item[0] == "t"][0])  # noqa: RUF015
            signatures = [item[1] for item in items if item[0] == "v1"]
        except (IndexError, ValueError):
            raise WebhookSignatureError(
                "unable to extract timestamp and signatures from the header"
            ) from None
        if not signatures:
            raise WebhookSignatureError("no signatures found with expected scheme v1")
        try:
            key = self._webhook_secret.encode()
        except UnicodeEncodeError:  # (from None: the error's text holds the secret)
            raise WebhookSignatureError("the webhook_secret is not valid text") from None
        expected = hmac.new(key, f"{timestamp:d}.{text}".encode(), hashlib.sha256).hexdigest()
        if not signature_matches(expected, signatures):
            raise WebhookSignatureError(
                "no signatures found matching the expected signature for payload"
            )
        if tolerance and timestamp < self._clock() - tolerance:
            raise WebhookSignatureError("the timestamp is outside the tolerance zone")

    # ------------------------------------------------------------- internals

    def _get(self, intent_id: str) -> _Intent:
        intent = self._intents.get(intent_id)
        if intent is None:
            raise NotFoundError("payment_intent", intent_id)
        return intent

    def _charge_id(self) -> str:
        return f"ch_fake{next(self._ids):06d}"

    def _set(self, intent: _Intent, **changes: Any) -> IntentSnapshot:
        intent.snapshot = evolve(intent.snapshot, **changes)
        return intent.snapshot

    def _succeed(self, intent: _Intent, *, async_ok: bool = False) -> IntentSnapshot:
        snap = intent.snapshot
        charge = snap.latest_charge if async_ok and snap.latest_charge else self._charge_id()
        if snap.capture_method == "manual":
            done = self._set(
                intent,
                status="requires_capture",
                amount_capturable=snap.amount,
                latest_charge=charge,
                capture_before=int(self._clock()) + AUTHORIZATION_WINDOW,
            )
            self._emit("payment_intent.amount_capturable_updated", done)
            return done
        done = self._set(
            intent, status="succeeded", amount_received=snap.amount, latest_charge=charge
        )
        self._emit("payment_intent.succeeded", done)
        return done

    def _fail(
        self, intent: _Intent, code: str, decline_code: str | None, *, same_charge: bool = False
    ) -> IntentSnapshot:
        """A failed attempt. ``same_charge``: the attempt's charge already exists
        (an asynchronous payment failing at the bank fails its pending charge)."""
        snap = intent.snapshot
        charge = snap.latest_charge if same_charge and snap.latest_charge else self._charge_id()
        error = PaymentFailure(code, decline_code, "The payment failed.", charge)
        snap = self._set(
            intent, status="requires_payment_method", last_payment_error=error, latest_charge=charge
        )
        self._emit("payment_intent.payment_failed", snap)
        return snap

    def _refund(self, intent: _Intent, amount: int | None, reason: str | None) -> RefundSnapshot:
        snap = intent.snapshot
        check_intent_operation("refund", snap.status, intent_id=snap.id)
        if any(d.status in _WITHDRAWN for d in intent.disputes):
            raise InvalidRequestError(
                f"Charge {snap.latest_charge} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        remaining = snap.amount_received - sum(
            r.amount for r in intent.refunds if r.status != "failed"
        )
        wanted = remaining if amount is None else amount
        if remaining <= 0:
            raise InvalidRequestError(
                "Charge has already been refunded.", param="amount", code="charge_already_refunded"
            )
        if wanted <= 0 or wanted > remaining:
            raise InvalidRequestError(
                f"Refund amount ({wanted}) is greater than unrefunded amount "
                f"on charge ({remaining})",
                param="amount",
                code="amount_too_large",
            )
        refund = RefundSnapshot(
            f"re_fake{next(self._ids):06d}", snap.id, wanted, snap.currency, "succeeded", reason
        )
        intent.refunds.append(refund)
        self._emit_refund(refund, intent)
        return refund

    def _idempotent(
        self,
        method: str,
        operation: str,
        intent_id: str | None,
        params: dict[str, Any],
        key: str,
        run: Callable[[], R],
    ) -> R:
        fingerprint = json.dumps([operation, intent_id, params], sort_keys=True, default=str)
        with self._lock:
            cached = self._idempotency.get(key)
            self.requests.append(
                FakeRequest(method, operation, intent_id, params, key, replayed=cached is not None)
            )
            if cached is not None:
                first, outcome = cached
                if first != fingerprint:
                    raise IdempotencyError(
                        f"Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with ({key})",
                        http_status=400,
                    )
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome  # type: ignore[return-value]
            try:
                result = run()
            except (IllegalStateError, CardDeclinedError, InvalidRequestError) as exc:
                self._idempotency[key] = (fingerprint, exc)
                raise
            self._idempotency[key] = (fingerprint, result)
            return result

    def _emit(self, event_type: str, snap: IntentSnapshot) -> None:
        obj: dict[str, Any] = {
            "id": snap.id,
            "object": "payment_intent",
            "amount": snap.amount,
            "amount_capturable": snap.amount_capturable,
            "amount_received": snap.amount_received,
            "capture_method": snap.capture_method,
            "currency": snap.currency,
            "created": snap.created,
            "livemode": snap.livemode,
            "metadata": dict(snap.metadata),
            "status": snap.status,
            "latest_charge": snap.latest_charge,
            "payment_method": snap.payment_method,
            "cancellation_reason": snap.cancellation_reason,
            "last_payment_error": None,
            "next_action": None,
        }
        if snap.next_action is not None:
            kind = snap.next_action.type
            body = {"url": snap.next_action.redirect_url} if snap.next_action.redirect_url else {}
            obj["next_action"] = {"type": kind, kind: body}
        if snap.last_payment_error is not None:
            err = snap.last_payment_error
            obj["last_payment_error"] = {
                "code": err.code,
                "decline_code": err.decline_code,
                "message": err.message,
                "charge": err.charge,
            }
        self._append_event(event_type, obj)

    @staticmethod
    def _refund_object(refund: RefundSnapshot, intent: _Intent) -> dict[str, Any]:
        return {
            "id": refund.id,
            "object": "refund",
            "amount": refund.amount,
            "currency": refund.currency,
            "payment_intent": refund.payment_intent_id,
            "status": refund.status,
            "reason": refund.reason,
            "failure_reason": refund.failure_reason,
            "charge": intent.snapshot.latest_charge,
        }

    def _dispute_object(self, dispute: DisputeSnapshot, moves: int) -> dict[str, Any]:
        """A Dispute as Stripe sends it; ``moves``: its balance transactions (1: the
        funds withdrawn, 2: and reinstated)."""
        now = int(self._clock())
        withdrawn = [
            {
                "id": f"txn_fake{dispute.id[7:]}{n}",
                "object": "balance_transaction",
                "amount": -dispute.amount if n == 0 else dispute.amount,
                "currency": dispute.currency,
                "reporting_category": "dispute" if n == 0 else "dispute_reversal",
                "source": dispute.id,
                "type": "adjustment",
            }
            for n in range(moves)
        ]
        return {
            "id": dispute.id,
            "object": "dispute",
            "amount": dispute.amount,
            "balance_transactions": withdrawn,
            "charge": dispute.charge,
            "created": now,
            "currency": dispute.currency,
            "evidence": {},
            "evidence_details": {
                "due_by": now + 7 * 24 * 3600,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": self.livemode,
            "metadata": {},
            "payment_intent": dispute.payment_intent_id,
            "reason": dispute.reason,
            "status": dispute.status,
        }

    def _emit_refund(self, refund: RefundSnapshot, intent: _Intent) -> None:
        self._append_event("refund.created", self._refund_object(refund, intent))
        charge = {
            "id": intent.snapshot.latest_charge,
            "object": "charge",
            "amount": intent.snapshot.amount_received,
            "amount_refunded": sum(r.amount for r in intent.refunds if r.status == "succeeded"),
            "currency": refund.currency,
            "payment_intent": refund.payment_intent_id,
            "refunded": False,
        }
        self._append_event("charge.refunded", charge)

    def _append_event(self, event_type: str, obj: dict[str, Any]) -> None:
        # Stripe's layout: "id" and "object" first, the other keys in alphabetical
        # order (so "type" is last), which handle_webhook's duplicate check reads.
        self._events.append(
            {
                "id": f"evt_fake{next(self._ids):06d}",
                "object": "event",
                "api_version": STRIPE_API_VERSION,
                "created": int(self._clock()),
                "data": {"object": obj},
                "livemode": self.livemode,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )


def _create_params(params: IntentParams) -> dict[str, Any]:
    return {
        "amount": params.amount,
        "currency": params.currency,
        **create_body(params.options, flat=True),
    }
