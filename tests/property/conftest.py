"""Hypothesis profiles for the property suite, and its run report.

* ``ci`` (the default): sized for about two minutes for the whole property suite
  on a 2-core machine; derandomized, so every CI run explores the same examples.
* ``thorough``: many more examples and longer sequences (``nox -s property``);
  random, with the example database, to find what CI does not.

Select one with ``pytest --hypothesis-profile=thorough`` or ``HYPOTHESIS_PROFILE``.
The session ends with one line per configuration: examples, steps, run time,
faults injected, crashes, and how many orders were paid and refunded.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from .stats import RUNS

settings.register_profile(
    "ci",
    max_examples=1200,
    stateful_step_count=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    stateful_step_count=80,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def pytest_configure(config: pytest.Config) -> None:
    # ``--hypothesis-profile`` (loaded by Hypothesis' plugin) wins; else ``ci``.
    if config.getoption("hypothesis_profile", None) is None:
        settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RUNS:
        return
    profile = settings.get_current_profile_name()
    terminalreporter.section(f"cartpay property runs (hypothesis profile {profile!r})")
    for run in RUNS.values():
        terminalreporter.write_line(run.summary())
