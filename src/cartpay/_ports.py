"""The ports cartpay runs on: a payment gateway, a store, and (optional) pricing.

``PaymentGateway`` is implemented by :class:`cartpay.gateways.stripe.StripeGateway`
and :class:`cartpay.testing.FakeStripeGateway`; ``Store`` by the memory, SQLite
and PostgreSQL stores; ``Pricing`` by the host (its tax engine, shipping
table, promotions), or :class:`cartpay.testing.FakePricing`. The façade holds
no store transaction across a gateway call or a pricing call (docs/design.md,
rule 9): it claims inside one short transaction, calls the gateway, then
records the outcome in another, with version checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import datetime
from typing import Protocol

from typing_extensions import TypedDict

from ._models import (
    Adjustment,
    Cart,
    DisputeSnapshot,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    Order,
    RefundSnapshot,
)

__all__ = [
    "AsyncPaymentGateway",
    "AsyncPricing",
    "AsyncStore",
    "AsyncStoreReads",
    "AsyncStoreTransaction",
    "IntentChanges",
    "PaymentGateway",
    "Pricing",
    "ScanKey",
    "Store",
    "StoreReads",
    "StoreTransaction",
]


#: Where a scan goes on: the (created_at, id) of the last row it returned.
ScanKey = tuple[datetime, str]


class IntentChanges(TypedDict, total=False):
    """The fields an update sends: only those that changed since the last send.

    A metadata key mapped to ``""`` removes that key on Stripe's side.
    """

    amount: int
    currency: str
    description: str
    metadata: dict[str, str]
    statement_descriptor_suffix: str
    receipt_email: str
    setup_future_usage: str
    customer: str
    capture_method: str
    application_fee_amount: int
    transfer_group: str
    allowed_payment_method_types: list[str]
    excluded_payment_method_types: list[str]


class PaymentGateway(Protocol):
    """The payment provider, seen as PaymentIntents and refunds.

    Every mutating call takes an ``idempotency_key``: the same key with the same
    arguments replays the first outcome, so a caller that saw a retryable error
    (``GatewayError.retryable``) repeats the call with the same key and cannot
    act twice. Reads are safe to repeat. Errors are cartpay errors, never the
    provider's own classes.
    """

    def create_intent(self, params: IntentParams, *, idempotency_key: str) -> IntentSnapshot:
        """Create an intent for ``params.amount`` in ``params.currency``; the snapshot
        carries the client secret."""
        ...

    def retrieve_intent(self, intent_id: str) -> IntentSnapshot:
        """The intent as the provider has it now (with its client secret and, for a
        card authorization, ``capture_before``: its latest charge comes expanded)."""
        ...

    def update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot:
        """Send ``changes`` (only the fields present). Raises ``IllegalStateError``
        (with the remote status) when the intent's status forbids it."""
        ...

    def confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot:
        """Confirm server-side with ``payment_method``, sending ``return_url`` when
        given and ``off_session`` when true (the customer is away). A decline raises
        ``CardDeclinedError`` (``AuthenticationRequiredError`` when an off-session
        charge needs the customer); the intent is then payable again."""
        ...

    def capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot:
        """Capture ``amount`` (all that is capturable when ``None``); the rest is released."""
        ...

    def cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot:
        """Cancel; an authorization is released. Final."""
        ...

    def create_refund(
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> RefundSnapshot:
        """Refund ``amount`` (all that remains when ``None``) of a succeeded intent.
        The Connect flags are sent only when not ``None``."""
        ...

    def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        """Every refund of the intent, including those made outside cartpay."""
        ...

    def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:
        """The dispute as the provider has it now (its intent, amount and status).
        Raises ``NotFoundError`` (kind ``dispute``) when there is none."""
        ...

    def verify_webhook(self, payload: bytes, signature_header: str, *, tolerance: int) -> None:
        """Check the ``Stripe-Signature`` header over the raw ``payload`` bytes with
        the endpoint secret; any ``v1`` signature may match; older than
        ``tolerance`` seconds is stale. Raises ``WebhookSignatureError``."""
        ...


class StoreReads(Protocol):
    """What a transaction, or a read-only snapshot (``Store.read()``), can read.

    Reads return records as stored (their ``version`` included) and never raise
    for a missing id: they return ``None`` or an empty list. The records returned
    are the caller's: changing them (they are frozen) or their mappings must not
    change what a later read returns.
    """

    def get_cart(self, cart_id: str) -> Cart | None:
        """The cart with ``cart_id``, or ``None``."""
        ...

    def get_order(self, order_id: str) -> Order | None:
        """The order with ``order_id``, or ``None``."""
        ...

    def orders_for_intent(self, intent_id: str) -> list[Order]:
        """Every order whose ``intent_id`` is ``intent_id``, cancelled ones included,
        oldest first (by ``created_at``, none first, then id)."""
        ...

    def orders_for_cart(self, cart_id: str) -> list[Order]:
        """Every order checked out from the cart ``cart_id`` (``Order.cart_id``),
        cancelled ones included, also once the cart is gone; oldest first (by
        ``created_at``, none first, then id)."""
        ...

    def get_intent(self, intent_id: str) -> IntentRecord | None:
        """The intent record with ``intent_id``, or ``None``."""
        ...

    def unpaid_orders_before(
        self, cutoff: datetime, *, limit: int, after: ScanKey | None = None
    ) -> list[Order]:
        """At most ``limit`` orders with status ``incomplete`` or ``processing``, an
        intent, and ``created_at`` before ``cutoff`` (strictly), oldest first
        (``created_at``, then id), starting after the key ``after``."""
        ...

    def unclaimed_intents(
        self, statuses: Sequence[str], *, limit: int, after: ScanKey | None = None
    ) -> list[IntentRecord]:
        """At most ``limit`` intent records whose status is in ``statuses`` and whose
        ``order_id`` is ``None`` (they pay no order), oldest first (``created_at``,
        then id), starting after the key ``after``."""
        ...

    def get_cursor(self, name: str) -> str | None:
        """The value ``set_cursor`` last committed under ``name``, or ``None``."""
        ...

    def has_event(self, event_id: str) -> bool:
        """Whether ``record_event`` recorded ``event_id`` in a committed transaction
        (or earlier in this one)."""
        ...


class StoreTransaction(StoreReads, Protocol):
    """One atomic unit of reads and writes.

    Writes check versions: ``update_*(record, expected_version=n)`` stores
    ``record`` (whose version is n + 1) only if the stored version is still n,
    else raises ``ConcurrencyError`` (as it does for a missing record).
    ``insert_*`` raises ``ConcurrencyError`` if the id exists. These are the
    only methods that raise ``ConcurrencyError``; after one the transaction is
    still usable, and the caller rolls it back by raising. A record read here
    cannot change under the transaction before it ends.
    """

    def insert_cart(self, cart: Cart) -> None:
        """Store a new cart (``ConcurrencyError`` if its id exists)."""
        ...

    def update_cart(self, cart: Cart, *, expected_version: int) -> None:
        """Replace the cart if it is still at ``expected_version`` (else ``ConcurrencyError``)."""
        ...

    def delete_cart(self, cart_id: str, *, expected_version: int) -> None:
        """Delete the cart if it is still at ``expected_version`` (else ``ConcurrencyError``)."""
        ...

    def insert_order(self, order: Order) -> None:
        """Store a new order (``ConcurrencyError`` if its id exists)."""
        ...

    def update_order(self, order: Order, *, expected_version: int) -> None:
        """Replace the order if it is still at ``expected_version`` (else ``ConcurrencyError``)."""
        ...

    def insert_intent(self, intent: IntentRecord) -> None:
        """Store a new intent record (``ConcurrencyError`` if its id exists)."""
        ...

    def update_intent(self, intent: IntentRecord, *, expected_version: int) -> None:
        """Replace the intent record if it is still at ``expected_version`` (else
        ``ConcurrencyError``)."""
        ...

    def record_event(self, event_id: str, event_type: str, action: str) -> bool:
        """Record a webhook event id with its type and action; ``False`` (and no
        write) if it was already recorded. Commits with the transaction's effects."""
        ...

    def set_cursor(self, name: str, value: str | None) -> None:
        """Keep ``value`` under ``name`` (``None`` removes it): where a scan that
        runs in pieces across calls goes on (reconcile's progress)."""
        ...


class Store(Protocol):
    """Durable state: carts, orders, intents and processed webhook events.

    ``transaction()`` opens one atomic unit: everything written inside commits
    together when the block exits normally and is rolled back when it raises.
    ``read()`` opens a consistent read-only snapshot that takes no write lock
    and no row lock: for reads whose result is checked again (by version) before
    anything is written. Both are short and never span a network call.
    Thread-safe.
    """

    def transaction(self) -> AbstractContextManager[StoreTransaction]: ...

    def read(self) -> AbstractContextManager[StoreReads]: ...

    def close(self) -> None: ...


class Pricing(Protocol):
    """The host's pricing: what a cart's adjustments are today.

    cartpay calls :meth:`price` right before it creates or updates the cart's
    intent and before checkout, with no store transaction held (it may be
    slow), and stores what it returns on the cart in place of the cart's
    adjustments: the amount sent is always computed from today's prices. When
    the cart changed meanwhile, it is priced again.
    """

    def price(self, cart: Cart) -> Iterable[Adjustment]:
        """Every adjustment ``cart`` carries now, computed from its ``items``,
        ``currency`` and ``options.metadata``. ``cart.adjustments`` are those it
        carries so far (the host's, or this port's last answer): return those
        to keep (a promotion code the customer entered) with those computed.
        Any exception becomes a ``PricingError``: nothing is sent or written."""
        ...


class AsyncPricing(Protocol):
    """:class:`Pricing` as a coroutine, for an async façade whose pricing awaits
    (a tax service over HTTP). An async façade takes either port: a plain
    :class:`Pricing` is called on the loop (keep it quick, or make it async)."""

    def price(self, cart: Cart) -> Awaitable[Iterable[Adjustment]]:
        """What :meth:`Pricing.price` returns, awaited."""
        ...


# ------------------------------------------------------------- the async twins
#
# The same ports for asyncio hosts: each method means what its sync twin's
# docstring says, as a coroutine (verify_webhook, local work, stays a plain call).


class AsyncPaymentGateway(Protocol):
    """:class:`PaymentGateway` with coroutine methods (``verify_webhook`` is sync)."""

    async def create_intent(
        self, params: IntentParams, *, idempotency_key: str
    ) -> IntentSnapshot: ...

    async def retrieve_intent(self, intent_id: str) -> IntentSnapshot: ...

    async def update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot: ...

    async def confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot: ...

    async def capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot: ...

    async def cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot: ...

    async def create_refund(
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> RefundSnapshot: ...

    async def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]: ...

    async def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot: ...

    def verify_webhook(self, payload: bytes, signature_header: str, *, tolerance: int) -> None: ...


class AsyncStoreReads(Protocol):
    """:class:`StoreReads` with coroutine methods."""

    async def get_cart(self, cart_id: str) -> Cart | None: ...
    async def get_order(self, order_id: str) -> Order | None: ...
    async def orders_for_intent(self, intent_id: str) -> list[Order]: ...
    async def orders_for_cart(self, cart_id: str) -> list[Order]: ...
    async def get_intent(self, intent_id: str) -> IntentRecord | None: ...
    async def unpaid_orders_before(
        self, cutoff: datetime, *, limit: int, after: ScanKey | None = None
    ) -> list[Order]: ...
    async def unclaimed_intents(
        self, statuses: Sequence[str], *, limit: int, after: ScanKey | None = None
    ) -> list[IntentRecord]: ...
    async def get_cursor(self, name: str) -> str | None: ...
    async def has_event(self, event_id: str) -> bool: ...


class AsyncStoreTransaction(AsyncStoreReads, Protocol):
    """:class:`StoreTransaction` with coroutine methods."""

    async def insert_cart(self, cart: Cart) -> None: ...
    async def update_cart(self, cart: Cart, *, expected_version: int) -> None: ...
    async def delete_cart(self, cart_id: str, *, expected_version: int) -> None: ...
    async def insert_order(self, order: Order) -> None: ...
    async def update_order(self, order: Order, *, expected_version: int) -> None: ...
    async def insert_intent(self, intent: IntentRecord) -> None: ...
    async def update_intent(self, intent: IntentRecord, *, expected_version: int) -> None: ...
    async def record_event(self, event_id: str, event_type: str, action: str) -> bool: ...
    async def set_cursor(self, name: str, value: str | None) -> None: ...


class AsyncStore(Protocol):
    """:class:`Store` for asyncio: ``async with store.transaction() as tx`` and
    ``async with store.read() as tx``, with the same guarantees. A transaction may
    wait for another (a lock, a connection) but never blocks the event loop."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncStoreTransaction]: ...

    def read(self) -> AbstractAsyncContextManager[AsyncStoreReads]: ...

    async def close(self) -> None: ...
