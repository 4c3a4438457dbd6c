"""`copilot-quant batch`: many independent backtests — strategies × symbols — in one summary table.

::

    # the same strategy on each symbol alone (one run per symbol)
    copilot-quant batch copilot_quant.examples.sma_cross:SmaCrossFast --each-symbol \\
        --symbols AAPL MSFT IBM GOOG -p quantity=100 --report out/batch.html

    # several strategies (or one with several settings) over one universe (one run each)
    copilot-quant batch 'copilot_quant.examples.sma_cross:SmaCrossFast(fast_period=5, slow_period=30)' \\
        'copilot_quant.examples.sma_cross:SmaCrossFast(fast_period=20, slow_period=100)' --symbols AAPL

A strategy is ``FILE.py:Class`` or ``package.module:Class``, optionally followed by its constructor
arguments as a Python call (``Class(fast_period=5)``; literal values only); ``-p NAME=VALUE`` sets a
parameter for every strategy (a strategy's own arguments win). ``--each-symbol`` gives each strategy one
run per symbol with ``symbol=SYM``; without it each strategy runs once over all the symbols. The runs go
where sweeps go (a local Dask cluster by default; ``--scheduler``, ``--serial``: see
:mod:`copilot_quant.cli.compute`).

A command of its own rather than options on ``backtest``: a backtest prints one run in depth (its trades,
its chart), a batch prints many runs side by side, ranked; each keeps one output shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from copilot_quant.cli import compute, options
from copilot_quant.cli.reporting import friendly_errors
from copilot_quant.cli.strategy_set import parse_strategy_call
from copilot_quant.cli.strategy_spec import (
    build_strategy,
    format_call,
    load_strategy_class,
    param_option,
    parse_params,
)
from copilot_quant.cli.sweep import check_outputs, engine_settings, run_title, run_with_progress, write_table
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    from copilot_quant.backtest.batch import BatchResult, BatchStrategy
    from copilot_quant.backtest.strategy import Strategy

__all__ = ["batch_command", "batch_table", "parse_strategy_call", "register"]

#: Most runs one batch may start: a typo should not start a day-long job.
MAX_RUNS = 10_000


def _split(tokens: list[str], symbols: list[str]) -> tuple[list[str], list[str]]:
    """Strategies and symbols from the positional tokens (``--symbols A B`` leaves B among them)."""
    strategies = [t for t in tokens if ":" in t or t.endswith(".py") or "/" in t]
    names: list[str] = []
    for token in [*symbols, *(t for t in tokens if t not in strategies)]:
        names += [s.strip().upper() for s in token.split(",") if s.strip()]
    if not strategies:
        raise ConfigError("no strategy given; name one as path/to/strategy.py:Class or package.module:Class")
    if not names:
        raise ConfigError("no symbols to backtest; pass --symbols AAPL MSFT (or --symbols AAPL,MSFT)")
    bad = [s for s in names if not options.is_ticker(s)]
    if bad:
        raise ConfigError(f"{', '.join(map(repr, bad))} is not a ticker symbol; pass --symbols AAPL MSFT")
    return strategies, list(dict.fromkeys(names))


class StrategyBuilder:
    """Builds a strategy of ``cls`` with the command's checks (picklable, so it travels to workers)."""

    def __init__(self, cls: type[Strategy]) -> None:
        self.cls = cls

    def __call__(self, **params: Any) -> Strategy:
        return build_strategy(self.cls, params)


def _strategies(tokens: list[str], fixed: dict[str, Any], first_symbol: str | None) -> list[BatchStrategy]:
    """Each strategy loaded and built once here, so a wrong name fails before any run."""
    from copilot_quant.backtest.batch import BatchStrategy
    from copilot_quant.backtest.cluster import ship_code_of

    built = []
    for token in tokens:
        spec, own = parse_strategy_call(token)
        cls = load_strategy_class(spec)
        params = {**fixed, **own}
        build_strategy(cls, {**params, **({"symbol": first_symbol} if first_symbol else {})})
        ship_code_of(cls)
        built.append(BatchStrategy(format_call(cls, params), StrategyBuilder(cls), params))
    return built


