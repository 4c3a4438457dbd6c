"""`copilot-quant backtest` and `copilot-quant demo`.

``backtest`` loads a strategy class from a file (``path/to/strategy.py:ClassName``) or a module
(``package.module:ClassName``), builds it from the ``--param NAME=VALUE`` options
(:func:`copilot_quant.cli.strategy_spec.load_strategy`), runs it on a data source
(:func:`copilot_quant.data.providers.provider_from_spec`) with a progress bar, prints a metrics table and
optionally writes the HTML report. ``demo`` runs the bundled
:class:`~copilot_quant.examples.sma_cross.SimpleMovingAverage` on the offline sample data and writes
``out/report.html``, then runs the same class live against the in-process simulated gateway replaying the
same bars and prints both results side by side with the parity verdict. Every user error (missing file or
class, bad ``--param``, unknown symbol, bad dates, bad options) is one red line on stderr and exit code 2.
After the metrics the command says what went wrong: strategy errors (the first traceback is logged once,
the rest are counted), rejected orders grouped by reason, orders that filled only partly before the rest
expired or was cancelled. A run that says too little exits 1 after its summary: the strategy raised on
more than half of its bars, sent any order for a symbol the run has no data for (``--symbols MSFT`` with a
strategy that trades AAPL), or had more than half of its orders rejected
(:meth:`~copilot_quant.backtest.order_outcomes.RunOrders.failure`); so does a demo whose live half differs
from its backtest. The codes are those of :mod:`copilot_quant.cli.exit_codes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from copilot_quant.cli import options
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE
from copilot_quant.cli.reporting import friendly_errors, metrics_table, print_error, strategies_table
from copilot_quant.cli.strategy_set import (
    NAMED_SPEC_HELP,
    load_strategies,
    print_header,
    split_strategy_tokens,
)
from copilot_quant.cli.strategy_spec import load_strategy_class, param_option
from copilot_quant.cli.words import bar_time, cli_words
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    from copilot_quant.backtest.order_outcomes import RunOrders
    from copilot_quant.backtest.results import BacktestResult
    from copilot_quant.backtest.strategy import Strategy
    from copilot_quant.cli.strategy_set import StrategyEntry
    from copilot_quant.model.costs import CommissionModel
    from copilot_quant.model.spread import SpreadModel

__all__ = [
    "DEMO_LIVE_RANGE",
    "errored_bars",
    "every_bar_errored",
    "load_strategy_class",
    "metrics_table",
    "most_bars_errored",
    "register",
    "run_backtest",
    "run_demo",
    "run_failure",
    "run_orders",
]

# pandas, the engine and plotly are imported inside the commands so `copilot-quant --help` stays fast.


def _console() -> Console:
    # Built per call so output goes to the stream typer's test runner (or the user's terminal) has now.
    return Console(highlight=False, width=120)


# ------------------------------------------------------------------------------------------- output
#: The strategy hooks the engine calls for a bar; errors in on_stop/finalize belong to no bar.
_BAR_HOOKS = frozenset({"on_data", "on_bar", "on_fill"})


def errored_bars(result: BacktestResult) -> int:
    """How many bars of ``result`` had at least one strategy error (in ``on_data``, ``on_bar`` or ``on_fill``)."""
    return len(
        {
            error["timestamp"]
            for error in result.errors
            if error.get("timestamp") is not None and error.get("hook", "on_data") in _BAR_HOOKS
        }
    )


def every_bar_errored(result: BacktestResult) -> bool:
    """True when the strategy raised on every bar it was given (and it was given at least one)."""
    bars = len(result.equity_curve)
    return bars > 0 and errored_bars(result) >= bars


def most_bars_errored(result: BacktestResult) -> bool:
    """True when the strategy raised on more than half of the bars it was given: the run says little."""
    bars = len(result.equity_curve)
    return bars > 0 and errored_bars(result) > bars / 2


def run_orders(result: BacktestResult, symbols: list[str]) -> RunOrders:
    """The run's orders against the symbols it has data for."""
    from copilot_quant.backtest.order_outcomes import RunOrders

    # a continuous future's orders trade its contracts, whose bars the run loaded too
    priced = [str(s) for s in result.prices.columns]
    return RunOrders.of(result.orders, list(dict.fromkeys([*symbols, *priced])))


