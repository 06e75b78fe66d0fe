from __future__ import annotations

import pytest

from cartpay import ValidationError, format_amount, get_currency, parse_amount
from cartpay._money import CARD_MAXIMUM, MAX_AMOUNT, check_amount


@pytest.mark.parametrize(
    ("code", "exponent", "step", "minimum"),
    [
        ("usd", 2, 1, 50),
        ("jpy", 0, 1, 50),
        ("krw", 0, 1, 50),
        ("kwd", 3, 10, 10),
        ("bhd", 3, 10, 10),
        ("isk", 2, 100, 100),
        ("ugx", 2, 100, 100),
        ("huf", 2, 1, 17500),
        ("gbp", 2, 1, 30),
        ("clp", 0, 1, 1),
    ],
)
def test_currency_table(code: str, exponent: int, step: int, minimum: int) -> None:
    currency = get_currency(code)
    assert (currency.exponent, currency.step, currency.minimum) == (exponent, step, minimum)


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [
        ("12.34", "usd", 1234),
        ("0.5", "usd", 50),
        ("500", "jpy", 500),
        ("5.120", "kwd", 5120),
        ("5.12", "kwd", 5120),
        ("5", "isk", 500),
        ("1000", "ugx", 100000),
    ],
)
def test_parse_amount(text: str, code: str, minor: int) -> None:
    assert parse_amount(text, code) == minor


@pytest.mark.parametrize(
    ("text", "code", "rule"),
    [
        ("12.345", "usd", "precision"),
        ("5.5", "jpy", "precision"),
        ("5.124", "kwd", "step"),
        ("5.5", "isk", "precision"),
        ("abc", "usd", "decimal"),
        ("nan", "usd", "decimal"),
        ("inf", "usd", "decimal"),
    ],
)
def test_parse_amount_refuses(text: str, code: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_amount(text, code)
    assert (info.value.field, info.value.rule) == ("amount", rule)


def test_parse_amount_refuses_floats() -> None:
    with pytest.raises(ValidationError) as info:
        parse_amount(12.34, "usd")  # type: ignore[arg-type]
    assert info.value.rule == "type"


@pytest.mark.parametrize(
    ("amount", "code", "text"),
    [(1234, "usd", "12.34"), (500, "jpy", "500"), (5120, "kwd", "5.120"), (500, "isk", "5")],
)
def test_format_amount(amount: int, code: str, text: str) -> None:
    assert format_amount(amount, code) == text


@pytest.mark.parametrize(
    ("amount", "code", "rule"),
    [
        (0, "usd", "positive"),
        (-5, "usd", "positive"),
        (CARD_MAXIMUM + 1, "usd", "maximum"),
        (49, "usd", "minimum"),
        (5125, "kwd", "step"),
        (550, "isk", "step"),
        (12.5, "usd", "integer"),
        (True, "usd", "integer"),
        ("100", "usd", "integer"),
    ],
)
def test_check_amount(amount: object, code: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        check_amount(amount, code)
    assert info.value.rule == rule


def test_check_amount_accepts_edges() -> None:
    assert check_amount(50, "usd") == 50
    assert check_amount(MAX_AMOUNT, "usd") == MAX_AMOUNT
    assert check_amount(CARD_MAXIMUM, "usd") == CARD_MAXIMUM
    assert check_amount(MAX_AMOUNT + 1, "usd", maximum=MAX_AMOUNT + 1) == MAX_AMOUNT + 1
    assert check_amount(5120, "kwd") == 5120
    assert check_amount(1, "usd", charge=False) == 1


@pytest.mark.parametrize(
    ("code", "rule"), [("USD", "lowercase"), ("xyz", "supported"), ("", "supported")]
)
def test_unknown_currency(code: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        get_currency(code)
    assert (info.value.field, info.value.rule) == ("currency", rule)
