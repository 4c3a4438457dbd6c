"""How ``copilot-quant`` commands report: a failure as one red line on stderr and an exit code, a
backtest's result as a metrics table (:func:`metrics_table`).

Messages are escaped before rich renders them: a path such as ``data/[2024]/aapl.csv`` or a reason in
square brackets is shown as written, never taken for markup (which would drop it or raise MarkupError).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from copilot_quant.backtest.metric_format import SUMMARY_KEYS, format_metric, metric_label
from copilot_quant.cli.exit_codes import code_for
from copilot_quant.cli.words import cli_words
from copilot_quant.errors import CopilotQuantError

if TYPE_CHECKING:
    import pandas as pd

    from copilot_quant.backtest.results import BacktestResult

__all__ = [
    "error_console",
    "friendly_errors",
    "metrics_table",
    "period_text",
    "print_error",
    "strategies_table",
]

_COLOURED = frozenset({"total_return", "annualized_return", "excess_return", "alpha"})


def error_console() -> Console:
    # Built per call so output goes to the stream typer's test runner (or the user's terminal) has now;
    # soft wrap keeps paths on one line, so they can be copied.
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """Print ``message`` (plain text, not markup) as one red ``Error:`` line on stderr."""
    one_line = " ".join(str(message).split())  # whatever the message's layout
    error_console().print(f"[bold red]Error:[/] [red]{escape(one_line)}[/]")


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Report a library error as one line, in the command line's words (:func:`~copilot_quant.cli.words.cli_words`),
    and exit with its code (2 for bad input, 1 for a runtime failure such as an unreachable data source or
    gateway), instead of a traceback."""
    try:
        yield
    except CopilotQuantError as exc:
        print_error(cli_words(str(exc)))
        raise typer.Exit(code=code_for(exc)) from exc


def period_text(index: pd.Index, daily: bool) -> str:
    """The bars' span as people read it: New York days for daily bars, New York times to the minute
    otherwise."""
    import pandas as pd

    if not len(index) or not isinstance(index, pd.DatetimeIndex):
        return "no bars"
    local = index.tz_convert("America/New_York") if index.tz is not None else index
    fmt = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
    return f"{local[0].strftime(fmt)} → {local[-1].strftime(fmt)}"


def metrics_table(result: BacktestResult, title: str | None = None, *, source: str | None = None) -> Table:
    """The run's metrics as a rich table (the same keys and formatting as ``result.summary()``), headed
    by the period its bars cover, the data ``source`` (when given) and the benchmark it is compared with."""
    stats = result.metrics
    table = Table(title=title or result.strategy_name, header_style="bold", min_width=len(title or "") + 4)
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    daily = result.periods_per_year <= 252  # 252 trading days a year: daily bars or coarser
    index = result.equity_curve.index
    table.add_row("Period" if daily else "Period (New York)", period_text(index, daily))
    bars = f"{len(index):,}"
    table.add_row("Bars", f"{bars} ({escape(source)})" if source else bars)
    benchmark = result.benchmark
    table.add_row("Benchmark", escape(benchmark.name) if benchmark is not None else "none")
    table.add_row("Initial capital", format_metric("initial_capital", stats["initial_capital"]))
    table.add_row("Final value", format_metric("final_value", stats["final_value"]))
    for key in SUMMARY_KEYS:
        value = stats[key]
        text = format_metric(key, value)
        if key in _COLOURED and isinstance(value, float) and value == value:  # noqa: PLR0124 - NaN test
            text = f"[green]{text}[/]" if value > 0 else f"[red]{text}[/]" if value < 0 else text
        table.add_row(metric_label(key), text)
    if stats["open_trades"]:
        table.add_row("Open trades (marked)", format_metric("open_trades", stats["open_trades"]))
    return table


def strategies_table(result: BacktestResult) -> Table:
    """One row per strategy of a several-strategy run and one for the account, which they add up to:
    capital, final value, P&L, return, fills, closed trades and errors
    (:func:`~copilot_quant.backtest.books.strategy_table`)."""
    from copilot_quant.backtest.books import strategy_table

    frame = strategy_table(result)
    table = Table(title="Per strategy (one account)", header_style="bold")
    for column in ("Strategy", "Capital", "Final value", "P&L", "Return", "Fills", "Closed trades", "Errors"):
        table.add_column(column, justify="left" if column == "Strategy" else "right")
    last = len(frame) - 1
    for i, (key, row) in enumerate(frame.iterrows()):
        pnl = float(row["pnl"])
        colour = "green" if pnl > 0 else "red" if pnl < 0 else ""
        pnl_text = f"{pnl:,.2f}"
        table.add_row(
            f"[bold]{escape(str(key))}[/]" if key == "account" else escape(str(key)),
            f"{row['initial_capital']:,.2f}",
            f"{row['final_value']:,.2f}",
            f"[{colour}]{pnl_text}[/]" if colour else pnl_text,
            format_metric("total_return", float(row["total_return"])),
            f"{int(row['fills'])}",
            f"{int(row['closed_trades'])}",
            f"{int(row['errors'])}",
            end_section=i == last - 1,  # a rule above the account's row
        )
    return table
