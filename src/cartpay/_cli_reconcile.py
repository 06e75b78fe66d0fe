"""``python -m cartpay reconcile --db PATH|DSN``: repair stuck orders, print the report.

The command line (not the library) reads the API key from the environment
variable named by ``--api-key-env`` (default ``STRIPE_SECRET_KEY``).

Exit status: 0 all done, 1 the run failed (a one-line reason on stderr, or
errors in the report), 2 bad usage (a bad argument, a missing key, a database
path that does not exist without ``--create``). No traceback unless ``--debug``.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from urllib.parse import urlsplit

from ._errors import CartpayError
from ._ports import Store
from ._service import CartPaymentIntent

PROG = "python -m cartpay reconcile"
#: ``--older-than`` is at most ten years, in minutes.
MAX_OLDER_THAN = 10 * 366 * 24 * 60


class UsageError(Exception):
    """A bad argument: exit status 2."""


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://")) or "dbname=" in db


def check_older_than(minutes: int) -> timedelta:
    if not 0 <= minutes <= MAX_OLDER_THAN:
        raise UsageError(f"--older-than must be 0 to {MAX_OLDER_THAN} minutes, not {minutes}")
    return timedelta(minutes=minutes)


def check_sqlite_path(db: str, *, create: bool) -> None:
    """A SQLite ``--db`` must name an existing file, or a new one with ``--create``
    in an existing folder (a mistyped path must not become an empty database)."""
    if db == ":memory:":
        raise UsageError("--db :memory: is an empty database; give the shop's database file")
    if os.path.isdir(db):
        raise UsageError(f"--db {db!r} is a folder, not a database file")
    if os.path.exists(db):
        return
    folder = os.path.dirname(os.path.abspath(db))
    if not os.path.isdir(folder):
        raise UsageError(f"--db {db!r}: the folder {folder!r} does not exist")
    if not create:
        raise UsageError(f"--db {db!r} does not exist (pass --create to start a new database)")


def open_store(db: str) -> Store:
    """A PostgreSQL store for a ``postgresql://`` DSN, else an SQLite file."""
    if is_postgres(db):
        from .stores.postgres import PostgresStore

        return PostgresStore(db)
    from .stores.sqlite import SQLiteStore

    return SQLiteStore(db)


def _masked(text: str, db: str) -> str:
    """``text`` without the DSN's password (a driver message may quote the DSN)."""
    secrets = {urlsplit(db).password or ""} if "://" in db else set()
    secrets.update(re.findall(r"password\s*=\s*'?([^\s']+)", db))
    for secret in secrets - {""}:
        text = text.replace(secret, "***")
    return text


def run_reconcile(
    db: str,
    *,
    older_than: int,
    stripe_url: str | None,
    key_env: str,
    create: bool = False,
    debug: bool = False,
) -> int:
    """Run the command; returns the exit status (see the module docstring)."""
    try:
        return _run(db, older_than, stripe_url, key_env, create=create)
    except UsageError as exc:
        if debug:
            raise
        print(f"{PROG}: error: {_masked(str(exc), db)}", file=sys.stderr)
        return 2
    except (CartpayError, OSError) as exc:
        if debug:
            raise
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: failed: {_masked(reason, db)}", file=sys.stderr)
        return 1


def _run(db: str, older_than: int, stripe_url: str | None, key_env: str, *, create: bool) -> int:
    cutoff = check_older_than(older_than)
    api_key = os.environ.get(key_env)
    if not api_key:
        raise UsageError(f"set {key_env} to the Stripe secret key")
    if not is_postgres(db):
        check_sqlite_path(db, create=create)
    import stripe

    from .gateways.stripe import StripeGateway

    options = {"base_addresses": {"api": stripe_url}} if stripe_url else {}
    client = stripe.StripeClient(api_key, max_network_retries=2, **options)  # type: ignore[arg-type]
    gateway = StripeGateway(client)
    store = open_store(db)
    try:
        payments = CartPaymentIntent(gateway=gateway, store=store)
        report = payments.reconcile(older_than=cutoff)
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
