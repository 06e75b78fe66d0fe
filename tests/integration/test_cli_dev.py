"""``python -m cartpay dev``: starts localstripe, registers the host's webhook, prints
settings that work as printed, and stops on SIGINT leaving no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stripe

from cartpay import CartPaymentIntent
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore

from .conftest import WebhookReceiver


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.localstripe
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_dev_prints_working_settings_and_stops_cleanly_on_sigint(
    webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    env_file = tmp_path / "dev.env"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cartpay",
            "dev",
            "--webhook-url",
            webhook_receiver.url,
            "--env-file",
            str(env_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert process.stdout is not None
        printed: list[str] = []
        deadline = time.monotonic() + 30
        while not printed or printed[-1] != "# Running until Ctrl-C.":
            assert time.monotonic() < deadline and process.poll() is None, printed
            printed.append(process.stdout.readline().rstrip("\n"))
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in printed
            if line.startswith("export ")
        )
        assert env_file.read_text().splitlines() == [f"{k}={v}" for k, v in exports.items()]
        assert exports["CARTPAY_ATTACH_THEN_CONFIRM"] == "1"
        assert exports["CARTPAY_REDIRECTS"] == "0"
        assert exports["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
        localstripe = _children(process.pid)
        assert len(localstripe) == 1

        # The printed settings, used as a host would: the delivery verifies and pays.
        client = stripe.StripeClient(
            exports["STRIPE_SECRET_KEY"],
            base_addresses={"api": exports["CARTPAY_STRIPE_API_BASE"]},
            max_network_retries=0,
        )
        gateway = StripeGateway(
            client, webhook_secret=exports["STRIPE_WEBHOOK_SECRET"], attach_then_confirm=True
        )
        payments = CartPaymentIntent(gateway=gateway, store=MemoryStore())
        cart = payments.create_cart("usd")
        payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500)
        handle = payments.create_payment_intent(cart.id)
        order = payments.checkout(cart.id)
        gateway.confirm_intent(handle.id, payment_method="pm_card_visa", idempotency_key="js")
        while True:
            delivery = webhook_receiver.next(timeout=15)
            if b'"payment_intent.succeeded"' in delivery.body:
                break
        result = payments.handle_webhook(delivery.body, delivery.signature)
        assert (result.action, result.order_id) == ("applied", order.id)
        assert payments.get_order(order.id).payment == "paid"
        stripe_js = exports["STRIPE_JS_URL"]
        assert stripe_js == exports["CARTPAY_STRIPE_API_BASE"] + "/js.stripe.com/v3/"

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip().endswith("# stopped localstripe")
    assert "Traceback" not in err
    assert not any(_alive(pid) for pid in localstripe)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--webhook-url", "ftp://127.0.0.1/hook"], "http:// or https://"),
        (["--webhook-url", "not a url"], "--webhook-url"),
        (["--webhook-secret", "secret"], "whsec_"),
        (["--port", "70000"], "--port"),
    ],
)
def test_dev_refuses_bad_arguments_before_starting_anything(args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cartpay", "dev", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert says in done.stderr
    assert done.stdout == ""
