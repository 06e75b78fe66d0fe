"""cartpay's pytest plugin (entry point ``pytest11: cartpay``): fixtures for hosts.

===========================  ========  ==================================================
fixture                      scope     what
===========================  ========  ==================================================
``localstripe_server``       session   a :class:`~cartpay.testing.LocalStripe` subprocess
``stripe_url``               session   ``$CARTPAY_TEST_STRIPE_URL`` (a stateful
                                       Stripe-compatible server), else localstripe's URL
``stripe_client``            function  ``stripe.StripeClient`` for that URL (no retries)
``stripe_gateway``           function  ``StripeGateway`` for it (webhook secret
                                       ``whsec_test``); localstripe's data is flushed first
``fake_gateway``             function  ``FakeStripeGateway(webhook_secret="whsec_test")``
``async_fake_gateway``       function  ``AsyncFakeStripeGateway`` over ``fake_gateway``
``async_stripe_gateway``     function  ``AsyncStripeGateway`` for ``stripe_client`` (as
                                       ``stripe_gateway``: flushed, no retries)
``stripe_live_gateway``      function  ``StripeGateway`` in Stripe test mode with
                                       ``$STRIPE_TEST_SECRET_KEY`` (``sk_test_…`` only), else skip
``stripe_mock_server``       session   a :class:`~cartpay.testing.StripeMock` subprocess of
                                       ``$CARTPAY_STRIPE_MOCK`` or ``stripe-mock`` on ``PATH``,
                                       else skip (saying how to get the binary)
``stripe_mock_gateway``      function  ``StripeGateway`` for it (no retries)
===========================  ========  ==================================================

Tests that use the local server fixtures get the ``localstripe`` marker, those
using the stripe-mock fixtures the ``stripe_mock`` marker, and those using
``stripe_live_gateway`` the ``stripe_live`` marker (all registered here).
Nothing is flushed behind a host's back: only requesting ``stripe_gateway``
flushes localstripe.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._async import AsyncFakeStripeGateway
from ._fake import FakeStripeGateway
from ._localstripe import LocalStripe
from ._stripe_mock import StripeMock, find_stripe_mock

if TYPE_CHECKING:
    import stripe

    from ..gateways.stripe import AsyncStripeGateway, StripeGateway

__all__ = [
    "TEST_API_KEY",
    "TEST_WEBHOOK_SECRET",
    "async_fake_gateway",
    "async_stripe_gateway",
    "fake_gateway",
    "localstripe_server",
    "stripe_client",
    "stripe_gateway",
    "stripe_live_gateway",
    "stripe_mock_gateway",
    "stripe_mock_server",
    "stripe_url",
]

#: The API key the local fixtures use (localstripe accepts any ``sk_…`` key).
TEST_API_KEY = "sk_test_cartpay"  # a test value, not a credential
#: The webhook secret the gateway fixtures verify with.
TEST_WEBHOOK_SECRET = "whsec_test"  # noqa: S105 - a test value, not a credential

_URL_ENV = "CARTPAY_TEST_STRIPE_URL"
_LIVE_ENV = "STRIPE_TEST_SECRET_KEY"
_LOCAL_FIXTURES = frozenset({"localstripe_server", "stripe_url", "stripe_client", "stripe_gateway"})
_STRIPE_MOCK_ENV = "CARTPAY_STRIPE_MOCK"
_STRIPE_MOCK_FIXTURES = frozenset({"stripe_mock_server", "stripe_mock_gateway"})
#: Why a stripe-mock test skipped, and how to run it.
STRIPE_MOCK_MISSING = (
    f"stripe-mock not found: set {_STRIPE_MOCK_ENV} to the stripe-mock binary or put "
    "`stripe-mock` on PATH (build it with `go install github.com/stripe/stripe-mock@latest`; "
    "releases: https://github.com/stripe/stripe-mock/releases)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "localstripe: needs a running Stripe-compatible server (started by the fixture)"
    )
    config.addinivalue_line(
        "markers", "stripe_live: needs STRIPE_TEST_SECRET_KEY (Stripe test mode)"
    )
    config.addinivalue_line(
        "markers", "stripe_mock: needs stripe-mock (CARTPAY_STRIPE_MOCK or on PATH)"
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
        if names & _STRIPE_MOCK_FIXTURES and item.get_closest_marker("stripe_mock") is None:
            item.add_marker(pytest.mark.stripe_mock)


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
    is flushed first, confirms use ``attach_then_confirm``, and ``redirects=False``
    (localstripe takes cards only and refuses ``return_url``)."""
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
        redirects=not local,
    )


@pytest.fixture
def fake_gateway() -> FakeStripeGateway:
    """A fresh :class:`FakeStripeGateway` verifying with ``whsec_test``."""
    return FakeStripeGateway(webhook_secret=TEST_WEBHOOK_SECRET)


@pytest.fixture
def async_fake_gateway(fake_gateway: FakeStripeGateway) -> AsyncFakeStripeGateway:
    """An :class:`AsyncFakeStripeGateway` sharing :func:`fake_gateway`'s state."""
    return AsyncFakeStripeGateway(fake_gateway)


@pytest.fixture
def async_stripe_gateway(
    stripe_gateway: StripeGateway, stripe_client: stripe.StripeClient
) -> AsyncStripeGateway:
    """``AsyncStripeGateway`` with :func:`stripe_gateway`'s settings and server."""
    from ..gateways.stripe import AsyncStripeGateway

    return AsyncStripeGateway(
        stripe_client,
        webhook_secret=TEST_WEBHOOK_SECRET,
        max_network_retries=0,
        attach_then_confirm=stripe_gateway.attach_then_confirm,
        redirects=stripe_gateway.redirects,
    )


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


@pytest.fixture(scope="session")
def stripe_mock_server() -> Iterator[StripeMock]:
    """One stripe-mock process for the session, from ``$CARTPAY_STRIPE_MOCK`` or
    ``stripe-mock`` on ``PATH`` (stopped at the end); skipped when neither exists.
    A ``$CARTPAY_STRIPE_MOCK`` that does not run is an error, not a skip."""
    binary = find_stripe_mock(os.environ.get(_STRIPE_MOCK_ENV))
    if binary is None:
        pytest.skip(STRIPE_MOCK_MISSING)
    with StripeMock(binary) as server:
        yield server


@pytest.fixture
def stripe_mock_gateway(stripe_mock_server: StripeMock) -> StripeGateway:
    """``StripeGateway`` for :func:`stripe_mock_server` (no retries, one-call confirms,
    webhook secret ``whsec_test``). stripe-mock is stateless: it checks each
    request against Stripe's API specification, its answers are canned."""
    import stripe

    from ..gateways.stripe import StripeGateway

    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": stripe_mock_server.url}, max_network_retries=0
    )
    return StripeGateway(client, webhook_secret=TEST_WEBHOOK_SECRET, max_network_retries=0)
