"""The command line: ``cartpay COMMAND`` or ``python -m cartpay COMMAND``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from . import __version__
from ._cli_dev import DEFAULT_WEBHOOK_URL
from ._demo import DEFAULT_DB, run_demo

#: The commands and what each does, as ``--help`` lists them (plain text).
COMMANDS = {
    "demo": "run a whole cart → intent → order → refund flow on a SQLite file, step by step",
    "tables": "print the lifecycle tables as Markdown (docs/lifecycle.md)",
    "reconcile": "synchronise stuck orders from Stripe and report orphaned intents",
    "endpoint": "create (or check) a Stripe webhook endpoint with exactly cartpay's events",
    "dev": "run a local Stripe (localstripe) for developing a shop and print its settings",
}

_EPILOG = """\
examples:
  python -m cartpay demo                    against localstripe, which it starts
  python -m cartpay demo --offline          against the in-memory fake gateway
  python -m cartpay tables > docs/lifecycle.md
  python -m cartpay reconcile --db cartpay.sqlite3
  python -m cartpay endpoint create --url https://shop.example/stripe/webhook
  python -m cartpay dev --webhook-url http://127.0.0.1:8000/stripe/webhook

'python -m cartpay COMMAND --help' describes a command's options.
"""


def _prog() -> str:
    """``cartpay`` when run as the installed script, else ``python -m cartpay``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "cartpay" if name in ("cartpay", "cartpay.exe") else "python -m cartpay"


def build_parser(prog: str = "python -m cartpay") -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s [-h] [--version] COMMAND [OPTIONS]",
        description=(
            "cartpay: the commerce side of a Stripe PaymentIntent checkout.\n\n"
            f"commands:\n{listing}"
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cartpay {__version__}")
    # The listing above is the documentation; the subparser block would repeat it.
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS
    )
    demo = commands.add_parser("demo", help=COMMANDS["demo"], description=COMMANDS["demo"])
    demo.add_argument(
        "--offline",
        action="store_true",
        help="use the in-memory FakeStripeGateway instead of localstripe",
    )
    demo.add_argument(
        "--stripe-url", help="use this Stripe-compatible server instead of starting localstripe"
    )
    demo.add_argument(
        "--db",
        default=DEFAULT_DB,
        help="the SQLite file the demo writes to (default: %(default)s; kept afterwards)",
    )
    commands.add_parser("tables", help=COMMANDS["tables"], description=COMMANDS["tables"])
    reconcile = commands.add_parser(
        "reconcile", help=COMMANDS["reconcile"], description=COMMANDS["reconcile"]
    )
    reconcile.add_argument("--db", required=True, help="SQLite file path or postgresql:// DSN")
    reconcile.add_argument(
        "--create", action="store_true", help="create the SQLite database if it does not exist"
    )
    reconcile.add_argument("--older-than", type=int, default=15, help="minutes (default 15)")
    reconcile.add_argument(
        "--debug", action="store_true", help="show the traceback when the run fails"
    )
    reconcile.add_argument("--stripe-url", help="API base URL (default: Stripe)")
    reconcile.add_argument(
        "--api-key-env",
        default="STRIPE_SECRET_KEY",
        help="environment variable holding the API key",
    )
    endpoint = commands.add_parser(
        "endpoint", help=COMMANDS["endpoint"], description=COMMANDS["endpoint"]
    )
    endpoint.add_argument("action", choices=["create", "check"])
    endpoint.add_argument("--url", help="the endpoint's URL (create: required)")
    endpoint.add_argument("--id", dest="endpoint_id", help="check: the endpoint's id (we_…)")
    endpoint.add_argument("--description", help="create: a description shown in the Dashboard")
    endpoint.add_argument("--stripe-url", help="API base URL (default: Stripe)")
    endpoint.add_argument(
        "--api-key-env",
        default="STRIPE_SECRET_KEY",
        help="environment variable holding the API key",
    )
    dev = commands.add_parser("dev", help=COMMANDS["dev"], description=COMMANDS["dev"])
    dev.add_argument(
        "--webhook-url",
        default=DEFAULT_WEBHOOK_URL,
        help="where localstripe sends every event, signed (default: %(default)s)",
    )
    dev.add_argument("--port", type=int, help="localstripe's port (default: a free one)")
    dev.add_argument(
        "--webhook-secret", help="the signing secret to use (default: a new random whsec_ value)"
    )
    dev.add_argument("--env-file", help="also write the settings to this file (NAME=value lines)")
    return parser


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(_prog()).parse_args(argv)
    if args.command == "demo":
        try:
            with _sigterm_as_interrupt():  # localstripe is stopped on SIGTERM as on Ctrl-C
                return run_demo(offline=args.offline, stripe_url=args.stripe_url, db=args.db)
        except KeyboardInterrupt:
            print("demo interrupted", file=sys.stderr)
            return 130
    if args.command == "dev":
        from ._cli_dev import run_dev

        with _sigterm_as_interrupt():  # localstripe is stopped on SIGTERM as on Ctrl-C
            return run_dev(
                webhook_url=args.webhook_url,
                port=args.port,
                webhook_secret=args.webhook_secret,
                env_file=args.env_file,
            )
    if args.command == "tables":
        from ._lifecycle import render_tables

        sys.stdout.write(render_tables())
        return 0
    if args.command == "endpoint":
        from ._cli_endpoint import run_endpoint

        return run_endpoint(
            args.action,
            url=args.url,
            endpoint_id=args.endpoint_id,
            stripe_url=args.stripe_url,
            key_env=args.api_key_env,
            description=args.description,
        )
    from ._cli_reconcile import run_reconcile

    return run_reconcile(
        args.db,
        older_than=args.older_than,
        stripe_url=args.stripe_url,
        key_env=args.api_key_env,
        create=args.create,
        debug=args.debug,
    )


if __name__ == "__main__":
    sys.exit(main())
