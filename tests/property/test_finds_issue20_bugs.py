"""Issue 20's money paths, with a bug planted in each: the state machine must
find it, and shrink it, with only the adjustment and pricing rule groups on.

- the amount sent ignores the cart's discounts (the order's total has them);
- checkout does not ask the pricing port, so the amount sent and the order
  keep a tax computed for items the cart no longer has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from attrs import evolve

from cartpay import _flows, _params
from cartpay._effects import Flow
from cartpay._models import Cart, IntentOptions, IntentParams, Order

from .planting import find


def _ignoring_discounts(
    original: Callable[..., IntentParams],
) -> Callable[..., IntentParams]:
    """The plant: the amount sent leaves the discounts out."""

    def intent_params(cart: Cart, options: IntentOptions, **kwargs: object) -> IntentParams:
        params = original(cart, options, **kwargs)
        discounts = sum(a.amount for a in cart.adjustments if a.kind == "discount")
        return evolve(params, amount=params.amount + discounts)

    return intent_params


def test_finds_an_amount_sent_without_the_discount(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_flows, "intent_params", _ignoring_discounts(_params.intent_params))
    find(tmp_path, "discount-ignored", ["adjustments"], ("but its items and adjustments",))


def _checkout_unpriced(
    original: Callable[..., Flow[Order | None]],
) -> Callable[..., Flow[Order | None]]:
    """The plant: checkout uses the adjustments the cart has, not the port's.
    (The flows are generators run by the façade's driver: cartpay._effects.)"""

    def checkout_once(self: _flows.Flows, *args: object) -> Flow[Order | None]:
        pricing, self.pricing = self.pricing, None
        try:
            return (yield from original(self, *args))
        finally:
            self.pricing = pricing

    return checkout_once


def test_finds_a_checkout_that_does_not_ask_the_pricing_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        _flows.Flows, "checkout_once", _checkout_unpriced(_flows.Flows.checkout_once)
    )
    find(tmp_path, "checkout-unpriced", ["pricing"], ("is taxed",))
