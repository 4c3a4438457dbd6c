"""Market-data permission answers from IB, in words: what each code means for the quotes a strategy sees.

Without a real-time subscription IB either refuses (354, 10168: no ticks at all), or quietly serves delayed
data (10167, 10089: ticks ~15 minutes late, ib_async maps them into the same bid/ask/last fields), or part
of the ticks (10090). The loud cases stop the feed; the quiet ones would let a strategy trade on stale
prices — so each is reported per symbol.
"""

from __future__ import annotations

__all__ = ["PERMISSION_PROBLEMS", "describe_market_data_type", "permission_problem"]

PERMISSION_PROBLEMS: dict[int, str] = {
    354: "IB sends no quotes: the account has no market-data subscription for it (subscribe in IB's "
    "Account Management)",
    10167: "IB sends DELAYED quotes (about 15 minutes late): the account has no real-time subscription for it",
    10168: "IB sends no quotes: no real-time subscription and delayed data is not enabled",
    10089: "IB sends DELAYED quotes: the symbol needs an additional market-data subscription for the API",
    10090: "IB sends only part of the quotes: part of the market data is not subscribed",
}

_DATA_TYPES = {1: "real-time", 2: "frozen", 3: "delayed", 4: "delayed-frozen"}


def permission_problem(code: int) -> str | None:
    """What permission ``code`` means for a symbol's quotes, or None when it is not a permission code."""
    return PERMISSION_PROBLEMS.get(code)


def describe_market_data_type(data_type: int | None) -> str:
    """IB's ``marketDataType`` in words (``real-time`` for 1)."""
    return _DATA_TYPES.get(int(data_type or 1), f"type {data_type}")
