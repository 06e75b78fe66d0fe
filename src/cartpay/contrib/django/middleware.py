"""``CartpayErrorMiddleware``: a view's uncaught :class:`~cartpay.CartpayError`
answered with :func:`cartpay.http_status` and a JSON error body (docs/web.md, "Errors")."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from ..._errors import CartpayError
from .._webhook import error_answer
from .views import json_answer

__all__ = ["CartpayErrorMiddleware"]


class CartpayErrorMiddleware:
    """Add to ``MIDDLEWARE``; other exceptions go on to Django's own handling."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, CartpayError):
            return json_answer(error_answer(exception))
        return None