def _report_problems(
    console: Console, result: BacktestResult, symbols: list[str], interval: str = "1d"
) -> str | None:
    """Say what went wrong during the run (strategy errors, rejected and partly filled orders are never
    silent); returns why the run failed, or None (see :meth:`RunOrders.failure` and the module docstring)."""
    from copilot_quant.cli.run_summary import print_order_outcomes

    bars = len(result.equity_curve)
    if result.errors:
        first = result.errors[0]
        when = f" at {bar_time(first['timestamp'], interval)}" if first.get("timestamp") is not None else ""
        console.print(
            f"[yellow]{len(result.errors)} strategy error(s) on {errored_bars(result)} of {bars} bars "
            f"(the first one's traceback is above; -vv logs the others); first{when}: "
            f"{escape(str(first.get('type', '')))}: {escape(cli_words(str(first.get('error', ''))))}[/]",
            soft_wrap=True,
        )
    orders = run_orders(result, symbols)
    print_order_outcomes(console, orders)
    if not orders.outcomes and not result.errors:
        console.print("[yellow]The strategy placed no orders.[/]")
    elif orders.outcomes and not result.fills and not orders.failure():
        console.print("[yellow]None of the strategy's orders filled.[/]")
    return run_failure(result, symbols)


def run_failure(result: BacktestResult, symbols: list[str]) -> str | None:
    """Why the run says too little to pass (exit 1), or None: the strategy raised on most bars, or its orders
    fail :meth:`~copilot_quant.backtest.order_outcomes.RunOrders.failure`."""
    bars = len(result.equity_curve)
    # with several strategies, each is judged on its own: one that raised on most bars is named
    for part in result.strategies.values() if result.has_sleeves else [result]:
        if most_bars_errored(part):
            return (
                f"{part.strategy_name} raised an exception on {errored_bars(part)} of {bars} bars, so these "
                "results say little about it; fix the error above and run again."
            )
    failure = run_orders(result, symbols).failure()
    return f"{failure}." if failure else None


