"""The webhook view: ``POST`` only, CSRF-exempt (Stripe signs instead), raw body."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..._errors import CartpayError
from .._webhook import Answer, check_delivery, error_answer, result_answer, too_large
from .conf import get_payments, max_webhook_bytes

__all__ = ["json_answer", "webhook"]


def json_answer(answer: Answer) -> JsonResponse:
    """An :class:`~cartpay.contrib._webhook.Answer` as a ``JsonResponse``."""
    return JsonResponse(dict(answer.body), status=answer.status, headers=dict(answer.headers))


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's webhook deliveries (docs/web.md, "The webhook route").

    415 unless ``application/json``; 413 over ``CARTPAY["MAX_WEBHOOK_BYTES"]``;
    400 without a ``Stripe-Signature`` header or for a ``WebhookError`` (nothing
    written); 503 with ``Retry-After`` for a retryable error, else the status of
    :func:`cartpay.http_status`; 200 ``{"event_id", "event_type", "action"}``.
    The body is read from the request stream as bytes, never through
    ``request.POST``, and never more than the limit.
    """
    limit = max_webhook_bytes()
    refused = check_delivery(
        content_type=request.META.get("CONTENT_TYPE"),
        content_length=request.META.get("CONTENT_LENGTH"),
        signature=request.headers.get("Stripe-Signature"),
        max_body_bytes=limit,
    )
    if refused is not None:
        return json_answer(refused)
    body = request.read(limit + 1)
    if len(body) > limit:
        return json_answer(too_large(limit))
    try:
        result = get_payments().handle_webhook(body, request.headers["Stripe-Signature"])
    except CartpayError as exc:
        return json_answer(error_answer(exc))
    return json_answer(result_answer(result))
