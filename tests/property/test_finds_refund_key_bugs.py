"""Refunds under the host's idempotency key (docs/money.md, "Unknown outcomes"),
with a bug planted in each; the state machine (RefundKeysMachine) must find it,
and shrink it:

- a lost answer settled (by another call, a refund of another amount or a
  cancel, or by the retry itself) records the refund without its key, so the
  identical retry refunds again or answers without the key's refund;
- a call's key is not looked up, so a repeated call refunds again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cartpay import _decisions, _outcomes

from .planting import find


def test_finds_a_settled_lost_refund_recorded_without_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    apply = _outcomes.apply

    def untagged(*args: Any, **kwargs: Any) -> Any:
        """The plant: whoever settles a keyed refund's lost answer drops its key."""
        kwargs["tag"] = None
        return apply(*args, **kwargs)

    monkeypatch.setattr(_outcomes, "apply", untagged)
    # (Which symptom the search meets first varies: the retry's second refund,
    # or a retry that settled its own lost answer and shows no refund under its key.)
    symptoms = ("made the refunds", "under its key")
    steps = find(tmp_path, "settled-refund-untagged", ["refund_keys"], symptoms)
    assert any("keyed_refund" in step for step in steps), steps


def test_finds_a_key_that_is_not_looked_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_decisions, "keyed_refund", lambda *_: None)
    symptoms = ("made the refunds", "under its key")
    find(tmp_path, "refund-key-ignored", ["refund_keys"], symptoms)
