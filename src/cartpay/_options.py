"""Intent options: what a host may set on an intent besides the amount.

Every option is declared once, in :data:`FIELDS`, with its Stripe name and
whether an update may change it; the update diff (``_params``), the Stripe
gateway's request bodies and the fake's records are derived from that table.
Adding an option means adding its field to :class:`IntentOptions`, its row to
:data:`FIELDS` and its check to ``_check``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from attrs import field, frozen

from . import _rules
from ._errors import ValidationError
from ._money import CARD_MAXIMUM

__all__ = [
    "FIELDS",
    "NO_REDIRECT_TYPES",
    "CaptureMethod",
    "IntentOptions",
    "Metadata",
    "OptionField",
    "create_body",
    "may_redirect",
]

CaptureMethod = Literal["automatic", "automatic_async", "manual"]


class Metadata(Mapping[str, str]):
    """A read-only mapping of metadata: equal to a dict with the same items,
    hashable and picklable, and nobody who holds it can change it."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, str] = dict(items or {})

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        # (Mapping's own __eq__ builds two dicts per comparison; options are
        # compared on every save, by cattrs' omit-if-default check.)
        if isinstance(other, Metadata):
            return self._items == other._items
        if isinstance(other, dict):
            return self._items == other
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self) -> tuple[type[Metadata], tuple[dict[str, str]]]:
        return (Metadata, (self._items,))


def _metadata(value: object) -> Mapping[str, str]:
    """A read-only copy: the options' metadata cannot change after validation,
    whoever holds the object (a returned cart, a store's cache)."""
    if value is not None and not isinstance(value, Mapping):
        return value  # type: ignore[return-value]  # rejected by _rules.check_metadata
    return value if isinstance(value, Metadata) else Metadata(value)


