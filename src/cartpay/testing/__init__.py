"""Test doubles and fixtures for hosts' own tests (shipped product, not test code).

* :class:`FakeStripeGateway` – an in-memory gateway with Stripe's semantics, which
  logs every request it receives as a :class:`FakeRequest`.
* :class:`FaultyGateway` – wraps any gateway and injects the network and server
  faults a real integration meets; each one injected is an :class:`InjectedFault`.
* :class:`LocalStripe` – runs localstripe (a Stripe-compatible test server) as a
  subprocess; :class:`LocalStripeError` when it cannot start, or refuses a
  configuration request.
* the pytest plugin ``cartpay.testing.plugin`` (registered through the ``pytest11``
  entry point) – fixtures that start a local Stripe-compatible server and build
  gateways for it.
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
