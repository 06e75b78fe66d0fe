"""The one Stripe API version cartpay is written for.

Every request :class:`~cartpay.gateways.stripe.StripeGateway` sends carries it
(``Stripe-Version``), whatever version the ``StripeClient`` was built with, and
``python -m cartpay endpoint create`` pins webhook endpoints to it: the meaning
cartpay gives to Stripe's answers and events (a partial capture releases the
rest instead of refunding it, an expired authorization's cancellation reason,
``allowed_payment_method_types``) is this version's. It is the version
stripe-python 16.1 pins (``stripe.api_version``). Events written in another
version are not trusted: the façade re-reads their objects from Stripe
(docs/going-live.md, "API version").

Core: imports nothing.
"""

from __future__ import annotations

__all__ = ["STRIPE_API_VERSION"]

#: The API version of every request cartpay makes and of the endpoints it creates.
STRIPE_API_VERSION = "2026-10-28.endive"
