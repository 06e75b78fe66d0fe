"""AsyncCartPaymentIntent, the façade's asyncio twin: the public surface only.

Every method of :class:`~cartpay.CartPaymentIntent` with the same name,
arguments, errors and results, as a coroutine. Each runs the same flow from
:class:`cartpay._workflow.Workflow` with the async driver,
:func:`cartpay._effects.arun`: the decisions, claims, replays and records are
the sync façade's own code; only the waiting differs (docs/async.md).
"""

from __future__ import annotations

from datetime import timedelta

from ._effects import arun
from ._models import Cart, IntentHandle, Order, ReconcileReport, WebhookResult
from ._options import IntentOptions
from ._ports import AsyncPaymentGateway, AsyncStore
from ._service import CartPaymentIntent
from ._workflow import Workflow

__all__ = ["AsyncCartPaymentIntent"]


class AsyncCartPaymentIntent(Workflow[AsyncPaymentGateway, AsyncStore]):
    """The cart → PaymentIntent → order workflow for asyncio hosts, over an async
    gateway (:class:`~cartpay.gateways.stripe.AsyncStripeGateway`,
    :class:`~cartpay.testing.AsyncFakeStripeGateway`) and an async store
    (``AsyncMemoryStore``, ``AsyncSQLiteStore``, ``AsyncPostgresStore``).

    The settings and every method are those of :class:`~cartpay.CartPaymentIntent`
    (each method's docstring is its twin's). While a call waits on Stripe or the
    store, the event loop runs other tasks; no call blocks it. Concurrent tasks,
    threads and processes sharing one store serialise on the same records as
    the sync façade's callers do, and may mix with them.
    """

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

    async def get_order(self, order_id: str) -> Order:
        return await arun(self._get_order(order_id))

    async def confirm_payment(
        self, order_id: str, *, payment_method: str, return_url: str | None = None
    ) -> Order:
        return await arun(self._confirm_payment(order_id, payment_method, return_url))

    async def confirm_order(self, order_id: str) -> Order:
        return await arun(self._confirm_order(order_id))

    async def capture_order(self, order_id: str, amount: int | None = None) -> Order:
        return await arun(self._capture_order(order_id, amount))

    async def cancel_order(self, order_id: str, *, reason: str | None = None) -> Order:
        return await arun(self._cancel_order(order_id, reason))

    async def refund_order(
        self, order_id: str, amount: int | None = None, *, reason: str | None = None
    ) -> Order:
        return await arun(self._refund_order(order_id, amount, reason))

    async def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult:
        return await arun(self._handle_webhook(payload, signature_header))

    async def reconcile(
        self,
        *,
        older_than: timedelta = timedelta(minutes=15),
        limit: int = 500,
        abandon_after: timedelta | None = None,
        refund_orphans: bool = False,
    ) -> ReconcileReport:
        return await arun(self._reconcile(older_than, limit, abandon_after, refund_orphans))


def _twin_docs() -> None:
    """Each coroutine says what its sync twin says (written once, there)."""
    for name, method in vars(AsyncCartPaymentIntent).items():
        twin = getattr(CartPaymentIntent, name, None)
        if callable(method) and not name.startswith("_") and twin is not None:
            method.__doc__ = twin.__doc__


_twin_docs()
