"""The JSON form of the public models: :func:`to_json` and :func:`from_json`.

What a host returns from a web endpoint, puts on a queue or logs: plain dicts,
lists, strings, integers, booleans and ``None``, ready for ``json.dumps`` or any
framework's JSON response. Built on the one cattrs converter
(:func:`cartpay._converter.converter`, a copy of it, so the stores' full form is
unchanged): times are ISO 8601 strings in UTC (``2024-05-01T12:00:00Z``),
amounts integer minor units, tuples lists.

Each model's form is derived from its attrs fields, so a field added to a model
appears in its JSON form without a change here, less the model's
:attr:`Shape.internal` fields (the bookkeeping a client must never see or send
back: versions, claims, what was last sent, the client secret) plus its
:attr:`Shape.computed` properties (the amounts a client would otherwise compute,
e.g. ``Order.refundable``). :data:`SHAPES` is that table, one line per model.

:func:`from_json` turns the form back into the model: computed keys and unknown
keys are ignored, internal fields take their defaults, and a value of the wrong
type raises :class:`~cartpay.ValidationError` naming the field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._errors import ValidationError
from ._models import (
    Adjustment,
    Cart,
    DisputeSnapshot,
    ExpiringAuthorization,
    IntentHandle,
    IntentRecord,
    IntentSnapshot,
    LineItem,
    NextAction,
    Order,
    OrphanedIntent,
    PaymentFailure,
    ReconcileReport,
    RefundSnapshot,
    Transaction,
    WebhookResult,
)
from ._money import Currency
from ._options import IntentOptions

if TYPE_CHECKING:
    import cattrs

__all__ = ["SHAPES", "Shape", "from_json", "to_json"]

T = TypeVar("T")


@attrs.frozen
class Shape:
    """How one model's JSON form differs from its attrs fields.

    ``internal``: fields left out (and given their defaults by :func:`from_json`);
    ``computed``: read-only properties added after the fields; ``readable``:
    whether :func:`from_json` rebuilds the model (``False`` when an internal field
    has no default, e.g. a handle without its client secret means nothing).
    """

    internal: tuple[str, ...] = ()
    computed: tuple[str, ...] = ()
    readable: bool = True


#: The public models' JSON shapes. A model not listed here has no JSON form
#: (``IntentParams``, ``PendingOperation``: internal records).
SHAPES: dict[type[Any], Shape] = {
    Cart: Shape(
        internal=("version", "generation", "sent", "pending"), computed=("subtotal", "total")
    ),
    LineItem: Shape(computed=("amount",)),
    Adjustment: Shape(computed=("signed",)),
    Order: Shape(
        internal=("version", "pending"),
        computed=(
            "subtotal",
            "payment_intent_id",
            "captured",
            "authorized",
            "refunded",
            "disputed",
            "refundable",
        ),
    ),
    Transaction: Shape(),
    IntentOptions: Shape(),
    IntentHandle: Shape(internal=("client_secret",), readable=False),
    IntentSnapshot: Shape(internal=("client_secret", "next_action")),
    NextAction: Shape(internal=("redirect_url",)),  # (it may carry a one-time secret)
    IntentRecord: Shape(internal=("version", "snapshot")),
    PaymentFailure: Shape(),
    RefundSnapshot: Shape(),
    DisputeSnapshot: Shape(),
    ExpiringAuthorization: Shape(),
    WebhookResult: Shape(),
    OrphanedIntent: Shape(),
    ReconcileReport: Shape(),
    Currency: Shape(),
}


def _time_to_json(value: datetime) -> str:
    if value.tzinfo is None:  # cartpay's clock is UTC; a naive time is taken as UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _time_from_json(value: Any, _: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 time as a string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _exact(kind: type[Any]) -> Callable[[Any, Any], Any]:
    """A structure hook that takes ``kind`` as it is: JSON's ``"5"`` is no int."""

    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


