"""CI cannot pass without the real components: a required suite that skips fails the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_missing_stripe_mock_skips_says_how_and_fails_when_required() -> None:
    """The ``stripe_mock`` marker is added by the plugin, so the guard sees it."""
    if shutil.which("stripe-mock", path=os.defpath):
        pytest.skip("stripe-mock is installed system-wide: cannot hide it")
    env = {k: v for k, v in os.environ.items() if k != "CARTPAY_STRIPE_MOCK"}
    env.update(PATH=os.defpath, CARTPAY_REQUIRE_SUITES="stripe_mock")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/integration/test_stripe_mock_server.py",
            "-k",
            "second_server",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert "SKIPPED BUT REQUIRED" in done.stdout and "(stripe_mock)" in done.stdout
    assert "set CARTPAY_STRIPE_MOCK to the stripe-mock binary" in done.stdout


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_process_the_run_left_running_fails_it(tmp_path: Path) -> None:
    mark = f"test-{os.getpid()}"
    check = [sys.executable, str(ROOT / ".ci" / "leftovers"), mark]
    env = dict(os.environ, CARTPAY_CI_RUN=mark)
    # Looks like `python -m localstripe` to the check; sleeps instead of serving.
    fake = tmp_path / "localstripe"
    fake.write_text("import time\ntime.sleep(60)\n")
    process = subprocess.Popen([sys.executable, str(fake)], env=env)
    try:
        found = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
        assert found.returncode == 1
        assert f"localstripe pid {process.pid}" in found.stderr
    finally:
        process.kill()
        process.wait()
    gone = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
    assert (gone.returncode, gone.stderr) == (0, "")
    # Another run's processes are not this run's business.
    other = subprocess.Popen([sys.executable, str(fake)], env=dict(env, CARTPAY_CI_RUN="other"))
    try:
        assert subprocess.run(check, timeout=60, check=False).returncode == 0
    finally:
        other.kill()
        other.wait()


def test_a_missing_web_framework_or_browser_fails_a_run_that_requires_it(
    tmp_path: Path,
) -> None:
    """Hidden frameworks (a package that refuses to import, first on the path) and a
    missing browser: the web suites skip, and the guard turns each skip into a failure."""
    for name in ("fastapi", "django", "flask"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT / "src")]),
        CARTPAY_REQUIRE_SUITES="fastapi,django,flask,browser",
        CARTPAY_CHROMIUM=str(tmp_path / "no-chromium"),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/web/test_suites_present.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    for marker in ("fastapi", "django", "flask"):
        assert f"({marker})" in done.stdout, done.stdout
    # The browser suite's own skip (no browser) is a required skip too.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/web/test_shop_browser.py",
            "-k",
            "declined",
        ],
        cwd=ROOT,
        env=dict(env, PYTHONPATH=str(ROOT / "src")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert "SKIPPED BUT REQUIRED" in done.stdout and "browser" in done.stdout
