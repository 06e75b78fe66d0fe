"""Integration fixtures: the real SDK against the real server, observed at the HTTP
client (``StripeClient(http_client=...)``), plus a local webhook receiver.

No ``unittest.mock``: :class:`RecordingHTTPClient` is a ``stripe.RequestsClient``
that writes down each request before sending it for real (and can fail the
first ``fail_first`` attempts as a dropped connection would).
"""

from __future__ import annotations

import http.server
import queue
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import stripe

from cartpay.gateways.stripe import StripeGateway
from cartpay.testing.plugin import TEST_API_KEY, TEST_WEBHOOK_SECRET


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the SDK sent (or tried to send)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: str

    @property
    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body, keep_blank_values=True)

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


class RecordingHTTPClient(stripe.RequestsClient):
    """Records method, URL, headers and form body of every attempt; the first
    ``fail_first`` attempts raise a retryable ``APIConnectionError`` unsent."""

    def __init__(self, *, fail_first: int = 0) -> None:
        super().__init__()
        self.recorded: list[RecordedRequest] = []
        self.fail_first = fail_first

    def request(  # type: ignore[override]  # RequestsClient narrows HTTPClient's signature
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        body = post_data.decode() if isinstance(post_data, bytes) else str(post_data or "")
        self.recorded.append(RecordedRequest(method.upper(), url, dict(headers or {}), body))
        if self.fail_first > 0:
            self.fail_first -= 1
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                "injected: connection dropped", should_retry=True
            )
        return super().request(method, url, headers, post_data)

    def posts(self) -> list[RecordedRequest]:
        return [r for r in self.recorded if r.method == "POST"]


@pytest.fixture
def recorder() -> RecordingHTTPClient:
    return RecordingHTTPClient()


def recorded_gateway_for(
    url: str, recorder: RecordingHTTPClient, *, attach_then_confirm: bool, retries: int = 0
) -> StripeGateway:
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": url}, http_client=recorder, max_network_retries=0
    )
    return StripeGateway(
        client,
        webhook_secret=TEST_WEBHOOK_SECRET,
        max_network_retries=retries,
        attach_then_confirm=attach_then_confirm,
        redirects=not attach_then_confirm,  # (attach_then_confirm: localstripe, cards only)
    )


@pytest.fixture
def recorded_gateway(
    stripe_gateway: StripeGateway, stripe_url: str, recorder: RecordingHTTPClient
) -> StripeGateway:
    """Like ``stripe_gateway`` (same server, freshly flushed) but observed by ``recorder``."""
    return recorded_gateway_for(
        stripe_url, recorder, attach_then_confirm=stripe_gateway.attach_then_confirm
    )


@dataclass(frozen=True)
class Delivery:
    body: bytes
    signature: str


class WebhookReceiver:
    """A local HTTP endpoint that queues each POSTed body with its signature header."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        received = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                received.put(Delivery(body, self.headers.get("Stripe-Signature", "")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/stripe/webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, timeout: float = 5.0) -> Delivery:
        return self.deliveries.get(timeout=timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
