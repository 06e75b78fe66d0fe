"""What the SQL stores share: the migration steps of one schema-version check.

The SQLite and PostgreSQL stores must not import each other; both use this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._errors import SchemaVersionError

__all__ = ["apply_migrations"]


def apply_migrations(
    execute: Callable[..., Any],
    found: int,
    migrations: Sequence[Sequence[str]],
    *,
    version: int,
    where: str,
    placeholder: str,
) -> None:
    """Run the ``migrations`` after version ``found`` through ``execute`` and record
    ``version`` (inside the caller's transaction). Raises ``SchemaVersionError``
    when ``where`` (the database or schema) is newer than this cartpay."""
    if found > version:
        raise SchemaVersionError(
            f"{where} is at schema version {found}; this cartpay knows "
            f"up to {version}: upgrade cartpay"
        )
    for steps in migrations[found:]:
        for step in steps:
            execute(step)
    if found < version:
        execute("DELETE FROM schema_version")
        execute(f"INSERT INTO schema_version (version) VALUES ({placeholder})", (version,))  # noqa: S608