def _progress_run(
    engine: Any,
    console: Console,
    start: str | None,
    end: str | None,
    symbols: list[str],
    *,
    benchmark: str | None = options.BUY_AND_HOLD,
) -> Any:
    """``engine.run`` under a rich progress bar (a spinner while data loads, then bars done / total)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # no live display (or stray blank lines) when piped
    ) as progress:
        task = progress.add_task(f"Loading {', '.join(symbols)}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, description="Backtesting", completed=done, total=total)

        return engine.run(start, end, symbols, progress=advance, benchmark=benchmark)


def run_backtest(
    strategy: Strategy | Sequence[StrategyEntry],
    symbols: list[str],
    *,
    start: str | None,
    end: str | None,
    data: str = "sample",
    capital: float = 100_000.0,
    commission: float | str | CommissionModel = 0.001,
    slippage: float = 0.0005,
    fill_at: str = "next_open",
    interval: str = "1d",
    spread: SpreadModel | None = None,
    allow_short: bool = True,
    volume_limit: float | None = None,
    console: Console | None = None,
    benchmark: str | None = options.BUY_AND_HOLD,
    roll_days: int = 5,
    auto_roll: bool = False,
) -> BacktestResult:
    """Backtest ``strategy`` as the ``backtest`` command does (progress bar on ``console``) and return the result.

    ``strategy`` is one strategy, or the command's several (:func:`~copilot_quant.cli.strategy_set.load_strategies`),
    which then share the account, each with its capital share.
    """
    from copilot_quant.backtest.engine import BacktestEngine
    from copilot_quant.data.providers import provider_from_spec
    from copilot_quant.model.costs import slippage_model
    from copilot_quant.model.spread import with_spread

    if capital <= 0:
        raise ConfigError(f"--capital must be positive, got {capital}.")
    fill_mode = options.parse_fill_at(fill_at)
    engine = BacktestEngine(
        initial_capital=capital,
        data_provider=provider_from_spec(data),
        commission=commission,
        slippage=with_spread(slippage_model(slippage), spread),
        fill_at=fill_mode,
        allow_short=allow_short,
        interval=interval,
        volume_limit=volume_limit,
        max_logged_errors=1,  # the first traceback once; the summary counts the rest
        roll_days=roll_days,
        auto_roll=auto_roll,
    )
    if isinstance(strategy, Sequence):
        for entry in strategy:
            engine.add_strategy(entry.instance, capital=entry.capital)
    else:
        engine.add_strategy(strategy)
    return _progress_run(engine, console or _console(), start, end, symbols, benchmark=benchmark)


# ------------------------------------------------------------------------------------------- commands
def backtest_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help=NAMED_SPEC_HELP),
    symbols: list[str] = options.symbols_option(),
    start: str | None = options.start_option(),
    end: str | None = options.end_option(),
    data: str = options.data_option(),
    capital: float = options.capital_option(),
    commission: str = options.commission_option(),
    slippage: float = options.slippage_option(),
    fill_at: str = options.fill_at_option(),
    interval: str = options.interval_option(),
    spread: str = options.spread_option(),
    allow_short: bool = options.allow_short_option(),
    volume_limit: float | None = options.volume_limit_option(),
    roll_days: int = options.roll_days_option(),
    auto_roll: bool = options.auto_roll_option(),
    report: Path | None = typer.Option(None, "--report", "-r", help="Write the HTML report to this file."),
    params: list[str] = param_option(),
    benchmark: str | None = options.benchmark_option(),
) -> None:
    """Backtest a strategy class on historical bars, print its metrics and optionally write an HTML report
    (the command's help is :data:`BACKTEST_HELP`)."""
    from copilot_quant.backtest.participation import check_volume_limit

    console = _console()
    with friendly_errors():
        specs, names = split_strategy_tokens(strategy, symbols, list(ctx.args))
        options.check_dates(start, end)
        costs = options.parse_commission(commission)
        options.parse_fill_at(fill_at)
        quoted = options.parse_spread(spread)
        check_volume_limit(volume_limit, "--volume-limit")
        options.check_report_name(report)
        compared = options.parse_benchmark(benchmark)
        entries = load_strategies(specs, params, account=capital if capital > 0 else None)
        print_header(entries, console)
        result = run_backtest(
            entries if len(entries) > 1 or entries[0].capital is not None else entries[0].instance,
            names,
            start=start,
            end=end,
            data=data,
            capital=capital,
            commission=costs,
            slippage=slippage,
            fill_at=fill_at,
            interval=interval,
            spread=quoted,
            allow_short=allow_short,
            volume_limit=volume_limit,
            console=console,
            benchmark=compared,
            roll_days=roll_days,
            auto_roll=auto_roll,
        )
        if len(result.equity_curve) == 0:
            raise ConfigError(
                f"No bars for {', '.join(names)} between {start or 'the start'} and {end or 'the end'} "
                f"in {data!r}; widen the dates or check the data source."
            )
    console.print(
        metrics_table(result, f"{result.strategy_name} on {', '.join(names)}", source=f"{data}, {interval}")
    )
    if result.has_sleeves:
        console.print(strategies_table(result))
    _print_account(console, result)
    failure = _report_problems(console, result, names, interval)
    if report is not None:
        written = result.to_html(report)
        console.print(f"Report written to [bold]{escape(str(written))}[/]")
    if failure is not None:
        _fail(failure)


def _print_account(console: Console, result: BacktestResult) -> None:
    """Futures/forex runs: the cash left in each currency, and the margin calls."""
    if result.cash_balances:
        cash = ", ".join(f"{c} {v:,.2f}" for c, v in result.cash_balances.items())
        console.print(f"Cash by currency: {escape(cash)}")
    calls = result.margin_calls
    if calls:
        worst = max(calls, key=lambda c: c.worst_shortfall)
        console.print(
            f"[yellow]{len(calls)} margin call(s)[/]: equity below the maintenance margin for "
            f"{sum(c.bars for c in calls)} bar(s), first at {calls[0].start:%Y-%m-%d %H:%M} UTC, "
            f"worst shortfall {worst.worst_shortfall:,.2f} USD"
        )


def _fail(why: str) -> None:
    """One red line and :data:`~copilot_quant.cli.exit_codes.RUNTIME_FAILURE`: the run says little."""
    print_error(why)
    raise typer.Exit(code=RUNTIME_FAILURE)


#: ``copilot-quant backtest --help``: what it does, and when it exits 1 (typer keeps a docstring's line breaks).
BACKTEST_HELP = (
    "Backtest a strategy class (or several on one account) on historical bars, print its metrics and "
    "optionally write an HTML report.\n\n"
    "Exits 1 after the summary when the run says too little: the strategy raised on more than half of its "
    "bars, sent any order for a symbol not in --symbols, or had more than half of its orders rejected."
)

#: The window of the demo's live half: a year of bars keeps the whole demo well under a minute.
DEMO_LIVE_RANGE = ("2012-01-01", "2012-12-31")


def run_demo(
    out: Path = Path("out/report.html"), console: Console | None = None, *, live: bool = True
) -> BacktestResult:
    """The demo: the guide's SMA crossover on offline sample data (AAPL 2005–2012), metrics and report,
    then (``live=True``) the same strategy live against the simulated gateway replaying the same bars.

    The live half runs through :func:`copilot_quant.parity.run_parity` on :data:`DEMO_LIVE_RANGE`: an
    in-process gateway on a free loopback port, the real ``LiveStrategyEngine`` over a socket, then both
    results side by side with the parity verdict. Returns the full-period backtest result.
    """
    from copilot_quant.examples.sma_cross import SimpleMovingAverage

    console = console or _console()
    console.print(
        "[bold]copilot-quant demo[/]: the guide's SimpleMovingAverage, 10/30-day crossover, 100 shares"
    )
    console.print(
        "AAPL 2005-2012 from the bundled sample data; next-open fills, 0.1 % commission; no network."
    )
    result = run_backtest(
        SimpleMovingAverage(symbol="AAPL", quantity=100),
        ["AAPL"],
        start="2005-01-01",
        end="2012-12-31",
        data="sample",
        capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
        console=console,
    )
    console.print(metrics_table(result, "SimpleMovingAverage on AAPL, 2005-2012", source="sample, 1d"))
    _report_problems(console, result, ["AAPL"])
    written = result.to_html(out)
    console.print(f"Report written to [bold]{escape(str(written))}[/]")
    if live:
        _demo_live_half(console)
    return result


def _demo_live_half(console: Console) -> bool:
    """Run the demo's live half and print its parity report; True when parity holds."""
    from copilot_quant.cli.parity import print_report
    from copilot_quant.examples.sma_cross import SimpleMovingAverage
    from copilot_quant.parity import run_parity

    first, last = DEMO_LIVE_RANGE
    console.print()
    console.print(
        f"[bold]Live half[/]: the same strategy class, run by LiveStrategyEngine against the simulated IB "
        f"Gateway (in-process, 127.0.0.1) replaying AAPL {first} .. {last} bar by bar, compared with a "
        "backtest of the same bars."
    )
    with console.status("Running the strategy live against the simulated gateway ..."):
        report = run_parity(
            SimpleMovingAverage,
            ["AAPL"],
            first,
            last,
            strategy_kwargs={"symbol": "AAPL", "quantity": 100},
            data="sample",
            capital=100_000.0,
            commission=0.001,
            slippage=0.0005,
        )
    print_report(report, console)
    return report.ok and report.weakness() is None


def demo_command(
    out: Path = typer.Option(Path("out/report.html"), "--out", "-o", help="Where to write the HTML report."),
    live: bool = typer.Option(
        True, "--live/--no-live", help="Also run the strategy live against the simulated gateway (parity)."
    ),
) -> None:
    """Backtest the bundled example on offline sample data (HTML report), then run it live against the
    simulated gateway on the same bars and print both results side by side with the parity verdict."""
    console = _console()
    with friendly_errors():
        result = run_demo(out, console, live=False)
        parity = _demo_live_half(console) if live else True
    failure = run_failure(result, ["AAPL"])  # run_demo printed the details
    if failure is not None:
        _fail(failure)
    if not parity:
        raise typer.Exit(code=RUNTIME_FAILURE)


def register(app: typer.Typer) -> None:
    """Add the `backtest` and `demo` commands to ``app``."""
    app.command(
        "backtest",
        context_settings={"allow_extra_args": True},
        no_args_is_help=True,
        help=BACKTEST_HELP,
    )(backtest_command)
    app.command("demo")(demo_command)
