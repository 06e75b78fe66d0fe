"""FaultyGateway: a PaymentGateway wrapper that injects network and server faults.

Shipped for hosts' own chaos tests: wrap any gateway (usually
:class:`~cartpay.testing.FakeStripeGateway`) and drive your code through it. The
faults are the ones a real Stripe integration meets, raised as the cartpay errors
the Stripe adapter raises for them:

==================  ======================================  ===================================
fault               raised                                  did the gateway act?
==================  ======================================  ===================================
``timeout_before``  ``GatewayUnavailableError``             no: the request never left
``timeout_after``   ``GatewayUnavailableError``             **yes**: the server applied it and
                                                            the answer was lost
``server_error``    ``GatewayUnavailableError`` (``500``)   no
``lock_timeout``    ``GatewayUnavailableError`` (``409``,   no (Stripe's ``lock_timeout``)
                    code ``lock_timeout``)
``rate_limited``    ``RateLimitedError`` (``429``)          no
==================  ======================================  ===================================

Every fault is ``retryable``: a correct caller repeats the call with the same
idempotency key, and the gateway replays the first outcome. ``timeout_after`` is
the fault that tests that promise, so inject it only over a gateway that honours
idempotency keys (the fake and Stripe do; localstripe does not).

Which calls fail is decided by ``random.Random(seed)``, one draw per call, so a
seed and the same sequence of calls reproduce the same faults. Mutating calls
(create, update, confirm, capture, cancel, refund) may get any fault in
``faults``; reads (retrieve, list refunds, retrieve a dispute) only the faults
that happen before the request (``READ_FAULTS``); ``verify_webhook`` is local and never fails. Each
injected fault is appended to :attr:`FaultyGateway.injected`.

::

    fake = FakeStripeGateway()
    gateway = FaultyGateway(fake, seed=7, rate=0.3)
    payments = CartPaymentIntent(gateway=gateway, store=MemoryStore())
    ...                                  # retry what raises with exc.retryable
    with gateway.quiet():                # no faults inside the block
        payments.reconcile(older_than=timedelta(0))
    print(gateway.injected)

Standard library and cartpay only; it does not import ``stripe``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Generic, Literal, TypeVar, get_args

from attrs import frozen

from .._errors import GatewayUnavailableError, RateLimitedError
from .._models import DisputeSnapshot, IntentParams, IntentSnapshot, RefundSnapshot
from .._ports import IntentChanges, PaymentGateway

__all__ = ["ALL_FAULTS", "READ_FAULTS", "FaultKind", "FaultyGateway", "InjectedFault"]

FaultKind = Literal[
    "timeout_before", "timeout_after", "server_error", "lock_timeout", "rate_limited"
]

#: Every fault kind, in a fixed order (the draws depend on it).
ALL_FAULTS: tuple[FaultKind, ...] = get_args(FaultKind)
#: The faults a read may get: those that happen before the request reaches the server.
READ_FAULTS: frozenset[FaultKind] = frozenset(
    {"timeout_before", "server_error", "lock_timeout", "rate_limited"}
)

G = TypeVar("G", bound=PaymentGateway)
R = TypeVar("R")


@frozen
class InjectedFault:
    """One fault the wrapper injected.

    ``call`` is the 0-based number of the gateway call (over all operations);
    ``applied`` says whether the inner gateway acted before the fault
    (``timeout_after`` only); ``key`` is the call's idempotency key (``None``
    for reads).
    """

    call: int
    operation: str
    kind: FaultKind
    intent_id: str | None
    key: str | None
    applied: bool


class FaultyGateway(Generic[G]):
    """Wraps ``inner`` and injects faults on a seeded fraction of its calls.

    ``rate`` is the probability (0 to 1) that a call fails; ``faults`` the kinds
    to choose from (default: all); ``read_rate`` the probability for reads
    (default: ``rate``). Set :attr:`enabled` to ``False`` (or use :meth:`quiet`)
    to pass every call through. :attr:`inner` is the wrapped gateway, for its own
    test helpers. Not thread-safe: the draws would interleave.
    """

    def __init__(
        self,
        inner: G,
        *,
        seed: int,
        rate: float = 0.2,
        faults: Collection[FaultKind] = ALL_FAULTS,
        read_rate: float | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {rate!r}")
        if read_rate is not None and not 0.0 <= read_rate <= 1.0:
            raise ValueError(f"read_rate must be between 0 and 1, not {read_rate!r}")
        unknown = set(faults) - set(ALL_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.inner: G = inner
        self.seed = seed
        self.rate = rate
        self.read_rate = rate if read_rate is None else read_rate
        self.faults: tuple[FaultKind, ...] = tuple(k for k in ALL_FAULTS if k in set(faults))
        self.enabled = True
        self.injected: list[InjectedFault] = []
        self.calls = 0
        self._random = random.Random(seed)

    def __repr__(self) -> str:
        return (
            f"FaultyGateway({self.inner!r}, seed={self.seed}, rate={self.rate}, "
            f"injected={len(self.injected)})"
        )

    @property
    def livemode(self) -> bool | None:
        """The inner gateway's ``livemode`` (webhook mode checks), if it has one."""
        value = getattr(self.inner, "livemode", None)
        return value if isinstance(value, bool) else None

    @property
    def redirects(self) -> bool:
        """The inner gateway's ``redirects`` (may a confirm redirect?), default ``True``."""
        return getattr(self.inner, "redirects", True) is not False

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """No faults inside the block (the draws are not consumed either)."""
        before = self.enabled
        self.enabled = False
        try:
            yield
        finally:
            self.enabled = before

    def count(self, kind: FaultKind | None = None) -> int:
        """How many faults (of ``kind``) were injected."""
        return sum(1 for f in self.injected if kind is None or f.kind == kind)

    # ------------------------------------------------------------- the port

    def create_intent(self, params: IntentParams, *, idempotency_key: str) -> IntentSnapshot:
        return self._mutate(
            "create_intent",
            None,
            idempotency_key,
            lambda: self.inner.create_intent(params, idempotency_key=idempotency_key),
        )

    def retrieve_intent(self, intent_id: str) -> IntentSnapshot:
        return self._read(
            "retrieve_intent", intent_id, lambda: self.inner.retrieve_intent(intent_id)
        )

    def update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot:
        return self._mutate(
            "update_intent",
            intent_id,
            idempotency_key,
            lambda: self.inner.update_intent(intent_id, changes, idempotency_key=idempotency_key),
        )

    def confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot:
        return self._mutate(
            "confirm_intent",
            intent_id,
            idempotency_key,
            lambda: self.inner.confirm_intent(
                intent_id,
                payment_method=payment_method,
                return_url=return_url,
                off_session=off_session,
                idempotency_key=idempotency_key,
            ),
        )

    def capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot:
        return self._mutate(
            "capture_intent",
            intent_id,
            idempotency_key,
            lambda: self.inner.capture_intent(
                intent_id, amount=amount, idempotency_key=idempotency_key
            ),
        )

    def cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot:
        return self._mutate(
            "cancel_intent",
            intent_id,
            idempotency_key,
            lambda: self.inner.cancel_intent(
                intent_id, reason=reason, idempotency_key=idempotency_key
            ),
        )

    def create_refund(
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> RefundSnapshot:
        return self._mutate(
            "create_refund",
            intent_id,
            idempotency_key,
            lambda: self.inner.create_refund(
                intent_id,
                amount=amount,
                reason=reason,
                idempotency_key=idempotency_key,
                reverse_transfer=reverse_transfer,
                refund_application_fee=refund_application_fee,
            ),
        )

    def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        return self._read("list_refunds", intent_id, lambda: self.inner.list_refunds(intent_id))

    def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:
        return self._read(
            "retrieve_dispute", dispute_id, lambda: self.inner.retrieve_dispute(dispute_id)
        )

    def verify_webhook(self, payload: bytes, signature_header: str, *, tolerance: int) -> None:
        """Passed through: verification is local, nothing to fail on the network."""
        self.inner.verify_webhook(payload, signature_header, tolerance=tolerance)

    # ------------------------------------------------------------- internals

    def _draw(self, rate: float, kinds: Sequence[FaultKind]) -> FaultKind | None:
        if not self.enabled or not kinds or rate <= 0.0:
            return None
        if self._random.random() >= rate:
            return None
        return self._random.choice(kinds)

    def _mutate(self, operation: str, intent_id: str | None, key: str, call: Callable[[], R]) -> R:
        number = self.calls
        self.calls += 1
        kind = self._draw(self.rate, self.faults)
        if kind is None:
            return call()
        applied = kind == "timeout_after"
        if applied:
            with suppress(Exception):  # the answer is lost, whatever it was
                call()
        self.injected.append(InjectedFault(number, operation, kind, intent_id, key, applied))
        raise _error(kind, operation, intent_id)

    def _read(self, operation: str, intent_id: str, call: Callable[[], R]) -> R:
        number = self.calls
        self.calls += 1
        kinds = [k for k in self.faults if k in READ_FAULTS]
        kind = self._draw(self.read_rate, kinds)
        if kind is None:
            return call()
        self.injected.append(InjectedFault(number, operation, kind, intent_id, None, False))
        raise _error(kind, operation, intent_id)


def _error(kind: FaultKind, operation: str, intent_id: str | None) -> Exception:
    where = f"{operation} {intent_id}" if intent_id else operation
    if kind == "rate_limited":
        return RateLimitedError(
            f"injected: {where} was rate limited", code="rate_limit", http_status=429
        )
    if kind == "server_error":
        return GatewayUnavailableError(
            f"injected: {where} failed with a server error", code="api_error", http_status=500
        )
    if kind == "lock_timeout":
        return GatewayUnavailableError(
            f"injected: {where} hit a lock timeout", code="lock_timeout", http_status=409
        )
    when = "after the server applied it" if kind == "timeout_after" else "before it was sent"
    return GatewayUnavailableError(f"injected: {where} timed out {when}")
