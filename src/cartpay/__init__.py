"""cartpay: the commerce side of a Stripe PaymentIntent checkout.

A cart gets one PaymentIntent; checkout makes an unpaid order linked to it;
confirming the order synchronises the intent into a transaction and the order's
statuses. ``CartPaymentIntent`` is the façade; gateways and stores plug in::

    from cartpay import CartPaymentIntent
    from cartpay.stores.memory import MemoryStore
    from cartpay.testing import FakeStripeGateway

    payments = CartPaymentIntent(gateway=FakeStripeGateway(), store=MemoryStore())

``import cartpay`` does not import stripe.
"""

import logging

from ._api_version import STRIPE_API_VERSION
from ._async_service import AsyncCartPaymentIntent
from ._errors import (
    AmountMismatchError,
    AuthenticationError,
    AuthenticationRequiredError,
    CardDeclinedError,
    CartpayError,
    ConcurrencyError,
    GatewayError,
    GatewayUnavailableError,
    IdempotencyError,
    IllegalStateError,
    IntentAlreadyUsedError,
    InvalidRequestError,
    NotFoundError,
    OperationPendingError,
    PricingError,
    RateLimitedError,
    SchemaVersionError,
    StoreError,
    ValidationError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
    http_status,
)
from ._json import from_json, to_json
from ._models import (
    Adjustment,
    AdjustmentKind,
    Cart,
    DisputeSnapshot,
    ExpiringAuthorization,
    IntentHandle,
    IntentOptions,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    IntentStatus,
    LineItem,
    NextAction,
    OperationName,
    Order,
    OrderStatus,
    OrphanedIntent,
    PaymentFailure,
    PaymentStatus,
    PendingOperation,
    ReconcileReport,
    RefundSnapshot,
    RefundStatus,
    Transaction,
    TransactionKind,
    TransactionStatus,
    WebhookAction,
    WebhookResult,
)
from ._money import Currency, format_amount, get_currency, parse_amount
from ._options import CaptureMethod
from ._ports import (
    AsyncPaymentGateway,
    AsyncPricing,
    AsyncStore,
    AsyncStoreReads,
    AsyncStoreTransaction,
    IntentChanges,
    PaymentGateway,
    Pricing,
    Store,
    StoreReads,
    StoreTransaction,
)
from ._service import CartPaymentIntent
from ._webhooks import WEBHOOK_EVENTS

#: The package version; pyproject.toml reads it from here (hatch dynamic version).
__version__ = "0.1.0"

# A library logs, the host decides where: nothing is printed unless it configures
# logging (docs/howto/logging.md lists the lines and their extra keys).
logging.getLogger("cartpay").addHandler(logging.NullHandler())

__all__ = [  # noqa: RUF022 - plain sorted order, pinned by tests/unit/test_public_api.py
    "Adjustment",
    "AdjustmentKind",
    "AmountMismatchError",
    "AsyncCartPaymentIntent",
    "AsyncPaymentGateway",
    "AsyncPricing",
    "AsyncStore",
    "AsyncStoreReads",
    "AsyncStoreTransaction",
    "AuthenticationError",
    "AuthenticationRequiredError",
    "CaptureMethod",
    "CardDeclinedError",
    "Cart",
    "CartPaymentIntent",
    "CartpayError",
    "ConcurrencyError",
    "Currency",
    "DisputeSnapshot",
    "ExpiringAuthorization",
    "GatewayError",
    "GatewayUnavailableError",
    "IdempotencyError",
    "IllegalStateError",
    "IntentAlreadyUsedError",
    "IntentChanges",
    "IntentHandle",
    "IntentOptions",
    "IntentParams",
    "IntentRecord",
    "IntentSnapshot",
    "IntentStatus",
    "InvalidRequestError",
    "LineItem",
    "NextAction",
    "NotFoundError",
    "OperationName",
    "OperationPendingError",
    "Order",
    "OrderStatus",
    "OrphanedIntent",
    "PaymentFailure",
    "PaymentGateway",
    "PaymentStatus",
    "PendingOperation",
    "Pricing",
    "PricingError",
    "RateLimitedError",
    "ReconcileReport",
    "RefundSnapshot",
    "RefundStatus",
    "STRIPE_API_VERSION",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreReads",
    "StoreTransaction",
    "Transaction",
    "TransactionKind",
    "TransactionStatus",
    "ValidationError",
    "WEBHOOK_EVENTS",
    "WebhookAction",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookResult",
    "WebhookSignatureError",
    "format_amount",
    "from_json",
    "get_currency",
    "http_status",
    "parse_amount",
    "to_json",
]
