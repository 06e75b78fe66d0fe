"""Issue 14's dispute rules, planted back wrong one at a time: the state machine
(with only the ``disputes`` rule group switched on) must find each plant and
shrink it (as :mod:`test_finds_issue12_bugs` does for issue 12).

- ``Order.refundable`` ignoring disputes: a refund of money a chargeback took
  reaches the gateway (which refuses it with ``charge_disputed``);
- dispute events applied as they come, not monotonically: a late
  ``needs_response`` reopens a won dispute, and the order takes it as open.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from attrs import evolve

from cartpay import _ledger
from cartpay._models import DisputeSnapshot, Order

from .planting import find


def _refundable_ignoring_disputes(self: Order) -> int:
    """The plant: refundable as it was before issue 14 (captured less refunds)."""
    return self.captured - self.amount("refund", "complete", "pending")


def test_finds_refundable_ignoring_disputes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(Order, "refundable", property(_refundable_ignoring_disputes))
    find(tmp_path, "refundable-ignores-disputes", ["disputes"], ("above refundable",))


def test_finds_a_late_event_reopening_a_won_dispute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: the ledger takes each dispute event's status as it comes, so a
    late ``charge.dispute.created`` (needs_response) after the closing events
    turns a won dispute back into an open one."""
    original = _ledger.apply_disputes

    def last_word(order: Order, disputes: Iterable[DisputeSnapshot]) -> Order:
        disputes = list(disputes)
        applied = original(order, disputes)
        open_now = {d.id for d in disputes if d.status == "needs_response"}
        reopened = tuple(
            evolve(t, status="pending") if t.kind == "dispute" and t.reference in open_now else t
            for t in applied.transactions
        )
        return (
            applied if reopened == applied.transactions else evolve(applied, transactions=reopened)
        )

    monkeypatch.setattr(_ledger, "apply_disputes", last_word)
    find(tmp_path, "late-event-reopens-dispute", ["disputes"], ("became", "dispute du_fake"))
