"""``python -m cartpay endpoint create|check``: a webhook endpoint for cartpay.

``create --url URL`` makes a Stripe webhook endpoint that sends exactly the
events cartpay handles (``cartpay.WEBHOOK_EVENTS``, the webhook router's table)
in the API version cartpay is written for (``cartpay.STRIPE_API_VERSION``), and
prints its signing secret once, to stdout only (the host stores it as its
``webhook_secret``). ``check`` finds the endpoint (``--id`` or ``--url``) and
says what differs: missing or extra events, another API version, disabled.

The command line (not the library) reads the API key from the environment
variable named by ``--api-key-env`` (default ``STRIPE_SECRET_KEY``).

Exit status: 0 done (create) or the endpoint is as cartpay needs it (check); 1
the endpoint differs, or Stripe failed (a one-line reason on stderr); 2 bad usage.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Sequence

from ._api_version import STRIPE_API_VERSION
from ._errors import CartpayError
from ._models import WebhookEndpoint
from ._rules import check_url
from ._webhooks import WEBHOOK_EVENTS

PROG = "python -m cartpay endpoint"

__all__ = ["endpoint_problems", "run_endpoint"]


class UsageError(Exception):
    """A bad argument: exit status 2."""


def endpoint_problems(endpoint: WebhookEndpoint) -> list[str]:
    """What keeps ``endpoint`` from being the one cartpay needs (empty: none).
    Extra events are reported too: cartpay records them as ignored, but each is
    a delivery Stripe makes and retries for nothing."""
    problems: list[str] = []
    enabled = set(endpoint.enabled_events)
    if "*" in enabled:
        problems.append("it sends every event ('*'): enable only cartpay's events")
        enabled.discard("*")
    else:
        missing = sorted(set(WEBHOOK_EVENTS) - enabled)
        if missing:
            problems.append(f"missing events: {', '.join(missing)}")
    extra = sorted(enabled - set(WEBHOOK_EVENTS))
    if extra:
        problems.append(f"events cartpay does not handle: {', '.join(extra)}")
    if endpoint.api_version != STRIPE_API_VERSION:
        shown = endpoint.api_version or "the account's default version"
        problems.append(f"API version {shown}, not {STRIPE_API_VERSION}")
    if endpoint.status != "enabled":
        problems.append(f"status {endpoint.status or 'unknown'}, not enabled")
    return problems


def run_endpoint(
    action: str,
    *,
    url: str | None,
    endpoint_id: str | None,
    stripe_url: str | None,
    key_env: str,
    description: str | None = None,
) -> int:
    """Run ``endpoint create`` or ``endpoint check``; returns the exit status."""
    try:
        return _run(action, url, endpoint_id, stripe_url, key_env, description)
    except UsageError as exc:
        print(f"{PROG} {action}: error: {exc}", file=sys.stderr)
        return 2
    except CartpayError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG} {action}: failed: {reason}", file=sys.stderr)
        return 1


def _run(
    action: str,
    url: str | None,
    endpoint_id: str | None,
    stripe_url: str | None,
    key_env: str,
    description: str | None,
) -> int:
    if url is not None:
        try:
            check_url("--url", url)
        except CartpayError as exc:
            raise UsageError(f"--url {url!r} is not an http(s) URL ({exc})") from None
    if action == "create" and url is None:
        raise UsageError("--url is required")
    if action == "check" and url is None and endpoint_id is None:
        raise UsageError("give --id or --url of the endpoint to check")
    api_key = os.environ.get(key_env)
    if not api_key:
        raise UsageError(f"set {key_env} to the Stripe secret key")
    import stripe

    from .gateways.stripe import StripeGateway

    options = {"base_addresses": {"api": stripe_url}} if stripe_url else {}
    client = stripe.StripeClient(api_key, max_network_retries=2, **options)  # type: ignore[arg-type]
    gateway = StripeGateway(client, livemode=_mode(api_key))
    if action == "create":
        assert url is not None
        created = gateway.create_webhook_endpoint(
            url,
            events=WEBHOOK_EVENTS,
            description=description,
            idempotency_key=f"cartpay:endpoint:create:{uuid.uuid4().hex}",
        )
        _describe(created)
        if created.secret:
            # The only time Stripe shows it: to stdout, for the host's secret store.
            print(f"secret    {created.secret}")
        return 0
    return _check(gateway.list_webhook_endpoints(), url, endpoint_id)


def _mode(api_key: str) -> bool | None:
    """The key's mode, or ``None`` to let the gateway refuse an unknown kind; a
    key of another shape against a local server (``--stripe-url``) is test."""
    if api_key.startswith(("sk_live_", "rk_live_")):
        return True
    return False if api_key.startswith(("sk_test_", "rk_test_")) else None


def _describe(endpoint: WebhookEndpoint) -> None:
    print(f"endpoint  {endpoint.id} → {endpoint.url}")
    print(f"version   {endpoint.api_version or '(account default)'}")
    print(f"events    {len(endpoint.enabled_events)}: {', '.join(endpoint.enabled_events)}")


def _check(endpoints: Sequence[WebhookEndpoint], url: str | None, endpoint_id: str | None) -> int:
    found = [
        e
        for e in endpoints
        if (endpoint_id is None or e.id == endpoint_id) and (url is None or e.url == url)
    ]
    if not found:
        wanted = endpoint_id or url
        print(f"{PROG} check: no webhook endpoint {wanted}", file=sys.stderr)
        return 1
    status = 0
    for endpoint in found:
        _describe(endpoint)
        problems = endpoint_problems(endpoint)
        for problem in problems:
            print(f"problem   {problem}")
        if problems:
            status = 1
        else:
            print("ok        sends exactly cartpay's events, in its API version")
    return status
