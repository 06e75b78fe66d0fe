"""docs/fastapi.md's tutorial, as a new user runs it: its ``app.py`` (taken from the
page) served by uvicorn against localstripe, with the page's requests; the order
gets paid and localstripe's signed webhook is recorded."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import stripe

from cartpay.testing import LocalStripe
from cartpay.testing.plugin import TEST_API_KEY, TEST_WEBHOOK_SECRET

from .support import served

pytestmark = [pytest.mark.fastapi, pytest.mark.localstripe]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _tutorial_app() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "fastapi.md").read_text(), re.DOTALL)
    apps: list[str] = [b for b in blocks if b.startswith('"""app.py')]
    assert len(apps) == 1
    return apps[0]


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - a local URL
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_fastapi_tutorial_pays_an_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    localstripe_server: LocalStripe,
    stripe_client: stripe.StripeClient,
) -> None:
    (tmp_path / "app.py").write_text(_tutorial_app())
    monkeypatch.chdir(tmp_path)  # the app's shop.sqlite3 goes there
    for name, value in {  # what `python -m cartpay dev` prints
        "CARTPAY_STRIPE_API_BASE": localstripe_server.url,
        "STRIPE_SECRET_KEY": TEST_API_KEY,
        "STRIPE_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "CARTPAY_ATTACH_THEN_CONFIRM": "1",
        "CARTPAY_REDIRECTS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("tutorial_app", tmp_path / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # pydantic resolves the models there
    spec.loader.exec_module(module)

    with served(module.app) as url:
        localstripe_server.register_webhook("docs", f"{url}/stripe/webhook", TEST_WEBHOOK_SECRET)
        try:
            status, cart = _call("POST", f"{url}/carts")
            assert status == 200
            cart_id = cart["cart_id"]
            bad = _call("POST", f"{url}/carts/{cart_id}/items", {"sku": "tee", "quantity": 0})
            assert bad[0] == 422 and bad[1]["error"]["field"] == "quantity"
            assert _call("POST", f"{url}/carts/{cart_id}/items", {"sku": "tee", "quantity": 2}) == (
                200,
                {"total": 5000},
            )
            status, checkout = _call("POST", f"{url}/carts/{cart_id}/checkout")
            order_id = checkout["order_id"]
            assert _call("POST", f"{url}/orders/{order_id}/pay?payment_method=pm_card_visa") == (
                200,
                {"payment": "paid"},
            )
            assert _call("GET", f"{url}/orders/{order_id}") == (
                200,
                {"status": "complete", "payment": "paid", "total": 5000},
            )
            assert _call("GET", f"{url}/orders/nope")[0] == 404
            assert (
                _call("POST", f"{url}/orders/{order_id}/pay?payment_method=pm_card_visa")[0] == 409
            )
            # localstripe's signed payment_intent.succeeded reached the route.
            intent_id = module.payments.get_order(order_id).intent_id
            deadline = time.monotonic() + 15
            while True:
                events = [
                    e.id
                    for e in stripe_client.v1.events.list().data
                    if e.type == "payment_intent.succeeded" and e.data.object["id"] == intent_id
                ]
                with module.payments.store.read() as reads:
                    if events and reads.has_event(events[0]):
                        break
                assert time.monotonic() < deadline, "the webhook never reached the app"
                time.sleep(0.1)
        finally:
            localstripe_server.register_webhook("docs", "http://127.0.0.1:9/", "whsec_none", [])
            module.payments.store.close()
