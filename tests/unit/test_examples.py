"""The examples run as tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_offline_checkout_example_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "offline_checkout.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "captured partially_paid 19.99" in out.stdout
    assert "_secret_" not in out.stdout
    assert "webhook payment_intent.succeeded applied" in out.stdout
