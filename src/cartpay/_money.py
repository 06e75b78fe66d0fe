"""Currencies and amounts as Stripe counts them: integer minor units, never floats.

Stripe's exponents differ from ISO 4217 in places (docs/stripe.md, section 3):

* zero-decimal currencies (JPY, KRW, ...) count whole units;
* three-decimal currencies (BHD, JOD, KWD, OMR, TND) count thousandths, but the
  last digit must be 0;
* ISK and UGX are sent as two-decimal amounts that must be multiples of 100.

Every amount is an ``int`` between the currency's minimum charge and its
maximum (:func:`maximum_amount`: Stripe's per-currency and per-method limits,
docs/stripe.md, section 3.6). :func:`parse_amount` turns a decimal string (a
form field, a price list) into minor units; :func:`format_amount` does the
reverse for display.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from attrs import frozen

from ._errors import ValidationError

__all__ = [
    "CARD_MAXIMUM",
    "MAX_AMOUNT",
    "OTHER_METHODS_MAXIMUM",
    "Currency",
    "check_amount",
    "check_ceilings",
    "check_currency",
    "format_amount",
    "get_currency",
    "maximum_amount",
    "parse_amount",
]

#: Eight digits: what every payment method takes in every currency (the
#: PaymentIntent reference's "up to eight digits"), and the maximum of non-card
#: methods in the currencies :data:`OTHER_METHODS_MAXIMUM` does not list.
MAX_AMOUNT = 99_999_999
#: Twelve digits: the most Stripe's currencies page lets a card payment take, in
#: any currency (American Express takes nine digits, and some networks less;
#: Stripe answers ``amount_too_large`` at confirm for those).
CARD_MAXIMUM = 10**12 - 1  # 999,999,999,999
#: Non-card payment methods: Stripe's limits above eight digits (12 digits for
#: IDR, 10 for COP, 9 for INR); every other currency: :data:`MAX_AMOUNT`.
OTHER_METHODS_MAXIMUM: dict[str, int] = {
    "idr": 10**12 - 1,
    "cop": 10**10 - 1,
    "inr": 10**9 - 1,
}

ZERO_DECIMAL = frozenset(
    """
        bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv
        xaf xof xpf
    """.split()  # noqa: SIM905
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
#: Sent with two decimals, but only whole units are allowed (multiples of 100).
WHOLE_UNITS_ONLY = frozenset(["isk", "ugx"])

#: Currencies Stripe accepts for PaymentIntents (lowercase ISO 4217 codes).
SUPPORTED = frozenset(
    """
        usd aed afn all amd ang aoa ars aud awg azn bam
        bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn
        bzd cad cdf chf clp cny cop crc cve czk djf dkk
        dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf
        gtq gyd hkd hnl htg huf idr ils inr isk jmd jod
        jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr
        lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk
        mxn myr mzn nad ngn nio nok npr nzd omr pab pen
        pgk php pkr pln pyg qar ron rsd rub rwf sar sbd
        scr sek sgd shp sle sos srd std szl thb tjs tnd
        top try ttd twd tzs uah ugx uyu uzs vnd vuv wst
        xaf xcd xof xpf yer zar zmw
    """.split()  # noqa: SIM905
)

#: Minimum charge in minor units (docs/stripe.md, section 3.5); other currencies: one step.
MINIMUM_CHARGE: dict[str, int] = {
    "usd": 50, "aed": 200, "ars": 50, "aud": 50, "brl": 50, "cad": 50, "chf": 50,
    "cop": 50, "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400,
    "huf": 17500, "idr": 50, "ils": 50, "inr": 50, "jpy": 50, "krw": 50,
    "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "php": 50, "pln": 200,
    "ron": 200, "rub": 50, "sek": 300, "sgd": 50, "thb": 1000, "zar": 50,
    "bgn": 100,
}  # fmt: skip


@frozen
class Currency:
    """A currency as Stripe counts it.

    ``exponent`` is the number of decimals in an amount, ``step`` the granularity
    an amount must be a multiple of, ``minimum`` the smallest charge, ``maximum``
    the largest a card payment may take and ``other_methods_maximum`` the
    largest other payment methods may take (docs/stripe.md, section 3.6).
    """

    code: str
    exponent: int
    step: int
    minimum: int
    maximum: int = CARD_MAXIMUM
    other_methods_maximum: int = MAX_AMOUNT


def _build(code: str) -> Currency:
    if code in ZERO_DECIMAL:
        exponent, step = 0, 1
    elif code in THREE_DECIMAL:
        exponent, step = 3, 10
    elif code in WHOLE_UNITS_ONLY:
        exponent, step = 2, 100
    else:
        exponent, step = 2, 1
    return Currency(
        code,
        exponent,
        step,
        max(MINIMUM_CHARGE.get(code, step), step),
        CARD_MAXIMUM - CARD_MAXIMUM % step,  # the largest multiple of the step
        OTHER_METHODS_MAXIMUM.get(code, MAX_AMOUNT) // step * step,
    )


_CURRENCIES: dict[str, Currency] = {code: _build(code) for code in SUPPORTED}


def check_currency(code: object, field: str = "currency") -> str:
    """Return ``code`` if Stripe supports it (lowercase ISO 4217), else raise."""
    if not isinstance(code, str):
        raise ValidationError(field, "type", f"must be a str, got {type(code).__name__}")
    if code not in _CURRENCIES:
        if code.lower() in _CURRENCIES:
            raise ValidationError(field, "lowercase", f"{code!r} must be lowercase")
        raise ValidationError(field, "supported", f"{code!r} is not a currency Stripe supports")
    return code


def get_currency(code: str) -> Currency:
    """The :class:`Currency` for a supported code (raises ``ValidationError``)."""
    return _CURRENCIES[check_currency(code)]


def maximum_amount(
    currency: str, *, cards: bool = True, ceilings: Mapping[str, int] | None = None
) -> int:
    """The largest amount an intent in ``currency`` may take: what Stripe allows
    card payments (``cards=True``: the intent may be paid by card), else what it
    allows other methods, lowered to the host's ceiling for the currency, if any
    (``ceilings``, checked by :func:`check_ceilings`)."""
    cur = get_currency(currency)
    limit = cur.maximum if cards else cur.other_methods_maximum
    ceiling = ceilings.get(currency) if ceilings else None
    return limit if ceiling is None else min(limit, ceiling)


def check_ceilings(ceilings: object, field: str = "max_amounts") -> dict[str, int]:
    """A host's per-currency ceilings (``{"usd": 5_000_000}``) as a dict, or
    ``ValidationError``: each currency supported, each ceiling an int in minor
    units, positive and at most what Stripe allows (it can only lower a limit)."""
    if not isinstance(ceilings, Mapping):
        raise ValidationError(field, "type", "must map currencies to amounts in minor units")
    checked: dict[str, int] = {}
    for currency, ceiling in ceilings.items():
        cur = get_currency(check_currency(currency, field))
        if isinstance(ceiling, bool) or not isinstance(ceiling, int):
            raise ValidationError(field, "integer", f"{currency}: must be an int in minor units")
        if not cur.minimum <= ceiling <= cur.maximum:
            raise ValidationError(
                field,
                "range",
                f"{currency}: {ceiling} is not between the minimum charge {cur.minimum} and"
                f" Stripe's maximum {cur.maximum}",
            )
        checked[currency] = ceiling
    return checked


def check_amount(
    amount: object,
    currency: str,
    *,
    field: str = "amount",
    charge: bool = True,
    maximum: int | None = None,
) -> int:
    """Return ``amount`` if it is a valid amount in ``currency``'s minor units.

    ``charge=True`` also applies the currency's minimum charge (not wanted for a
    partial refund or capture, which only need to be positive). ``maximum``
    defaults to the most Stripe takes in the currency (:func:`maximum_amount`).
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError(
            field, "integer", f"must be an int in minor units, got {type(amount).__name__}"
        )
    cur = get_currency(currency)
    if maximum is None:
        maximum = cur.maximum
    if amount <= 0:
        raise ValidationError(field, "positive", f"must be positive, got {amount}")
    if amount > maximum:
        raise ValidationError(field, "maximum", f"{amount} exceeds the maximum {maximum}")
    if amount % cur.step:
        raise ValidationError(
            field, "step", f"{amount} {currency} must be a multiple of {cur.step} minor units"
        )
    if charge and amount < cur.minimum:
        raise ValidationError(
            field, "minimum", f"{amount} {currency} is below Stripe's minimum charge {cur.minimum}"
        )
    return amount