def batch_table(result: BatchResult, top: int) -> Table:
    """The best ``top`` runs, formatted as the report shows them; a failed run shows its error."""
    from copilot_quant.backtest.batch_report import TABLE_COLUMNS
    from copilot_quant.backtest.sweep_report import format_cell

    table = Table(title=f"Top {min(top, len(result.table))} of {len(result.table)} run(s) by {result.metric}")
    table.add_column("#", justify="right")
    for name in TABLE_COLUMNS:
        table.add_column(
            name.replace("_", " "), justify="left" if name in ("strategy", "symbols") else "right"
        )
    for rank, row in result.table.head(top).iterrows():
        cells = [escape(format_cell(row[c], c)) for c in TABLE_COLUMNS]
        if row["error"]:
            cells[-1] = f"[red]{escape(str(row['error']))}[/]"
        table.add_row(str(rank), *cells)
    return table


def batch_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    strategies: list[str] = typer.Argument(
        ...,
        help="Strategies: FILE.py:Class or module:Class, optionally with arguments: 'Class(fast_period=5)'.",
    ),
    symbols: list[str] = options.symbols_option(),
    each_symbol: bool = typer.Option(
        False, "--each-symbol", help="One run per strategy and symbol (the strategy gets symbol=SYM)."
    ),
    start: str | None = options.start_option(),
    end: str | None = options.end_option(),
    data: str = options.data_option(),
    params: list[str] = param_option(),
    metric: str = typer.Option("sharpe_ratio", "--metric", "-m", help="Rank the runs by this metric."),
    top: int = typer.Option(50, "--top", help="Rows shown (the export and the report have all)."),
    export: Path | None = typer.Option(None, "--export", help="Write the whole table (*.csv or *.parquet)."),
    report: Path | None = typer.Option(
        None, "--report", "-r", help="Write the table as an HTML page (*.html)."
    ),
    capital: float = options.capital_option(" of each run"),
    commission: str = options.commission_option(),
    slippage: float = options.slippage_option(),
    fill_at: str = options.fill_at_option(),
    interval: str = options.interval_option(),
    allow_short: bool = options.allow_short_option(),
    volume_limit: float | None = options.volume_limit_option(),
    spread: str = options.spread_option(),
    jobs: int | None = compute.jobs_option(),
    scheduler: str | None = compute.scheduler_option(),
    serial: bool = compute.serial_option(),
) -> None:
    """Backtest several strategies, or one strategy on each symbol, and rank the runs in one table."""
    from copilot_quant.backtest.batch import each_strategy, run_batch
    from copilot_quant.backtest.batch import each_symbol as per_symbol
    from copilot_quant.backtest.sweep import RANKING_METRICS
    from copilot_quant.data.providers import provider_from_spec

    console = Console(highlight=False, width=160)
    with friendly_errors():
        tokens, names = _split(strategies, symbols)
        options.check_dates(start, end)
        if metric not in RANKING_METRICS:
            raise ConfigError(f"cannot rank by {metric!r}; choose one of {', '.join(RANKING_METRICS)}")
        check_outputs(export, report, top)
        engine_options = engine_settings(
            capital, commission, slippage, fill_at, allow_short, volume_limit, spread
        )
        where = compute.resolve(jobs, scheduler, serial)
        compute.quiet_dask_logs()
        fixed = parse_params(params)
        built = _strategies(tokens, fixed, names[0] if each_symbol else None)
        runs = per_symbol(built, names) if each_symbol else each_strategy(built, names)
        if len(runs) > MAX_RUNS:
            raise ConfigError(f"{len(runs)} runs; at most {MAX_RUNS} run in one batch")
        shape = "each on its own" if each_symbol else "as one universe"
        console.print(
            f"Batch of {len(runs)} run(s): {len(built)} strategy(ies) on {', '.join(names)} ({shape}), "
            f"{where.describe()}"
        )
        result = run_with_progress(
            console,
            lambda progress: run_batch(
                runs,
                start_date=start,
                end_date=end,
                data_provider=provider_from_spec(data),
                interval=interval,
                engine_options=engine_options,
                metric=metric,
                progress=progress,
                **where.kwargs,
            ),
            len(runs),
        )
        console.print(batch_table(result, top))
        failed = int((result.table["error"] != "").sum())
        if failed:
            console.print(f"[yellow]{failed} run(s) could not run; see the error column.[/]")
        write_table(console, result.table.reset_index(), export)
        if report is not None:
            from copilot_quant.backtest.batch_report import write_batch_report

            title = run_title(", ".join(s.label for s in built), names, start, end)
            written = write_batch_report(result, report, title)
            console.print(f"Report written to [bold]{escape(str(written))}[/]")


def register(app: typer.Typer) -> None:
    """Add the `batch` command to ``app``."""
    app.command("batch", no_args_is_help=True)(batch_command)
