"""A small FastAPI shop on cartpay: a cart, a checkout page paying with Stripe.js,
an order page that shows what Stripe's webhook said.

Run it by hand against a local Stripe (docs/fastapi.md, "Run the example shop"):

    python -m cartpay dev --webhook-url http://127.0.0.1:8000/stripe/webhook
    # paste the export lines it prints into another shell, then:
    python examples/shop/app.py          # http://127.0.0.1:8000/

The checkout page uses what localstripe's Stripe.js stand-in offers: the card
element and ``createToken``. The server attaches the token to the cart's customer
(a ``card_…`` source, which intents accept as a payment method) and confirms
with ``confirm_payment``; Stripe's signed ``payment_intent.succeeded`` then
reaches ``/stripe/webhook`` and the order page says so. With real Stripe the
page would use the Payment Element and ``stripe.confirmPayment`` (or a
confirmation token) instead: docs/fastapi.md, "With real Stripe".

Amounts come from the catalogue on the server, never from the page.
"""

from __future__ import annotations

import html
import json
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import stripe
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from cartpay import (
    CartPaymentIntent,
    IntentOptions,
    NotFoundError,
    Order,
    WebhookResult,
    format_amount,
)
from cartpay.contrib.fastapi import add_error_handler, reconcile_lifespan, webhook_router

#: sku → (name, unit amount in cents). The only place prices come from.
CATALOGUE = {
    "tee": ("T-shirt", 2500),
    "mug": ("Mug", 1200),
    "cap": ("Cap", 1800),
}
CURRENCY = "usd"
#: Orders the checkout page may still pay.
PAYABLE = frozenset({"unpaid", "failed"})


class AddItem(BaseModel):
    sku: str


class Pay(BaseModel):
    token: str  # tok_… from stripe.createToken in the page


_STYLE = """
body { font-family: sans-serif; max-width: 40rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; width: 100%; }
td { padding: .3rem; border-bottom: 1px solid #ddd; }
#card { margin: 1rem 0; padding: .5rem; border: 1px solid #aaa; }
#message { color: #b00; min-height: 1.5rem; } .paid { color: #080; font-weight: bold; }
button { padding: .4rem 1rem; }
"""


def _page(title: str, body: str, *, head: str = "") -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style>{head}</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _lines(items: Any, currency: str) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(i.name)}</td><td>{i.quantity}</td>"
        f"<td>{format_amount(i.unit_amount * i.quantity, currency)}</td></tr>"
        for i in items
    )
    return f"<table id='lines'>{rows}</table>"


