"""Issue 14's money paths after a lost answer, with a bug planted in each; the
state machine must find it, and shrink it:

- a refund retried with other Connect flags is taken for the earlier call (the
  claim compares only the amount and the reason);
- a confirm retried after a lost decline returns the order instead of raising;
- a capture or cancel Stripe refuses for the intent's state records nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cartpay import _decisions, _flows
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


def _never_a_lost_decline(*_: object) -> None:
    """The plant: a settled lost decline is not raised again."""
    return None


def test_finds_a_retried_confirm_hiding_its_lost_decline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_decisions, "lost_decline", _never_a_lost_decline)
    find(tmp_path, "lost-decline-hidden", [], ("returned though its intent",))


def _learn_nothing(*_: object) -> Iterator[object]:
    """The plant: a refusal is raised, the intent is not read (a generator that
    yields nothing, as the flow it replaces)."""
    yield from ()


def test_finds_a_refused_capture_or_cancel_that_records_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_flows.Flows, "learn_refusal", _learn_nothing)
    find(tmp_path, "refusal-unrecorded", ["dashboard_cancels"], ("still shows",))
