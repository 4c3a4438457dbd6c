"""`copilot-quant sweep`: backtest a strategy over a grid of parameters and rank the combinations.

::

    copilot-quant sweep copilot_quant/examples/sma_cross.py:SimpleMovingAverage --symbols AAPL \\
        --start 2005-01-01 --end 2012-12-31 -g fast_period=5:20:5 -g slow_period=30,50,100 \\
        --holdout-from 2011-01-01 --export out/sweep.csv --report out/sweep.html

``-g NAME=VALUES`` (``--grid``, once per parameter) gives the values to try: a comma list of Python
literals (``5,10,20`` or ``'a','b'``), an inclusive range ``START:STOP[:STEP]`` (``5:20:5`` = 5, 10, 15,
20), or one Python list (``[5, 10]``). ``-p NAME=VALUE`` fixes a parameter for every run. The table is
ranked by ``--metric`` (before ``--holdout-from`` when given; see :mod:`copilot_quant.backtest.sweep`).
``--report FILE.html`` writes the page of :mod:`copilot_quant.backtest.sweep_report`: the metric mapped
over the parameters (or, with ``--walk-forward``, the out-of-sample equity and the folds).

The backtests run on Dask distributed: a local cluster of one worker process per core by default,
``--scheduler tcp://HOST:8786`` (or ``$DASK_SCHEDULER_ADDRESS``) for a running cluster, ``--serial`` in
this process (:mod:`copilot_quant.cli.compute`).
"""

from __future__ import annotations

import ast
import keyword
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from copilot_quant.cli import compute, options
from copilot_quant.cli.reporting import friendly_errors
from copilot_quant.cli.strategy_spec import (
    build_strategy,
    format_call,
    load_strategy_class,
    param_option,
    parse_params,
    parse_value,
)
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    from copilot_quant.backtest.sweep import SweepResult
    from copilot_quant.backtest.walk_forward import WalkForwardResult

__all__ = [
    "check_export",
    "check_outputs",
    "engine_settings",
    "parse_grid",
    "register",
    "run_title",
    "run_with_progress",
    "sweep_command",
    "sweep_table",
    "walk_forward_table",
    "write_table",
]

#: Most combinations one sweep may run: a typo such as 1:100000 should not start a day-long job.
MAX_COMBINATIONS = 10_000

_GRID_HELP = (
    "Values to try for one constructor parameter, repeatable: -g fast_period=5,10,20 (a comma list), "
    "-g slow_period=30:60:10 (START:STOP[:STEP], STOP included) or -g fast_period=[5,10]."
)


# ------------------------------------------------------------------------------------------- the grid
def _number(text: str, item: str) -> int | float:
    value = parse_value(text)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"--grid {item!r}: {text!r} is not a number; a range is START:STOP[:STEP]")
    return value


def _range(text: str, item: str) -> list[Any]:
    """``START:STOP[:STEP]`` with STOP included: ``5:20:5`` → [5, 10, 15, 20]."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(f"--grid {item!r}: a range is START:STOP or START:STOP:STEP, e.g. 5:20:5")
    start, stop = _number(parts[0], item), _number(parts[1], item)
    step = _number(parts[2], item) if len(parts) == 3 else 1
    if step <= 0 or stop < start:
        raise ConfigError(f"--grid {item!r}: needs START <= STOP and a positive STEP, e.g. 5:20:5")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_COMBINATIONS:
        raise ConfigError(
            f"--grid {item!r} gives {count} values; at most {MAX_COMBINATIONS} combinations run"
        )
    if all(isinstance(v, int) for v in (start, stop, step)):
        return [int(start + k * step) for k in range(count)]
    return [round(start + k * step, 12) for k in range(count)]


def _values(raw: str, item: str) -> list[Any]:
    text = raw.strip()
    if not text:
        raise ConfigError(f"--grid {item!r} gives no values; write e.g. -g fast_period=5,10,20")
    if text.startswith(("[", "(")):
        try:
            listed = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ConfigError(f"--grid {item!r}: {text!r} is not a Python list") from exc
        return list(listed) if isinstance(listed, list | tuple) else [listed]
    if ":" in text and not text.startswith(("'", '"')):
        return _range(text, item)
    return [parse_value(v) for v in text.split(",") if v.strip()]


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """The ``--grid NAME=VALUES`` options as name → values; ConfigError for a malformed or repeated one."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigError(f"--grid {item!r} is not NAME=VALUES; write it as e.g. -g fast_period=5,10,20")
        if name in grid:
            raise ConfigError(f"--grid {name} is given twice; give each parameter once")
        grid[name] = _values(raw, item)
    if not grid:
        raise ConfigError("nothing to sweep; give at least one -g NAME=VALUES, e.g. -g fast_period=5,10,20")
    return grid


