# mypy: disable-error-code="func-returns-value"
"""Claims: the pending operation recorded before every gateway call.

Every call that makes Stripe act follows claim → call → record
(docs/design.md, "Claim → call → record"):

1. **claim** — in one short transaction, record the operation (its idempotency
   key, what it sends, a lease) on the cart or order it acts for;
2. **call** — the gateway, with no transaction or lock held; a failure releases
   the claim: for good when the outcome is definite, as an expired lease when it
   is unknown (under a new key when Stripe stored a server error under the old);
3. **record** — the caller writes the outcome and clears the claim
   (:mod:`cartpay._outcomes`).

The replay rule lives here once: an expired claim is only ever taken again as
itself (the same operation and arguments, its own key); any other claim on that
record is refused with ``OperationPendingError`` until the unknown outcome is
settled (docs/money.md, "Unknown outcomes").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, Literal, TypeVar, cast

from attrs import evolve, frozen

from ._effects import Flow, Sleep, Transaction
from ._errors import CartpayError, ConcurrencyError, GatewayError, OperationPendingError
from ._models import Cart, Order, PendingOperation
from ._ports import StoreReads, StoreTransaction
from ._records import read_cart, read_order, retry, save

__all__ = ["Claims", "Ref", "released", "replays"]

log = logging.getLogger("cartpay")

C = TypeVar("C", Cart, Order)
T = TypeVar("T")


@frozen
class Ref(Generic[C]):
    """Which record a claim is held on: a cart or an order, by id."""

    kind: Literal["cart", "order"]
    id: str

    @staticmethod
    def cart(cart_id: str) -> Ref[Cart]:
        return Ref("cart", cart_id)

    @staticmethod
    def order(order_id: str) -> Ref[Order]:
        return Ref("order", order_id)

    def get(self, tx: StoreReads) -> Flow[C | None]:
        found = yield (tx.get_cart(self.id) if self.kind == "cart" else tx.get_order(self.id))
        return cast("C | None", found)

    def read(self, tx: StoreReads) -> Flow[C]:
        found = yield from (
            read_cart(tx, self.id) if self.kind == "cart" else read_order(tx, self.id)
        )
        return cast("C", found)

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


def _arguments(pending: PendingOperation) -> tuple[object, ...]:
    return (*pending.arguments, pending.payment_method, pending.params)


def replays(pending: PendingOperation, wanted: PendingOperation) -> bool:
    """Whether an expired ``pending`` claim is the claim ``wanted`` again: the same
    operation with the same arguments, replayed with its own key."""
    return pending.operation == wanted.operation and _arguments(pending) == _arguments(wanted)


def moves_key(pending: PendingOperation, exc: CartpayError) -> bool:
    """Whether the claim moves to a new key after ``exc``: a server error, which
    Stripe may keep under the key. A refund's only when Stripe itself answered
    it (its request id is on the error): then nothing sent under the old key can
    still act, while after a 5xx from something in front of Stripe an earlier
    request under the old key may still be on its way, and under a second key
    both could land as refunds (docs/money.md). (A capture, cancel or confirm is
    kept from acting twice by the intent's state; a cart's call is replayed.)"""
    if not isinstance(exc, GatewayError) or (exc.http_status or 0) < 500:
        return False
    return pending.operation != "refund" or exc.request_id is not None


def rotated(key: str) -> str:
    """The next key of a claim whose key Stripe answered with a stored error: a
    server error is kept under its key for 24 hours and answers every replay."""
    base, _, attempt = key.rpartition(":r")
    if base and attempt.isdigit():
        return f"{base}:r{int(attempt) + 1}"
    return f"{key}:r1"


def released(
    record: C | None, key: str, *, definite: bool, now: datetime, rotate: bool = False
) -> C | None:
    """``record`` with its claim ``key`` released: gone when the call's outcome is
    definite, expired at ``now`` when it is not (the next caller replays it; under
    a new key when ``rotate``: Stripe stored a server error under the old one).
    ``None`` when the claim is no longer ``key`` (someone else's now)."""
    if record is None or record.pending is None or record.pending.key != key:
        return None
    if definite:
        return evolve(record, pending=None)
    pending = evolve(record.pending, lease_until=now)
    if rotate:
        pending = evolve(pending, key=rotated(key))
    return evolve(record, pending=pending)


def cleared(record: C, key: str | None) -> C:
    """``record`` without its claim when the claim is ``key`` (the call is recorded)."""
    if key is not None and record.pending is not None and record.pending.key == key:
        return evolve(record, pending=None)
    return record


class Claims:
    """Claims on the records of one store. ``lease``: how long a caller may hold a
    claim before another may take it over; ``wait``: how long a caller waits for
    another caller's claim on the same record before ``ConcurrencyError``."""

    def __init__(
        self, store: object, *, clock: Callable[[], datetime], lease: timedelta, wait: timedelta
    ) -> None:
        self.store = store
        self.clock = clock
        self.lease = lease
        self.wait = wait.total_seconds()

    def deadline(self) -> float:
        """When a caller that keeps finding the record claimed gives up."""
        return time.monotonic() + self.wait

    def busy(self, record: Cart | Order) -> bool:
        """Whether another caller holds a live claim on ``record``."""
        return record.pending is not None and record.pending.lease_until > self.clock()

    def claim(
        self,
        ref: Ref[C],
        wanted: PendingOperation,
        deadline: float,
        *,
        fresh: Callable[[C], bool],
        also: Callable[[StoreTransaction, C], Flow[None]] | None = None,
    ) -> Flow[tuple[C, PendingOperation] | None]:
        """Record ``wanted`` (or replay an expired claim of the same operation) on
        the record, if it is still as the caller read it (``fresh``) and nobody
        holds it. ``also`` writes what must change with the claim, in the same
        transaction. ``None``: re-read and decide again (after a short wait when
        another caller holds the record; ``ConcurrencyError`` past ``deadline``)."""

        def work(tx: StoreTransaction) -> Flow[tuple[bool, C | None, PendingOperation | None]]:
            current = yield from ref.read(tx)
            pending = current.pending
            busy = self.busy(current)
            if busy or not fresh(current):
                return busy, None, pending
            if pending is not None and not replays(pending, wanted):
                # An unknown outcome is settled before another claim is made
                # (the flows do so first; this is the guard).
                raise OperationPendingError(
                    str(ref),
                    pending.operation,
                    amount=pending.amount,
                    reason=pending.reason,
                    payment_method=pending.payment_method,
                )
            base = pending if pending is not None else wanted
            pending = evolve(base, lease_until=self.clock() + self.lease)
            claimed = yield from save(tx, current, evolve(current, pending=pending))
            if also is not None:
                yield from also(tx, current)
            return busy, claimed, pending

        try:
            busy, claimed, pending = yield Transaction(self.store, work)
        except ConcurrencyError:  # another caller claimed it first: re-read
            return None
        if busy:
            yield from self.pause(ref, deadline)
        if claimed is None or pending is None:
            return None
        return claimed, pending

    def pause(self, ref: Ref[C], deadline: float) -> Flow[None]:
        """Wait a moment for another caller's claim on ``ref``; ``ConcurrencyError``
        once ``deadline`` has passed."""
        if time.monotonic() >= deadline:
            raise ConcurrencyError(f"{ref} has an operation in progress; try again")
        yield Sleep(0.01)

    def call(self, ref: Ref[C], pending: PendingOperation, call: Callable[[], T]) -> Flow[T]:
        """Make the gateway ``call`` under ``pending`` (``call()`` is yielded: its
        answer, or the awaitable of an async gateway); on failure release the
        claim: for good when the error is definite (not ``retryable``), as an
        expired lease when the outcome is unknown, so the next caller replays it."""
        try:
            answer: T = yield call()
            return answer
        except CartpayError as exc:
            rotate = moves_key(pending, exc)
            yield from self.release(ref, pending.key, definite=not exc.retryable, rotate=rotate)
            raise
        except GeneratorExit:  # the flow was dropped unfinished: nothing can run now
            raise
        except BaseException:  # (an async caller's cancellation included)
            yield from self.release(ref, pending.key, definite=False)
            raise

    def release(self, ref: Ref[C], key: str, *, definite: bool, rotate: bool = False) -> Flow[None]:
        def work(tx: StoreTransaction) -> Flow[None]:
            current = yield from ref.get(tx)
            after = released(current, key, definite=definite, now=self.clock(), rotate=rotate)
            if current is not None and after is not None:
                yield from save(tx, current, after)

        try:
            yield from retry(self.store, work, str(ref))
        except Exception:  # the claim expires by itself; never hide the call's error
            log.warning("could not release the claim on %s", ref, exc_info=True)
