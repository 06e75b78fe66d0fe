"""FakePricing: a pricing port for tests and demos (a tax rate, a flat shipping
fee, failures on demand), standing in for a host's tax engine and shipping table."""

from __future__ import annotations

from collections.abc import Iterable

from .._models import Adjustment, Cart
from .._money import get_currency

__all__ = ["FakePricing"]


class FakePricing:
    """Prices a cart as a simple shop would: tax at ``tax_rate`` (basis points,
    1/100 of a percent) of the items' subtotal, rounded down to the currency's
    step, as the adjustment ``tax_code``; a flat ``shipping`` amount (``None``:
    none) as ``shipping_code``. The cart's other adjustments (a discount code the
    host added) are kept; those two codes are always recomputed.

    ``calls`` counts the carts priced; ``fail_next(error)`` makes the next call
    raise ``error`` (a host's tax engine timing out)."""

    def __init__(
        self,
        *,
        tax_rate: int = 0,
        shipping: int | None = None,
        tax_code: str = "tax",
        shipping_code: str = "shipping",
    ) -> None:
        self.tax_rate = tax_rate
        self.shipping = shipping
        self.tax_code = tax_code
        self.shipping_code = shipping_code
        self.calls = 0
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"FakePricing(tax_rate={self.tax_rate}, shipping={self.shipping})"

    def fail_next(self, error: BaseException | None) -> None:
        """Raise ``error`` from the next :meth:`price` call (``None``: don't)."""
        self._failure = error

    def tax(self, cart: Cart) -> int:
        """The tax on ``cart``'s items (what :meth:`price` puts under ``tax_code``)."""
        step = get_currency(cart.currency).step
        return cart.subtotal * self.tax_rate // 10_000 // step * step

    def price(self, cart: Cart) -> Iterable[Adjustment]:
        self.calls += 1
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        ours = {self.tax_code, self.shipping_code}
        kept = [a for a in cart.adjustments if a.code not in ours]
        if self.shipping is not None:
            kept.append(Adjustment("shipping", self.shipping_code, "Shipping", self.shipping))
        if self.tax_rate:
            kept.append(Adjustment("tax", self.tax_code, "Tax", self.tax(cart)))
        return kept
