"""Web framework integrations: ``cartpay.contrib.fastapi`` (extra ``cartpay[fastapi]``)
and ``cartpay.contrib.django`` (extra ``cartpay[django]``).

Each gives the webhook endpoint (raw body, signature header, size and content
type checks), the error → HTTP status mapping of :func:`cartpay.http_status`,
and a way to run :meth:`~cartpay.CartPaymentIntent.reconcile` on a schedule.
docs/web.md describes what they answer; docs/fastapi.md and docs/django.md
how to use them. Importing ``cartpay.contrib`` imports no framework.
"""
