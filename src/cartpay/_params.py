"""What to send: intent parameters from a cart, the diff for an update, and the
idempotency keys. Pure functions; the façade calls them, the gateways never do.
"""

from __future__ import annotations

from ._errors import ValidationError
from ._models import Cart, IntentOptions, IntentParams
from ._money import MAX_AMOUNT, check_amount
from ._ports import IntentChanges
from ._rules import check_fee_within

__all__ = ["idempotency_key", "intent_changes", "intent_params"]

MAX_KEY_LENGTH = 255


def intent_params(cart: Cart, options: IntentOptions) -> IntentParams:
    """The parameters an intent for ``cart`` must carry; the amount is the cart's total.

    Raises ``ValidationError`` for an empty cart or an amount Stripe would refuse.
    """
    if not cart.items:
        raise ValidationError("items", "non_empty", f"cart {cart.id} has no items")
    total = cart.total
    if total > MAX_AMOUNT:
        raise ValidationError("amount", "maximum", f"cart total {total} exceeds {MAX_AMOUNT}")
    check_amount(total, cart.currency)
    check_fee_within(total, cart.currency, options)
    return IntentParams(total, cart.currency, options)


# Fields an update may send (``automatic_payment_methods`` and
# ``transfer_destination`` are create-only in stripe 16's update params).
_UPDATABLE = (
    "description",
    "statement_descriptor_suffix",
    "receipt_email",
    "setup_future_usage",
    "customer",
    "capture_method",
    "application_fee_amount",
)
_CREATE_ONLY = ("automatic_payment_methods", "allow_redirects", "transfer_destination")


def intent_changes(sent: IntentParams, wanted: IntentParams) -> IntentChanges:
    """The fields of ``wanted`` that differ from what was ``sent`` (empty: no call)."""
    changes: IntentChanges = {}
    if wanted.amount != sent.amount:
        changes["amount"] = wanted.amount
    if wanted.currency != sent.currency:
        changes["currency"] = wanted.currency
    old, new = sent.options, wanted.options
    for name in _CREATE_ONLY:
        if getattr(old, name) != getattr(new, name):
            raise ValidationError(name, "create_only", "can only be set when the intent is created")
    for name in _UPDATABLE:
        before, after = getattr(old, name), getattr(new, name)
        if after != before:
            if after is None:
                raise ValidationError(
                    name, "unset", "cannot be removed once sent; create a new intent instead"
                )
            changes[name] = after  # type: ignore[literal-required]
    if new.allowed_payment_method_types != old.allowed_payment_method_types:
        if new.allowed_payment_method_types is None:
            raise ValidationError("allowed_payment_method_types", "unset", "cannot be removed")
        changes["allowed_payment_method_types"] = list(new.allowed_payment_method_types)
    if new.excluded_payment_method_types != old.excluded_payment_method_types:
        changes["excluded_payment_method_types"] = list(new.excluded_payment_method_types or ())
    if new.metadata != old.metadata:
        diff = {k: v for k, v in new.metadata.items() if old.metadata.get(k) != v}
        diff.update({k: "" for k in old.metadata if k not in new.metadata})
        changes["metadata"] = diff
    return changes


def idempotency_key(*parts: object) -> str:
    """``cartpay:<part>:<part>…``; built from ids and counters only, never personal data."""
    key = "cartpay:" + ":".join(str(p) for p in parts)
    if len(key) > MAX_KEY_LENGTH:  # pragma: no cover - ids are short
        raise ValidationError("idempotency_key", "max_length", f"{len(key)} > {MAX_KEY_LENGTH}")
    return key
