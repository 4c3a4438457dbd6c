"""Cash in several currencies, and what each is worth in the account's base currency.

A forex trade moves two balances (buying 20,000 ``EUR.USD`` at 1.0843 adds 20,000 EUR and takes
21,686 USD), so the account keeps one balance per currency and values them in its base currency (USD) at
the latest rate. A rate comes from the pair that quotes the currency against the base (``EUR.USD`` gives
EUR directly, ``USD.JPY`` gives JPY as its inverse); IB reports each as the ``ExchangeRate`` account value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator

__all__ = ["CurrencyBook", "pair_rate"]

log = logging.getLogger(__name__)


def pair_rate(currency: str, base: str, price_of: Callable[[str], float | None]) -> float | None:
    """Base-currency value of one unit of ``currency``, from the pair quoting it (direct or inverse)."""
    if currency == base:
        return 1.0
    direct = price_of(f"{currency}.{base}")
    if direct is not None and math.isfinite(direct) and direct > 0:
        return float(direct)
    inverse = price_of(f"{base}.{currency}")
    if inverse is not None and math.isfinite(inverse) and inverse > 0:
        return 1.0 / float(inverse)
    return None


class CurrencyBook:
    """Balances per currency; ``base`` holds the account's own currency (the rest are foreign).

    Args:
        base: the account's base currency.
        price_of: the latest price of a forex pair by its key (``EUR.USD``), or None when unknown.
    """

    def __init__(self, base: str = "USD", price_of: Callable[[str], float | None] | None = None) -> None:
        self.base = base
        self.foreign: dict[str, float] = {}
        self.price_of: Callable[[str], float | None] = price_of or (lambda pair: None)
        self._last_rate: dict[str, float] = {}

    def add(self, currency: str, amount: float) -> None:
        """Credit (or with a negative amount, debit) a foreign currency."""
        if currency == self.base:
            raise ValueError("the base currency's balance is the account's cash")
        self.foreign[currency] = self.foreign.get(currency, 0.0) + amount

    def rate(self, currency: str) -> float:
        """The base value of one unit of ``currency``: the latest quote, else the last rate seen (a pair
        that stopped quoting keeps its last value, as a mark does); 0 before any rate is known, logged."""
        found = pair_rate(currency, self.base, self.price_of)
        if found is not None:
            self._last_rate[currency] = found
            return found
        last = self._last_rate.get(currency)
        if last is None:
            log.warning(
                "no %s.%s rate known yet: %s counts as 0 in the base currency", currency, self.base, currency
            )
            return 0.0
        return last

    def value(self, base_cash: float) -> float:
        """Every balance in the base currency (``base_cash`` is the base currency's own balance)."""
        return base_cash + sum(amount * self.rate(c) for c, amount in self.foreign.items())

    def balances(self, base_cash: float) -> Iterator[tuple[str, float]]:
        """``(currency, balance)``: the base first, then the foreign ones held, alphabetically."""
        yield self.base, base_cash
        for currency in sorted(self.foreign):
            yield currency, self.foreign[currency]
