"""Test doubles and fixtures for hosts' own tests (shipped product, not test code).

* :class:`FakeStripeGateway` – an in-memory gateway with Stripe's semantics.
* :class:`StripeMock` – runs stripe-mock, which checks requests against Stripe's API.
* the pytest plugin ``cartpay.testing.plugin`` (registered through the ``pytest11``
  entry point) – fixtures that start a local Stripe-compatible server.
"""

from ._fake import FakeRequest, FakeStripeGateway
from ._faulty import FaultyGateway, InjectedFault
from ._localstripe import LocalStripe, LocalStripeError
from ._stripe_mock import STRIPE_MOCK_LACKS, StripeMock, StripeMockError

__all__ = [
    "STRIPE_MOCK_LACKS",
    "FakeRequest",
    "FakeStripeGateway",
    "FaultyGateway",
    "InjectedFault",
    "LocalStripe",
    "LocalStripeError",
    "StripeMock",
    "StripeMockError",
]