def parse_amount(text: str, currency: str, *, field: str = "amount") -> int:
    """Convert a decimal string in major units (``"12.34"``) to minor units.

    Refuses floats, more precision than the currency allows, and anything that is
    not a plain decimal number. The result is not range-checked; pass it to
    :func:`check_amount`.
    """
    if not isinstance(text, str):
        raise ValidationError(field, "type", f"must be a decimal string, got {type(text).__name__}")
    cur = get_currency(currency)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValidationError(field, "decimal", f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValidationError(field, "decimal", f"{text!r} is not a finite number")
    decimals = 0 if cur.code in WHOLE_UNITS_ONLY else cur.exponent
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            field, "precision", f"{text!r} has more decimals than {currency} allows ({decimals})"
        )
    minor = int(scaled) * (100 if cur.code in WHOLE_UNITS_ONLY else 1)
    if minor % cur.step:
        raise ValidationError(
            field, "step", f"{text!r} {currency} must be a multiple of {cur.step} minor units"
        )
    return minor


def format_amount(amount: int, currency: str) -> str:
    """Minor units to a decimal string in major units: ``format_amount(1234, "usd") == "12.34"``."""
    cur = get_currency(currency)
    value = Decimal(amount).scaleb(-cur.exponent)
    if cur.code in WHOLE_UNITS_ONLY:
        value = value.quantize(Decimal(1))
    return f"{value:f}"
