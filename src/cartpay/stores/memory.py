"""MemoryStore: the Store port in process memory, for tests and single-process hosts;
AsyncMemoryStore, its asyncio twin over the same tables.

One lock serialises transactions (they are short and never span a network call).
Writes go to an overlay that is merged on commit, so a transaction that raises
leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Generic, TypeVar, cast

from typing_extensions import Self

from .._errors import ConcurrencyError
from .._models import Cart, IntentRecord, Order
from .._ports import AsyncStoreTransaction, ScanKey
from ._twin import AsyncView

__all__ = ["AsyncMemoryStore", "MemoryStore"]

T = TypeVar("T")


class _Table(Generic[T]):
    """A dict with an uncommitted overlay (``None`` in the overlay = deleted)."""

    def __init__(self, rows: dict[str, T]) -> None:
        self.rows = rows
        self.overlay: dict[str, T | None] = {}

    def get(self, key: str) -> T | None:
        if key in self.overlay:
            return self.overlay[key]
        return self.rows.get(key)

    def values(self) -> Iterator[T]:
        for key, row in self.rows.items():
            if key not in self.overlay:
                yield row
        for changed in self.overlay.values():
            if changed is not None:
                yield changed

    def insert(self, key: str, row: T, kind: str) -> None:
        if self.get(key) is not None:
            raise ConcurrencyError(f"{kind} {key} already exists")
        self.overlay[key] = row

    def replace(self, key: str, row: T | None, expected_version: int, kind: str) -> None:
        current = self.get(key)
        if current is None:
            raise ConcurrencyError(f"{kind} {key} no longer exists")
        version: int = getattr(current, "version")  # noqa: B009
        if version != expected_version:
            raise ConcurrencyError(
                f"{kind} {key} is at version {version}, expected {expected_version}"
            )
        self.overlay[key] = row

    def commit(self) -> None:
        if not self.overlay:
            return
        for key, row in self.overlay.items():
            if row is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = row
        self.overlay.clear()


class _MemoryTransaction:
    def __init__(self, store: MemoryStore) -> None:
        self._carts = _Table(store._carts)
        self._orders = _Table(store._orders)
        self._intents = _Table(store._intents)
        self._store = store
        self._events: dict[str, tuple[str, str]] = {}
        self._cursors: dict[str, str | None] = {}
        self._touched_orders: list[Order] = []

    def commit(self) -> None:
        for table in (self._carts, self._orders, self._intents):
            table.commit()
        for order in self._touched_orders:
            if order.intent_id is not None:
                self._store._orders_by_intent.setdefault(order.intent_id, set()).add(order.id)
            self._store._orders_by_cart.setdefault(order.cart_id, set()).add(order.id)
        self._store._events.update(self._events)
        for name, value in self._cursors.items():
            if value is None:
                self._store._cursors.pop(name, None)
            else:
                self._store._cursors[name] = value

    # carts
    def get_cart(self, cart_id: str) -> Cart | None:
        return self._carts.get(cart_id)

    def insert_cart(self, cart: Cart) -> None:
        self._carts.insert(cart.id, cart, "cart")

    def update_cart(self, cart: Cart, *, expected_version: int) -> None:
        self._carts.replace(cart.id, cart, expected_version, "cart")

    def delete_cart(self, cart_id: str, *, expected_version: int) -> None:
        self._carts.replace(cart_id, None, expected_version, "cart")

    # orders
    def get_order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def orders_for_intent(self, intent_id: str) -> list[Order]:
        ids = set(self._store._orders_by_intent.get(intent_id, ()))
        ids.update(o.id for o in self._touched_orders if o.intent_id == intent_id)
        found = [self._orders.get(order_id) for order_id in sorted(ids)]
        return sorted(
            (o for o in found if o is not None and o.intent_id == intent_id),
            key=lambda o: (o.created_at or datetime.min, o.id),
        )

    def orders_for_cart(self, cart_id: str) -> list[Order]:
        ids = set(self._store._orders_by_cart.get(cart_id, ()))
        ids.update(o.id for o in self._touched_orders if o.cart_id == cart_id)
        found = [self._orders.get(order_id) for order_id in sorted(ids)]
        return sorted(
            (o for o in found if o is not None and o.cart_id == cart_id),
            key=lambda o: (o.created_at or datetime.min, o.id),
        )

    def insert_order(self, order: Order) -> None:
        self._orders.insert(order.id, order, "order")
        self._touched_orders.append(order)

    def update_order(self, order: Order, *, expected_version: int) -> None:
        self._orders.replace(order.id, order, expected_version, "order")
        self._touched_orders.append(order)

    # intents
    def get_intent(self, intent_id: str) -> IntentRecord | None:
        return self._intents.get(intent_id)

    def insert_intent(self, intent: IntentRecord) -> None:
        self._intents.insert(intent.id, intent, "intent")

    def update_intent(self, intent: IntentRecord, *, expected_version: int) -> None:
        self._intents.replace(intent.id, intent, expected_version, "intent")

    # scans
    def unpaid_orders_before(
        self, cutoff: datetime, *, limit: int, after: ScanKey | None = None
    ) -> list[Order]:
        found = [
            o
            for o in self._orders.values()
            if o.status in ("incomplete", "processing")
            and o.intent_id is not None
            and o.created_at is not None
            and o.created_at < cutoff
            and (after is None or (o.created_at, o.id) > after)
        ]
        found.sort(key=lambda o: (o.created_at or cutoff, o.id))
        return found[:limit]

    def unclaimed_intents(
        self, statuses: Sequence[str], *, limit: int, after: ScanKey | None = None
    ) -> list[IntentRecord]:
        found = [
            i
            for i in self._intents.values()
            if i.status in statuses
            and i.order_id is None
            and (after is None or (i.created_at, i.id) > after)
        ]
        found.sort(key=lambda i: (i.created_at, i.id))
        return found[:limit]

    # cursors
    def get_cursor(self, name: str) -> str | None:
        if name in self._cursors:
            return self._cursors[name]
        return self._store._cursors.get(name)

    def set_cursor(self, name: str, value: str | None) -> None:
        self._cursors[name] = value

    # events
    def has_event(self, event_id: str) -> bool:
        return event_id in self._store._events or event_id in self._events

    def record_event(self, event_id: str, event_type: str, action: str) -> bool:
        if event_id in self._store._events or event_id in self._events:
            return False
        self._events[event_id] = (event_type, action)
        return True


class _Transaction:
    """``with store.transaction() as tx``: holds the lock, commits on a normal exit
    (a read, ``store.read()``, never commits)."""

    __slots__ = ("_commit", "_store", "_tx")

    def __init__(self, store: MemoryStore, *, commit: bool = True) -> None:
        self._store = store
        self._commit = commit

    def __enter__(self) -> _MemoryTransaction:
        self._store._lock.acquire()
        self._tx = _MemoryTransaction(self._store)
        return self._tx

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None and self._commit:
                self._tx.commit()
        finally:
            self._store._lock.release()


class MemoryStore:
    """The Store port in memory. Thread-safe; nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._carts: dict[str, Cart] = {}
        self._orders: dict[str, Order] = {}
        self._intents: dict[str, IntentRecord] = {}
        self._orders_by_intent: dict[str, set[str]] = {}
        self._orders_by_cart: dict[str, set[str]] = {}
        self._events: dict[str, tuple[str, str]] = {}
        self._cursors: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(carts={len(self._carts)}, orders={len(self._orders)})"

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def read(self) -> _Transaction:
        """A read under the same lock (memory has no cheaper snapshot)."""
        return _Transaction(self, commit=False)

    def __enter__(self) -> Self:
        """``with MemoryStore(...) as store:`` closes the store when the block ends."""
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release."""


class _AsyncTransaction:
    """``async with store.transaction() as tx``: the sync transaction's lock and
    commit, its calls as coroutines that never suspend (so a transaction runs
    whole, with no other task in between)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: _Transaction) -> None:
        self._inner = inner

    async def __aenter__(self) -> AsyncStoreTransaction:
        return cast("AsyncStoreTransaction", AsyncView(self._inner.__enter__()))

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._inner.__exit__(exc_type, *rest)


class AsyncMemoryStore:
    """The AsyncStore port in memory: :class:`MemoryStore`'s tables behind
    coroutines. ``sync`` is the memory store it uses (pass one to share it with a
    sync façade, in tests); its lock is taken only for a transaction's few
    microseconds, so a thread holding it never stalls the loop for long."""

    def __init__(self, sync: MemoryStore | None = None) -> None:
        self.sync = sync if sync is not None else MemoryStore()

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"

    def transaction(self) -> _AsyncTransaction:
        return _AsyncTransaction(self.sync.transaction())

    def read(self) -> _AsyncTransaction:
        return _AsyncTransaction(self.sync.read())

    async def __aenter__(self) -> Self:
        """``async with AsyncMemoryStore(...) as store:`` closes the store when the block ends."""
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Nothing to release."""
