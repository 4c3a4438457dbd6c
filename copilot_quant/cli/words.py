"""Library messages in the command line's words.

The library's errors name Python arguments (``confirm_live=True``, ``run(symbols=[...])``, ``holdout_from``,
``None``) because Python callers read them; a CLI user typed options instead. :func:`cli_words` rewrites the
known phrases before a command prints a message. Longest phrases first, so a longer one wins over a part.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["bar_time", "cli_words"]


_CLI_WORDS: tuple[tuple[str, str], ...] = (
    ("engine.adopt_broker_positions(strategy='NAME')", "--adopt-to NAME"),
    ("pass confirm_live=True", "add --confirm-live"),
    ("keep paper_trading=True", "drop --live"),
    ("pass paper_trading=False", "use --live --confirm-live"),
    ("paper_trading=False", "--live"),
    ("paper_trading=True", "paper trading (the default)"),
    ("the port argument", "--port"),
    ("add it to run(symbols=[...])", "add it to --symbols"),
    ("leave it unset (None) for no limit", "leave the option out for no limit"),
    ("(or None to disable)", "(or leave the option out)"),
    ("holdout_from ", "--holdout-from "),
    ("; see result.errors", "; the summary after the metrics counts them"),
    ("RiskLimits.max_order_quantity", "--max-order-qty"),
    ("RiskLimits.max_order_notional", "--max-order-notional"),
    ("RiskLimits.max_position_per_symbol", "--max-position"),
    ("RiskLimits.max_daily_loss", "--max-daily-loss"),
    ("RiskLimits.max_orders_per_minute", "--max-orders-per-minute"),
    ("RiskLimits.price_band_pct", "--price-band-pct"),
)


def cli_words(message: str) -> str:
    """``message`` with the library's Python spellings replaced by this command line's options."""
    for python, cli in _CLI_WORDS:
        message = message.replace(python, cli)
    return message


def bar_time(stamp: datetime | pd.Timestamp | str | None, interval: str = "1d") -> str:
    """A bar's time as a trader reads it (:func:`copilot_quant.data.dates.bar_label`): the exchange date for
    daily (or longer) bars, ``2024-01-05``; the exchange-local time otherwise, ``2024-01-05 10:30 EST``."""
    from copilot_quant.data.dates import bar_label  # here: `copilot-quant --help` need not load pandas

    return bar_label(stamp, interval)
