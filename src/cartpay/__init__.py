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

from ._async_service import AsyncCartPaymentIntent
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
)
from ._models import (
    Cart,
    IntentHandle,
    IntentOptions,
    IntentParams,
    IntentRecord,
    IntentSnapshot,
    LineItem,
    Order,
    OrphanedIntent,
    PaymentFailure,
    PendingOperation,
    ReconcileReport,
    RefundSnapshot,
    Transaction,
    WebhookResult,
)
from ._money import Currency, format_amount, get_currency, parse_amount
from ._ports import (
    AsyncPaymentGateway,
    AsyncStore,
    AsyncStoreReads,
    AsyncStoreTransaction,
    IntentChanges,
    PaymentGateway,
    Store,
    StoreReads,
    StoreTransaction,
)
from ._service import CartPaymentIntent

#: The package version; pyproject.toml reads it from here (hatch dynamic version).
__version__ = "0.1.0"

__all__ = [
    "AmountMismatchError",
    "AsyncCartPaymentIntent",
    "AsyncPaymentGateway",
    "AsyncStore",
    "AsyncStoreReads",
    "AsyncStoreTransaction",
    "AuthenticationError",
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
    "InvalidRequestError",
    "LineItem",
    "NotFoundError",
    "OperationPendingError",
    "Order",
    "OrphanedIntent",
    "PaymentFailure",
    "PaymentGateway",
    "PendingOperation",
    "RateLimitedError",
    "ReconcileReport",
    "RefundSnapshot",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreReads",
    "StoreTransaction",
    "Transaction",
    "ValidationError",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookResult",
    "WebhookSignatureError",
    "format_amount",
    "get_currency",
    "parse_amount",
]
