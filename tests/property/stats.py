"""What each property run did: examples, steps, faults, outcomes and run time.

The state machines count into :data:`RUNS`; ``conftest.py`` prints the table at
the end of the session (no ``-s`` needed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["RUNS", "Run", "run_for"]


@dataclass
class Run:
    """Counters for one configuration (one test)."""

    label: str
    examples: int = 0
    steps: int = 0
    seconds: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    paid_orders: int = 0
    refunded_orders: int = 0
    failed_refunds: int = 0

    def summary(self) -> str:
        faults = sum(self.faults.values())
        crashes = self.outcomes["crash"]
        ok = sum(n for k, n in self.outcomes.items() if k.endswith(":ok"))
        errors = sum(
            n
            for k, n in self.outcomes.items()
            if ":" in k and not k.endswith(":ok") and not k.startswith(("pm:", "known-bug:"))
        )
        known = sum(n for k, n in self.outcomes.items() if k.startswith("known-bug:"))
        return (
            f"{self.label:<34} {self.examples:>5} examples {self.steps:>6} steps "
            f"{self.seconds:>7.1f} s  faults={faults} crashes={crashes} "
            f"ok-calls={ok} typed-errors={errors} "
            f"paid-orders={self.paid_orders} refunded-orders={self.refunded_orders} "
            f"failed-refunds={self.failed_refunds} "
            f"known-bug-hits={known}"
        )


RUNS: dict[str, Run] = {}


def run_for(label: str) -> Run:
    """The counters for ``label`` (created on first use)."""
    return RUNS.setdefault(label, Run(label))
