"""Planting a bug back and proving the state machine finds it: the one search
the planted-bug tests share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from .test_stateful import Feature, fake_backend, run_machine

#: The steps of a shrunk example that are the machine's own (not the host's).
OWN_STEPS = ("state.start(", "state.store_is_consistent(", "state.teardown(")


def find(
    tmp_path: Path,
    label: str,
    features: Iterable[Feature],
    symptoms: tuple[str, ...],
    *,
    max_steps: int = 8,
    max_examples: int = 3000,
) -> list[str]:
    """Run the machine with ``features`` on the fake (memory store) until it
    fails; the failure must show one of ``symptoms`` and shrink to at most
    ``max_steps`` host steps. Returns those steps.

    The budget is ``max_examples`` (the search is derandomized, so the count is
    the same on any machine), never wall time: a loaded CI machine must not turn
    a found bug into a red run. The time taken is in the run's report."""
    backend = replace(
        fake_backend("memory", tmp_path),
        label=f"planted/{label}",
        failing_refunds=False,
        features=frozenset(features),
    )
    config = settings(
        max_examples=max_examples,
        stateful_step_count=25,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
    with pytest.raises(AssertionError) as caught:
        run_machine(backend, config)
    message = str(caught.value)
    assert any(symptom in message for symptom in symptoms), message
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    steps = [
        line
        for line in notes.splitlines()
        if "state." in line and not line.lstrip().startswith(OWN_STEPS)
    ]
    assert 1 <= len(steps) <= max_steps, notes
    return steps
