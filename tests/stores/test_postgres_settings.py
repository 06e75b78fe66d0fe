"""PostgresStore refuses wrong settings with a typed error before it connects
(the conninfo points at a port nothing listens on: reaching it would fail
differently)."""

from __future__ import annotations

from typing import Any

import pytest

from cartpay import ValidationError
from cartpay.stores.postgres import PostgresStore

NOWHERE = "postgresql://cartpay@127.0.0.1:1/none?connect_timeout=1"


@pytest.mark.parametrize(
    ("settings", "field", "rule"),
    [
        ({"min_size": -1}, "min_size", "non_negative"),
        ({"min_size": 1.5}, "min_size", "integer"),
        ({"max_size": True}, "max_size", "integer"),
        ({"max_size": 0, "min_size": 0}, "max_size", "at_least_min_size"),
        ({"min_size": 5, "max_size": 2}, "max_size", "at_least_min_size"),
        ({"schema": ""}, "schema", "non_empty"),
        ({"schema": "  "}, "schema", "non_empty"),
    ],
)
def test_bad_settings_are_refused_before_connecting(
    settings: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        PostgresStore(NOWHERE, **settings)
    assert (caught.value.field, caught.value.rule) == (field, rule)
