"""Suite-wide settings.

SIGTERM ends a run like Ctrl-C does: the fixtures are torn down.

``CARTPAY_REQUIRE_SUITES`` (set by ``.ci/run``) lists markers whose tests must
not be skipped, e.g. ``postgres,localstripe``: a skipped test with one of those
markers fails the run, so CI cannot pass without the real components.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from .twins import TWINS, Twin, event_loop


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # nox ends pytest with SIGTERM once interrupted: as a KeyboardInterrupt the
    # fixtures are torn down (localstripe stopped) instead of left running.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture
def twin(request: pytest.FixtureRequest) -> Twin:
    """Which façade a test drives: ``sync`` unless its module is marked ``twins``
    (then each test runs on both)."""
    return getattr(request, "param", "sync")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "twin" in metafunc.fixturenames and metafunc.definition.get_closest_marker("twins"):
        metafunc.parametrize("twin", TWINS, indirect=True)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop for the test's async twin (see tests/twins.py)."""
    with event_loop() as opened:
        yield opened


_required = {m for m in os.environ.get("CARTPAY_REQUIRE_SUITES", "").split(",") if m}
_skipped_required: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # An xfail is reported as skipped but it ran against the component: not a skip.
    if report.skipped and not hasattr(report, "wasxfail") and _required:
        markers = set(report.keywords) & _required
        if markers:
            _skipped_required.append(f"{report.nodeid} ({', '.join(sorted(markers))})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_required:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_required:
        terminalreporter.section("required suites were skipped")
        for line in _skipped_required:
            terminalreporter.write_line(f"SKIPPED BUT REQUIRED: {line}")
