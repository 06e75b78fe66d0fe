"""``python -m cartpay dev``: a local Stripe for developing a shop, without an account.

Starts localstripe from scratch on a free port (or ``--port``), registers the
host's webhook URL for every event, prints the settings the host needs as
``export`` lines (API base address, test keys, webhook secret, the gateway flag
localstripe needs, the Stripe.js stand-in's address), and stays up until
interrupted (Ctrl-C or SIGTERM), then stops localstripe and exits 0.

The keys and the webhook secret it prints are throwaway values of this local
server (localstripe accepts any ``sk_test_…`` key); they are nothing at Stripe.

Exit status: 0 after an interrupt, 1 when localstripe cannot start or dies,
2 for a bad argument.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from typing import TextIO

from ._errors import ValidationError
from ._rules import check_url

PROG = "python -m cartpay dev"
#: The default webhook URL: where the docs' shops (FastAPI, Django, Flask) listen.
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8000/stripe/webhook"
#: localstripe accepts any key of the right shape.
SECRET_KEY = "sk_test_cartpay_dev"  # noqa: S105 - a localstripe test value
PUBLISHABLE_KEY = "pk_test_cartpay_dev"
#: The name the webhook is registered under at localstripe.
WEBHOOK_NAME = "cartpay-dev"


def settings(url: str, webhook_secret: str) -> list[tuple[str, str]]:
    """(name, value) of each setting a host needs for the localstripe at ``url``."""
    return [
        ("CARTPAY_STRIPE_API_BASE", url),
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_PUBLISHABLE_KEY", PUBLISHABLE_KEY),
        ("STRIPE_WEBHOOK_SECRET", webhook_secret),
        ("CARTPAY_ATTACH_THEN_CONFIRM", "1"),
        ("CARTPAY_REDIRECTS", "0"),
        ("STRIPE_JS_URL", f"{url}/js.stripe.com/v3/"),
    ]


def _explain(url: str, webhook_url: str, out: TextIO) -> None:
    lines = [
        f"# localstripe (a local Stripe) at {url}; every event is signed and sent to",
        f"#   {webhook_url}",
        "# Paste these into the shell that runs your app (local test values, nothing at Stripe):",
    ]
    print("\n".join(lines), file=out)


_USAGE = """\
# How an app uses them:
#   client = stripe.StripeClient(STRIPE_SECRET_KEY, base_addresses={"api": CARTPAY_STRIPE_API_BASE})
#   gateway = StripeGateway(client, webhook_secret=STRIPE_WEBHOOK_SECRET,
#                           attach_then_confirm=True, redirects=False)
#   <script src="STRIPE_JS_URL"> instead of https://js.stripe.com/v3/ (card element, createToken)
#   Django: CARTPAY["STRIPE_API_BASE"], CARTPAY["ATTACH_THEN_CONFIRM"] = True
#           and CARTPAY["REDIRECTS"] = False
# Running until Ctrl-C."""


def run_dev(
    *,
    webhook_url: str = DEFAULT_WEBHOOK_URL,
    port: int | None = None,
    webhook_secret: str | None = None,
    env_file: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run the command; returns the exit status (see the module docstring)."""
    try:
        check_url("--webhook-url", webhook_url)
        if not webhook_url.startswith(("http://", "https://")):
            raise ValidationError("--webhook-url", "url", "must be an http:// or https:// URL")
        if webhook_secret is not None and not webhook_secret.startswith("whsec_"):
            raise ValidationError("--webhook-secret", "prefix", "must start with whsec_")
        if port is not None and not 0 < port < 65536:
            raise ValidationError("--port", "range", "must be 1 to 65535")
    except ValidationError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    secret = webhook_secret or f"whsec_{secrets.token_hex(16)}"
    from .testing._localstripe import LocalStripe, LocalStripeError

    server = LocalStripe(port=port)
    try:
        try:
            server.start()
            server.register_webhook(WEBHOOK_NAME, webhook_url, secret)
        except LocalStripeError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        values = settings(server.url, secret)
        _explain(server.url, webhook_url, out)
        for name, value in values:
            print(f"export {name}={value}", file=out)
        if env_file is not None:
            with open(env_file, "w", encoding="utf-8") as f:
                f.writelines(f"{name}={value}\n" for name, value in values)
            os.chmod(env_file, 0o600)
            print(f"# (also written to {env_file})", file=out)
        print(_USAGE, file=out, flush=True)
        while server.running:
            time.sleep(0.2)
        print(f"{PROG}: localstripe exited on its own", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("# stopped localstripe", file=out, flush=True)
        return 0
    finally:
        server.stop()
