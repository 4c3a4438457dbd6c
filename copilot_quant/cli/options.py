"""The options every command that runs a strategy on historical bars shares (backtest, sweep, parity).

One definition each, so the same flag means the same thing with the same default and help everywhere.
Each function returns a fresh ``typer.Option``/``typer.Argument`` to use as a parameter default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

_TICKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-^=]*$")

__all__ = [
    "BUY_AND_HOLD",
    "allow_short_option",
    "benchmark_option",
    "capital_option",
    "check_dates",
    "check_report_name",
    "commission_option",
    "data_option",
    "end_option",
    "fill_at_option",
    "interval_option",
    "is_ticker",
    "parse_benchmark",
    "parse_commission",
    "parse_fill_at",
    "parse_spread",
    "parse_symbols",
    "slippage_option",
    "split_tokens",
    "spread_option",
    "start_option",
    "strategy_argument",
    "symbols_option",
    "volume_limit_option",
]

#: The engine's default benchmark (copilot_quant.backtest.benchmark.BUY_AND_HOLD; repeated here so that
#: `copilot-quant --help` does not import pandas).
BUY_AND_HOLD = "buy_and_hold"

DATA_HELP = "Data source: sample, synthetic[:SEED], csv:PATH, store[:DIR], yfinance."


def strategy_argument() -> Any:
    return typer.Argument(
        ..., help="Strategy to run: path/to/strategy.py:ClassName or package.module:ClassName."
    )


def symbols_option() -> Any:
    return typer.Option([], "--symbols", "-s", help="Symbols to trade: --symbols AAPL MSFT (or AAPL,MSFT).")


def start_option(required: bool = False) -> Any:
    return typer.Option(
        ... if required else None, "--start", help="First day (New York time), e.g. 2005-01-01."
    )


def end_option(required: bool = False) -> Any:
    return typer.Option(
        ... if required else None, "--end", help="Last day, included (New York time), e.g. 2012-12-31."
    )


def data_option() -> Any:
    return typer.Option("sample", "--data", "-d", help=DATA_HELP)


def capital_option(whose: str = "") -> Any:
    return typer.Option(100_000.0, "--capital", help=f"Initial cash{whose}.")


COMMISSION_HELP = (
    "Commissions: ibkr-tiered (IBKR Pro Tiered: volume tiers plus pass-through fees), ibkr-fixed "
    "($0.005/share, $1 minimum, plus the regulatory fees IB passes through) or a rate of the traded value (0.001 = 0.1 %)."
)


def commission_option(default: str = "0.001") -> Any:
    return typer.Option(default, "--commission", help=COMMISSION_HELP)


def parse_commission(text: str) -> Any:
    """``--commission`` as a commission model: ``ibkr-tiered``, ``ibkr-fixed`` or a rate such as ``0.001``."""
    from copilot_quant.errors import ConfigError
    from copilot_quant.model.costs import commission_model

    try:
        return commission_model(text)
    except ConfigError as exc:
        raise ConfigError(f"--commission {text!r}: {exc}") from None


def slippage_option() -> Any:
    return typer.Option(0.0005, "--slippage", help="Market and stop slippage rate (0.0005 = 0.05 %).")


SPREAD_HELP = (
    "Bid/ask spread: off (default: fills at bar prices), a width in ticks (1 = one cent above $1) or "
    "in basis points of the price (5bps, at least one tick). Market and stop orders then fill at the touch "
    "(buy at the ask, sell at the bid), --slippage on top, every price on the tick grid."
)


def spread_option() -> Any:
    return typer.Option("off", "--spread", help=SPREAD_HELP)


def parse_spread(text: str) -> Any:
    """``--spread`` as a :class:`~copilot_quant.model.spread.SpreadModel`, or None when off."""
    from copilot_quant.errors import ConfigError
    from copilot_quant.model.spread import spread_model

    try:
        return spread_model(text)
    except ConfigError as exc:
        raise ConfigError(f"--spread {text!r}: {exc}") from None


def fill_at_option() -> Any:
    return typer.Option(
        "next_open",
        "--fill-at",
        help="Fill market orders at the next bar's open (next_open) or this bar's close.",
    )


def parse_fill_at(text: str) -> str:
    """``--fill-at`` as the engine's ``fill_at`` (``next_open`` or ``close``; ``next-open`` works too)."""
    from copilot_quant.errors import ConfigError

    mode = text.strip().lower().replace("-", "_")
    if mode not in ("next_open", "close"):
        raise ConfigError(f"--fill-at must be next_open or close, got {text!r}.")
    return mode


