"""FastAPI integration (extra ``cartpay[fastapi]``): the webhook route, the error
handler and a reconcile schedule. docs/fastapi.md walks through a shop with it.

::

    from cartpay.contrib.fastapi import add_error_handler, reconcile_lifespan, webhook_router

    app = FastAPI(lifespan=reconcile_lifespan(payments, every=timedelta(minutes=5)))
    app.include_router(webhook_router(payments))          # POST /stripe/webhook
    add_error_handler(app)                                # CartpayError → JSON + status

``payments`` is the sync :class:`~cartpay.CartPaymentIntent` or its async twin
(``AsyncCartPaymentIntent``): coroutine methods are awaited, sync ones run in
Starlette's thread pool so the event loop never waits on Stripe or the store.
A host's own routes using the sync façade should be plain ``def`` endpoints,
which FastAPI runs in the same thread pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import timedelta
from typing import Any, TypeVar, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .._errors import CartpayError, ValidationError
from .._models import ReconcileReport, WebhookResult
from .._rules import check_reconcile_policy
from ._payments import AsyncPayments, Payments, SyncPayments, is_async
from ._webhook import (
    DEFAULT_MAX_BODY_BYTES,
    Answer,
    check_delivery,
    error_answer,
    result_answer,
    too_large,
)

__all__ = [
    "add_error_handler",
    "cartpay_error_handler",
    "reconcile_lifespan",
    "webhook_router",
]

log = logging.getLogger("cartpay.contrib.fastapi")

_App = TypeVar("_App")


def _response(answer: Answer) -> JSONResponse:
    return JSONResponse(dict(answer.body), status_code=answer.status, headers=dict(answer.headers))


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or ``None`` once it grows past ``limit`` (a chunked body has
    no Content-Length to check first)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_router(
    payments: Payments,
    *,
    path: str = "/stripe/webhook",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    on_result: Callable[[WebhookResult], Any] | None = None,
) -> APIRouter:
    """An ``APIRouter`` with one route, ``POST path``, for Stripe's webhook deliveries.

    It reads the raw body (never parsed JSON: re-serialising breaks the
    signature) and answers (docs/web.md, "The webhook route"):

    - 415 when the content type is not ``application/json``, 413 when the body
      exceeds ``max_body_bytes``, 400 without a ``Stripe-Signature`` header:
      before ``handle_webhook`` is called;
    - 400 for a ``WebhookError`` (forged, stale or not an event): nothing was written;
    - 503 with ``Retry-After`` for a retryable error (Stripe delivers again),
      else the status :func:`cartpay.http_status` gives;
    - 200 with ``{"event_id", "event_type", "action"}`` once the event was
      recorded (``action`` may be ``"duplicate"`` or ``"ignored"``).

    ``on_result`` (a function or a coroutine function) is called with each
    :class:`~cartpay.WebhookResult` before the 200 is sent; if it raises, the
    delivery is answered 500 and Stripe's retry is a ``"duplicate"``.
    """
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
        raise ValidationError("max_body_bytes", "integer", "must be an int")
    if max_body_bytes <= 0:
        raise ValidationError("max_body_bytes", "positive", "must be positive")
    asynchronous = is_async(payments)
    router = APIRouter()

    async def handle(body: bytes, signature: str) -> WebhookResult:
        if asynchronous:
            return await cast(AsyncPayments, payments).handle_webhook(body, signature)
        sync = cast(SyncPayments, payments)
        return await run_in_threadpool(sync.handle_webhook, body, signature)

    async def stripe_webhook(request: Request) -> Response:
        refused = check_delivery(
            content_type=request.headers.get("content-type"),
            content_length=request.headers.get("content-length"),
            signature=request.headers.get("stripe-signature"),
            max_body_bytes=max_body_bytes,
        )
        if refused is not None:
            return _response(refused)
        body = await _read_body(request, max_body_bytes)
        if body is None:
            return _response(too_large(max_body_bytes))
        try:
            result = await handle(body, request.headers["stripe-signature"])
        except CartpayError as exc:
            if exc.retryable:
                log.warning("webhook delivery failed, Stripe will retry: %s", type(exc).__name__)
            return _response(error_answer(exc))
        if on_result is not None:
            done = on_result(result)
            if asyncio.iscoroutine(done):
                await done
        return _response(result_answer(result))

    router.add_api_route(
        path, stripe_webhook, methods=["POST"], include_in_schema=False, name="stripe_webhook"
    )
    return router


async def cartpay_error_handler(request: Request, exc: Exception) -> Response:
    """An exception handler answering a :class:`~cartpay.CartpayError` with
    :func:`cartpay.http_status` and a JSON body ``{"error": {"type", "message",
    "retryable", …}}`` (a 5xx body names only the type; docs/web.md, "Errors")."""
    if not isinstance(exc, CartpayError):  # registered for CartpayError only
        raise exc
    return _response(error_answer(exc))


def add_error_handler(app: FastAPI) -> None:
    """Register :func:`cartpay_error_handler` for every ``CartpayError`` raised by
    ``app``'s routes."""
    app.add_exception_handler(CartpayError, cartpay_error_handler)


