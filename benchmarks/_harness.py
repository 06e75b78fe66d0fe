"""What every benchmark shares: the result rows, the targets and interleaved timing."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Comparison = Literal["<=", ">=", "=="]


@dataclass(frozen=True)
class Target:
    """``value <op> bound`` must hold."""

    op: Comparison
    bound: float

    def met(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.bound
        if self.op == ">=":
            return value >= self.bound
        return value == self.bound

    def __str__(self) -> str:
        bound = f"{self.bound:g}"
        return f"{self.op} {bound}"


@dataclass(frozen=True)
class Row:
    """One printed figure. A row without a target is informational.

    ``baseline`` names what a ratio (or a count) is measured against, e.g. "a
    minimal hand-written stripe-python integration"; every ratio row says it, so
    the generated table in docs/performance.md never leaves a ratio unexplained.
    """

    section: str
    figure: str
    value: float
    unit: str = ""
    target: Target | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = None if self.target is None else str(self.target)
        data["passed"] = self.passed
        return data


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed(run: Callable[[], object]) -> float:
    """Seconds one call of ``run`` took (the garbage collector runs before, not during)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start
    finally:
        gc.enable()


@dataclass
class Paired:
    """Interleaved A/B timings: ``a[i]`` and ``b[i]`` were measured back to back."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """The median of the per-round ratios a/b (noise hits both sides of a pair)."""
        return median([x / y for x, y in zip(self.a, self.b, strict=True)])


def interleave(
    a: Callable[[], float],
    b: Callable[[], float],
    *,
    rounds: int,
    warmup: int = 1,
) -> Paired:
    """Run ``a`` and ``b`` alternately (ABBA order: neither always goes first).

    Each callable runs one round and returns the measured figure for it (seconds
    per operation); the warm-up rounds are run and dropped.
    """
    for _ in range(warmup):
        a()
        b()
    paired = Paired()
    for i in range(rounds):
        if i % 2 == 0:
            paired.a.append(a())
            paired.b.append(b())
        else:
            paired.b.append(b())
            paired.a.append(a())
    return paired
