"""What the async stores share: a sync store transaction seen as an async one.

:class:`AsyncView` turns each call on a sync ``StoreTransaction`` into a
coroutine, run in place (the memory store: nothing to wait for) or on an
executor (the SQLite store's dedicated thread). The method names and their
contract are the port's (``cartpay._ports.AsyncStoreTransaction``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from functools import partial
from typing import Any

__all__ = ["AsyncView"]


class AsyncView:
    """``await view.get_cart(...)`` runs ``tx.get_cart(...)``: in place when
    ``executor`` is ``None``, else on it (the loop runs other tasks meanwhile)."""

    __slots__ = ("_executor", "_tx")

    def __init__(self, tx: Any, executor: Executor | None = None) -> None:
        self._tx = tx
        self._executor = executor

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._tx, name)
        executor = self._executor
        if executor is None:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return method(*args, **kwargs)

        else:

            async def call(*args: Any, **kwargs: Any) -> Any:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(executor, partial(method, *args, **kwargs))

        return call
