"""The state machine is only worth its run time if it can fail: with the guard of
docs/design.md, rule 6 disabled (an order's confirm no longer claims its intent),
it must find, and shrink, a short sequence where that shows.

An unclaimed intent shows in one of two ways, and which one the search meets
first varies between processes (ids and hash seeds differ, so the
derandomized search still takes other paths): one intent pays two orders, or
an order is cancelled locally (its intent looked like another order's) while
the intent's authorization stays on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartpay import _decisions
from cartpay._models import IntentRecord, Order

from .planting import find


def _never_bind(record: IntentRecord | None, order: Order) -> IntentRecord | None:
    """The planted bug: an order's confirm no longer claims the intent for it."""
    return record


#: What the invariants say when an intent is not claimed for the order it pays.
SYMPTOMS = ("pays more than one order", "on 2 orders", "but its transactions say")


def test_the_machine_finds_an_unclaimed_intent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_decisions, "bind_intent", _never_bind)
    # Only the kept carts of issue 12's rule groups: two orders on one intent need them.
    # Shrunk: a handful of steps (an order made and paid, then a second order or a
    # cancel); which form the search meets first varies between processes, and one
    # full run shrank it past 6, hence 10.
    find(tmp_path, "rule-6", ["kept_carts"], SYMPTOMS, max_steps=10)
