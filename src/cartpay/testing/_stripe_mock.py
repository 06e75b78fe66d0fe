"""StripeMock: run stripe-mock (Stripe's own stateless mock API server) as a subprocess.

stripe-mock (MIT) validates the path and every parameter of each request against
Stripe's OpenAPI specification and answers with fixture objects. It keeps no
state: a confirmed intent is not ``succeeded`` on the next retrieve, and its
answers do not follow the request (amounts, statuses). What it proves is that a
request is one Stripe would accept; the fake and localstripe cover behaviour.
Standard library only; no ``stripe`` import.

::

    with StripeMock("/path/to/stripe-mock") as server:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": server.url})

:data:`STRIPE_MOCK_LACKS` lists the parameters cartpay sends that the
stripe-mock build of the test suites does not know (its specification predates
them); :func:`spec_gaps` finds them in a request.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import NoReturn

from ._server import ServerProcess

__all__ = ["STRIPE_MOCK_LACKS", "StripeMock", "StripeMockError", "find_stripe_mock", "spec_gaps"]

#: The request parameters, by operation, that the stripe-mock of the test suites
#: (built at commit cc49a8b, API specification 2020-08-27) refuses with a 400
#: because Stripe added them later. Keys are ``operation:parameter`` (any value)
#: or ``operation:parameter=value`` (that value only). A newer stripe-mock knows
#: some of them: the strict xfails built from this table then fail, naming the
#: entry to remove.
STRIPE_MOCK_LACKS: Mapping[str, str] = {
    "create:allowed_payment_method_types": "allowed_payment_method_types on create "
    "is newer than stripe-mock's specification",
    "create:excluded_payment_method_types": "excluded_payment_method_types on create "
    "is newer than stripe-mock's specification",
    "create:capture_method=automatic_async": "capture_method=automatic_async "
    "is newer than stripe-mock's specification",
    "update:capture_method": "capture_method on update is newer than stripe-mock's specification",
    "update:allowed_payment_method_types": "allowed_payment_method_types on update "
    "is newer than stripe-mock's specification",
    "update:excluded_payment_method_types": "excluded_payment_method_types on update "
    "is newer than stripe-mock's specification",
}

#: The gateway's POST paths, as the operation names of :data:`STRIPE_MOCK_LACKS`.
_POSTS = re.compile(
    r"/v1/(?P<create>payment_intents)"
    r"|/v1/(?P<update>payment_intents/[^/]+)"
    r"|/v1/payment_intents/[^/]+/(?P<action>confirm|capture|cancel)"
    r"|/v1/(?P<refund>refunds)"
)

_LISTENING = re.compile(rb"Listening for HTTP at address: (\S+):(\d+)")


class StripeMockError(RuntimeError):
    """stripe-mock could not be found or started."""


def find_stripe_mock(binary: str | os.PathLike[str] | None = None) -> str | None:
    """``binary`` if given (whether or not it exists: :meth:`StripeMock.start`
    says what is wrong with it), else ``stripe-mock`` on ``PATH``, else ``None``."""
    if binary is not None and str(binary):
        return os.fspath(binary)
    return shutil.which("stripe-mock")


def operation_of(method: str, path: str) -> str | None:
    """``create``, ``update``, ``confirm``, ``capture``, ``cancel`` or ``refund``
    for one of the gateway's POSTs (``None`` for anything else)."""
    match = _POSTS.fullmatch(path) if method.upper() == "POST" else None
    if match is None:
        return None
    if match["action"]:
        return match["action"]
    return next(name for name in ("create", "update", "refund") if match[name])


def spec_gaps(method: str, path: str, form: Mapping[str, Sequence[str]]) -> list[str]:
    """The :data:`STRIPE_MOCK_LACKS` entries a request hits. ``form`` is the
    decoded body (``parse_qs``); nested keys (``a[0]``, ``a[b]``) count as ``a``."""
    operation = operation_of(method, path)
    if operation is None:
        return []
    hits: list[str] = []
    for key, values in form.items():
        name = key.partition("[")[0]
        candidates = [f"{operation}:{name}", *(f"{operation}:{name}={v}" for v in values)]
        hits.extend(c for c in candidates if c in STRIPE_MOCK_LACKS and c not in hits)
    return hits


class StripeMock(ServerProcess):
    """A stripe-mock server on free local ports, for the life of a ``with`` block.

    ``binary`` is the stripe-mock executable (default: ``stripe-mock`` on
    ``PATH``). stripe-mock picks its own free ports (HTTP and HTTPS, both on
    127.0.0.1); ``url`` is the HTTP one. :meth:`start` returns once the server
    answers an API request (or raises :class:`StripeMockError` with its output
    after ``startup_timeout`` seconds); :meth:`stop` terminates it (then kills it
    if it lingers) and reaps it. The running server serves any number of clients.
    """

    def __init__(
        self, binary: str | os.PathLike[str] | None = None, *, startup_timeout: float = 15.0
    ) -> None:
        self.binary = find_stripe_mock(binary)
        self.port = 0
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> StripeMock:
        """Start the server and wait until ``GET /v1/payment_intents/…`` answers."""
        if self.running:
            return self
        if self.binary is None:
            raise StripeMockError("stripe-mock is not on PATH and no binary was given")
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise StripeMockError(f"{self.binary} is not an executable file")
        # Port 0: the kernel picks free ports (no race with another test run).
        # -https-addr too: without it stripe-mock also listens on :12112.
        command = [self.binary, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"]
        try:
            self._spawn(command, prefix="cartpay-stripe-mock-")
        except OSError as exc:
            self.stop()
            raise StripeMockError(f"could not run {self.binary}: {exc}") from exc
        self._wait_until_ready()
        return self

    def _ready(self) -> bool:
        if not self.port:
            found = _LISTENING.search(self._raw_output())
            if found:
                self.port = int(found.group(2))
        return bool(self.port) and self._answers()

    def _answers(self) -> bool:
        request = urllib.request.Request(  # noqa: S310 - our own local URL
            f"{self.url}/v1/payment_intents/pi_cartpay_ready",
            headers={"Authorization": "Bearer sk_test_cartpay"},
        )
        try:
            with urllib.request.urlopen(request, timeout=0.5) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def _give_up(self, why: str) -> NoReturn:
        output = self._raw_output()[-4000:].decode("utf-8", "replace")
        self.stop()
        raise StripeMockError(f"stripe-mock: {why}; its output:\n{output}")
