"""``python -m cartpay reconcile --db PATH|DSN``: repair stuck orders, print the report.

The command line (not the library) reads the API key from the environment
variable named by ``--api-key-env`` (default ``STRIPE_SECRET_KEY``).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from ._ports import Store
from ._service import CartPaymentIntent


def open_store(db: str) -> Store:
    """A PostgreSQL store for a ``postgresql://`` DSN, else an SQLite file."""
    if db.startswith(("postgresql://", "postgres://")) or "dbname=" in db:
        from .stores.postgres import PostgresStore

        return PostgresStore(db)
    from .stores.sqlite import SQLiteStore

    return SQLiteStore(db)


def run_reconcile(db: str, *, older_than: int, stripe_url: str | None, key_env: str) -> int:
    api_key = os.environ.get(key_env)
    if not api_key:
        print(f"reconcile: set {key_env} to the Stripe secret key", file=sys.stderr)
        return 2
    import stripe

    from .gateways.stripe import StripeGateway

    options = {"base_addresses": {"api": stripe_url}} if stripe_url else {}
    client = stripe.StripeClient(api_key, max_network_retries=2, **options)  # type: ignore[arg-type]
    store = open_store(db)
    try:
        payments = CartPaymentIntent(gateway=StripeGateway(client), store=store)
        report = payments.reconcile(older_than=timedelta(minutes=older_than))
    finally:
        store.close()
    print(f"checked   {len(report.checked)} order(s) older than {older_than} min")
    for order_id in report.repaired:
        print(f"repaired  {order_id}")
    for orphan in report.orphaned:
        print(
            f"orphaned  cart {orphan.cart_id}: intent {orphan.intent_id} took "
            f"{orphan.amount} {orphan.currency} but was never checked out"
        )
    for ref, error in report.errors:
        print(f"error     {ref}: {error}")
    return 1 if report.errors else 0
