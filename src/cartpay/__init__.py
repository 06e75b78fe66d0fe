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

from ._errors import (
    AmountMismatchError,
    AuthenticationError,
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
    Cart,
    IntentHandle,
    IntentOptions,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    IntentStatus,
    LineItem,
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
from ._ports import IntentChanges, PaymentGateway, Store, StoreReads, StoreTransaction
from ._service import CartPaymentIntent

#: The package version; pyproject.toml reads it from here (hatch dynamic version).
__version__ = "0.1.0"

# A library logs, the host decides where: nothing is printed unless it configures
# logging (docs/howto/logging.md lists the lines and their extra keys).
logging.getLogger("cartpay").addHandler(logging.NullHandler())

__all__ = [
    "AmountMismatchError",
    "AuthenticationError",
    "CaptureMethod",
    "CardDeclinedError",
    "Cart",
    "CartPaymentIntent",
    "CartpayError",
    "ConcurrencyError",
    "Currency",
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
    "RateLimitedError",
    "ReconcileReport",
    "RefundSnapshot",
    "RefundStatus",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreReads",
    "StoreTransaction",
    "Transaction",
    "TransactionKind",
    "TransactionStatus",
    "ValidationError",
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
