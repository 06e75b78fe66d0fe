"""The state machine is only worth its run time if it can fail: with the guard of
docs/design.md, rule 6 disabled (an order's confirm no longer claims its intent),
it must find, and shrink, a short sequence where that shows.

An unclaimed intent shows in one of two ways, and which one the search meets
first varies between processes (ids and hash seeds differ, so the
derandomized search still takes other paths): one intent pays two orders, or
an order is cancelled locally (its intent looked like another order's) while
the intent's authorization stays on it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from cartpay import _decisions
from cartpay._models import IntentRecord, Order

from .test_stateful import fake_backend, run_machine


def _never_bind(record: IntentRecord | None, order: Order) -> IntentRecord | None:
    """The planted bug: an order's confirm no longer claims the intent for it."""
    return record


#: What the invariants say when an intent is not claimed for the order it pays.
SYMPTOMS = ("pays more than one order", "on 2 orders", "but its transactions say")


def test_the_machine_finds_an_unclaimed_intent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_decisions, "bind_intent", _never_bind)
    # Without failing refunds: the plant is about payments; refund steps only
    # dilute the search.
    # Only the kept carts of issue 12's rule groups: two orders on one intent need them.
    backend = replace(
        fake_backend("memory", tmp_path),
        label="planted-bug/memory",
        failing_refunds=False,
        features=frozenset({"kept_carts"}),
    )
    config = settings(
        max_examples=3000,
        stateful_step_count=25,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
    started = time.perf_counter()
    with pytest.raises(AssertionError) as caught:
        run_machine(backend, config)
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert any(symptom in message for symptom in SYMPTOMS), message
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    skip = ("state.start(", "state.store_is_consistent(", "state.teardown(")
    steps = [line for line in notes.splitlines() if "state." in line and not line.startswith(skip)]
    # Shrunk: a handful of steps (an order made and paid, then a second order
    # or a cancel).
    assert 2 <= len(steps) <= 6, notes
    assert elapsed < 30, f"finding the planted bug took {elapsed:.1f} s"
