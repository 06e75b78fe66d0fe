"""The command line: help that lists every command, one version, the demo on SQLite."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
from pathlib import Path

import pytest

import cartpay
from cartpay.__main__ import COMMANDS, build_parser, main
from cartpay.stores.sqlite import SQLiteStore


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_command_in_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(capsys)
    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert set(subparsers.choices) == set(COMMANDS)  # no command missing from the listing
    for name, text in COMMANDS.items():
        assert re.search(rf"^  {name} +{re.escape(text)}$", out, re.MULTILINE), name
    assert "`" not in out  # no reStructuredText markup
    assert ":class:" not in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_plain_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    out = _help(capsys, command)
    assert COMMANDS[command] in out
    assert "`" not in out


def test_version_has_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"cartpay {cartpay.__version__}"
    # pyproject.toml's version is dynamic: the installed metadata is read from __init__.py.
    assert importlib.metadata.version("cartpay") == cartpay.__version__
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert re.search(r"^version\s*=", pyproject, re.MULTILINE) is None


def _steps(out: str) -> dict[str, str]:
    """The numbered steps of the demo's output: label → text."""
    steps = {}
    for line in out.splitlines():
        label, text = line[:22].strip(), line[22:].strip()
        if re.match(r"\d+\. ", label):
            steps[label] = text
    return steps


def test_the_offline_demo_runs_on_a_sqlite_file_it_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "demo.sqlite3"
    assert main(["demo", "--offline", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"SQLiteStore at {db}" in out
    steps = _steps(out)
    assert list(steps) == [
        "1. create cart",
        "2. create intent",
        "3. change quantity",
        "4. checkout",
        "5. browser confirms",
        "6. confirm order",
        "7. partial refund",
        "8. read back",
    ]
    assert "payment=unpaid" in steps["5. browser confirms"]  # Stripe knows, cartpay not yet
    assert "payment=paid" in steps["6. confirm order"]
    assert "payment=partially_refunded" in steps["7. partial refund"]
    # Each step shows something the one before it did not (a word, ids aside).
    words = [set(re.sub(r"\b(cart|ord|pi)_\w+", "ID", text).split()) for text in steps.values()]
    for label, before, after in zip(list(steps)[1:], words, words[1:], strict=False):
        assert not after <= before, f"{label} repeats the step before it"
    assert out.count("transaction         purchase") == 1
    assert out.count("transaction         refund") == 1
    assert "same idempotency_key: no second refund, 5.00 refunded in all" in out
    assert "shipping standard: +4.95" in out and "discount WELCOME10: -10.00" in out
    # The order is in the file, for anyone who opens it afterwards.
    order_id = re.search(r"order (ord_\w+)", steps["4. checkout"])
    assert order_id is not None
    store = SQLiteStore(db)
    try:
        with store.read() as tx:
            order = tx.get_order(order_id.group(1))
        assert order is not None
        assert (order.payment, order.refunded) == ("partially_refunded", 500)
        # A shipping line and a discount code are in the total and on the order.
        assert [a.code for a in order.adjustments] == ["standard", "WELCOME10"]
        assert (order.subtotal, order.total) == (9750, 9750 + 495 - 1000)
    finally:
        store.close()
