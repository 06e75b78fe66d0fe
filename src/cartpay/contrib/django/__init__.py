"""Django integration (extra ``cartpay[django]``): an app with the webhook view, the
settings that build the façade, an error middleware and the ``cartpay_reconcile``
management command. No ORM models and no migrations: cartpay keeps its records
in its own store (SQLite file or PostgreSQL), named in the settings.

::

    INSTALLED_APPS = [..., "cartpay.contrib.django"]
    MIDDLEWARE = [..., "cartpay.contrib.django.middleware.CartpayErrorMiddleware"]
    CARTPAY = {
        "STRIPE_API_KEY": os.environ["STRIPE_SECRET_KEY"],
        "WEBHOOK_SECRET": os.environ["STRIPE_WEBHOOK_SECRET"],
        "STORE": BASE_DIR / "cartpay.sqlite3",
    }
    # urls.py
    urlpatterns = [path("stripe/", include("cartpay.contrib.django.urls"))]  # POST /stripe/webhook/

    # a view
    from cartpay.contrib.django import get_payments
    order = get_payments().checkout(cart_id)

docs/django.md walks through a shop with it; :mod:`cartpay.contrib.django.conf`
lists the settings.
"""

from __future__ import annotations

from .conf import get_payments

__all__ = ["get_payments"]
