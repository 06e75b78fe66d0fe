"""Input rules checked before anything is sent or written (docs/design.md, rule 11).

Each check raises :class:`~cartpay.ValidationError` naming the field and the rule.
The limits are Stripe's (docs/stripe.md, sections 4 and 5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from ._errors import ValidationError
from ._money import check_amount

__all__ = [
    "CANCEL_REASONS",
    "REFUND_REASONS",
    "check_description",
    "check_encodable",
    "check_metadata",
    "check_quantity",
    "check_reason",
    "check_record_id",
    "check_statement_descriptor_suffix",
    "check_text",
    "check_url",
]

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 1000
MAX_DESCRIPTOR_LENGTH = 22
MAX_QUANTITY = 10_000
MAX_ID_LENGTH = 255
DESCRIPTOR_FORBIDDEN = frozenset("<>\\'\"*")

CANCEL_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer", "abandoned"})
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
CAPTURE_METHODS = frozenset({"automatic", "automatic_async", "manual"})
FUTURE_USAGES = frozenset({"on_session", "off_session"})

# Used with fullmatch: "$" would let one trailing newline through.
_ID = re.compile(r"[A-Za-z0-9_\-]{1,255}")  # (ASCII: no NUL, no surrogate)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PM_TYPE = re.compile(r"[a-z][a-z0-9_]{0,49}")
#: An absolute URL (a web page or an app's own scheme), nothing blank in it.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/]+\S*")


def check_encodable(field: str, value: str) -> str:
    """Text every store and Stripe can take: no NUL character (PostgreSQL text
    refuses it) and no lone surrogate (it has no UTF-8 form: SQLite, PostgreSQL
    and the form encoding of a Stripe request all fail on it)."""
    if "\x00" in value:
        raise ValidationError(field, "no_nul", "must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            field, "encodable", f"has a lone surrogate at position {exc.start}; not valid Unicode"
        ) from None
    return value


def check_record_id(field: str, value: object) -> str:
    """A cart or order id to look up: a str a store can compare (see
    :func:`check_encodable`) of at most 255 characters (ids cartpay makes are 37)."""
    if not isinstance(value, str):
        raise ValidationError(field, "type", "must be a str")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(
            field, "max_length", f"{len(value)} characters exceeds {MAX_ID_LENGTH}"
        )
    return check_encodable(field, value)


def check_text(field: str, value: object, *, max_length: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "type", f"must be a str, got {type(value).__name__}")
    check_encodable(field, value)
    if not value.strip() and not allow_empty:
        raise ValidationError(field, "non_empty", "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, "max_length", f"{len(value)} characters exceeds {max_length}")
    return value


def check_id(field: str, value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationError(field, "id", f"{value!r} is not a valid id")
    return value


def check_url(field: str, value: object, *, max_length: int = 2048) -> str:
    """An absolute URL with a scheme and a host (``https://…``, ``myapp://…``)."""
    check_text(field, value, max_length=max_length)
    assert isinstance(value, str)
    if not _URL.fullmatch(value):
        raise ValidationError(field, "url", f"{value!r} is not an absolute URL")
    return value


def check_quantity(quantity: object, *, field: str = "quantity", allow_zero: bool = False) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationError(field, "integer", f"must be an int, got {type(quantity).__name__}")
    if quantity < 0 or (quantity == 0 and not allow_zero):
        raise ValidationError(field, "positive", f"must be positive, got {quantity}")
    if quantity > MAX_QUANTITY:
        raise ValidationError(field, "maximum", f"{quantity} exceeds {MAX_QUANTITY}")
    return quantity


def _check_length(field: str, what: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise ValidationError(
            field, f"{what}_length", f"{what} of {len(text)} characters exceeds {limit}"
        )


def check_metadata(metadata: object, *, field: str = "metadata") -> dict[str, str]:
    """≤ 50 keys; keys ≤ 40 characters without ``[`` or ``]``; values ≤ 500 characters."""
    if not isinstance(metadata, Mapping):
        raise ValidationError(field, "type", "must be a mapping of str to str")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValidationError(
            field, "max_keys", f"{len(metadata)} keys exceeds Stripe's {MAX_METADATA_KEYS}"
        )
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(field, "key_type", f"key {key!r} must be a non-empty str")
        check_encodable(f"{field}[{key[:40].encode('unicode_escape').decode('ascii')}]", key)
        _check_length(f"{field}[{key[:40]}…]", "key", key, MAX_METADATA_KEY_LENGTH)
        if "[" in key or "]" in key:
            raise ValidationError(f"{field}[{key}]", "key_brackets", "keys may not contain [ or ]")
        if not isinstance(value, str):
            raise ValidationError(
                f"{field}[{key}]", "value_type", f"must be a str, got {type(value).__name__}"
            )
        check_encodable(f"{field}[{key}]", value)
        _check_length(f"{field}[{key}]", "value", value, MAX_METADATA_VALUE_LENGTH)
    return dict(metadata)


def check_statement_descriptor_suffix(
    value: object, *, field: str = "statement_descriptor_suffix"
) -> str:
    """Latin characters, ≤ 22, none of ``< > \\ ' " *``, at least one letter."""
    text = check_text(field, value, max_length=MAX_DESCRIPTOR_LENGTH)
    bad = sorted(set(text) & DESCRIPTOR_FORBIDDEN)
    if bad:
        raise ValidationError(field, "forbidden_characters", f"may not contain {''.join(bad)!r}")
    if not text.isascii() or not text.isprintable():
        raise ValidationError(field, "latin", "must be printable Latin (ASCII) characters")
    if not any(ch.isalpha() for ch in text):
        raise ValidationError(field, "letter", "must contain at least one letter")
    return text


def check_description(value: object, *, field: str = "description") -> str:
    return check_text(field, value, max_length=MAX_DESCRIPTION_LENGTH)


def check_reason(value: object, allowed: frozenset[str], *, field: str = "reason") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field, "choice", f"{value!r} is not one of {sorted(allowed)}")
    return value


def check_fee_within(amount: int, currency: str, fee: int | None) -> None:
    """The application fee may not exceed the amount charged."""
    check_amount(amount, currency)
    if fee is not None and fee > amount:
        raise ValidationError(
            "application_fee_amount", "maximum", f"{fee} exceeds the amount {amount}"
        )


def check_reconcile_policy(
    older_than: object,
    limit: object,
    abandon_after: object,
    refund_orphans: object,
    expiring_within: object,
) -> None:
    """``reconcile``'s arguments (``ValidationError`` naming the first bad one):
    also checked where a schedule is set up, so a bad setting fails at start-up,
    not at every run."""
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise ValidationError("older_than", "type", "must be a non-negative timedelta")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit", "positive", "must be a positive int")
    if abandon_after is not None and (
        not isinstance(abandon_after, timedelta) or abandon_after < older_than
    ):
        raise ValidationError(
            "abandon_after", "range", "must be a timedelta of at least older_than, or None"
        )
    if not isinstance(refund_orphans, bool):
        raise ValidationError("refund_orphans", "type", "must be a bool")
    if expiring_within is not None and (
        not isinstance(expiring_within, timedelta) or expiring_within < timedelta(0)
    ):
        raise ValidationError(
            "expiring_within", "range", "must be a non-negative timedelta, or None"
        )
