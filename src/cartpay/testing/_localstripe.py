"""LocalStripe: run localstripe (a Stripe-compatible test server) as a subprocess.

localstripe is GPL-licensed, so cartpay never imports it: it only starts it as a
separate process (``python -m localstripe``) and talks HTTP to it. Standard
library only; no ``stripe`` import.

State: each server is started with ``--from-scratch``, so it never loads state
left by another run. localstripe 1.15 still *writes* its whole store to the
hard-coded path ``/tmp/localstripe.pickle`` after every change (neither the
working directory nor ``TMPDIR`` moves it); concurrent servers therefore share
that file, but as none of them reads it back, their data stay separate. If the
file exists and is not writable by this user (left by another user), every
write request of the server fails, so :meth:`LocalStripe.start` refuses early
with a clear message.

::

    with LocalStripe() as server:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": server.url})
        ...
        server.flush()  # forget every object (registered webhooks stay)
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import NoReturn

from ._server import ServerProcess

__all__ = ["LocalStripe", "LocalStripeError"]

#: Where localstripe 1.15 pickles its store (hard-coded in ``localstripe/resources.py``).
PICKLE_PATH = "/tmp/localstripe.pickle"  # noqa: S108 - localstripe's path, not ours


class LocalStripeError(RuntimeError):
    """localstripe could not be started, or refused a configuration request."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(port: int) -> list[str]:
    """``python -m localstripe`` when it is importable by this interpreter, else the
    ``localstripe`` console script next to it (or on ``PATH``)."""
    args = ["--port", str(port), "--from-scratch"]
    if importlib.util.find_spec("localstripe") is not None:  # found, not imported
        return [sys.executable, "-m", "localstripe", *args]
    script = os.path.join(os.path.dirname(sys.executable), "localstripe")
    if not os.path.exists(script):
        script = shutil.which("localstripe") or ""
    if not script:
        raise LocalStripeError(
            "localstripe is not installed (pip install 'cartpay[test]' or pip install localstripe)"
        )
    return [script, *args]


class LocalStripe(ServerProcess):
    """A localstripe server on a free local port, for the life of a ``with`` block.

    ``url`` is the base address for ``StripeClient(base_addresses={"api": url})``.
    :meth:`start` returns once the server answers (or raises
    :class:`LocalStripeError` with its stderr after ``startup_timeout`` seconds);
    :meth:`stop` terminates it (then kills it if it lingers). Not thread-safe to
    start/stop concurrently; the running server serves any number of clients.
    """

    def __init__(self, *, port: int | None = None, startup_timeout: float = 15.0) -> None:
        self._requested_port = port
        self.port = 0
        self._startup_timeout = startup_timeout
        super().__init__()

    # ------------------------------------------------------------- lifecycle

    def start(self) -> LocalStripe:
        """Start the server and wait until ``GET /js.stripe.com/v3/`` answers."""
        if self.running:
            return self
        if os.path.exists(PICKLE_PATH) and not os.access(PICKLE_PATH, os.W_OK):
            raise LocalStripeError(
                f"{PICKLE_PATH} exists and is not writable by this user; localstripe "
                "writes its store there and would fail every request (remove the file)"
            )
        self.port = self._requested_port or _free_port()
        # stderr carries aiohttp's access log; its temporary files go to the workdir.
        self._spawn(
            _command(self.port),
            prefix="cartpay-localstripe-",
            env=lambda workdir: dict(os.environ, TMPDIR=workdir, PYTHONUNBUFFERED="1"),
        )
        self._wait_until_ready()
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/js.stripe.com/v3/", timeout=0.5):  # noqa: S310
                return True
        except OSError:
            return False

    def _give_up(self, why: str) -> NoReturn:
        output = self._output()
        self.stop()
        raise LocalStripeError(f"localstripe on {self.url}: {why}; its output:\n{output}")

    def _output(self) -> str:
        return self._raw_output()[-4000:].decode("utf-8", "replace")

    # --------------------------------------------------------- configuration

    def flush(self) -> None:
        """Forget every object (``DELETE /_config/data``); registered webhooks stay."""
        self._send("DELETE", "/_config/data")

    def register_webhook(
        self, name: str, url: str, secret: str, events: Sequence[str] | None = None
    ) -> None:
        """Deliver events (all, or those of ``events``) to ``url``, signed with ``secret``.

        Registering ``name`` again replaces it; webhooks cannot be removed.
        localstripe delivers about one second after the API call, once, and
        emits only ``payment_intent.succeeded`` and ``payment_intent.payment_failed``
        for PaymentIntents.
        """
        body: dict[str, object] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        self._send("POST", f"/_config/webhooks/{name}", body)

    def _send(self, method: str, path: str, body: dict[str, object] | None = None) -> None:
        if not self.running:
            raise LocalStripeError("localstripe is not running")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - our own local URL
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            raise LocalStripeError(f"{method} {path} → HTTP {exc.code}: {exc.read()!r}") from exc