def reconcile_lifespan(
    payments: Payments,
    *,
    every: timedelta,
    older_than: timedelta = timedelta(minutes=15),
    limit: int = 500,
    abandon_after: timedelta | None = None,
    refund_orphans: bool = False,
    on_report: Callable[[ReconcileReport], Any] | None = None,
    lifespan: Callable[[_App], AbstractAsyncContextManager[Any]] | None = None,
) -> Callable[[_App], AbstractAsyncContextManager[Any]]:
    """A lifespan for ``FastAPI(lifespan=…)`` that runs ``payments.reconcile`` while
    the app serves: once at start-up, then ``every`` after the end of each run.

    The keyword arguments go to :meth:`~cartpay.CartPaymentIntent.reconcile`.
    A run that raises is logged (logger ``cartpay.contrib.fastapi``) and the
    schedule goes on; each report goes to ``on_report`` (a function or
    coroutine function) and its errors are logged. At shutdown the schedule
    stops: a run in progress is let finish (a sync run cannot be interrupted in
    its thread), so the store is not closed under it. ``lifespan``: the app's
    own lifespan, entered inside this one; what it yields is yielded.
    """
    if not isinstance(every, timedelta) or every <= timedelta(0):
        raise ValidationError("every", "positive", "must be a positive timedelta")
    check_reconcile_policy(older_than, limit, abandon_after, refund_orphans, None)
    asynchronous = is_async(payments)
    options: dict[str, Any] = {
        "older_than": older_than,
        "limit": limit,
        "abandon_after": abandon_after,
        "refund_orphans": refund_orphans,
    }

    async def run_once() -> None:
        try:
            if asynchronous:
                report = await cast(AsyncPayments, payments).reconcile(**options)
            else:
                sync = cast(SyncPayments, payments)
                report = await run_in_threadpool(lambda: sync.reconcile(**options))
        except Exception:
            log.exception("reconcile failed; the next run is in %s", every)
            return
        for ref, error in report.errors:
            log.warning("reconcile could not look at %s: %s", ref, error)
        if on_report is not None:
            try:
                done = on_report(report)
                if asyncio.iscoroutine(done):
                    await done
            except Exception:
                log.exception("on_report failed")

    async def schedule(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await run_once()
            with suppress(asyncio.TimeoutError):  # the next run is due
                await asyncio.wait_for(stop.wait(), every.total_seconds())

    @asynccontextmanager
    async def reconciling(app: _App) -> AsyncIterator[Any]:
        stop = asyncio.Event()
        task = asyncio.create_task(schedule(stop), name="cartpay-reconcile")
        try:
            if lifespan is None:
                yield None
            else:
                async with lifespan(app) as state:
                    yield state
        finally:
            stop.set()
            await task

    return reconciling
