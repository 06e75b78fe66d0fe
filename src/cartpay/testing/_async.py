"""The testing kit's async twins: the fake Stripe and the fault injector for
asyncio hosts (:class:`~cartpay.AsyncCartPaymentIntent`).

:class:`AsyncFakeStripeGateway` is :class:`~cartpay.testing.FakeStripeGateway`
behind coroutines: the same intents, keys, events and request log (``sync``, or
any of the fake's helpers on the twin itself), optionally answering after
``latency`` seconds of ``asyncio.sleep`` (a slow Stripe that never blocks the
loop). :class:`AsyncFaultyGateway` is :class:`~cartpay.testing.FaultyGateway`
around an async gateway: the same seeded draws, faults and record of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from .._models import DisputeSnapshot, IntentParams, IntentSnapshot, RefundSnapshot
from .._ports import AsyncPaymentGateway, IntentChanges
from ._fake import FakeStripeGateway
from ._faulty import READ_FAULTS, FaultyGateway, InjectedFault, _error

__all__ = ["AsyncFakeStripeGateway", "AsyncFaultyGateway"]

R = TypeVar("R")
AG = TypeVar("AG", bound=AsyncPaymentGateway)


class AsyncFakeStripeGateway:
    """The AsyncPaymentGateway over a :class:`FakeStripeGateway` (``sync``: pass one
    to share its state with sync code; else one is made with ``webhook_secret``,
    ``livemode`` and ``redirects``). Every port call waits ``latency`` seconds first, on the
    loop. The fake's test helpers (``authenticate``, ``settle``, ``events``,
    ``sign``, ``requests``, ``count``, …) are reachable on the twin."""

    def __init__(
        self,
        sync: FakeStripeGateway | None = None,
        *,
        latency: float = 0.0,
        webhook_secret: str = "whsec_fake",  # noqa: S107 - a test double's secret
        livemode: bool = False,
        redirects: bool = True,
    ) -> None:
        self.sync = sync or FakeStripeGateway(
            webhook_secret=webhook_secret, livemode=livemode, redirects=redirects
        )
        self.latency = latency

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sync, name)  # the fake's helpers and queries

    @property
    def livemode(self) -> bool:
        return self.sync.livemode

    @property
    def redirects(self) -> bool:
        return self.sync.redirects

    async def _answer(self) -> None:
        await asyncio.sleep(self.latency)

    async def create_intent(self, params: IntentParams, *, idempotency_key: str) -> IntentSnapshot:
        await self._answer()
        return self.sync.create_intent(params, idempotency_key=idempotency_key)

    async def retrieve_intent(self, intent_id: str) -> IntentSnapshot:
        await self._answer()
        return self.sync.retrieve_intent(intent_id)

    async def update_intent(
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot:
        await self._answer()
        return self.sync.update_intent(intent_id, changes, idempotency_key=idempotency_key)

    async def confirm_intent(
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot:
        await self._answer()
        return self.sync.confirm_intent(
            intent_id,
            payment_method=payment_method,
            return_url=return_url,
            off_session=off_session,
            idempotency_key=idempotency_key,
        )

    async def capture_intent(
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot:
        await self._answer()
        return self.sync.capture_intent(intent_id, amount=amount, idempotency_key=idempotency_key)

    async def cancel_intent(
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot:
        await self._answer()
        return self.sync.cancel_intent(intent_id, reason=reason, idempotency_key=idempotency_key)

    async def create_refund(
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> RefundSnapshot:
        await self._answer()
        return self.sync.create_refund(
            intent_id,
            amount=amount,
            reason=reason,
            idempotency_key=idempotency_key,
            reverse_transfer=reverse_transfer,
            refund_application_fee=refund_application_fee,
        )

    async def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:
        await self._answer()
        return self.sync.list_refunds(intent_id)

    async def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:
        await self._answer()
        return self.sync.retrieve_dispute(dispute_id)

    def verify_webhook(self, payload: bytes, signature_header: str, *, tolerance: int) -> None:
        """Local work, as on the sync fake."""
        self.sync.verify_webhook(payload, signature_header, tolerance=tolerance)


class AsyncFaultyGateway(FaultyGateway[AG]):  # type: ignore[type-var]
    """:class:`FaultyGateway` around an async gateway: the same settings, seeded
    draws, ``injected`` record and ``quiet()``; each port call is a coroutine."""

    async def create_intent(  # type: ignore[override]
        self, params: IntentParams, *, idempotency_key: str
    ) -> IntentSnapshot:
        answer = self.inner.create_intent(params, idempotency_key=idempotency_key)
        return await self._afault(answer, "create_intent", None, idempotency_key)

    async def retrieve_intent(self, intent_id: str) -> IntentSnapshot:  # type: ignore[override]
        return await self._afault(
            self.inner.retrieve_intent(intent_id), "retrieve_intent", intent_id
        )

    async def update_intent(  # type: ignore[override]
        self, intent_id: str, changes: IntentChanges, *, idempotency_key: str
    ) -> IntentSnapshot:
        answer = self.inner.update_intent(intent_id, changes, idempotency_key=idempotency_key)
        return await self._afault(answer, "update_intent", intent_id, idempotency_key)

    async def confirm_intent(  # type: ignore[override]
        self,
        intent_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
        idempotency_key: str,
    ) -> IntentSnapshot:
        answer = self.inner.confirm_intent(
            intent_id,
            payment_method=payment_method,
            return_url=return_url,
            off_session=off_session,
            idempotency_key=idempotency_key,
        )
        return await self._afault(answer, "confirm_intent", intent_id, idempotency_key)

    async def capture_intent(  # type: ignore[override]
        self, intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> IntentSnapshot:
        answer = self.inner.capture_intent(
            intent_id, amount=amount, idempotency_key=idempotency_key
        )
        return await self._afault(answer, "capture_intent", intent_id, idempotency_key)

    async def cancel_intent(  # type: ignore[override]
        self, intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> IntentSnapshot:
        answer = self.inner.cancel_intent(intent_id, reason=reason, idempotency_key=idempotency_key)
        return await self._afault(answer, "cancel_intent", intent_id, idempotency_key)

    async def create_refund(  # type: ignore[override]
        self,
        intent_id: str,
        *,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
    ) -> RefundSnapshot:
        answer = self.inner.create_refund(
            intent_id,
            amount=amount,
            reason=reason,
            idempotency_key=idempotency_key,
            reverse_transfer=reverse_transfer,
            refund_application_fee=refund_application_fee,
        )
        return await self._afault(answer, "create_refund", intent_id, idempotency_key)

    async def list_refunds(self, intent_id: str) -> Sequence[RefundSnapshot]:  # type: ignore[override]
        return await self._afault(self.inner.list_refunds(intent_id), "list_refunds", intent_id)

    async def retrieve_dispute(self, dispute_id: str) -> DisputeSnapshot:  # type: ignore[override]
        answer = self.inner.retrieve_dispute(dispute_id)
        return await self._afault(answer, "retrieve_dispute", dispute_id)

    async def _afault(
        self, answer: Awaitable[R], operation: str, intent_id: str | None, key: str | None = None
    ) -> R:
        """Await ``answer`` unless a fault is drawn (as ``FaultyGateway._mutate`` and
        ``_read`` do: a read, ``key`` ``None``, only gets the faults before the request)."""
        number = self.calls
        self.calls += 1
        if key is None:
            kind = self._draw(self.read_rate, [k for k in self.faults if k in READ_FAULTS])
        else:
            kind = self._draw(self.rate, self.faults)
        if kind is None:
            return await answer
        applied = kind == "timeout_after"
        if applied:
            with suppress(Exception):  # the answer is lost, whatever it was
                await answer
        elif hasattr(answer, "close"):
            answer.close()  # never sent
        self.injected.append(InjectedFault(number, operation, kind, intent_id, key, applied))
        raise _error(kind, operation, intent_id)