def check_export(path: Path) -> None:
    """Refuse an --export name whose format is unknown before the sweep runs, not after."""
    from copilot_quant.journal.export import export_format

    try:
        export_format(path)
    except ConfigError:
        raise ConfigError(
            f"--export {path}: cannot tell the format from the file name; name the file *.csv or *.parquet"
        ) from None


def _write_report(searched: SweepResult | WalkForwardResult, path: Path, title: str) -> Path:
    """The sweep's or the walk-forward's page; plotly is imported only when a report is asked for."""
    from copilot_quant.backtest.sweep import SweepResult
    from copilot_quant.backtest.sweep_report import write_sweep_report, write_walk_forward_report

    if isinstance(searched, SweepResult):
        return write_sweep_report(searched, path, title)
    return write_walk_forward_report(searched, path, title)


def _check_holdout(day: str) -> None:
    from copilot_quant.data.dates import to_utc
    from copilot_quant.errors import DataError

    try:
        to_utc(day)
    except DataError as exc:
        raise ConfigError(f"--holdout-from: {exc}") from exc


def _check_search(holdout_from: str | None, folds: int | None, rolling: bool) -> None:
    if holdout_from is not None:
        _check_holdout(holdout_from)
    if folds is not None and holdout_from is not None:
        raise ConfigError("--walk-forward makes its own holdouts; drop --holdout-from")
    if rolling and folds is None:
        raise ConfigError("--rolling only applies with --walk-forward N")


def check_outputs(export: Path | None, report: Path | None, top: int) -> None:
    """Refuse an --export, --report or --top that cannot work before anything runs, not after."""
    if export is not None:
        check_export(export)
    if report is not None:
        options.check_report_name(report)
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}.")


def engine_settings(  # noqa: PLR0917 - one argument per command-line option
    capital: float,
    commission: str,
    slippage: float,
    fill_at: str,
    allow_short: bool,
    volume_limit: float | None,
    spread: str = "auto",
) -> dict[str, Any]:
    """The engine options every run of a sweep or batch gets, checked (``spread``: the ``--spread`` text;
    the parsed model travels to every worker with the other options)."""
    from copilot_quant.backtest.participation import check_volume_limit

    if capital <= 0:
        raise ConfigError(f"--capital must be positive, got {capital}.")
    check_volume_limit(volume_limit, "--volume-limit")
    return {
        "initial_capital": capital,
        "commission": options.parse_commission(commission),
        "slippage": slippage,
        "allow_short": allow_short,
        "volume_limit": volume_limit,
        "fill_at": options.parse_fill_at(fill_at),
        "spread": options.parse_spread(spread),
    }


def write_table(console: Console, table: Any, export: Path | None) -> None:
    """The whole table to ``export`` (*.csv or *.parquet), if asked for."""
    if export is None:
        return
    from copilot_quant.journal.export import write_frame

    written = write_frame(table, export)
    console.print(f"Table written to [bold]{escape(str(written))}[/]")


def run_title(what: str, names: list[str], start: str | None, end: str | None) -> str:
    """``what on AAPL, MSFT, 2005-01-01 to 2012-12-31`` for a report's title."""
    title = f"{what} on {', '.join(names)}"
    if start or end:
        title += f", {start or 'first bar'} to {end or 'last bar'}"
    return title


# ------------------------------------------------------------------------------------------- output
def _cell(value: Any, name: str) -> str:
    from copilot_quant.backtest.sweep_report import format_cell  # here: `copilot-quant --help` stays fast

    return format_cell(value, name)


_SHOWN = ("sharpe_ratio", "total_return", "max_drawdown", "fills")


def sweep_table(sweep: SweepResult, top: int) -> Table:
    """The best ``top`` rows: parameters, the ranking metrics, holdout beside them, and errors."""
    columns = [*sweep.parameters, *_SHOWN]
    if sweep.metric not in columns:
        columns.insert(len(sweep.parameters), sweep.metric)
    if sweep.holdout_from is not None:
        columns += [f"holdout_{k}" for k in (*_SHOWN[:3], "fills")]
    columns += ["errors"]
    title = f"Top {min(top, len(sweep.table))} of {sweep.combinations} by {sweep.metric}"
    if sweep.holdout_from is not None:
        title += f" (ranked before {sweep.holdout_from:%Y-%m-%d}; holdout_* from then on)"
    table = Table(title=title, header_style="bold")
    table.add_column("#", justify="right")
    for name in columns:
        table.add_column(name.replace("_", " "), justify="right")
    for rank, row in sweep.table.head(top).iterrows():
        cells = [_cell(row[c], c) for c in columns]
        if row["error"]:
            cells[-1] = f"[red]{escape(str(row['error']))}[/]"
        table.add_row(str(rank), *(escape(c) if not c.startswith("[red]") else c for c in cells))
    return table


