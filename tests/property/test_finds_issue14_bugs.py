"""Issue 14's Connect refunds, with a bug planted: a refund retried with other
Connect flags after its answer was lost is taken for the earlier call (the
claim compares only the amount and the reason). The state machine must find it,
and shrink it, with only the lost-answer rule groups on."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartpay import _decisions
from cartpay._models import PendingOperation

from .planting import find


def _amount_and_reason_only(pending: PendingOperation, asked: PendingOperation) -> bool:
    """The plant: the Connect flags are not part of a call's arguments."""
    return (pending.amount, pending.reason) == (asked.amount, asked.reason)


def test_finds_a_refund_reported_with_another_calls_connect_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_decisions, "same_arguments", _amount_and_reason_only)
    find(tmp_path, "connect-flags-ignored", ["other_amounts"], ("succeeded with a refund sent as",))
