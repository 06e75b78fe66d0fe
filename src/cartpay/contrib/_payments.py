"""The façade as the integrations see it: the sync :class:`~cartpay.CartPaymentIntent`
or an async twin (``AsyncCartPaymentIntent``, whose methods are coroutines).

The integrations tell them apart by whether ``handle_webhook`` is a coroutine
function (:func:`is_async`), so any object with these methods works.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Protocol

from .._models import ReconcileReport, WebhookResult

__all__ = ["AsyncPayments", "Payments", "SyncPayments", "is_async"]


class SyncPayments(Protocol):
    """What the integrations call on the sync façade."""

    def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult: ...

    def reconcile(
        self,
        *,
        older_than: timedelta = ...,
        limit: int = ...,
        abandon_after: timedelta | None = ...,
        refund_orphans: bool = ...,
    ) -> ReconcileReport: ...


class AsyncPayments(Protocol):
    """The same calls on an async twin."""

    async def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult: ...

    async def reconcile(
        self,
        *,
        older_than: timedelta = ...,
        limit: int = ...,
        abandon_after: timedelta | None = ...,
        refund_orphans: bool = ...,
    ) -> ReconcileReport: ...


Payments = SyncPayments | AsyncPayments


def is_async(payments: Payments) -> bool:
    """Whether ``payments`` is an async twin (its ``handle_webhook`` is a coroutine
    function; both it and ``reconcile`` must then be)."""
    handle = inspect.iscoroutinefunction(payments.handle_webhook)
    reconcile = inspect.iscoroutinefunction(payments.reconcile)
    if handle != reconcile:
        raise TypeError(
            f"{type(payments).__name__}: handle_webhook and reconcile must both be "
            "coroutine functions or neither"
        )
    return handle
