"""What to send: intent parameters from a cart, the diff for an update, and the
idempotency keys. Pure functions; the façade calls them, the gateways never do.
"""

from __future__ import annotations

from typing import Any, cast

from ._errors import ValidationError
from ._models import Cart, IntentOptions, IntentParams
from ._money import MAX_AMOUNT, check_amount, get_currency
from ._options import FIELDS
from ._ports import IntentChanges
from ._rules import check_fee_within

__all__ = ["idempotency_key", "intent_changes", "intent_params"]

MAX_KEY_LENGTH = 255


def intent_params(cart: Cart, options: IntentOptions) -> IntentParams:
    """The parameters an intent for ``cart`` must carry; the amount is the cart's
    total (items + shipping + tax + fees − discounts).

    Raises ``ValidationError`` (field ``amount``) for an empty cart or a total
    Stripe would refuse: below zero, below the currency's minimum charge, above
    the maximum, or off the currency's step.
    """
    if not cart.items:
        raise ValidationError("items", "non_empty", f"cart {cart.id} has no items")
    total = cart.total
    if total > MAX_AMOUNT:
        raise ValidationError("amount", "maximum", f"cart total {total} exceeds {MAX_AMOUNT}")
    if cart.adjustments and total < get_currency(cart.currency).minimum:
        # Say where the total comes from: the items alone would have been charged.
        rule = "positive" if total <= 0 else "minimum"
        raise ValidationError(
            "amount",
            rule,
            f"cart total {total} {cart.currency} (items {cart.subtotal}, adjustments "
            f"{total - cart.subtotal:+}) is below Stripe's minimum charge "
            f"{get_currency(cart.currency).minimum}",
        )
    check_amount(total, cart.currency)
    check_fee_within(total, cart.currency, options.application_fee_amount)
    return IntentParams(total, cart.currency, options, cart.items, cart.adjustments)


def intent_changes(sent: IntentParams, wanted: IntentParams) -> IntentChanges:
    """The fields of ``wanted`` that differ from what was ``sent`` (empty: no call).

    Raises ``ValidationError`` for a create-only option that changed, and for an
    option that was sent and is now unset (Stripe cannot unset most of them)."""
    changes: dict[str, Any] = {}
    if wanted.amount != sent.amount:
        changes["amount"] = wanted.amount
    if wanted.currency != sent.currency:
        changes["currency"] = wanted.currency
    old, new = sent.options, wanted.options
    for option in FIELDS:
        before, after = getattr(old, option.name), getattr(new, option.name)
        if after == before:
            continue
        if not option.updatable:
            raise ValidationError(
                option.name, "create_only", "can only be set when the intent is created"
            )
        if option.name == "metadata":  # a removed key is sent as "" (Stripe unsets it)
            diff = {k: v for k, v in after.items() if before.get(k) != v}
            diff.update({k: "" for k in before if k not in after})
            changes["metadata"] = diff
        elif option.name == "excluded_payment_method_types":  # unset: no exclusions
            changes[option.name] = list(after or ())
        elif after is None:
            raise ValidationError(
                option.name, "unset", "cannot be removed once sent; create a new intent instead"
            )
        else:
            changes[option.name] = list(after) if isinstance(after, tuple) else after
    return cast("IntentChanges", changes)


def idempotency_key(*parts: object) -> str:
    """``cartpay:<part>:<part>…``; built from ids and counters only, never personal data."""
    key = "cartpay:" + ":".join(str(p) for p in parts)
    if len(key) > MAX_KEY_LENGTH:  # pragma: no cover - ids are short
        raise ValidationError("idempotency_key", "max_length", f"{len(key)} > {MAX_KEY_LENGTH}")
    return key
