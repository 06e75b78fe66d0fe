"""Fuzz: the façade's public calls and ``handle_webhook`` with arbitrary strings,
numbers, JSON and bodies; only ``CartpayError``\\ s may escape.

Runs on the memory store and a SQLite file (the driver that refuses what memory
takes), with the fake gateway; about ten seconds for both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cartpay import CartpayError, CartPaymentIntent, IntentOptions, Store
from cartpay.stores.memory import MemoryStore
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import FakeStripeGateway

from .strategies import any_numbers, any_text, any_values, webhook_bodies

SECRET = "whsec_fuzz"


class World:
    """A façade with a cart (with an intent), an unpaid and a paid order."""

    def __init__(self, store: Store) -> None:
        self.fake = FakeStripeGateway(webhook_secret=SECRET)
        self.payments = CartPaymentIntent(
            return_url="https://shop.test/return", gateway=self.fake, store=store
        )
        p = self.payments
        cart = p.create_cart("usd")
        p.add_item(cart.id, sku="tee", name="Tee", unit_amount=2500)
        p.create_payment_intent(cart.id)
        self.unpaid = p.checkout(cart.id, keep_cart=True).id
        paid_cart = p.create_cart("usd", options=IntentOptions(capture_method="manual"))
        p.add_item(paid_cart.id, sku="mug", name="Mug", unit_amount=1200)
        p.create_payment_intent(paid_cart.id)
        self.paid = p.checkout(paid_cart.id).id
        p.confirm_payment(self.paid, payment_method="pm_card_visa")
        self.cart_ids = [cart.id]
        self.order_ids = [self.unpaid, self.paid]


@pytest.fixture(params=["memory", "sqlite"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "cartpay.db"
    store: Store = MemoryStore() if request.param == "memory" else SQLiteStore(path, timeout=5)
    try:
        yield World(store)
    finally:
        store.close()


def _ids(real: list[str]) -> st.SearchStrategy[Any]:
    return (
        st.sampled_from(real) | st.tuples(st.sampled_from(real), any_text).map("".join) | any_values
    )


def _options(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
    """An IntentOptions from arbitrary field values, or whatever else."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "description": any_values,
            "metadata": st.dictionaries(any_text, any_values, max_size=3) | any_values,
            "receipt_email": any_values,
            "customer": any_values,
            "statement_descriptor_suffix": any_values,
            "capture_method": st.sampled_from(["manual", "automatic"]) | any_values,
            "application_fee_amount": any_numbers,
        },
    )
    if draw(st.integers(0, 3)) == 0:
        return draw(any_values)
    return IntentOptions(**draw(fields))


def _call(world: World, data: st.DataObject) -> None:
    p = world.payments
    cart = data.draw(_ids(world.cart_ids), label="cart_id")
    order = data.draw(_ids(world.order_ids), label="order_id")
    value = data.draw(any_values, label="value")
    number: Any = data.draw(any_numbers, label="number")
    calls: dict[str, Callable[[], object]] = {
        "create_cart": lambda: p.create_cart(value, options=_options(data.draw)),
        "add_item": lambda: p.add_item(
            cart,
            sku=data.draw(any_text),
            name=data.draw(any_values),
            unit_amount=number,
            quantity=number,
        ),
        "set_quantity": lambda: p.set_quantity(cart, data.draw(any_values), number),
        "get_cart": lambda: p.get_cart(cart),
        "create_payment_intent": lambda: p.create_payment_intent(cart, options=_options(data.draw)),
        "update_payment_intent": lambda: p.update_payment_intent(cart, options=_options(data.draw)),
        "checkout": lambda: p.checkout(cart, keep_cart=data.draw(st.booleans() | any_values)),
        "get_order": lambda: p.get_order(order),
        "confirm_payment": lambda: p.confirm_payment(
            order, payment_method=value, return_url=data.draw(st.none() | any_values)
        ),
        "confirm_order": lambda: p.confirm_order(order),
        "capture_order": lambda: p.capture_order(order, number),
        "cancel_order": lambda: p.cancel_order(order, reason=value),
        "refund_order": lambda: p.refund_order(order, number, reason=data.draw(any_values)),
        "reconcile": lambda: p.reconcile(
            older_than=data.draw(
                st.integers(-(10**12), 10**12).map(lambda n: timedelta(seconds=n)) | any_values
            ),
            limit=number,
        ),
        "delete_cart": lambda: p.delete_cart(cart),
    }
    name = data.draw(st.sampled_from(sorted(calls)), label="call")
    with contextlib.suppress(CartpayError):  # anything else fails the test
        calls[name]()


def _webhook(world: World, data: st.DataObject) -> None:
    intents = world.fake.intent_ids()
    payload = data.draw(webhook_bodies(intents), label="payload")
    signed = data.draw(st.booleans(), label="signed")
    header = world.fake.sign(payload)[1] if signed else data.draw(any_values, label="header")
    with contextlib.suppress(CartpayError):
        world.payments.handle_webhook(payload, header)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_only_cartpay_errors_escape_the_facade(world: World, data: st.DataObject) -> None:
    _call(world, data)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_only_cartpay_errors_escape_handle_webhook(world: World, data: st.DataObject) -> None:
    _webhook(world, data)
