"""What to send: intent parameters from a cart, the diff for an update, and the
idempotency keys. Pure functions; the façade calls them, the gateways never do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ._errors import ValidationError
from ._models import Cart, IntentOptions, IntentParams
from ._money import check_amount, get_currency, maximum_amount
from ._options import FIELDS
from ._ports import IntentChanges
from ._rules import check_fee_within

__all__ = ["amount_maximum", "idempotency_key", "intent_changes", "intent_params", "takes_cards"]

MAX_KEY_LENGTH = 255


def takes_cards(options: IntentOptions) -> bool:
    """Whether an intent with ``options`` may be paid by card (Stripe's card limits
    apply): unless its payment method types are listed without ``card``."""
    types = options.allowed_payment_method_types
    return types is None or "card" in types


def amount_maximum(
    currency: str, options: IntentOptions, ceilings: Mapping[str, int] | None = None
) -> int:
    """The largest amount an intent in ``currency`` with ``options`` may take:
    Stripe's limit for the methods it may be paid with, or the host's ceiling."""
    return maximum_amount(currency, cards=takes_cards(options), ceilings=ceilings)


def intent_params(
    cart: Cart, options: IntentOptions, *, ceilings: Mapping[str, int] | None = None
) -> IntentParams:
    """The parameters an intent for ``cart`` must carry; the amount is the cart's
    total (items + shipping + tax + fees − discounts).

    Raises ``ValidationError`` (field ``amount``) for an empty cart or a total
    Stripe would refuse: below zero, below the currency's minimum charge, off the
    currency's step, or above its limit in the currency for the methods the
    intent may take (or above the host's ``ceilings``).
    """
    if not cart.items:
        raise ValidationError("items", "non_empty", f"cart {cart.id} has no items")
    total = cart.total
    maximum = amount_maximum(cart.currency, options, ceilings)
    if total > maximum:
        raise ValidationError(
            "amount", "maximum", f"cart total {total} {cart.currency} exceeds {maximum}"
        )
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
    check_amount(total, cart.currency, maximum=maximum)
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
        elif option.name == "transfer_group" and before is not None:
            raise ValidationError(
                option.name, "set_once", "Stripe sets it once; create a new intent instead"
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
