# mypy: disable-error-code="func-returns-value"
"""Writing records: every store write the flows make goes through here.

Two helpers carry the optimistic-concurrency mechanics once (docs/design.md,
"Claim → call → record"):

- :func:`retry` runs a unit of work in a fresh transaction and, when a version
  check fails (``ConcurrencyError``), rolls the whole unit back and runs it again
  on fresh reads. Nothing a losing pass wrote is ever committed.
- :func:`save` writes one record over the version it was read at, and only when
  it changed: the next version number is computed here, nowhere else.

Like every function of the I/O shell, they are flows (:mod:`cartpay._effects`):
``yield from`` them inside another flow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from attrs import evolve

from ._effects import Flow, Transaction
from ._errors import ConcurrencyError, NotFoundError, ValidationError
from ._models import Cart, IntentRecord, Order
from ._ports import StoreReads, StoreTransaction
from ._rules import check_record_id

__all__ = ["RACE_RETRIES", "read_cart", "read_intent", "read_order", "retry", "save", "until"]

#: How many times a unit of work that lost a version race is re-read and re-run.
RACE_RETRIES = 20

T = TypeVar("T")
R = TypeVar("R", Cart, Order, IntentRecord)


def retry(store: object, work: Callable[[StoreTransaction], Flow[T]], what: str) -> Flow[T]:
    """``work(tx)`` committed in one transaction; re-run from scratch (after a
    rollback) when it lost a version race. Raises ``ConcurrencyError`` naming
    ``what`` after :data:`RACE_RETRIES` lost races."""
    for _ in range(RACE_RETRIES):
        try:
            done: T = yield Transaction(store, work)
            return done
        except ConcurrencyError:
            continue
    raise ConcurrencyError(f"{what} kept changing; try again")


def save(tx: StoreTransaction, before: R, after: R) -> Flow[R]:
    """Write ``after`` over ``before`` (as read in ``tx``) with the version check;
    no write when nothing changed. Returns what is stored now."""
    if after is before or after == before:
        return before
    stored = evolve(after, version=before.version + 1)
    if isinstance(stored, Cart):
        yield tx.update_cart(stored, expected_version=before.version)
    elif isinstance(stored, Order):
        yield tx.update_order(stored, expected_version=before.version)
    else:
        yield tx.update_intent(stored, expected_version=before.version)
    return stored


def read_cart(tx: StoreReads, cart_id: str) -> Flow[Cart]:
    """The cart, or ``NotFoundError``."""
    return _found("cart", cart_id, tx.get_cart)


def read_order(tx: StoreReads, order_id: str) -> Flow[Order]:
    """The order, or ``NotFoundError``."""
    return _found("order", order_id, tx.get_order)


def read_intent(tx: StoreReads, intent_id: str) -> Flow[IntentRecord]:
    """The intent record, or ``NotFoundError``."""
    return _found("intent", intent_id, tx.get_intent)


def _found(kind: str, key: object, get: Callable[[str], T | None]) -> Flow[T]:
    if not isinstance(key, str):
        raise ValidationError(f"{kind}_id", "type", "must be a str")
    check_record_id(f"{kind}_id", key)  # an id no store could even look up
    found: T | None = yield get(key)
    if found is None:
        raise NotFoundError(kind, key)
    return found


def until(attempt: Callable[[], Flow[T | None]], what: str, *, tries: int | None = None) -> Flow[T]:
    """Run the flow ``attempt()`` until it returns a value: each ``None`` means "the
    records moved on (or are claimed): re-read and decide again". ``tries`` bounds
    the attempts (``ConcurrencyError`` naming ``what``); ``None`` leaves the bound
    to the claims' deadline."""
    n = 0
    while True:
        result = yield from attempt()
        if result is not None:
            return result
        n += 1
        if tries is not None and n >= tries:
            raise ConcurrencyError(f"{what} kept changing; try again")
