"""`copilot-quant data`: list, import and inspect market data.

``list`` shows the symbols a source holds, ``import`` copies CSV files into the local Parquet store,
``download`` fills it from TWS / IB Gateway (chunked, paced, resumable; see
:mod:`copilot_quant.brokers.ib_download`), and ``show`` prints the first and last bars of a symbol plus a
summary. Sources are the specs of
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

from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, USAGE_ERROR
from copilot_quant.cli.reporting import friendly_errors
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from copilot_quant.brokers.config import ConnectionSettings

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


@app.command("download")
def download(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    more_symbols: list[str] = typer.Argument(None, hidden=True),
    source: str = typer.Option("ib", "--source", "-s", help="Where to download from: ib (TWS / IB Gateway)."),
    symbols: list[str] = typer.Option(None, "--symbols", help="Symbols: --symbols AAPL MSFT (or AAPL,MSFT)."),
    interval: str = typer.Option("1d", "--interval", help="Bar interval: 1m 2m 5m 15m 30m 1h 1d."),
    start: str = typer.Option(..., "--start", help="First day, e.g. 2024-01-02 (New York time)."),
    end: str | None = typer.Option(None, "--end", help="Last day, inclusive (default: the latest session)."),
    adjusted: bool = typer.Option(
        False,
        "--adjusted/--unadjusted",
        help="Split/dividend-adjusted (IB ADJUSTED_LAST) or raw TRADES bars.",
    ),
    store: Path | None = typer.Option(None, "--store", help=_STORE_HELP),
    paper: bool = typer.Option(True, "--paper/--live", help="Paper (default) or live TWS/Gateway ports."),
    gateway: bool = typer.Option(False, "--gateway", help="IB Gateway ports (4002/4001) instead of TWS."),
    host: str | None = typer.Option(None, "--host", help="Override IB_HOST (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Override IB_PORT (default from the port table)."),
    client_id: int | None = typer.Option(None, "--client-id", help="Override IB_CLIENT_ID (default 1)."),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="Seconds one request may take."),
) -> None:
    """Download IB bars into the local Parquet store: only what it lacks, within IB's pacing rules.

    Interrupt it any time (Ctrl-C): what arrived is stored, and the same command resumes.
    """
    console = _console()
    with friendly_errors():
        if source.strip().lower() != "ib":
            raise ConfigError(
                f"download knows --source ib only, not {source!r}; import CSV files with `copilot-quant data import`."
            )
        names = [p.strip().upper() for s in [*(symbols or []), *(more_symbols or [])] for p in s.split(",")]
        names = [n for n in dict.fromkeys(names) if n]
        if not names:
            raise ConfigError("name the symbols to download: --symbols AAPL MSFT")
        from copilot_quant.brokers.config import resolve_connection
        from copilot_quant.data.ib_chunks import check_download_interval

        check_download_interval(interval)
        settings = resolve_connection(paper, host, port, client_id, gateway)
        _download(console, settings, names, interval, start, end, adjusted, store, timeout)


def _download(  # noqa: PLR0917 - the command's checked arguments
    console: Console,
    settings: ConnectionSettings,
    names: list[str],
    interval: str,
    start: str,
    end: str | None,
    adjusted: bool,
    store: Path | None,
    timeout: float,
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from copilot_quant.brokers.connection import IBConnection
    from copilot_quant.brokers.ib_download import Downloader, pacing_schedule
    from copilot_quant.data.store import ParquetStore
    from copilot_quant.errors import DataUnavailableError

    conn = IBConnection(settings, auto_reconnect=False, name="copilot-quant-download")
    if not conn.connect(timeout):
        conn.disconnect()
        raise DataUnavailableError(
            f"cannot reach {settings.describe()}; start TWS / IB Gateway (or `copilot-quant gateway`) "
            "with the API enabled, or pass --host/--port"
        )
    try:
        target = ParquetStore(store)
        downloader = Downloader(conn, target, request_timeout=timeout)
        planned = downloader.plan(names, interval, start, end, adjusted=adjusted)
        least = pacing_schedule(planned)[-1] if planned else 0.0
        console.print(
            f"{len(planned)} request(s) to {settings.describe()} for {', '.join(names)} ({interval}, "
            f"{'adjusted' if adjusted else 'unadjusted'}) into {target.root}; IB's pacing rules need at "
            f"least {_span(least)}"
        )
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("requests", total=len(planned))

            def advance(done: int, total: int, chunk: Any, bars: int) -> None:
                bar.update(task, completed=done, total=total, description=chunk.describe())

            try:
                report = downloader.run(names, interval, start, end, adjusted=adjusted, progress=advance)
            except KeyboardInterrupt:
                console.print(
                    "[yellow]Interrupted.[/] What arrived is stored; run the same command to resume."
                )
                raise typer.Exit(code=RUNTIME_FAILURE) from None
    finally:
        conn.disconnect()
    _print_download_report(console, report)


def _span(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _print_download_report(console: Console, report: Any) -> None:
    table = Table(
        title=f"Downloaded {report.done} request(s) of {report.interval} {report.what_to_show} bars"
    )
    for column in ("Symbol", "Bars", "Sessions without bars"):
        table.add_column(column, justify="right" if column == "Bars" else "left")
    for symbol, gaps in report.gaps.items():
        shown = ", ".join(gaps[:8]) + (f" … (+{len(gaps) - 8})" if len(gaps) > 8 else "")
        table.add_row(symbol, f"{report.bars.get(symbol, 0):,}", shown or "none")
    console.print(table)
    if report.retries:
        console.print(f"{report.retries} request(s) retried after a pacing error or a timeout.")


def register(root: typer.Typer) -> None:
    """Add the `data` command group to ``root``."""
    root.add_typer(app, name="data")
