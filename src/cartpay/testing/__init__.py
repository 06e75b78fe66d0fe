"""Test doubles and fixtures for hosts' own tests (shipped product, not test code).

* :class:`FakeStripeGateway` – an in-memory gateway with Stripe's semantics, and
  :class:`FakeRequest`, the record of one call made to it.
* :class:`FakePricing` – a pricing port (tax rate, flat shipping, failures on
  demand) for ``CartPaymentIntent(pricing=...)``.
* :class:`FaultyGateway` – wraps a gateway and injects failures
  (:class:`InjectedFault`: what was raised, and whether the server acted).
* :class:`AsyncFakeStripeGateway`, :class:`AsyncFaultyGateway` – the same for
  :class:`~cartpay.AsyncCartPaymentIntent` (the async fake shares a sync fake's
  state, and can answer after a latency without blocking the loop).
* :class:`LocalStripe` – starts localstripe as a subprocess
  (:class:`LocalStripeError` when it cannot).
* :class:`StoreContract` – the Store port's contract as a test class: subclass
  it with a ``store`` fixture to check a store of your own (imports pytest, so
  it is loaded on first use).
* :class:`StripeMock` – runs stripe-mock, which checks requests against Stripe's API
  (:class:`StripeMockError` when it cannot; ``STRIPE_MOCK_LACKS``: its known gaps).
* the pytest plugin ``cartpay.testing.plugin`` (registered through the ``pytest11``
  entry point) – fixtures that start a local Stripe-compatible server.
"""

from typing import TYPE_CHECKING, Any

from ._async import AsyncFakeStripeGateway, AsyncFaultyGateway
from ._fake import FakeRequest, FakeStripeGateway
from ._faulty import FaultyGateway, InjectedFault
from ._localstripe import LocalStripe, LocalStripeError
from ._pricing import FakePricing
from ._stripe_mock import STRIPE_MOCK_LACKS, StripeMock, StripeMockError

if TYPE_CHECKING:
    from .store_contract import StoreContract

__all__ = [
    "STRIPE_MOCK_LACKS",
    "AsyncFakeStripeGateway",
    "AsyncFaultyGateway",
    "FakePricing",
    "FakeRequest",
    "FakeStripeGateway",
    "FaultyGateway",
    "InjectedFault",
    "LocalStripe",
    "LocalStripeError",
    "StoreContract",
    "StripeMock",
    "StripeMockError",
]


def __getattr__(name: str) -> Any:
    if name == "StoreContract":  # imports pytest: only when asked for
        from .store_contract import StoreContract

        return StoreContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
