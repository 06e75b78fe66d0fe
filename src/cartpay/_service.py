"""CartPaymentIntent, the façade: the public surface only.

Each method runs its flow from :class:`cartpay._workflow.Workflow` (validate, one
flow, return; written once for this façade and its async twin,
:class:`cartpay.AsyncCartPaymentIntent`) with the sync driver,
:func:`cartpay._effects.run`, in the caller's thread. The flows are built from
the layers below (docs/design.md, "Layers").
"""

from __future__ import annotations

from datetime import timedelta

from typing_extensions import Self

from ._effects import run
from ._models import Cart, IntentHandle, Order, ReconcileReport, WebhookResult
from ._options import IntentOptions
from ._ports import PaymentGateway, Pricing, Store
from ._workflow import Workflow

__all__ = ["CartPaymentIntent"]


class CartPaymentIntent(Workflow[PaymentGateway, Store, Pricing]):
    """The cart → PaymentIntent → order workflow over a gateway and a store.

    Thread-safe and safe across processes sharing one store: concurrent calls on
    the same cart or order serialise through the store's version checks and the
    pending-operation leases.

    ``lease`` is how long a caller may hold a pending gateway operation before
    another caller may take it over (set it above the gateway's timeout with
    retries); ``wait`` how long a caller waits for another caller's operation on
    the same record before raising ``ConcurrencyError``.

    ``return_url`` is where Stripe sends the customer back after a redirect (3-D
    Secure, a bank's page) when :meth:`confirm_payment` is not given one.
    ``max_amounts`` lowers Stripe's maximum amount in some currencies
    (``{"usd": 1_000_000}``: no cart above $10,000.00); it can only lower them.
    ``livemode`` overrides the gateway's mode for the webhook mode check (the
    Stripe gateway knows its mode from its key; the check is then on by default).
    ``pricing`` (a :class:`~cartpay.Pricing`) is the host's pricing: asked for
    the cart's adjustments right before each create, update and checkout, its
    answer stored on the cart, so the amount sent is always today's. Without
    one, the adjustments the host set (``add_adjustment``) are used as they are.
    """

    def close(self) -> None:
        """Close the store (its connections). The façade is not used after this.
        ``with CartPaymentIntent(...) as payments:`` closes it when the block ends."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def create_cart(self, currency: str, *, options: IntentOptions | None = None) -> Cart:
        """A new empty cart in ``currency`` (lowercase ISO code Stripe supports)."""
        return run(self._create_cart(currency, options))

    def get_cart(self, cart_id: str) -> Cart:
        """The cart, or ``NotFoundError``."""
        return run(self._get_cart(cart_id))

    def add_item(
        self, cart_id: str, *, sku: str, name: str, unit_amount: int, quantity: int = 1
    ) -> Cart:
        """Add ``quantity`` of ``sku`` (its name and price are replaced if present)."""
        return run(self._add_item(cart_id, sku, name, unit_amount, quantity))

    def set_quantity(self, cart_id: str, sku: str, quantity: int) -> Cart:
        """Set the quantity of ``sku``; 0 removes the line."""
        return run(self._set_quantity(cart_id, sku, quantity))

    def add_adjustment(
        self, cart_id: str, *, kind: str, code: str, label: str, amount: int
    ) -> Cart:
        """Add shipping, tax, a fee or a discount to the cart (``kind``), replacing
        the adjustment of the same ``code``. ``amount`` is an ``int`` ≥ 0 in the
        cart's minor units; a discount's is subtracted from the total. Raises
        ``ValidationError`` for an unknown kind, a code another kind uses, a bad
        code, label or amount. A total below the currency's minimum charge is
        refused when an intent would be created or updated, not here. With a
        pricing port, the port's answer replaces the adjustments at the next
        create, update or checkout (it sees this one in ``cart.adjustments``)."""
        return run(self._add_adjustment(cart_id, kind, code, label, amount))

    def remove_adjustment(self, cart_id: str, code: str) -> Cart:
        """Remove the adjustment ``code`` (``ValidationError`` if the cart has none)."""
        return run(self._remove_adjustment(cart_id, code))

    def delete_cart(self, cart_id: str) -> None:
        """Delete the cart. Its intent, when it follows only this cart and can
        still take a payment, is canceled first (``abandoned``). Raises
        ``IllegalStateError``, deleting nothing, while money moves on that intent
        and no order owns it (the browser paid: check the cart out instead), also
        when Stripe refuses the cancel because the payment went through meanwhile.
        """
        run(self._delete_cart(cart_id))

    def create_payment_intent(
        self, cart_id: str, *, options: IntentOptions | None = None
    ) -> IntentHandle:
        """The cart's live intent, created if needed, matching the cart now.

        Reuses the cart's intent while it can take a payment (updating it if the
        cart changed, else retrieving it for its client secret); creates one only
        when there is none or the last was canceled or used. The create carries
        the key ``cartpay:cart:<id>:g<generation>:create``, recorded before the call.
        The amount is the cart's total; with a pricing port, the cart is priced
        first (``PricingError`` when the port fails: nothing sent or written).

        Stripe calls: one create, or one update/retrieve when reusing.
        """
        return run(self._create_payment_intent(cart_id, options))

    def update_payment_intent(
        self, cart_id: str, *, options: IntentOptions | None = None
    ) -> IntentHandle:
        """Send the cart's final details to its intent: only the changed fields.

        When nothing changed, no Stripe call is made and the handle carries no
        client secret (the browser already has it). When an order holds the
        cart's intent (a kept cart changed after checkout), the cart gets a new
        intent of its own instead: the order's is never repriced. Raises
        ``IllegalStateError`` when the intent's status forbids the change (e.g.
        ``processing``) or the cart has no intent yet. With a pricing port, the
        cart is priced first (``PricingError`` when it fails).
        """
        return run(self._update_payment_intent(cart_id, options))

    def checkout(self, cart_id: str, *, keep_cart: bool = False) -> Order:
        """Snapshot the cart into an unpaid order linked to the cart's intent.

        The intent is first brought up to date with the cart (one update call if
        the cart changed since the last send; with a pricing port, the cart is
        priced first, and the order holds the port's adjustments). By default the cart is consumed
        and its intent goes with the order; ``keep_cart=True`` keeps both on the
        cart (a second checkout then makes a second order on the same intent, of
        which only one can be paid: see docs/design.md, "One intent pays at most
        one order").

        Safe to retry: a checkout of a cart that checkout consumed returns the
        order it made (the newest order made from the cart, see
        :meth:`orders_for_cart`), so a double click, a network retry or
        concurrent checkouts of one cart get one order. A cart that never made
        an order raises ``NotFoundError`` once it is gone.
        """
        return run(self._checkout(cart_id, keep_cart))

    def orders_for_cart(self, cart_id: str) -> list[Order]:
        """The orders checked out from the cart ``cart_id``, oldest first, also once
        the cart is gone (``[]`` for a cart that made none, or an unknown id)."""
        return run(self._orders_for_cart(cart_id))

    def get_order(self, order_id: str) -> Order:
        """The order, or ``NotFoundError``."""
        return run(self._get_order(order_id))

    def confirm_payment(
        self,
        order_id: str,
        *,
        payment_method: str,
        return_url: str | None = None,
        off_session: bool = False,
    ) -> Order:
        """Confirm the order's intent server-side with ``payment_method`` (a saved
        card, tests), then record the outcome as ``confirm_order`` does.

        ``return_url`` (else the façade's ``return_url``) is where Stripe sends the
        customer back after a redirect. When the intent may redirect (Stripe's
        default: automatic payment methods with redirects allowed; not when its
        types are cards only or ``allow_redirects="never"``) and the gateway can
        redirect, a confirm without one raises ``ValidationError`` (field
        ``return_url``) before any call: Stripe would refuse it.

        ``off_session=True`` charges a customer's saved card while the customer is
        away (the intent needs ``customer``, and no ``setup_future_usage``). When
        the bank wants the customer to authenticate, ``AuthenticationRequiredError``
        is raised after the failed attempt is recorded; the order stays payable
        (docs/going-live.md).

        When the card needs 3-D Secure on-session, the order stays unpaid and
        :meth:`intent_for_order` says what the browser must do (``next_action``).
        A decline raises ``CardDeclinedError`` after recording the failed
        transaction; the order stays payable.
        """
        return run(self._confirm_payment(order_id, payment_method, return_url, off_session))

    def intent_for_order(self, order_id: str) -> IntentHandle:
        """The order's intent as Stripe has it now, for the browser: its client
        secret (never stored) and, when its status is ``requires_action``, the
        ``next_action`` Stripe asks for (3-D Secure in the browser, or a redirect
        and its URL). Records nothing on the order (call :meth:`confirm_order`
        for that). Raises ``IllegalStateError`` when the order has no intent, and
        ``AmountMismatchError`` when the intent's amount or currency is not the
        order's (changed outside cartpay): its client secret would let the browser
        pay an amount that is not the order's.

        Stripe calls: one retrieve.
        """
        return run(self._intent_for_order(order_id))

    def confirm_order(self, order_id: str) -> Order:
        """Synchronise the order with its intent (docs/design.md, "Confirm order").
        Safe to repeat.

        succeeded → purchase/capture transaction, payment ``paid``;
        requires_capture → authorize, ``authorized``; processing → pending
        transaction; a failed attempt → failed transaction, still payable;
        canceled → order ``cancelled``. Raises ``AmountMismatchError`` (order
        flagged, not paid) or ``IntentAlreadyUsedError`` (the intent pays another
        order).

        Stripe calls: one retrieve, plus one refund list when the charge's refunded
        amount is not what the order knows (a refund made or failed elsewhere) or a
        refund of the order is pending.
        """
        return run(self._confirm_order(order_id))

    def capture_order(self, order_id: str, amount: int | None = None) -> Order:
        """Capture an authorized order: all of it, or ``amount`` (the rest is released)."""
        return run(self._capture_order(order_id, amount))

    def cancel_order(self, order_id: str, *, reason: str | None = None) -> Order:
        """Cancel an unpaid or authorized order and its intent (an authorization is
        released). An intent that pays another order, or that another live order
        holds, is left alone: only this order is cancelled."""
        return run(self._cancel_order(order_id, reason))

    def refund_order(
        self,
        order_id: str,
        amount: int | None = None,
        *,
        reason: str | None = None,
        reverse_transfer: bool | None = None,
        refund_application_fee: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Refund ``amount`` (all that remains when ``None``) of a paid order.

        Refunds never exceed ``Order.refundable``: what was captured less what was
        already refunded (pending refunds count); nothing while a dispute is open
        or lost (``Order.disputed``). More raises ``ValidationError`` (rule
        ``refundable``) before any call. (Stripe refuses any refund of a charge
        with an open or lost chargeback: ``InvalidRequestError``, code
        ``charge_disputed``.) Without ``amount``, a refund that lands meanwhile
        makes it read what remains again; when that keeps moving (five reads),
        it raises ``ConcurrencyError`` (retryable) and refunds nothing.

        Connect (an intent with ``transfer_destination``): ``reverse_transfer=True``
        takes the refunded share back from the connected account (else the
        platform pays the whole refund); ``refund_application_fee=True`` gives the
        connected account back the platform's fee on it (else the platform keeps
        the fee). ``None`` sends nothing: Stripe's default, ``False`` for both.
        See docs/going-live.md, "Connect refunds".

        ``idempotency_key`` (a str of 1 to 255 characters; optional, recommended
        for a host that retries): the refund is recorded under it, and a later
        call with the same key returns the order without refunding again, also
        after another call settled its lost answer; the same key with another
        ``amount`` raises ``ValidationError`` (rule ``reused``). Without a key, a
        retry is recognised only while its claim is pending (docs/money.md,
        "Unknown outcomes").
        """
        flags = (reverse_transfer, refund_application_fee)
        return run(self._refund_order(order_id, amount, reason, *flags, idempotency_key))

    def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookResult:
        """Verify, deduplicate and apply one webhook delivery. Always safe to call.

        The signature is checked over the raw ``payload`` bytes by the gateway
        (any ``v1`` signature may match; older than ``webhook_tolerance`` seconds
        is stale). The event id is recorded in the same store transaction as the
        event's effects: a repeated delivery returns ``action="duplicate"`` and
        changes nothing (recognised after the signature check and the parse from
        one lookup of the id, without a write transaction). Payment-intent and
        refund events go through the same mapping as :meth:`confirm_order`,
        monotonically, so any order or number
        of deliveries converges. Unknown event types and intents cartpay did not
        create are recorded as ``ignored``.

        An event written in another API version than cartpay's
        (``STRIPE_API_VERSION``: an endpoint pinned elsewhere) is not trusted: its
        object is read again from Stripe (the intent retrieved, the refunds
        listed), and the first such event of each version is logged as a warning.

        Raises ``WebhookSignatureError`` / ``WebhookPayloadError`` (answer HTTP 400;
        nothing was written; also for an event of the other mode, live or test,
        than the gateway's). Stripe calls: none, except one refund list for
        ``charge.refunded``, and one retrieve when ``refresh_on_webhook`` is set or
        the event is of another API version.
        """
        return run(self._handle_webhook(payload, signature_header))

    def reconcile(
        self,
        *,
        older_than: timedelta = timedelta(minutes=15),
        limit: int = 500,
        abandon_after: timedelta | None = None,
        refund_orphans: bool = False,
        expiring_within: timedelta | None = None,
    ) -> ReconcileReport:
        """Repair what missed webhooks left behind, and apply the abandonment policy.
        Safe to run alongside webhooks, and as often as wanted.

        Orders still incomplete or processing created more than ``older_than``
        ago are synchronised with :meth:`confirm_order`; intents that pay no
        order are refreshed, and those that took money no order owns are reported
        in ``orphaned``. Each run takes the next ``limit`` of each, going on where
        the last run stopped, so abandoned checkouts never hide newer ones.

        ``abandon_after`` (``None``: never): orders and intents older than that
        which never took money are cancelled (``abandoned``). ``refund_orphans``:
        money no order owns, on an intent older than ``abandon_after`` or whose
        cart is gone, is given back (refund, or a released authorization).
        ``report.actions`` says what was done, per order or intent.

        ``expiring_within`` (``None``: no report): authorized orders looked at
        whose authorization lapses within that time from now (``capture_before``,
        read from the card charge) are listed in ``report.expiring``, soonest
        first: capture or cancel them before Stripe cancels the intent.

        Stripe calls: one retrieve per order or intent looked at (plus a refund
        list for paid orders), and one cancel or refund per action.
        """
        policy = (older_than, limit, abandon_after, refund_orphans, expiring_within)
        return run(self._reconcile(*policy))
