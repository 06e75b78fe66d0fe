"""``path("stripe/", include("cartpay.contrib.django.urls"))`` → ``POST /stripe/webhook/``
(URL name ``cartpay:webhook``)."""

from __future__ import annotations

from django.urls import path

from .views import webhook

app_name = "cartpay"
urlpatterns = [path("webhook/", webhook, name="webhook")]
