"""cartpay's pytest plugin (entry point ``pytest11: cartpay``): fixtures for hosts.

===========================  ========  ==================================================
fixture                      scope     what
===========================  ========  ==================================================
``localstripe_server``       session   a :class:`~cartpay.testing.LocalStripe` subprocess
``stripe_url``               session   ``$CARTPAY_TEST_STRIPE_URL`` (e.g. a stripe-mock),
                                       else the localstripe server's URL
``stripe_client``            function  ``stripe.StripeClient`` for that URL (no retries)
``stripe_gateway``           function  ``StripeGateway`` for it (webhook secret
                                       ``whsec_test``); localstripe's data is flushed first
``fake_gateway``             function  ``FakeStripeGateway(webhook_secret="whsec_test")``
``stripe_live_gateway``      function  ``StripeGateway`` in Stripe test mode with
                                       ``$STRIPE_TEST_SECRET_KEY`` (``sk_test_…`` only), else skip
===========================  ========  ==================================================

Tests that use the local server fixtures get the ``localstripe`` marker, and
those using ``stripe_live_gateway`` the ``stripe_live`` marker (both registered
here). Nothing is flushed behind a host's back: only requesting
``stripe_gateway`` flushes localstripe.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._fake import FakeStripeGateway
from ._localstripe import LocalStripe

if TYPE_CHECKING:
    import stripe

    from ..gateways.stripe import StripeGateway

__all__ = [
    "TEST_API_KEY",
    "TEST_WEBHOOK_SECRET",
    "fake_gateway",
    "localstripe_server",
    "stripe_client",
    "stripe_gateway",
    "stripe_live_gateway",
    "stripe_url",
]

#: The API key the local fixtures use (localstripe accepts any ``sk_…`` key).
TEST_API_KEY = "sk_test_cartpay"  # a test value, not a credential
#: The webhook secret the gateway fixtures verify with.
TEST_WEBHOOK_SECRET = "whsec_test"  # noqa: S105 - a test value, not a credential

_URL_ENV = "CARTPAY_TEST_STRIPE_URL"
_LIVE_ENV = "STRIPE_TEST_SECRET_KEY"
_LOCAL_FIXTURES = frozenset({"localstripe_server", "stripe_url", "stripe_client", "stripe_gateway"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "localstripe: needs a running Stripe-compatible server (started by the fixture)"
    )
    config.addinivalue_line(
        "markers", "stripe_live: needs STRIPE_TEST_SECRET_KEY (Stripe test mode)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    local = not os.environ.get(_URL_ENV)  # else the server fixtures point elsewhere
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        uses_localstripe = "localstripe_server" in names or (local and names & _LOCAL_FIXTURES)
        if uses_localstripe and item.get_closest_marker("localstripe") is None:
            item.add_marker(pytest.mark.localstripe)
        if "stripe_live_gateway" in names and item.get_closest_marker("stripe_live") is None:
            item.add_marker(pytest.mark.stripe_live)


@pytest.fixture(scope="session")
def localstripe_server() -> Iterator[LocalStripe]:
    """One localstripe process for the session (stopped at the end)."""
    with LocalStripe() as server:
        yield server


@pytest.fixture(scope="session")
def stripe_url(request: pytest.FixtureRequest) -> str:
    """``$CARTPAY_TEST_STRIPE_URL`` if set, else the session's localstripe URL."""
    url = os.environ.get(_URL_ENV)
    if url:
        return url.rstrip("/")
    server: LocalStripe = request.getfixturevalue("localstripe_server")
    return server.url


@pytest.fixture
def stripe_client(stripe_url: str) -> stripe.StripeClient:
    """A ``StripeClient`` for :func:`stripe_url` with a test key and no retries."""
    import stripe

    return stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": stripe_url}, max_network_retries=0
    )


@pytest.fixture
def stripe_gateway(
    request: pytest.FixtureRequest, stripe_client: stripe.StripeClient
) -> StripeGateway:
    """``StripeGateway`` for :func:`stripe_client`. Against localstripe: its data
    is flushed first and confirms use ``attach_then_confirm``."""
    from ..gateways.stripe import StripeGateway

    local = not os.environ.get(_URL_ENV)
    if local:
        server: LocalStripe = request.getfixturevalue("localstripe_server")
        server.flush()
    return StripeGateway(
        stripe_client,
        webhook_secret=TEST_WEBHOOK_SECRET,
        max_network_retries=0,
        attach_then_confirm=local,
    )


@pytest.fixture
def fake_gateway() -> FakeStripeGateway:
    """A fresh :class:`FakeStripeGateway` verifying with ``whsec_test``."""
    return FakeStripeGateway(webhook_secret=TEST_WEBHOOK_SECRET)


@pytest.fixture
def stripe_live_gateway() -> StripeGateway:
    """Stripe test mode with ``$STRIPE_TEST_SECRET_KEY``; skipped when unset.
    Refuses anything but a ``sk_test_``/``rk_test_`` key."""
    key = os.environ.get(_LIVE_ENV, "")
    if not key:
        pytest.skip(f"{_LIVE_ENV} is not set")
    if not key.startswith(("sk_test_", "rk_test_")):
        pytest.fail(f"{_LIVE_ENV} must be a test-mode key (sk_test_…)")
    import stripe

    from ..gateways.stripe import StripeGateway

    return StripeGateway(
        stripe.StripeClient(key, max_network_retries=2),
        webhook_secret=os.environ.get("STRIPE_TEST_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
        max_network_retries=2,
    )
