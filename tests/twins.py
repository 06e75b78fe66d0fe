"""Running one set of test cases on both twins.

A test written against the sync API runs on the async twin through
:class:`Blocking`: each coroutine method of the async object is run to its end
on the fixture's event loop, so the same assertions check both façades (and
both sets of adapters). The ``twin`` fixture (tests/conftest.py) says which one
a test gets; modules marked ``pytest.mark.twins`` run each test on both.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Twin = Literal["sync", "async"]
TWINS: tuple[Twin, ...] = ("sync", "async")


class Blocking:
    """``target`` (an async façade, gateway or store transaction) seen through sync
    calls: a coroutine method runs as a task on ``loop`` (running in its own
    thread, see :func:`event_loop`) and the caller waits for it; anything else
    passes. Threads calling at once are tasks running at once on one loop."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        loop = self._loop

        def call(*args: Any, **kwargs: Any) -> Any:
            return wait(loop, attr(*args, **kwargs))

        return call

    def __repr__(self) -> str:
        return repr(self._target)


class BlockingStore:
    """An AsyncStore seen as a Store: ``with store.transaction() as tx`` enters the
    async transaction on ``loop`` and hands out a :class:`Blocking` view of it."""

    def __init__(self, store: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = store
        self._loop = loop

    def __repr__(self) -> str:
        return repr(self.inner)

    @contextmanager
    def _enter(self, opened: Any) -> Iterator[Any]:
        tx = wait(self._loop, opened.__aenter__())
        try:
            yield Blocking(tx, self._loop)
        except BaseException as exc:
            if not wait(self._loop, opened.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            wait(self._loop, opened.__aexit__(None, None, None))

    def transaction(self) -> Any:
        return self._enter(self.inner.transaction())

    def read(self) -> Any:
        return self._enter(self.inner.read())

    def close(self) -> None:
        wait(self._loop, self.inner.close())


class AwaitedPricing:
    """A sync pricing port as an AsyncPricing: the async twin's tests give the
    async façade a coroutine port (a plain one is tested in tests/asyncio)."""

    def __init__(self, sync: Any) -> None:
        self.sync = sync

    async def price(self, cart: Any) -> Any:
        return self.sync.price(cart)


def async_twin(setting: str, value: Any) -> Any:
    """The async counterpart of a sync façade's ``setting``: the fake, a Stripe
    gateway (the same client and settings), a faulty gateway (around the async
    twin of its inner gateway, the same draws), a memory store (the same
    tables), a pricing port (awaited); any other setting as it is."""
    from cartpay.gateways.stripe import AsyncStripeGateway, StripeGateway
    from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
    from cartpay.testing import (
        AsyncFakeStripeGateway,
        AsyncFaultyGateway,
        FakeStripeGateway,
        FaultyGateway,
    )

    if setting == "pricing" and value is not None:
        return AwaitedPricing(value)
    if isinstance(value, FakeStripeGateway):
        return AsyncFakeStripeGateway(value)
    if isinstance(value, FaultyGateway):
        return AsyncFaultyGateway(
            async_twin(setting, value.inner),
            seed=value.seed,
            rate=value.rate,
            faults=value.faults,
            read_rate=value.read_rate,
        )
    if isinstance(value, StripeGateway):
        return AsyncStripeGateway(
            value._client,
            webhook_secret=value._webhook_secret,
            max_network_retries=value.max_network_retries,
            attach_then_confirm=value.attach_then_confirm,
            allow_sdk_debug_output=value.allow_sdk_debug_output,
            redirects=value.redirects,
            livemode=value.livemode,
        )
    if isinstance(value, MemoryStore):
        return AsyncMemoryStore(value)
    return value


def wait(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on ``loop`` (another thread's) and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


@contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop running in a thread of its own for one test; stopped
    and closed afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="twin-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        wait(loop, loop.shutdown_asyncgens())
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
