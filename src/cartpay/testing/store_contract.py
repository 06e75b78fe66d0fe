"""The Store contract, as a test class a host runs against its own store.

Subclass :class:`StoreContract` in a test module and give it a ``store``
fixture that yields an empty store (and closes it)::

    import pytest
    from cartpay.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            store = MyStore(...)
            yield store
            store.close()

Every method of the ``Store`` port (``cartpay.Store``) is checked for what its
one-line contract promises; assertions are on what a later transaction reads
back. cartpay runs the same class against its memory, SQLite and PostgreSQL stores.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from attrs import evolve

from .. import (
    Cart,
    ConcurrencyError,
    IntentOptions,
    IntentParams,
    IntentRecord,
    LineItem,
    Order,
    PendingOperation,
    Store,
    Transaction,
)
from .._models import IntentStatus

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
OPTIONS = IntentOptions(
    capture_method="manual",
    allowed_payment_method_types=("card", "link"),
    customer="cus_123",
    description="two tees",
    statement_descriptor_suffix="TEES",
    setup_future_usage="off_session",
    receipt_email="buyer@example.com",
    metadata={"shop": "north", "campaign": "spring"},
    application_fee_amount=120,
    transfer_destination="acct_123",
    on_behalf_of="acct_123",
    transfer_group="order_1",
)
ITEMS = (LineItem("tee-m", "T-shirt M", 2500, 2), LineItem("cap", "Cap", 1500, 1))


class Boom(Exception):
    """Raised inside a transaction to roll it back."""


def full_cart(cart_id: str = "cart_1") -> Cart:
    params = IntentParams(6500, "usd", OPTIONS)
    return Cart(
        cart_id,
        "usd",
        ITEMS,
        payment_intent_id="pi_1",
        created_at=T0,
        version=4,
        generation=2,
        options=OPTIONS,
        sent=IntentParams(5000, "usd", OPTIONS),
        pending=PendingOperation(
            "create", "cartpay:cart:cart_1:g2:create", T0 + timedelta(minutes=2), params=params
        ),
    )


def full_order(
    order_id: str = "ord_1",
    *,
    intent_id: str | None = "pi_1",
    created_at: datetime | None = T0,
    status: str = "processing",
    cart_id: str = "cart_1",
) -> Order:
    return Order(
        order_id,
        cart_id,
        "usd",
        6500,
        ITEMS,
        intent_id,
        status=status,  # type: ignore[arg-type]
        payment="partially_refunded",
        transactions=(
            Transaction("txn_1", "authorize", "complete", 6500, "usd", "pi_1"),
            Transaction("txn_2", "capture", "complete", 6500, "usd", "pi_1"),
            Transaction("txn_3", "refund", "failed", 500, "usd", "re_1", code="expired"),
        ),
        created_at=created_at,
        version=7,
        flag="amount_mismatch",
        pending=PendingOperation(
            "refund", "cartpay:order:ord_1:refund:1", T0, amount=500, reason="duplicate"
        ),
        options=OPTIONS,
    )


def intent(
    intent_id: str = "pi_1",
    *,
    status: IntentStatus = "requires_capture",
    order_id: str | None = None,
    created_at: datetime = T0,
) -> IntentRecord:
    return IntentRecord(
        intent_id, "cart_1", status, 6500, "usd", created_at, order_id=order_id, version=3
    )


# ------------------------------------------------------------------ carts


class StoreContract:
    """The contract tests; a subclass provides the ``store`` fixture."""

    def test_cart_round_trips_every_field(self, store: Store) -> None:
        cart = full_cart()
        with store.transaction() as tx:
            tx.insert_cart(cart)
            assert tx.get_cart(cart.id) == cart  # a transaction reads its own writes
        with store.transaction() as tx:
            assert tx.get_cart(cart.id) == cart
            assert tx.get_cart("cart_missing") is None

    def test_cart_update_and_delete_check_the_version(self, store: Store) -> None:
        cart = full_cart()
        with store.transaction() as tx:
            tx.insert_cart(cart)
        changed = evolve(cart, items=ITEMS[:1], pending=None, version=cart.version + 1)
        with store.transaction() as tx:
            tx.update_cart(changed, expected_version=cart.version)
        with store.transaction() as tx:
            assert tx.get_cart(cart.id) == changed
            with pytest.raises(ConcurrencyError):
                tx.update_cart(evolve(changed, version=99), expected_version=cart.version)
            with pytest.raises(ConcurrencyError):
                tx.delete_cart(cart.id, expected_version=cart.version)
            tx.delete_cart(cart.id, expected_version=changed.version)
        with store.transaction() as tx:
            assert tx.get_cart(cart.id) is None
            with pytest.raises(ConcurrencyError):
                tx.update_cart(changed, expected_version=changed.version)
            with pytest.raises(ConcurrencyError):
                tx.delete_cart(cart.id, expected_version=changed.version)

    # ----------------------------------------------------------------- orders

    def test_order_round_trips_every_field(self, store: Store) -> None:
        order = full_order()
        with store.transaction() as tx:
            tx.insert_order(order)
        with store.transaction() as tx:
            assert tx.get_order(order.id) == order
            assert tx.get_order("ord_missing") is None

    def test_order_update_checks_the_version(self, store: Store) -> None:
        order = full_order()
        with store.transaction() as tx:
            tx.insert_order(order)
        paid = evolve(order, status="complete", payment="paid", pending=None, version=8)
        with store.transaction() as tx:
            tx.update_order(paid, expected_version=7)
        with store.transaction() as tx:
            assert tx.get_order(order.id) == paid
            with pytest.raises(ConcurrencyError):
                tx.update_order(evolve(paid, version=9), expected_version=7)
            with pytest.raises(ConcurrencyError):
                tx.update_order(evolve(full_order("ord_missing"), version=8), expected_version=7)
        with store.transaction() as tx:
            assert tx.get_order(order.id) == paid

    # ---------------------------------------------------------------- intents

    def test_intent_round_trips_and_update_checks_the_version(self, store: Store) -> None:
        record = intent(order_id="ord_1")
        with store.transaction() as tx:
            tx.insert_intent(record)
        with store.transaction() as tx:
            assert tx.get_intent(record.id) == record
            assert tx.get_intent("pi_missing") is None
        done = evolve(record, status="succeeded", version=4)
        with store.transaction() as tx:
            tx.update_intent(done, expected_version=3)
            with pytest.raises(ConcurrencyError):
                tx.update_intent(evolve(done, version=5), expected_version=3)
        with store.transaction() as tx:
            assert tx.get_intent(record.id) == done

    # ------------------------------------------------------- inserts and rollback

    def test_insert_of_an_existing_id_raises_and_the_transaction_stays_usable(
        self, store: Store
    ) -> None:
        with store.transaction() as tx:
            tx.insert_cart(full_cart())
            tx.insert_order(full_order())
            tx.insert_intent(intent())
        with store.transaction() as tx:
            with pytest.raises(ConcurrencyError):
                tx.insert_cart(evolve(full_cart(), version=0))
            with pytest.raises(ConcurrencyError):
                tx.insert_order(evolve(full_order(), version=0))
            with pytest.raises(ConcurrencyError):
                tx.insert_intent(evolve(intent(), version=0))
            tx.insert_cart(full_cart("cart_2"))
        with store.transaction() as tx:
            assert tx.get_cart("cart_1") == full_cart()
            assert tx.get_order("ord_1") == full_order()
            assert tx.get_intent("pi_1") == intent()
            assert tx.get_cart("cart_2") == full_cart("cart_2")

    def test_an_exception_rolls_back_everything(self, store: Store) -> None:
        cart = full_cart()
        with store.transaction() as tx:
            tx.insert_cart(cart)
        with pytest.raises(Boom), store.transaction() as tx:
            tx.insert_cart(full_cart("cart_2"))
            tx.update_cart(evolve(cart, items=(), version=5), expected_version=4)
            tx.insert_order(full_order())
            tx.insert_intent(intent())
            assert tx.record_event("evt_1", "payment_intent.succeeded", "applied")
            raise Boom
        with store.transaction() as tx:
            assert tx.get_cart("cart_1") == cart
            assert tx.get_cart("cart_2") is None
            assert tx.get_order("ord_1") is None
            assert tx.orders_for_intent("pi_1") == []
            assert tx.get_intent("pi_1") is None
            assert tx.record_event("evt_1", "payment_intent.succeeded", "applied")

    def test_a_deleted_cart_comes_back_on_rollback(self, store: Store) -> None:
        cart = full_cart()
        with store.transaction() as tx:
            tx.insert_cart(cart)
        with pytest.raises(Boom), store.transaction() as tx:
            tx.delete_cart(cart.id, expected_version=cart.version)
            assert tx.get_cart(cart.id) is None
            raise Boom
        with store.transaction() as tx:
            assert tx.get_cart(cart.id) == cart

    # ----------------------------------------------------------------- lookups

    def test_orders_for_intent_in_creation_order(self, store: Store) -> None:
        later = full_order("ord_a", created_at=T0 + timedelta(seconds=5))
        first = full_order("ord_b", created_at=T0)
        tie = full_order("ord_c", created_at=T0)
        other = full_order("ord_d", intent_id="pi_2")
        with store.transaction() as tx:
            tx.insert_order(later)
            tx.insert_order(first)
            tx.insert_order(other)
        with store.transaction() as tx:
            tx.insert_order(tie)
            assert [o.id for o in tx.orders_for_intent("pi_1")] == ["ord_b", "ord_c", "ord_a"]
        moved = evolve(later, intent_id="pi_2", version=later.version + 1)
        with store.transaction() as tx:
            tx.update_order(moved, expected_version=later.version)
        with store.transaction() as tx:
            assert tx.orders_for_intent("pi_1") == [first, tie]
            assert tx.orders_for_intent("pi_2") == [other, moved]
            assert tx.orders_for_intent("pi_none") == []

    def test_orders_for_cart_in_creation_order_also_once_the_cart_is_gone(
        self, store: Store
    ) -> None:
        cart = full_cart()
        later = full_order("ord_a", created_at=T0 + timedelta(seconds=5))
        first = full_order("ord_b", created_at=T0, intent_id="pi_2")
        other = full_order("ord_c", cart_id="cart_2")
        with store.transaction() as tx:
            tx.insert_cart(cart)
            tx.insert_order(later)
            tx.insert_order(other)
        with store.transaction() as tx:
            tx.insert_order(first)  # seen in the transaction that wrote it
            assert [o.id for o in tx.orders_for_cart("cart_1")] == ["ord_b", "ord_a"]
            tx.delete_cart(cart.id, expected_version=cart.version)
        cancelled = evolve(later, status="cancelled", version=later.version + 1)
        with store.transaction() as tx:
            tx.update_order(cancelled, expected_version=later.version)
        with store.read() as reads:
            assert reads.orders_for_cart("cart_1") == [first, cancelled]
            assert reads.orders_for_cart("cart_2") == [other]
            assert reads.orders_for_cart("cart_none") == []
            assert reads.orders_for_cart("\ud800") == []  # no row can have that id

    def test_unpaid_orders_before_the_cutoff(self, store: Store) -> None:
        plus_two = timezone(timedelta(hours=2))
        orders = [
            full_order("ord_1", created_at=T0 - timedelta(minutes=30), status="incomplete"),
            full_order("ord_2", created_at=T0 - timedelta(minutes=50), status="processing"),
            # 12:50+02:00 is 10:50 UTC: before the cutoff although its wall time is after
            full_order("ord_3", created_at=datetime(2024, 5, 1, 12, 50, tzinfo=plus_two)),
            full_order("ord_4", created_at=T0 - timedelta(minutes=40), status="complete"),
            full_order("ord_5", created_at=T0 - timedelta(minutes=40), status="cancelled"),
            full_order("ord_6", created_at=T0 - timedelta(minutes=40), intent_id=None),
            full_order("ord_7", created_at=None),
            full_order("ord_8", created_at=T0, status="incomplete"),  # not strictly before
            full_order("ord_9", created_at=T0 + timedelta(minutes=1)),
        ]
        with store.transaction() as tx:
            for order in orders:
                tx.insert_order(order)
        with store.transaction() as tx:
            found = tx.unpaid_orders_before(T0, limit=10)
            assert [o.id for o in found] == ["ord_3", "ord_2", "ord_1"]
            assert found[0] == orders[2]
            assert [o.id for o in tx.unpaid_orders_before(T0, limit=2)] == ["ord_3", "ord_2"]
        paid = evolve(orders[1], status="complete", version=8)
        with store.transaction() as tx:
            tx.update_order(paid, expected_version=7)
            assert [o.id for o in tx.unpaid_orders_before(T0, limit=10)] == ["ord_3", "ord_1"]

    def test_unclaimed_intents_by_status(self, store: Store) -> None:
        records = [
            intent("pi_1", status="succeeded", created_at=T0 + timedelta(seconds=2)),
            intent("pi_2", status="succeeded", created_at=T0),
            intent("pi_3", status="succeeded", order_id="ord_1"),
            intent("pi_4", status="requires_capture", created_at=T0 + timedelta(seconds=1)),
            intent("pi_5", status="canceled"),
        ]
        with store.transaction() as tx:
            for record in records:
                tx.insert_intent(record)
        statuses = ["succeeded", "requires_capture"]
        with store.transaction() as tx:
            assert [i.id for i in tx.unclaimed_intents(statuses, limit=10)] == [
                "pi_2",
                "pi_4",
                "pi_1",
            ]
            assert tx.unclaimed_intents(statuses, limit=1) == [records[1]]
            assert tx.unclaimed_intents(["processing"], limit=10) == []
        claimed = evolve(records[1], order_id="ord_2", version=4)
        with store.transaction() as tx:
            tx.update_intent(claimed, expected_version=3)
            assert [i.id for i in tx.unclaimed_intents(statuses, limit=10)] == ["pi_4", "pi_1"]

    # ------------------------------------------------------------------ events

    def test_record_event_dedupes_by_id(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.record_event("evt_1", "payment_intent.succeeded", "applied") is True
            assert tx.record_event("evt_1", "payment_intent.succeeded", "applied") is False
        with store.transaction() as tx:
            assert tx.record_event("evt_1", "payment_intent.succeeded", "duplicate") is False
            assert tx.record_event("evt_2", "charge.refunded", "ignored") is True

    def test_has_event_sees_recorded_ids_only_once_committed(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.has_event("evt_1") is False
            tx.record_event("evt_1", "payment_intent.succeeded", "applied")
            assert tx.has_event("evt_1") is True
        with pytest.raises(Boom), store.transaction() as tx:
            tx.record_event("evt_2", "charge.refunded", "applied")
            raise Boom
        with store.transaction() as tx:
            assert tx.has_event("evt_1") is True
            assert tx.has_event("evt_2") is False

    # ------------------------------------------------------------ read snapshots

    def test_a_read_sees_what_was_committed(self, store: Store) -> None:
        cart, order, record = full_cart(), full_order(), intent(order_id="ord_1")
        with store.transaction() as tx:
            tx.insert_cart(cart)
            tx.insert_order(order)
            tx.insert_intent(record)
            tx.record_event("evt_1", "payment_intent.succeeded", "applied")
        with pytest.raises(Boom), store.transaction() as tx:
            tx.insert_cart(evolve(cart, id="cart_rolled_back"))
            raise Boom
        with store.read() as reads:
            assert reads.get_cart(cart.id) == cart
            assert reads.get_cart("cart_rolled_back") is None
            assert reads.get_order(order.id) == order
            assert reads.orders_for_intent("pi_1") == [order]
            assert reads.get_intent("pi_1") == record
            assert reads.has_event("evt_1") and not reads.has_event("evt_2")
            assert reads.unclaimed_intents(["requires_capture"], limit=10) == []

    def test_reads_one_after_another_see_each_commit(self, store: Store) -> None:
        cart = full_cart()
        with store.read() as reads:
            assert reads.get_cart(cart.id) is None
        with store.transaction() as tx:
            tx.insert_cart(cart)
        with store.read() as reads:
            assert reads.get_cart(cart.id) == cart

    def test_scans_go_on_after_a_key(self, store: Store) -> None:
        with store.transaction() as tx:
            for n in range(5):
                tx.insert_order(full_order(f"ord_{n}", intent_id=f"pi_{n}", created_at=T0))
                tx.insert_intent(intent(f"pi_{n}", status="requires_payment_method"))
        cutoff = T0 + timedelta(days=1)
        with store.read() as tx:
            first = tx.unpaid_orders_before(cutoff, limit=2)
            rest = tx.unpaid_orders_before(cutoff, limit=10, after=(T0, first[-1].id))
            assert [o.id for o in first + rest] == [f"ord_{n}" for n in range(5)]
            statuses = ["requires_payment_method"]
            head = tx.unclaimed_intents(statuses, limit=3)
            tail = tx.unclaimed_intents(statuses, limit=3, after=(head[-1].created_at, head[-1].id))
            assert [i.id for i in head + tail] == [f"pi_{n}" for n in range(5)]

    def test_cursors_are_kept_and_roll_back(self, store: Store) -> None:
        with store.read() as tx:
            assert tx.get_cursor("scan") is None
        with store.transaction() as tx:
            tx.set_cursor("scan", "a")
            tx.set_cursor("scan", "b")
            assert tx.get_cursor("scan") == "b"
        with pytest.raises(Boom), store.transaction() as tx:
            tx.set_cursor("scan", "c")
            raise Boom
        with store.read() as tx:
            assert tx.get_cursor("scan") == "b"
        with store.transaction() as tx:
            tx.set_cursor("scan", None)
        with store.read() as tx:
            assert tx.get_cursor("scan") is None
