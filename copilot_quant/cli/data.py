"""`copilot-quant data`: list, import and inspect market data.

``list`` shows the symbols a source holds, ``import`` copies CSV files into the local Parquet store, and
``show`` prints the first and last bars of a symbol plus a summary. Sources are the specs of
:func:`copilot_quant.data.providers.provider_from_spec` (``store``, ``sample``, ``csv:DIR``, ...). Every
data error is printed in one red line that says how to fix it, with exit code 2 (bad input, e.g. an unknown
symbol or a range without bars) or 1 (a runtime failure, e.g. an unreachable data source); see
:mod:`copilot_quant.cli.exit_codes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.cli.reporting import friendly_errors
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

# The data modules (pandas, pyarrow, exchange_calendars) are imported inside the commands so that
# `copilot-quant --help` and the other command groups start without paying for them.
_TZ = "America/New_York"  # times are shown in the NYSE's zone, the zone every session is defined in

app = typer.Typer(
    name="data",
    help="List, import (CSV) and inspect market data: the local Parquet store, the bundled sample, CSV files.",
    no_args_is_help=True,
)

_SOURCE_HELP = "Data source: store, store:DIR, sample, csv:PATH, synthetic[:SEED] or yfinance (its cache)."
_STORE_HELP = "Store directory (default: $COPILOT_QUANT_STORE, else ~/.copilot_quant/store)."


def _console() -> Console:
    # Built per call so output goes to the stream typer's test runner (or the user's terminal) has now.
    return Console(highlight=False, soft_wrap=False, width=120)


def _provider(source: str, store: Path | None) -> Any:
    from copilot_quant.data.providers import provider_from_spec
    from copilot_quant.data.store import ParquetStore

    if store is not None:
        if source.strip().lower() != "store":
            raise ConfigError(f"--store only applies to --source store, not to {source!r}; drop one of them.")
        return ParquetStore(store)
    return provider_from_spec(source)


def _when(ts: pd.Timestamp | None, tz: str) -> str:
    import pandas as pd

    if ts is None or pd.isna(ts):
        return "-"
    local = pd.Timestamp(ts).tz_convert(tz)
    return local.strftime("%Y-%m-%d %H:%M %Z")


def _price(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:,.4f}"


def _symbols_table(provider: Any, symbols: list[str]) -> Table:
    tz = _TZ
    table = Table(title=f"{len(symbols)} symbol(s) in {provider!r}")
    for column in ("Symbol", "Interval", "Bars", "First bar", "Last bar"):
        table.add_column(column, justify="right" if column == "Bars" else "left")
    from copilot_quant.data.store import ParquetStore

    for symbol in symbols:
        if isinstance(provider, ParquetStore):  # one row per stored interval
            for interval, facts in provider.info(symbol)["intervals"].items():
                table.add_row(
                    symbol, interval, str(facts["bars"]), _when(facts["first"], tz), _when(facts["last"], tz)
                )
            continue
        info = provider.get_ticker_info(symbol)
        table.add_row(
            symbol,
            ", ".join(info.get("intervals", [])) or "-",
            str(info.get("bars", "-")),
            _when(info.get("first"), tz),
            _when(info.get("last"), tz),
        )
    return table


@app.command("list")
def list_symbols(
    source: str = typer.Option("store", "--source", "-s", help=_SOURCE_HELP),
    store: Path | None = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """List the symbols a data source holds, with their intervals and date spans."""
    console = _console()
    with friendly_errors():
        provider = _provider(source, store)
        from copilot_quant.data.base import BarProvider
        from copilot_quant.data.store import ParquetStore

        if not isinstance(provider, BarProvider):
            raise ConfigError(f"{source!r} cannot list its symbols; use store, sample or csv:DIR.")
        symbols = provider.symbols()
        if not symbols:
            if isinstance(provider, ParquetStore):
                hint = "Import CSV files with `copilot-quant data import PATH`"
            else:  # synthetic makes any ticker on request; yfinance lists only what it has cached
                hint = f"Ask for one with `copilot-quant data show SYMBOL --source {source}`"
            console.print(
                f"No symbols in {provider!r} yet. {hint}, or look at the bundled data with `--source sample`."
            )
            return
        console.print(_symbols_table(provider, symbols))


@app.command("import")
def import_csv(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    csv_path: Path = typer.Argument(..., help="A CSV file, or a directory of SYMBOL.csv files."),
    symbol: str | None = typer.Option(None, "--symbol", help="Symbol of a single file (default: file name)."),
    interval: str | None = typer.Option(
        None, "--interval", help="Bar interval of the file(s), e.g. 1d or 5m (default: inferred)."
    ),
    bar_end: bool = typer.Option(
        False, "--bar-end", help="Intraday times are bar END times (default: bar start)."
    ),
    adjust: bool = typer.Option(
        True, "--adjust/--no-adjust", help="Scale prices by 'Adj Close' when the file has that column."
    ),
    store: Path | None = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Import CSV bars (Date, Open, High, Low, Close, Volume[, Adj Close]) into the local Parquet store."""
    from copilot_quant.data.store import ParquetStore

    console = _console()
    with friendly_errors():
        target = ParquetStore(store)
        imported = target.import_csv(
            csv_path, symbol=symbol, interval=interval, adjust=adjust, bar_end=bar_end
        )
        console.print(f"Imported {len(imported)} symbol(s) into {target.root}:")
        console.print(_symbols_table(target, imported))