@functools.cache
def _converter() -> cattrs.Converter:
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    from ._converter import converter

    built = converter().copy(omit_if_default=False, forbid_extra_keys=False)
    built.register_unstructure_hook(datetime, _time_to_json)
    built.register_structure_hook(datetime, _time_from_json)
    for kind in (int, str, bool):
        built.register_structure_hook(kind, _exact(kind))
    # Twice: a model's function binds the hooks of the models inside it as they
    # are when it is made (an IntentHandle's NextAction must be NextAction's shape).
    for cls, shape in [*SHAPES.items(), *SHAPES.items()]:
        hidden = {name: override(omit=True) for name in shape.internal}
        plain = make_dict_unstructure_fn(cls, built, **hidden)  # type: ignore[arg-type]

        def unstructure(
            value: Any, plain: Callable[[Any], dict[str, Any]] = plain, shape: Shape = shape
        ) -> dict[str, Any]:
            out = plain(value)
            for name in shape.computed:
                out[name] = built.unstructure(getattr(value, name))
            return out

        built.register_unstructure_hook(cls, unstructure)
        built.register_structure_hook(
            cls,
            make_dict_structure_fn(cls, built, **hidden),  # type: ignore[arg-type]
        )
    return built


def to_json(model: Any, *, include_client_secret: bool = False) -> dict[str, Any]:
    """The JSON form of a public model (a dict of JSON values), for a web answer,
    a queue or a log line.

    Times are ISO 8601 strings in UTC, amounts integer minor units, tuples lists.
    Internal fields are left out (versions, claims, what was last sent, client
    secrets) and the computed amounts are added: ``Cart.total``,
    ``LineItem.amount``, ``Order.captured``/``authorized``/``refunded``/
    ``refundable`` and ``Order.payment_intent_id`` (:data:`SHAPES` lists them
    per model).

    ``include_client_secret=True`` keeps an :class:`~cartpay.IntentHandle`'s
    client secret: only for the answer that hands it to the customer's browser,
    never for a log.

    >>> from cartpay import Cart, LineItem
    >>> cart = Cart("cart_1", "usd", items=(LineItem("tee", "T-shirt", 2500, 2),))
    >>> data = to_json(cart)
    >>> data["total"], data["created_at"], "version" in data
    (5000, None, False)

    Raises ``TypeError`` for anything that is not a model of :data:`SHAPES`.
    """
    shape = SHAPES.get(type(model))
    if shape is None:
        raise TypeError(f"{type(model).__name__} has no JSON form")
    out: dict[str, Any] = _converter().unstructure(model)
    if include_client_secret and isinstance(model, IntentHandle):
        out["client_secret"] = model.client_secret
    return out


def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """The model ``cls`` from its :func:`to_json` form (or a client's JSON of it).

    Keys of computed amounts and unknown keys are ignored (the amounts follow
    from the fields); internal fields take their defaults (a cart or order
    rebuilt here is a value to read, not a record to save: the store's copy is
    the one to change). Types are taken strictly (``"5"`` is no amount); a value
    that does not fit raises :class:`~cartpay.ValidationError` whose ``field`` is
    the path of the first bad value (e.g. ``items[0].quantity``). Business rules
    (a positive amount, a known currency) are the façade's, checked when the
    data is used.

    >>> from cartpay import Order
    >>> order = from_json(Order, {"id": "ord_1", "cart_id": "cart_1", "currency": "usd",
    ...     "total": 5000, "items": [], "intent_id": None, "status": "incomplete"})
    >>> order.total, order.payment
    (5000, 'unpaid')
    """
    shape = SHAPES.get(cls)
    if shape is None or not shape.readable:
        raise TypeError(f"{getattr(cls, '__name__', cls)} cannot be read from JSON")
    if not isinstance(data, Mapping):
        raise ValidationError("data", "object", f"must be a JSON object, not {type(data).__name__}")
    import cattrs

    try:
        return _converter().structure(dict(data), cls)
    except ValidationError:
        raise  # a model's own check (IntentOptions): it names its field
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        raise _invalid(exc) from None


def _invalid(exc: Exception) -> ValidationError:
    import cattrs

    if isinstance(exc, cattrs.BaseValidationError):
        own = _own_error(exc)
        if own is not None:
            return own  # a model's own check (IntentOptions): it names its field
        messages = cattrs.transform_error(exc, path="")
        first = messages[0] if messages else str(exc)
        text, _, where = first.rpartition(" @ ")
        name = where.lstrip("$.").lstrip(".") or "data"
        rule = "required" if "required field missing" in first else "type"
        return ValidationError(name, rule, text or first)
    return ValidationError("data", "type", str(exc))


def _own_error(exc: BaseException) -> ValidationError | None:
    if isinstance(exc, ValidationError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _own_error(inner)
        if found is not None:
            return found
    return None
