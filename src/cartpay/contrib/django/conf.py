"""The ``CARTPAY`` setting and the façade it builds (one per process).

===========================  =========================================================
key                          meaning
===========================  =========================================================
``STRIPE_API_KEY``           the secret key (``sk_test_…``/``sk_live_…``); required
``WEBHOOK_SECRET``           the endpoint's signing secret (``whsec_…``); required for
                             the webhook view
``STORE``                    SQLite file path, or a ``postgresql://`` DSN (extra
                             ``postgres``); default ``"cartpay.sqlite3"``
``STRIPE_API_BASE``          another API address, e.g. localstripe's from
                             ``python -m cartpay dev``; default: Stripe's
``ATTACH_THEN_CONFIRM``      ``True`` for localstripe (see ``StripeGateway``)
``REDIRECTS``                ``False`` for localstripe, a cards-only server (see
                             ``StripeGateway``); default ``True``
``RETURN_URL``               where Stripe sends the customer back from 3-D Secure
                             after a server-side confirm (``CartPaymentIntent``)
``MAX_NETWORK_RETRIES``      the stripe SDK's retries (default 2; POSTs keep their keys)
``MAX_WEBHOOK_BYTES``        the webhook view's body limit (default 1 MiB)
``PAYMENTS``                 dotted path to a function taking no argument that returns
                             the façade; when set, the keys above except
                             ``MAX_WEBHOOK_BYTES`` are not used
===========================  =========================================================

The façade is built on first use and kept for the process; changing ``CARTPAY``
(``override_settings`` in tests) closes its store and builds a new one on next
use. Nothing here reads environment variables: the host's settings module does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..._service import CartPaymentIntent
from .._webhook import DEFAULT_MAX_BODY_BYTES

__all__ = ["get_payments", "max_webhook_bytes", "reset"]

_KEYS = frozenset(
    {
        "STRIPE_API_KEY",
        "WEBHOOK_SECRET",
        "STORE",
        "STRIPE_API_BASE",
        "ATTACH_THEN_CONFIRM",
        "REDIRECTS",
        "RETURN_URL",
        "MAX_NETWORK_RETRIES",
        "MAX_WEBHOOK_BYTES",
        "PAYMENTS",
    }
)

_lock = threading.Lock()
_built: list[CartPaymentIntent] = []  # the process's façade, once built


def _settings() -> Mapping[str, Any]:
    value = getattr(settings, "CARTPAY", None)
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured("settings.CARTPAY must be a dict (see cartpay.contrib.django)")
    unknown = set(value) - _KEYS
    if unknown:
        raise ImproperlyConfigured(f"settings.CARTPAY has unknown keys: {sorted(unknown)}")
    return value


def _required(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"settings.CARTPAY[{key!r}] must be set")
    return value


def max_webhook_bytes() -> int:
    """``CARTPAY["MAX_WEBHOOK_BYTES"]`` (default 1 MiB), checked."""
    value = _settings().get("MAX_WEBHOOK_BYTES", DEFAULT_MAX_BODY_BYTES)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ImproperlyConfigured("settings.CARTPAY['MAX_WEBHOOK_BYTES'] must be a positive int")
    return value


def _build(config: Mapping[str, Any]) -> CartPaymentIntent:
    factory_path = config.get("PAYMENTS")
    if factory_path is not None:
        factory: Callable[[], object] = import_string(factory_path)
        built = factory()
        if not isinstance(built, CartPaymentIntent):
            raise ImproperlyConfigured(
                f"settings.CARTPAY['PAYMENTS'] ({factory_path}) returned "
                f"{type(built).__name__}, not a CartPaymentIntent"
            )
        return built
    import stripe

    from ..._cli_reconcile import open_store
    from ...gateways.stripe import StripeGateway

    retries = config.get("MAX_NETWORK_RETRIES", 2)
    base = config.get("STRIPE_API_BASE")
    client = stripe.StripeClient(
        _required(config, "STRIPE_API_KEY"),
        max_network_retries=retries,
        **({"base_addresses": {"api": base}} if base else {}),  # type: ignore[arg-type]
    )
    gateway = StripeGateway(
        client,
        webhook_secret=_required(config, "WEBHOOK_SECRET"),
        max_network_retries=retries,
        attach_then_confirm=bool(config.get("ATTACH_THEN_CONFIRM", False)),
        redirects=bool(config.get("REDIRECTS", True)),
    )
    store = open_store(str(config.get("STORE", "cartpay.sqlite3")))
    return CartPaymentIntent(gateway=gateway, store=store, return_url=config.get("RETURN_URL"))


def get_payments() -> CartPaymentIntent:
    """The process's :class:`~cartpay.CartPaymentIntent`, built from ``settings.CARTPAY``
    on first use (``ImproperlyConfigured`` names a missing or bad key)."""
    with _lock:
        if not _built:
            _built.append(_build(_settings()))
        return _built[0]


def reset() -> None:
    """Forget the façade (closing its store); the next :func:`get_payments` builds anew."""
    with _lock:
        built = list(_built)
        _built.clear()
    for payments in built:
        payments.store.close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CARTPAY":
        reset()


def connect_signals() -> None:
    """Rebuild on a change of ``CARTPAY`` (``override_settings``); called by the app."""
    setting_changed.connect(_on_setting_changed, dispatch_uid="cartpay.contrib.django.conf")