# ------------------------------------------------------------------------------------------- command
def sweep_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    ctx: typer.Context,
    strategy: str = options.strategy_argument(),
    symbols: list[str] = options.symbols_option(),
    start: str | None = options.start_option(),
    end: str | None = options.end_option(),
    data: str = options.data_option(),
    grid: list[str] = typer.Option([], "--grid", "-g", metavar="NAME=VALUES", help=_GRID_HELP),
    params: list[str] = param_option(),
    metric: str = typer.Option(
        "sharpe_ratio",
        "--metric",
        "-m",
        help="Rank by: sharpe_ratio, sortino_ratio, "
        "total_return, annualized_return, calmar_ratio, max_drawdown.",
    ),
    holdout_from: str | None = typer.Option(
        None, "--holdout-from", help="Rank on the bars before this day only; show the rest beside it."
    ),
    walk_forward_folds: int | None = typer.Option(
        None,
        "--walk-forward",
        help="Walk-forward with N folds: choose on the past, test on the next stretch, chain the tests.",
    ),
    rolling: bool = typer.Option(
        False, "--rolling", help="With --walk-forward: train on the last stretch only."
    ),
    jobs: int | None = compute.jobs_option(),
    scheduler: str | None = compute.scheduler_option(),
    serial: bool = compute.serial_option(),
    per_task: int | None = typer.Option(
        None,
        "--per-task",
        help="Combinations per Dask task (default: shrinking tasks, each a quarter of what is left on 2 "
        "worker threads, at most 200 and at least 1/8 of a thread's share): the per-task overhead (1-5 ms) "
        "then vanishes beside the runs (see benchmarks/bench_sweep.py's capacity plan).",
    ),
    top: int = typer.Option(20, "--top", help="Rows shown (the export has all)."),
    export: Path | None = typer.Option(None, "--export", help="Write the whole table (*.csv or *.parquet)."),
    report: Path | None = typer.Option(
        None,
        "--report",
        "-r",
        help="Write an HTML report (*.html): the metric mapped over the parameters, or with --walk-forward "
        "the out-of-sample equity and the folds.",
    ),
    capital: float = options.capital_option(" of each run"),
    commission: str = options.commission_option(),
    slippage: float = options.slippage_option(),
    fill_at: str = options.fill_at_option(),
    interval: str = options.interval_option(),
    allow_short: bool = options.allow_short_option(),
    volume_limit: float | None = options.volume_limit_option(),
    spread: str = options.spread_option(),
) -> None:
    """Backtest a strategy for every combination of -g values and rank them (with an honest holdout)."""
    from copilot_quant.backtest.cluster import ship_code_of
    from copilot_quant.backtest.sweep import parameter_grid, run_sweep
    from copilot_quant.data.providers import provider_from_spec

    console = Console(highlight=False, width=160)
    with friendly_errors():
        spec, names = options.split_tokens(strategy, symbols, list(ctx.args))
        options.check_dates(start, end)
        _check_search(holdout_from, walk_forward_folds, rolling)
        check_outputs(export, report, top)
        if per_task is not None and per_task < 1:
            raise ConfigError(f"--per-task must be at least 1, got {per_task}.")
        engine_options = engine_settings(
            capital, commission, slippage, fill_at, allow_short, volume_limit, spread
        )
        where = compute.resolve(jobs, scheduler, serial)
        compute.quiet_dask_logs()
        fixed = parse_params(params)
        values = parse_grid(grid)
        both = sorted(set(fixed) & set(values))
        if both:
            raise ConfigError(f"{', '.join(both)} is given with both -p and -g; give it once")
        combos = parameter_grid(values)
        if len(combos) > MAX_COMBINATIONS:
            raise ConfigError(f"{len(combos)} combinations; at most {MAX_COMBINATIONS} run in one sweep")
        cls = load_strategy_class(spec)
        build_strategy(cls, {**fixed, **combos[0]})  # a bad name fails now, not in every run
        ship_code_of(cls)  # a class loaded from a file travels to the workers with its code

        def factory(**combo: Any) -> Any:
            return build_strategy(cls, {**fixed, **combo})

        console.print(
            f"Sweeping {escape(format_call(cls, fixed))} over {len(combos)} combination(s) of "
            f"{', '.join(values)} on {', '.join(names)}, {where.describe()}"
        )
        settings: dict[str, Any] = {
            "symbols": names,
            "start_date": start,
            "end_date": end,
            "data_provider": provider_from_spec(data),
            "interval": interval,
            "engine_options": engine_options,
            "metric": metric,
            "per_task": per_task,
            **where.kwargs,
        }
        if walk_forward_folds is not None:
            from copilot_quant.backtest.walk_forward import walk_forward

            runs = walk_forward_folds * (len(combos) + 1)  # each fold's grid, then its chosen run again
            wf = run_with_progress(
                console,
                lambda progress: walk_forward(
                    factory, combos, folds=walk_forward_folds, rolling=rolling, progress=progress, **settings
                ),
                runs,
            )
            console.print(walk_forward_table(wf))
            table = wf.table.reset_index()
            searched: SweepResult | WalkForwardResult = wf
        else:
            sweep = run_with_progress(
                console,
                lambda progress: run_sweep(
                    factory, combos, holdout_from=holdout_from, progress=progress, **settings
                ),
                len(combos),
            )
            _print_sweep(console, sweep, top, hint=holdout_from is None and len(combos) > 1)
            table = sweep.table.reset_index()
            searched = sweep
        write_table(console, table, export)
        if report is not None:
            title = run_title(format_call(cls, fixed), names, start, end)
            written = _write_report(searched, report, title)
            console.print(f"Report written to [bold]{escape(str(written))}[/]")


