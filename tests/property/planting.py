"""Planting a bug back and proving the state machine finds it: the one search
the planted-bug tests share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from .test_stateful import Backend, Feature, fake_backend, run_machine

#: The steps of a shrunk example that are the machine's own (not the host's).
OWN_STEPS = ("state.start(", "state.store_is_consistent(", "state.teardown(")


#: The searches ``find`` runs, one after the other until one fails: the
#: derandomized one first, then fixed seeds. Each is deterministic, but which
#: examples a search meets depends on more than its seed (the Hypothesis
#: version, and the integer and string literals of every local module loaded
#: so far: Hypothesis draws from them), so one search that found a plant here
#: may miss it in another process. Five independent searches make a miss a
#: matter of chance, not of which tests ran before.
SEEDS: tuple[int | None, ...] = (None, 1, 2, 3, 4)


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

    The budget is ``max_examples`` per search (see :data:`SEEDS`), never wall
    time: a loaded CI machine must not turn a found bug into a red run. The
    time taken is in the run's report."""
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
    caught = _first_failure(backend, config)
    message = str(caught)
    assert any(symptom in message for symptom in symptoms), message
    notes = "\n".join(getattr(caught, "__notes__", []))
    steps = [
        line
        for line in notes.splitlines()
        if "state." in line and not line.lstrip().startswith(OWN_STEPS)
    ]
    assert 1 <= len(steps) <= max_steps, notes
    return steps


def _first_failure(backend: Backend, config: settings) -> AssertionError:
    """The first failure of the searches of :data:`SEEDS`; the test fails (as
    ``DID NOT RAISE`` did) when none of them finds one."""
    for seed in SEEDS:
        try:
            run_machine(backend, config, seed=seed)
        except AssertionError as caught:
            return caught
    pytest.fail(
        f"{backend.label}: no failure in {len(SEEDS)} searches of "
        f"{config.max_examples} examples (seeds {SEEDS}): the plant no longer bites"
    )
