"""``python -m cartpay``: the demo, the lifecycle tables, and reconciliation.

python -m cartpay demo [--offline]     a whole cart → intent → order flow, step by step
python -m cartpay tables               the state-machine tables as Markdown
python -m cartpay reconcile --db PATH  repair stuck orders (SQLite path or PostgreSQL DSN)

Exit status: 0 done, 1 the run failed, 2 bad usage; no traceback unless --debug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cartpay", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole flow and print each step")
    demo.add_argument(
        "--offline",
        action="store_true",
        help="use the in-memory FakeStripeGateway instead of localstripe",
    )
    demo.add_argument(
        "--stripe-url", help="use this Stripe-compatible server instead of starting localstripe"
    )
    commands.add_parser("tables", help="print the lifecycle tables (docs/lifecycle.md)")
    reconcile = commands.add_parser(
        "reconcile", help="synchronise stuck orders and report orphaned intents"
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
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(offline=args.offline, stripe_url=args.stripe_url)
    if args.command == "tables":
        from ._lifecycle import render_tables

        sys.stdout.write(render_tables())
        return 0
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