def _bars_table(frame: pd.DataFrame, title: str, tz: str) -> Table:
    table = Table(title=title)
    table.add_column("Bar close", style="cyan")
    for column in ("Open", "High", "Low", "Close"):
        table.add_column(column, justify="right")
    table.add_column("Volume", justify="right")
    values = frame.loc[:, ["Open", "High", "Low", "Close", "Volume"]].to_numpy(dtype=float)
    for ts, (open_, high, low, close, volume) in zip(frame.index, values, strict=True):
        table.add_row(
            _when(ts, tz), _price(open_), _price(high), _price(low), _price(close), f"{volume:,.0f}"
        )
    return table


def _summary_table(frame: pd.DataFrame, symbol: str, interval: str, tz: str) -> Table:
    close = frame["Close"]
    table = Table(title=f"{symbol} summary", show_header=False)
    table.add_column("Metric", style="bold")
    table.add_column("Value", justify="right")
    rows = {
        "Bars": f"{len(frame)} × {interval}",
        "First bar": _when(frame.index[0], tz),
        "Last bar": _when(frame.index[-1], tz),
        "First close": _price(float(close.iloc[0])),
        "Last close": _price(float(close.iloc[-1])),
        "Lowest low": _price(float(frame["Low"].min())),
        "Highest high": _price(float(frame["High"].max())),
        "Change": f"{close.iloc[-1] / close.iloc[0] - 1:+.2%}",
        "Mean volume": f"{frame['Volume'].mean():,.0f}",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    return table


@app.command("show")
def show(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    symbol: str = typer.Argument(..., help="Ticker, e.g. AAPL."),
    source: str = typer.Option("store", "--source", "-s", help=_SOURCE_HELP),
    start: str | None = typer.Option(None, "--start", help="First date, e.g. 2010-01-01 (New York time)."),
    end: str | None = typer.Option(None, "--end", help="Last date, inclusive, e.g. 2010-12-31."),
    interval: str = typer.Option("1d", "--interval", help="Bar interval: 1m 2m 5m 15m 30m 1h 1d 1wk 1mo."),
    rows: int = typer.Option(5, "--rows", "-n", min=1, help="Bars to show at the start and at the end."),
    store: Path | None = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Show the first and last bars of SYMBOL and a summary (times in New York time)."""
    console = _console()
    tz = _TZ
    with friendly_errors():
        provider = _provider(source, store)
        frame = provider.get_historical_data(symbol, start, end, interval)
        name = symbol.strip().upper()
        if frame.empty:
            console.print(
                f"No {interval} bars for {name} between {start or 'the start'} and {end or 'the end'} "
                f"in {provider!r}; widen the dates (`copilot-quant data list --source {source}` shows the spans)."
            )
            raise typer.Exit(code=USAGE_ERROR)
        if len(frame) <= 2 * rows:
            console.print(_bars_table(frame, f"{name}: all {len(frame)} bars", tz))
        else:
            console.print(_bars_table(frame.iloc[:rows], f"{name}: first {rows} bars", tz))
            console.print(_bars_table(frame.iloc[-rows:], f"{name}: last {rows} bars", tz))
        console.print(_summary_table(frame, name, interval, tz))


def register(root: typer.Typer) -> None:
    """Add the `data` command group to ``root``."""
    root.add_typer(app, name="data")
