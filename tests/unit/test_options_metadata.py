"""IntentOptions.metadata is a read-only mapping (cartpay._options.Metadata):
equal to a dict or another mapping with the same items, never to anything else,
hashable, and unchangeable by whoever holds it."""

from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType

import pytest

from cartpay import IntentOptions


def test_metadata_equals_the_same_items_in_any_mapping() -> None:
    meta = IntentOptions(metadata={"a": "1", "b": "2"}).metadata
    assert meta == {"b": "2", "a": "1"}
    assert meta == IntentOptions(metadata={"b": "2", "a": "1"}).metadata
    assert meta == MappingProxyType({"a": "1", "b": "2"})
    assert meta == OrderedDict([("b", "2"), ("a", "1")])
    assert {"a": "1", "b": "2"} == meta  # noqa: SIM300  (the dict on the left: its __eq__ first)


@pytest.mark.parametrize(
    "other",
    [
        {"a": "1"},
        {"a": "1", "b": "3"},
        {"a": "1", "b": "2", "c": "3"},
        [("a", "1"), ("b", "2")],
        None,
        "ab",
    ],
)
def test_metadata_differs_from_other_items_and_from_non_mappings(other: object) -> None:
    meta = IntentOptions(metadata={"a": "1", "b": "2"}).metadata
    assert meta != other
    assert not meta == other  # noqa: SIM201  (__eq__ itself, not only __ne__)


def test_options_compare_by_their_metadata() -> None:
    assert IntentOptions() == IntentOptions(metadata={})
    assert IntentOptions(metadata={"a": "1"}) != IntentOptions()
    assert hash(IntentOptions(metadata={"a": "1"}).metadata) == hash(
        IntentOptions(metadata={"a": "1"}).metadata
    )


def test_metadata_cannot_be_changed_by_its_holder() -> None:
    source = {"a": "1"}
    meta = IntentOptions(metadata=source).metadata
    source["a"] = "changed"
    assert meta == {"a": "1"}
    with pytest.raises(TypeError):
        meta["a"] = "2"  # type: ignore[index]
