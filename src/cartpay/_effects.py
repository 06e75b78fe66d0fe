"""The I/O shell written once for both twins: flows as generators, two small drivers.

The flows (``_flows``, ``_claims``, ``_records``, ``_outcomes``, ``_delivery``,
``_reconcile``) are generator functions (:data:`Flow`). Each port call is
written ``result = yield port.method(...)``, a unit of work
``result = yield Transaction(store, work)`` (or :class:`Read`), a pause
``yield Sleep(seconds)``, and a nested flow ``result = yield from flow(...)``.
A driver runs the generator and hands each yielded value back:

* :func:`run` (the sync façade's): a sync port has already answered when its
  call is yielded, so the value is handed straight back; a
  :class:`Transaction` runs its ``work`` inside ``with store.transaction()``;
  :class:`Sleep` is ``time.sleep``.
* :func:`arun` (the async façade's): an async port's call yields an awaitable,
  which is awaited and its result (or error) handed back; a
  :class:`Transaction` runs inside ``async with store.transaction()``;
  :class:`Sleep` is ``asyncio.sleep``.

Errors reach the flow where its call was written (a sync call raises there; an
awaited one is thrown in there), so ``try``/``except`` around a yielded call
reads as it would in plain code. Every decision between the calls is shared by
both twins: the async façade is the same code under another driver
(docs/design.md, "Layers").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeAlias, TypeVar, cast

from ._ports import StoreReads, StoreTransaction

__all__ = ["Flow", "Read", "Sleep", "Transaction", "arun", "run"]

T = TypeVar("T")
X = TypeVar("X", StoreReads, StoreTransaction)

#: A flow: a generator over port calls (their results or awaitables) and the
#: effects below, returning ``T``. Run it with :func:`run` or :func:`arun`.
Flow: TypeAlias = Generator[Any, Any, T]


class _Unit(Generic[X, T]):
    __slots__ = ("store", "work")

    write = True

    def __init__(self, store: Any, work: Callable[[X], Flow[T]]) -> None:
        self.store = store
        self.work: Callable[[X], Flow[T]] = work

    def open(self) -> Any:
        return self.store.transaction() if self.write else self.store.read()


class Transaction(_Unit[StoreTransaction, T]):
    """Run ``work(tx)`` in ``store.transaction()``: committed when it returns,
    rolled back when it raises."""

    __slots__ = ()


class Read(_Unit[StoreReads, T]):
    """Run ``work(tx)`` in ``store.read()``, a snapshot that writes nothing."""

    __slots__ = ()

    write = False


class Sleep:
    """Pause the caller (never the event loop) for ``seconds``."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


def _resume(flow: Flow[T], value: Any, error: BaseException | None) -> tuple[bool, Any]:
    """Hand ``value`` (or ``error``) to the flow: ``(False, its next step)``, or
    ``(True, its result)`` once it returns."""
    try:
        return False, flow.send(value) if error is None else flow.throw(error)
    except StopIteration as stop:
        return True, stop.value


def run(flow: Flow[T]) -> T:
    """Run ``flow`` over sync ports, in this thread."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        done, step = _resume(flow, answer, error)
        if done:
            return cast("T", step)
        kind = type(step)
        if kind is not Transaction and kind is not Read and kind is not Sleep:
            answer, error = step, None  # a sync port's answer, already there
            continue
        answer = error = None
        try:
            if kind is Sleep:
                time.sleep(step.seconds)
            else:
                with step.open() as tx:
                    answer = run(step.work(tx))
        except BaseException as exc:
            error = exc


async def arun(flow: Flow[T]) -> T:
    """Run ``flow`` over async ports on the running event loop."""
    failure: BaseException | None = None
    value: Any = None
    while True:
        finished, step = _resume(flow, value, failure)
        if finished:
            return cast("T", step)
        value = failure = None
        kind = type(step)
        try:
            if kind is Transaction or kind is Read:
                async with step.open() as tx:
                    value = await arun(step.work(tx))
            elif kind is Sleep:
                await asyncio.sleep(step.seconds)
            elif hasattr(step, "__await__"):
                value = await step
            else:
                value = step  # a call that needs no waiting (verify_webhook)
        except BaseException as exc:
            failure = exc
