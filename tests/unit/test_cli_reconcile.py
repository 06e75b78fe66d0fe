"""``python -m cartpay reconcile``: bad arguments are one line on stderr and exit
status 2, a failed run is one line and exit status 1, no traceback unless
``--debug``, and a database path that does not exist is never created unasked.
No Stripe call is made by any of these (an empty database has nothing to look up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cartpay.__main__ import main
from cartpay.stores.sqlite import SQLiteStore

PROG = "python -m cartpay reconcile"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_cli")


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    SQLiteStore(path).close()
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        status = main(["reconcile", *args])
    except SystemExit as exit_:  # argparse's own usage errors
        status = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("minutes", ["-5", "99999999999999999999"])
def test_an_older_than_out_of_range_is_bad_usage(
    capsys: pytest.CaptureFixture[str], shop_db: Path, minutes: str
) -> None:
    status, _, err = _run(capsys, "--db", str(shop_db), "--older-than", minutes)
    assert status == 2
    assert err.strip().splitlines() == [
        f"{PROG}: error: --older-than must be 0 to 5270400 minutes, not {int(minutes)}"
    ]


def test_a_mistyped_path_is_not_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "shpo.db"
    status, out, err = _run(capsys, "--db", str(path))
    assert status == 2
    assert "does not exist (pass --create" in err
    assert len(err.strip().splitlines()) == 1
    assert (out, path.exists()) == ("", False)


def test_create_makes_a_new_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    status, out, _ = _run(
        capsys, "--db", str(path), "--create", "--stripe-url", "http://127.0.0.1:9"
    )
    assert status == 0
    assert out.startswith("checked   0 order(s)")
    assert path.exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "missing" / "shop.db", "does not exist"),
        (lambda p: p, "is a folder, not a database file"),
    ],
    ids=["a missing folder", "a folder"],
)
def test_a_path_that_cannot_be_a_database_is_bad_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: object, expected: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    status, _, err = _run(capsys, "--db", str(path), "--create")
    assert status == 2
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "missing").exists()


def test_a_file_that_is_not_a_database_fails_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    status, out, err = _run(capsys, "--db", str(path))
    assert status == 1
    assert err.strip().splitlines() == [
        f"{PROG}: failed: SQLiteStore({str(path)!r}): the file is not an SQLite database "
        "(file is not a database)"
    ]
    assert out == ""


def test_an_unreachable_postgres_fails_the_run_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("psycopg")
    dsn = "postgresql://shop:s3cr3t-pw@127.0.0.1:1/shop?connect_timeout=2"
    status, _, err = _run(capsys, "--db", dsn)
    assert status == 1
    assert err.startswith(f"{PROG}: failed: PostgreSQL: connection failed")
    assert len(err.strip().splitlines()) == 1
    assert "s3cr3t-pw" not in err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    command = [sys.executable, "-m", "cartpay", "reconcile", "--db", str(path)]
    env = {"STRIPE_SECRET_KEY": "sk_test_cli", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    loud = subprocess.run(
        [*command, "--debug"], capture_output=True, text=True, env=env, check=False
    )
    assert (quiet.returncode, loud.returncode) == (1, 1)
    assert "Traceback" not in quiet.stderr
    assert len(quiet.stderr.strip().splitlines()) == 1
    assert "Traceback" in loud.stderr and "StoreError" in loud.stderr
