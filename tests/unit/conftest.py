from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from cartpay import AsyncCartPaymentIntent, Cart, CartPaymentIntent, IntentOptions, Order
from cartpay.stores.memory import AsyncMemoryStore, MemoryStore
from cartpay.testing import AsyncFakeStripeGateway, FakeStripeGateway

from ..twins import Blocking, Twin, async_twin


@pytest.fixture
def fake() -> FakeStripeGateway:
    return FakeStripeGateway(webhook_secret="whsec_unit")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def payments(
    fake: FakeStripeGateway, store: MemoryStore, twin: Twin, loop: asyncio.AbstractEventLoop
) -> CartPaymentIntent:
    """The façade over ``fake`` and ``store``; for the async twin, an
    AsyncCartPaymentIntent over the same fake and tables, behind blocking calls."""
    if twin == "sync":
        return CartPaymentIntent(return_url="https://shop.test/return", gateway=fake, store=store)
    twin_payments = AsyncCartPaymentIntent(
        return_url="https://shop.test/return",
        gateway=AsyncFakeStripeGateway(fake),
        store=AsyncMemoryStore(store),
    )
    return cast(CartPaymentIntent, Blocking(twin_payments, loop))


@pytest.fixture
def make_payments(twin: Twin, loop: asyncio.AbstractEventLoop) -> Callable[..., CartPaymentIntent]:
    """``make_payments(gateway=..., store=..., **settings)``: a façade with those
    settings; for the async twin, an AsyncCartPaymentIntent over the async twins
    of the same gateway, store and pricing port (tests/twins.py), behind blocking
    calls, so that one set of cases checks both façades."""

    def make(**settings: Any) -> CartPaymentIntent:
        if twin == "sync":
            return CartPaymentIntent(**settings)
        made = AsyncCartPaymentIntent(**{k: async_twin(k, v) for k, v in settings.items()})
        return cast(CartPaymentIntent, Blocking(made, loop))

    return make


@pytest.fixture
def make_cart(payments: CartPaymentIntent) -> Callable[..., Cart]:
    def make(
        currency: str = "usd",
        items: tuple[tuple[str, int, int], ...] = (("tee", 2500, 2), ("mug", 1200, 1)),
        options: IntentOptions | None = None,
    ) -> Cart:
        cart = payments.create_cart(currency, options=options)
        for sku, unit_amount, quantity in items:
            cart = payments.add_item(
                cart.id, sku=sku, name=sku.title(), unit_amount=unit_amount, quantity=quantity
            )
        return cart

    return make


@pytest.fixture
def make_order(payments: CartPaymentIntent, make_cart: Callable[..., Cart]) -> Callable[..., Order]:
    """An order checked out from a fresh cart with a live intent."""

    def make(**kwargs: object) -> Order:
        cart = make_cart(**kwargs)
        payments.create_payment_intent(cart.id)
        return payments.checkout(cart.id)

    return make


@pytest.fixture
def paid_order(payments: CartPaymentIntent, make_order: Callable[..., Order]) -> Order:
    order = make_order()
    payments.confirm_payment(order.id, payment_method="pm_card_visa")
    return payments.confirm_order(order.id)


@pytest.fixture
def store_state(store: MemoryStore) -> Callable[[], tuple[object, ...]]:
    """Everything the memory store holds (to assert nothing was written)."""

    def state() -> tuple[object, ...]:
        return (
            dict(store._carts),
            dict(store._orders),
            dict(store._intents),
            dict(store._events),
        )

    return state