def create_app(
    payments: CartPaymentIntent,
    client: stripe.StripeClient,
    *,
    publishable_key: str,
    stripe_js_url: str = "https://js.stripe.com/v3/",
    reconcile_every: timedelta = timedelta(minutes=5),
) -> FastAPI:
    """The shop over ``payments`` (its gateway on the same Stripe as ``client``)."""
    heard: dict[str, list[str]] = {}  # order id → webhook events applied to it
    lock = threading.Lock()

    def record(result: WebhookResult) -> None:
        if result.order_id is not None and result.action != "ignored":
            with lock:
                heard.setdefault(result.order_id, []).append(result.event_type)

    app = FastAPI(lifespan=reconcile_lifespan(payments, every=reconcile_every))
    app.include_router(webhook_router(payments, on_result=record))
    add_error_handler(app)  # CartpayError → JSON with cartpay.http_status

    def current_order(request: Request) -> Order | None:
        order_id = request.cookies.get("order")
        if not order_id:
            return None
        try:
            return payments.get_order(order_id)
        except NotFoundError:
            return None

    def current_cart_id(request: Request) -> str | None:
        cart_id = request.cookies.get("cart")
        if not cart_id:
            return None
        try:
            return payments.get_cart(cart_id).id
        except NotFoundError:
            return None

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        cart_id = current_cart_id(request)
        cart = payments.get_cart(cart_id) if cart_id else None
        products = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{format_amount(price, CURRENCY)}</td>"
            f"<td><button id='add-{sku}' onclick=\"add('{sku}')\">Add</button></td></tr>"
            for sku, (name, price) in CATALOGUE.items()
        )
        count = sum(i.quantity for i in cart.items) if cart else 0
        total = format_amount(cart.total if cart else 0, CURRENCY)
        script = """<script>
async function add(sku) {
  const r = await fetch('/cart/items', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({sku})});
  const cart = await r.json();
  document.getElementById('count').textContent = cart.count;
  document.getElementById('total').textContent = cart.total;
}
</script>"""
        return _page(
            "Shop",
            f"<table>{products}</table><p>Cart: <span id='count'>{count}</span> item(s), "
            f"<span id='total'>{total}</span> {CURRENCY.upper()} · "
            f"<a id='checkout' href='/checkout'>Checkout</a></p>{script}",
        )

    @app.post("/cart/items")
    def add_item(item: AddItem, request: Request) -> Response:
        if item.sku not in CATALOGUE:
            return JSONResponse({"error": {"message": f"no product {item.sku!r}"}}, 404)
        name, price = CATALOGUE[item.sku]
        cart_id = current_cart_id(request)
        if cart_id is None:
            # The card the page tokenises is attached to this customer at checkout.
            customer = client.v1.customers.create()
            cart_id = payments.create_cart(CURRENCY, options=IntentOptions(customer=customer.id)).id
        cart = payments.add_item(cart_id, sku=item.sku, name=name, unit_amount=price)
        response = JSONResponse(
            {
                "count": sum(i.quantity for i in cart.items),
                "total": format_amount(cart.total, CURRENCY),
            }
        )
        response.set_cookie("cart", cart.id, httponly=True, samesite="lax")
        return response

    @app.get("/checkout", response_class=HTMLResponse)
    def checkout_page(request: Request) -> Response:
        order = current_order(request)
        if order is not None and order.payment in PAYABLE:
            items, total = order.items, order.total
        else:
            cart_id = current_cart_id(request)
            if cart_id is None or not payments.get_cart(cart_id).items:
                return RedirectResponse("/", status_code=303)
            cart = payments.get_cart(cart_id)
            items, total = cart.items, cart.total
        script = f"""<script src="{html.escape(stripe_js_url)}"></script>
<script>
const stripe = Stripe({json.dumps(publishable_key)});
const card = stripe.elements().create('card');
card.mount('#card');
const message = document.getElementById('message');
document.getElementById('pay').addEventListener('click', async () => {{
  message.textContent = '';
  const {{token, error}} = await stripe.createToken(card);
  if (error) {{ message.textContent = error.message || 'card refused'; return; }}
  const r = await fetch('/checkout', {{method: 'POST',
    headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{token: token.id}})}});
  const answer = await r.json();
  if (r.ok) {{ window.location = '/orders/' + answer.order_id; }}
  else {{ message.textContent = answer.error.message; }}
}});
</script>"""
        return _page(
            "Checkout",
            f"{_lines(items, CURRENCY)}<p>Total: <b id='amount'>{format_amount(total, CURRENCY)}"
            f"</b> {CURRENCY.upper()}</p><div id='card'></div>"
            f"<button id='pay'>Pay</button><p id='message' role='alert'></p>{script}",
        )

    @app.post("/checkout")
    def pay(body: Pay, request: Request) -> Response:
        order = current_order(request)
        if order is None or order.payment not in PAYABLE:
            cart_id = current_cart_id(request)
            if cart_id is None:
                return JSONResponse({"error": {"message": "your cart is empty"}}, 409)
            payments.create_payment_intent(cart_id)  # the amount is the cart's, on the server
            order = payments.checkout(cart_id)
        assert order.intent_id is not None
        customer = client.v1.payment_intents.retrieve(order.intent_id).customer
        assert isinstance(customer, str)
        try:
            # The token becomes a card on the customer: a payment method intents accept.
            source = client.v1.customers.payment_sources.create(customer, {"source": body.token})
        except stripe.CardError as exc:  # declined when attached (a $0 check at the bank)
            response: Response = JSONResponse(
                {"error": {"type": "CardDeclinedError", "message": exc.user_message or str(exc)}},
                402,
            )
        else:
            paid = payments.confirm_payment(order.id, payment_method=source.id)  # 402 if declined
            response = JSONResponse({"order_id": paid.id})
        response.set_cookie("order", order.id, httponly=True, samesite="lax")
        response.delete_cookie("cart")
        return response

    @app.get("/orders/{order_id}", response_class=HTMLResponse)
    def order_page(order_id: str) -> HTMLResponse:
        order = payments.get_order(order_id)
        with lock:
            events = list(heard.get(order.id, ()))
        waiting = order.payment not in ("paid", "failed") or not events
        head = "<meta http-equiv='refresh' content='1'>" if waiting else ""
        webhook = (
            "Stripe's webhook: " + ", ".join(events) + " received"
            if events
            else "waiting for Stripe's webhook…"
        )
        return _page(
            "Your order",
            f"<p>Order number: <code id='order'>{html.escape(order.id)}</code></p>"
            f"{_lines(order.items, order.currency)}<p>Total: "
            f"{format_amount(order.total, order.currency)} {order.currency.upper()}</p>"
            f"<p>Payment: <span id='payment' class='{order.payment}'>{order.payment}</span></p>"
            f"<p id='webhook'>{html.escape(webhook)}</p><p><a href='/'>Back to the shop</a></p>",
            head=head,
        )

    return app


def app_from_environment(getenv: Callable[[str], str | None] = os.environ.get) -> FastAPI:
    """The shop with the settings ``python -m cartpay dev`` prints (or real test keys)."""
    from cartpay.gateways.stripe import StripeGateway
    from cartpay.stores.sqlite import SQLiteStore

    def need(name: str) -> str:
        value = getenv(name)
        if not value:
            raise SystemExit(f"set {name} (python -m cartpay dev prints it)")
        return value

    base = getenv("CARTPAY_STRIPE_API_BASE")
    client = stripe.StripeClient(
        need("STRIPE_SECRET_KEY"),
        max_network_retries=2,
        **({"base_addresses": {"api": base}} if base else {}),  # type: ignore[arg-type]
    )
    gateway = StripeGateway(
        client,
        webhook_secret=need("STRIPE_WEBHOOK_SECRET"),
        attach_then_confirm=getenv("CARTPAY_ATTACH_THEN_CONFIRM") == "1",
        redirects=getenv("CARTPAY_REDIRECTS") != "0",  # localstripe: cards only
    )
    payments = CartPaymentIntent(gateway=gateway, store=SQLiteStore("shop.sqlite3"))
    return create_app(
        payments,
        client,
        publishable_key=need("STRIPE_PUBLISHABLE_KEY"),
        stripe_js_url=getenv("STRIPE_JS_URL") or "https://js.stripe.com/v3/",
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app_from_environment(), host="127.0.0.1", port=8000)
