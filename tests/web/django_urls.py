"""The URLconf of the Django suite: cartpay's app and two views of a shop."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from cartpay.contrib.django import get_payments


def order(request: HttpRequest, order_id: str) -> JsonResponse:
    return JsonResponse({"payment": get_payments().get_order(order_id).payment})


def add(request: HttpRequest, cart_id: str) -> JsonResponse:
    quantity = int(request.POST["quantity"])
    cart = get_payments().add_item(
        cart_id, sku="tee", name="T-shirt", unit_amount=500, quantity=quantity
    )
    return JsonResponse({"total": cart.total})


urlpatterns = [
    path("stripe/", include("cartpay.contrib.django.urls")),
    path("orders/<str:order_id>", order),
    path("carts/<str:cart_id>/items", add),
]
