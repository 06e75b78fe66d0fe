"""The Django app config (``INSTALLED_APPS = [..., "cartpay.contrib.django"]``)."""

from __future__ import annotations

from django.apps import AppConfig


class CartpayConfig(AppConfig):
    """cartpay's app: a webhook view, a management command; no models."""

    name = "cartpay.contrib.django"
    label = "cartpay"
    verbose_name = "cartpay"

    def ready(self) -> None:
        from . import conf

        conf.connect_signals()