def check_report_name(path: Path | None) -> None:
    """Refuse a ``--report`` name that is not an HTML page, before the run rather than after it."""
    from copilot_quant.errors import ConfigError

    if path is not None and path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--report {path}: the report is an HTML page; name the file *.html")


def interval_option() -> Any:
    return typer.Option("1d", "--interval", help="Bar interval: 1d, 1h, 5m, 1m ...")


def allow_short_option() -> Any:
    return typer.Option(True, "--allow-short/--no-short", help="Allow sells below a flat position.")


def volume_limit_option() -> Any:
    return typer.Option(
        None,
        "--volume-limit",
        help="Fill at most this fraction of each bar's volume per symbol, e.g. 0.1 (0 < x <= 1; default: "
        "no limit). The rest of a DAY order expires at the session's close (on daily bars: after its one "
        "bar); a GTC order's rest keeps working on later bars.",
    )


def roll_days_option() -> Any:
    return typer.Option(
        5,
        "--roll-days",
        help="Continuous futures (--symbols MES): trade the front contract until this many weekdays before "
        "its last trade date, then the next one.",
    )


def auto_roll_option() -> Any:
    return typer.Option(
        False,
        "--auto-roll/--no-auto-roll",
        help="Continuous futures: at each roll, move the positions held in the old contract into the new one "
        "(default: keep them; the strategy's on_roll hook is called either way).",
    )


def benchmark_option() -> Any:
    return typer.Option(
        None,
        "--benchmark",
        metavar="SYMBOL|none",
        help="Compare the run with buy-and-hold of this symbol (traded or not; its bars come from --data), "
        "or none. Default: buy-and-hold of the traded symbols, equal weight.",
    )


def parse_benchmark(text: str | None) -> str | None:
    """``--benchmark`` as the engine's ``benchmark``: the default, a ticker, or None for ``none``."""
    from copilot_quant.errors import ConfigError

    if text is None:
        return BUY_AND_HOLD
    value = text.strip()
    if value.lower() == "none":
        return None
    if not _TICKER.match(value):
        raise ConfigError(f"--benchmark must be a ticker such as SPY, or none; got {text!r}.")
    return value.upper()


def is_ticker(text: str) -> bool:
    """Whether ``text`` looks like a ticker symbol (letters, digits and ``. - ^ =``)."""
    return _TICKER.match(text) is not None


def split_tokens(strategy: str, symbols: list[str], extra: list[str]) -> tuple[str, list[str]]:
    """The strategy spec and the symbol list from the raw tokens.

    ``--symbols AAPL MSFT`` leaves ``MSFT`` as a stray positional token; such tokens are symbols. If the
    user put ``--symbols`` first, the spec may have landed among them: it is the token that names a file
    or has a ``:``.
    """
    from copilot_quant.errors import ConfigError

    tokens = [strategy, *extra]
    specs = [t for t in tokens if ":" in t or t.endswith(".py") or "/" in t]
    spec = specs[0] if specs else strategy
    rest = [t for t in tokens if t is not spec]
    names = parse_symbols([*symbols, *rest])
    if not names:
        raise ConfigError("No symbols to backtest; pass --symbols AAPL MSFT (or --symbols AAPL,MSFT).")
    return spec, names


def parse_symbols(tokens: list[str]) -> list[str]:
    """``--symbols AAPL MSFT`` or ``--symbols AAPL,MSFT`` (or both mixed) as upper-case tickers, in order,
    each once; ConfigError for a token that is no ticker (a stray option value, a typo)."""
    from copilot_quant.errors import ConfigError

    names: list[str] = []
    for token in tokens:
        names += [s.strip().upper() for s in token.split(",") if s.strip()]
    bad = [s for s in names if not _TICKER.match(s)]
    if bad:
        raise ConfigError(
            f"{', '.join(repr(b) for b in bad)} is not a ticker symbol; pass symbols as --symbols AAPL MSFT."
        )
    return list(dict.fromkeys(names))


def check_dates(start: str | None, end: str | None) -> None:
    """Refuse a ``--start``/``--end`` that is not a date, or a range that ends before it starts."""
    from copilot_quant.data.dates import resolve_range, to_utc
    from copilot_quant.errors import ConfigError, DataError

    for flag, value in (("--start", start), ("--end", end)):
        if value is not None:
            try:
                to_utc(value)
            except DataError as exc:
                raise ConfigError(f"{flag}: {exc}") from exc
    try:
        resolve_range(start, end)
    except DataError as exc:
        raise ConfigError(str(exc)) from exc