def _str_tuple(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        return (value,)  # type: ignore[return-value]  # rejected by the validator
    return tuple(value)


@frozen(kw_only=True)
class IntentOptions:
    """What a host may set on an intent besides the amount, validated on construction.

    Only the fields that are set are sent to Stripe. ``automatic_payment_methods``
    is create-only; ``allowed_payment_method_types`` and
    ``excluded_payment_method_types`` exclude each other and the former excludes
    ``automatic_payment_methods``. ``payment_method_types`` does not exist: the
    API version stripe 16.x pins refuses it.
    """

    capture_method: CaptureMethod | None = None
    automatic_payment_methods: bool | None = None
    allow_redirects: Literal["always", "never"] | None = None
    allowed_payment_method_types: tuple[str, ...] | None = field(default=None, converter=_str_tuple)
    excluded_payment_method_types: tuple[str, ...] | None = field(
        default=None, converter=_str_tuple
    )
    customer: str | None = None
    description: str | None = None
    statement_descriptor_suffix: str | None = None
    setup_future_usage: Literal["on_session", "off_session"] | None = None
    receipt_email: str | None = None
    metadata: Mapping[str, str] = field(factory=dict, converter=_metadata)
    application_fee_amount: int | None = None
    transfer_destination: str | None = None
    on_behalf_of: str | None = None
    transfer_group: str | None = None

    def __attrs_post_init__(self) -> None:
        _check(self)


def _check_pm_types(field: str, types: tuple[str, ...]) -> None:
    if not types:
        raise ValidationError(field, "non_empty", "must list at least one payment method type")
    for value in types:
        if not isinstance(value, str) or not _rules.PM_TYPE.fullmatch(value):
            raise ValidationError(field, "payment_method_type", f"{value!r} is not a type name")


def _check_choice(field: str, value: object, choices: frozenset[str]) -> None:
    if value is not None and not (isinstance(value, str) and value in choices):
        # (isinstance first: a list would not even hash)
        raise ValidationError(field, "choice", f"{value!r} is not one of {sorted(choices)}")


def _check(options: IntentOptions) -> None:
    """Validate every field of :class:`~cartpay.IntentOptions` and their combinations."""
    _check_choice("capture_method", options.capture_method, _rules.CAPTURE_METHODS)
    _check_choice("setup_future_usage", options.setup_future_usage, _rules.FUTURE_USAGES)
    if options.automatic_payment_methods is not None and not isinstance(
        options.automatic_payment_methods, bool
    ):
        raise ValidationError("automatic_payment_methods", "type", "must be a bool")
    if options.allow_redirects not in (None, "always", "never"):
        raise ValidationError("allow_redirects", "choice", "must be 'always' or 'never'")
    if options.allow_redirects is not None and not options.automatic_payment_methods:
        raise ValidationError("allow_redirects", "requires", "needs automatic_payment_methods=True")
    if options.allowed_payment_method_types is not None:
        _check_pm_types("allowed_payment_method_types", options.allowed_payment_method_types)
        if options.excluded_payment_method_types is not None:
            raise ValidationError(
                "allowed_payment_method_types",
                "exclusive",
                "cannot be combined with excluded_payment_method_types",
            )
        if options.automatic_payment_methods:
            raise ValidationError(
                "allowed_payment_method_types",
                "exclusive",
                "cannot be combined with automatic_payment_methods",
            )
    if options.excluded_payment_method_types is not None:
        _check_pm_types("excluded_payment_method_types", options.excluded_payment_method_types)
    if options.customer is not None:
        _rules.check_id("customer", options.customer)
    if options.description is not None:
        _rules.check_description(options.description)
    if options.statement_descriptor_suffix is not None:
        _rules.check_statement_descriptor_suffix(options.statement_descriptor_suffix)
    if options.receipt_email is not None:
        email = _rules.check_text("receipt_email", options.receipt_email, max_length=512)
        if not _rules.EMAIL.fullmatch(email):
            raise ValidationError("receipt_email", "email", "is not an email address")
    _rules.check_metadata(options.metadata)
    if options.application_fee_amount is not None:
        fee = options.application_fee_amount
        if isinstance(fee, bool) or not isinstance(fee, int):
            raise ValidationError(
                "application_fee_amount", "integer", "must be an int in minor units"
            )
        if fee < 0 or fee > CARD_MAXIMUM:  # (at most the amount: checked with the cart)
            raise ValidationError(
                "application_fee_amount", "range", f"must be between 0 and {CARD_MAXIMUM}"
            )
    if options.transfer_destination is not None:
        _rules.check_id("transfer_destination", options.transfer_destination)
    if options.on_behalf_of is not None:
        _rules.check_id("on_behalf_of", options.on_behalf_of)
    if options.transfer_group is not None:
        # An id-like key (Stripe documents no limit): held to an id's length.
        _rules.check_text("transfer_group", options.transfer_group, max_length=_rules.MAX_ID_LENGTH)


@frozen
class OptionField:
    """One option: its attribute, where it goes in Stripe's create body (a path:
    ``("transfer_data", "destination")``) and whether an update may change it."""

    name: str
    stripe: tuple[str, ...]
    updatable: bool


#: Every option, once. Create-only ones (``automatic_payment_methods``,
#: ``allow_redirects``, ``transfer_destination``, ``on_behalf_of``) are refused by
#: an update. ``transfer_group`` may be added by an update, not changed once sent
#: (Stripe sets it once; a change or removal raises ``ValidationError``).
FIELDS: tuple[OptionField, ...] = (
    OptionField("capture_method", ("capture_method",), True),
    OptionField("automatic_payment_methods", ("automatic_payment_methods", "enabled"), False),
    OptionField("allow_redirects", ("automatic_payment_methods", "allow_redirects"), False),
    OptionField("allowed_payment_method_types", ("allowed_payment_method_types",), True),
    OptionField("excluded_payment_method_types", ("excluded_payment_method_types",), True),
    OptionField("customer", ("customer",), True),
    OptionField("description", ("description",), True),
    OptionField("statement_descriptor_suffix", ("statement_descriptor_suffix",), True),
    OptionField("setup_future_usage", ("setup_future_usage",), True),
    OptionField("receipt_email", ("receipt_email",), True),
    OptionField("metadata", ("metadata",), True),
    OptionField("application_fee_amount", ("application_fee_amount",), True),
    OptionField("transfer_destination", ("transfer_data", "destination"), False),
    OptionField("on_behalf_of", ("on_behalf_of",), False),
    OptionField("transfer_group", ("transfer_group",), True),
)


def _wire(value: object) -> object:
    """An option's value as a request body holds it (lists for tuples, a dict copy)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def create_body(options: IntentOptions, *, flat: bool = False) -> dict[str, Any]:
    """The options that are set, keyed by Stripe's (nested) names, or by their own
    names when ``flat``. Unset options (``None``, empty metadata) are left out."""
    body: dict[str, Any] = {}
    for option in FIELDS:
        value = getattr(options, option.name)
        if value is None or (option.name == "metadata" and not value):
            continue
        if flat:
            body[option.name] = _wire(value)
            continue
        *parents, leaf = option.stripe
        node = body
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = _wire(value)
    return body


#: Payment method types whose confirm never sends the customer to another page
#: (a card's 3-D Secure runs in the browser through Stripe.js, or through the
#: ``return_url`` when given). Any other type may redirect.
NO_REDIRECT_TYPES = frozenset({"card"})


def may_redirect(options: IntentOptions) -> bool:
    """Whether an intent created with ``options`` may need a redirect on confirm,
    so that Stripe wants a ``return_url`` with a server-side confirm.

    Not when its types are listed and are all cards, nor with automatic payment
    methods whose redirects are ``"never"``. Otherwise yes: Stripe's default
    (no types) is automatic payment methods with redirects allowed, and a type
    cartpay does not know is taken as one that may redirect.
    """
    types = options.allowed_payment_method_types
    if types is not None:
        return not set(types) <= NO_REDIRECT_TYPES
    return not (options.automatic_payment_methods and options.allow_redirects == "never")
