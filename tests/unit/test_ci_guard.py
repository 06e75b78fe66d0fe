"""CI cannot pass without the real components: a required suite that skips fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_store_contract(required: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CARTPAY_TEST_POSTGRES_DSN"}
    env["CARTPAY_REQUIRE_SUITES"] = required
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/contract/test_store_contract.py",
            "-k",
            "postgres and insert",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_skipped_required_suite_fails_the_run() -> None:
    done = _run_store_contract("postgres,localstripe")
    assert done.returncode == 1, done.stdout
    assert "SKIPPED BUT REQUIRED" in done.stdout


def test_skips_are_fine_when_nothing_is_required() -> None:
    done = _run_store_contract("")
    assert done.returncode == 0, done.stdout
    assert "skipped" in done.stdout
