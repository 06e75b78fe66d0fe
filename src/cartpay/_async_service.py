"""AsyncCartPaymentIntent, the façade's asyncio twin: the public surface only.

Every method of :class:`~cartpay.CartPaymentIntent` with the same name,
arguments, errors and results, as a coroutine. Each runs the same flow from
:class:`cartpay._workflow.Workflow` with the async driver,
:func:`cartpay._effects.arun`: the decisions, claims, replays and records are
the sync façade's own code; only the waiting differs (docs/async.md).
"""

from __future__ import annotations

from datetime import timedelta

from typing_extensions import Self

from ._effects import arun
from ._models import Cart, IntentHandle, Order, ReconcileReport, WebhookResult
from ._options import IntentOptions
from ._ports import AsyncPaymentGateway, AsyncPricing, AsyncStore, Pricing
from ._service import CartPaymentIntent
from ._workflow import Workflow

__all__ = ["AsyncCartPaymentIntent"]


class AsyncCartPaymentIntent(Workflow[AsyncPaymentGateway, AsyncStore, AsyncPricing | Pricing]):
    """The cart → PaymentIntent → order workflow for asyncio hosts, over an async
    gateway (:class:`~cartpay.gateways.stripe.AsyncStripeGateway`,
    :class:`~cartpay.testing.AsyncFakeStripeGateway`) and an async store
    (``AsyncMemoryStore``, ``AsyncSQLiteStore``, ``AsyncPostgresStore``).

    The settings and every method are those of :class:`~cartpay.CartPaymentIntent`
    (each method's docstring is its twin's). ``pricing`` may be an
    :class:`~cartpay.AsyncPricing` (its ``price`` is awaited) or a plain
    :class:`~cartpay.Pricing` (called on the loop: keep it quick). While a call
    waits on Stripe, the store or the pricing port, the event loop runs other
    tasks; no call blocks it. Concurrent tasks, threads and processes sharing
    one store serialise on the same records as the sync façade's callers do,
    and may mix with them. ``async with AsyncCartPaymentIntent(...) as
    payments:`` closes the store when the block ends.
    """

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def create_cart(self, currency: str, *, options: IntentOptions | None = None) -> Cart:
        return await arun(self._create_cart(currency, options))

    async def get_cart(self, cart_id: str) -> Cart:
        return await arun(self._get_cart(cart_id))

    async def add_item(
        self, cart_id: str, *, sku: str, name: str, unit_amount: int, quantity: int = 1
    ) -> Cart:
        return await arun(self._add_item(cart_id, sku, name, unit_amount, quantity))

    async def set_quantity(self, cart_id: str, sku: str, quantity: int) -> Cart:
        return await arun(self._set_quantity(cart_id, sku, quantity))

    async def add_adjustment(
        self, cart_id: str, *, kind: str, code: str, label: str, amount: int
    ) -> Cart:
        return await arun(self._add_adjustment(cart_id, kind, code, label, amount))

    async def remove_adjustment(self, cart_id: str, code: str) -> Cart:
        return await arun(self._remove_adjustment(cart_id, code))

    async def delete_cart(self, cart_id: str) -> None:
        await arun(self._delete_cart(cart_id))

    async def create_payment_intent(
        self, cart_id: str, *, options: IntentOptions | None = None
    ) -> IntentHandle:
        return await arun(self._create_payment_intent(cart_id, options))

    async def update_payment_intent(
        self, cart_id: str, *, options: IntentOptions | None = None
    ) -> IntentHandle:
        return await arun(self._update_payment_intent(cart_id, options))

    async def checkout(self, cart_id: str, *, keep_cart: bool = False) -> Order:
        return await arun(self._checkout(cart_id, keep_cart))

    async def orders_for_cart(self, cart_id: str) -> list[Order]:
        return await arun(self._orders_for_cart(cart_id))

    async def get_order(self, order_id: str) -> Order:
        return await arun(self._get_order(order_id))

    async def confirm_payment(
        self,
        order_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
    ) -> Order:
        return await arun(self._confirm_payment(order_id, payment_method, return_url, off_session))

    async def intent_for_order(self, order_id: str) -> IntentHandle:
        return await arun(self._intent_for_order(order_id))

    async def confirm_order(self, order_id: str) -> Order:
        return await arun(self._confirm_order(order_id))

    async def capture_order(self, order_id: str, amount: int | None = None) -> Order:
        return await arun(self._capture_order(order_id, amount))

    async def cancel_order(self, order_id: str, *, reason: str | None = None) -> Order:
        return await arun(self._cancel_order(order_id, reason))

    async def refund_order(
        self,
        order_id: str,
        amount: int | None = None,
        *,
        reason: str | None = None,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        flags = (reverse_transfer, refund_application_fee)
        return await arun(self._refund_order(order_id, amount, reason, *flags, idempotency_key))

    async def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult:
        return await arun(self._handle_webhook(payload, signature_header))

    async def reconcile(
        self,
        *,
        older_than: timedelta = timedelta(minutes=15),
        limit: int = 500,
        abandon_after: timedelta | None = None,
        refund_orphans: bool = False,
        expiring_within: timedelta | None = None,
    ) -> ReconcileReport:
        policy = (older_than, limit, abandon_after, refund_orphans, expiring_within)
        return await arun(self._reconcile(*policy))


def _twin_docs() -> None:
    """Each coroutine says what its sync twin says (written once, there)."""
    for name, method in vars(AsyncCartPaymentIntent).items():
        twin = getattr(CartPaymentIntent, name, None)
        if callable(method) and twin is not None and (not name.startswith("_") or name == "close"):
            method.__doc__ = twin.__doc__


_twin_docs()
