"""SQLiteStore's settings: applied to every connection of the pool, refused
with a typed error before any file is made when they are wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cartpay import ValidationError
from cartpay.stores.sqlite import SQLiteStore

#: ``PRAGMA synchronous`` answers: 1 = NORMAL, 2 = FULL.
LEVELS = {"normal": 1, "full": 2}


def synchronous_of_every_connection(store: SQLiteStore) -> list[int]:
    """The level of the first connection and of one the pool opens later."""
    with store._connection() as first, store._connection() as second:
        assert first is not second
        return [conn.execute("PRAGMA synchronous").fetchone()[0] for conn in (first, second)]


@pytest.mark.parametrize("level", ["normal", "full"])
def test_the_synchronous_level_is_set_on_the_connections(tmp_path: Path, level: Any) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3", synchronous=level)
    try:
        assert synchronous_of_every_connection(store) == [LEVELS[level]] * 2
    finally:
        store.close()


def test_the_default_is_normal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    try:
        assert synchronous_of_every_connection(store) == [LEVELS["normal"]] * 2
    finally:
        store.close()


@pytest.mark.parametrize(
    ("settings", "field", "rule"),
    [
        ({"synchronous": "off"}, "synchronous", "choice"),
        ({"synchronous": "FULL"}, "synchronous", "choice"),
        ({"timeout": -1}, "timeout", "non_negative"),
        ({"timeout": float("nan")}, "timeout", "non_negative"),
        ({"timeout": "30"}, "timeout", "number"),
        ({"timeout": True}, "timeout", "number"),
    ],
)
def test_bad_settings_are_refused_before_the_file_is_made(
    tmp_path: Path, settings: dict[str, Any], field: str, rule: str
) -> None:
    path = tmp_path / "db.sqlite3"
    with pytest.raises(ValidationError) as caught:
        SQLiteStore(path, **settings)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert not path.exists()
