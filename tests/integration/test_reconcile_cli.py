"""``python -m cartpay reconcile --db PATH`` against a real SQLite file and localstripe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cartpay import CartPaymentIntent
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.sqlite import SQLiteStore
from cartpay.testing import LocalStripe
from cartpay.testing.plugin import TEST_API_KEY

pytestmark = pytest.mark.localstripe


def test_reconcile_command_repairs_a_stuck_order(
    stripe_gateway: StripeGateway, localstripe_server: LocalStripe, tmp_path: Path
) -> None:
    db = tmp_path / "shop.sqlite3"
    store = SQLiteStore(db)
    payments = CartPaymentIntent(gateway=stripe_gateway, store=store)
    cart = payments.create_cart("usd")
    payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
    handle = payments.create_payment_intent(cart.id)
    order = payments.checkout(cart.id)
    stripe_gateway.confirm_intent(handle.id, payment_method="pm_card_visa", idempotency_key="js")
    store.close()  # the webhook never came; the shop process is gone

    env = {**os.environ, "STRIPE_SECRET_KEY": TEST_API_KEY}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cartpay",
            "reconcile",
            "--db",
            str(db),
            "--older-than",
            "0",
            "--stripe-url",
            localstripe_server.url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"repaired  {order.id}" in done.stdout
    reopened = SQLiteStore(db)
    try:
        with reopened.transaction() as tx:
            stored = tx.get_order(order.id)
        assert stored is not None and stored.payment == "paid"
    finally:
        reopened.close()


def test_reconcile_command_needs_the_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STRIPE_SECRET_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "cartpay", "reconcile", "--db", str(tmp_path / "x.sqlite3")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "STRIPE_SECRET_KEY" in done.stderr