def _print_sweep(console: Console, sweep: SweepResult, top: int, *, hint: bool) -> None:
    console.print(sweep_table(sweep, top))
    failed = int((sweep.table["error"] != "").sum())
    if failed:
        console.print(f"[yellow]{failed} combination(s) could not run; see the error column.[/]")
    if hint:
        console.print(
            "[dim]The best of many tries flatters the strategy: check it on unseen bars with "
            "--holdout-from DATE, or the whole procedure with --walk-forward N.[/]"
        )


def _span(first: Any, last: Any) -> str:
    """Two bar times as exchange-local days: ``2005-01-03 → 2006-08-08``."""
    from copilot_quant.data.dates import EXCHANGE_TZ

    return f"{first.tz_convert(EXCHANGE_TZ):%Y-%m-%d} → {last.tz_convert(EXCHANGE_TZ):%Y-%m-%d}"


def walk_forward_table(wf: WalkForwardResult) -> Table:
    """Per fold: the dates, the parameters chosen, their training score and test metrics; then the total."""
    metric = wf.metric
    table = Table(
        title=f"Walk-forward: {len(wf.table)} fold(s), parameters chosen by {metric}", header_style="bold"
    )
    for name in (
        "fold",
        "train (New York days)",
        "test ",
        *wf.parameters,
        f"train {metric}",
        "test sharpe",
        "test return",
        "test max dd",
        "test fills",
    ):
        table.add_column(
            name.replace("_", " "), justify="right", no_wrap=name.startswith(("train (", "test"))
        )
    for fold, row in wf.table.iterrows():
        table.add_row(
            str(fold),
            _span(row["train_start"], row["train_end"]),
            _span(row["test_start"], row["test_end"]),
            *(escape(str(row[p])) for p in wf.parameters),
            _cell(row[f"train_{metric}"], metric),
            _cell(row["test_sharpe_ratio"], "sharpe_ratio"),
            _cell(row["test_total_return"], "total_return"),
            _cell(row["test_max_drawdown"], "max_drawdown"),
            _cell(row["test_fills"], "fills"),
        )
    total = wf.metrics
    table.add_section()
    table.add_row(
        "all",
        "",
        _span(wf.equity.index[0], wf.equity.index[-1]),
        *([""] * len(wf.parameters)),
        "",
        _cell(total["sharpe_ratio"], "sharpe_ratio"),
        _cell(total["total_return"], "total_return"),
        _cell(total["max_drawdown"], "max_drawdown"),
        _cell(total["fills"], "fills"),
    )
    return table


def run_with_progress(console: Console, run: Any, total: int) -> Any:
    """``run(progress)`` under a rich progress bar of combinations done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("Backtesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("sweep", total=total)
        # called as each run's future completes (on a cluster: in the order they finish)
        return run(lambda done, total: progress.update(task, completed=done, total=total))


def register(app: typer.Typer) -> None:
    """Add the `sweep` command to ``app``."""
    app.command("sweep", context_settings={"allow_extra_args": True}, no_args_is_help=True)(sweep_command)
