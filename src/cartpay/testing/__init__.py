"""Test doubles and fixtures for hosts' own tests (shipped product, not test code).

* :class:`FakeStripeGateway` – an in-memory gateway with Stripe's semantics.
* the pytest plugin ``cartpay.testing.plugin`` (registered through the ``pytest11``
  entry point) – fixtures that start a local Stripe-compatible server.
"""

from ._fake import FakeRequest, FakeStripeGateway
from ._faulty import FaultyGateway, InjectedFault
from ._localstripe import LocalStripe, LocalStripeError

__all__ = [
    "FakeRequest",
    "FakeStripeGateway",
    "FaultyGateway",
    "InjectedFault",
    "LocalStripe",
    "LocalStripeError",
]
