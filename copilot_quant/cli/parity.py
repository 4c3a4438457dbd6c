"""`copilot-quant parity`: prove that a strategy trades the same live as in its backtest.

Runs :func:`copilot_quant.parity.run_parity` — a backtest, then the same strategy class live against the
simulated gateway replaying the same bars — and prints both results side by side and the table of
differences (none when parity holds). ``--param NAME=VALUE`` (``-p``) sets the strategy's constructor
arguments for both runs (:func:`copilot_quant.cli.strategy_spec.load_strategy`).

Strategy errors are reported as ``backtest`` reports them: one line per run (how many, on how many of the
bars it was given, the first), never a traceback per bar (each engine logs the first one only; ``-vv``
shows the rest at DEBUG); their counts are compared like orders and fills, so a strategy that raises in
one run only is a difference. Runs that agree while the strategy raised are "identical, but the strategy
raised on N of M bars", not a clean pass.

Several strategies on one account (``copilot-quant parity 'mod:A(name="a")' 'mod:B(name="b")' --symbols
...``, the spec syntax of :mod:`copilot_quant.cli.strategy_set`) run through
:func:`copilot_quant.parity.run_account_parity`: a table with each strategy's and the account's orders,
fills and final equity in both runs and its verdict, then the differences of each strategy that differs.
Parity then means the account and every strategy are identical.

Exit code 0 on parity (even when the strategy raised on some bars: the verdict says so), 1 when the runs
differ, when the live run fails, or when identical runs prove little (:meth:`ParityReport.weakness`):
nothing filled in either run, the strategy raised on more than half of its bars, or a run sent any order
for a symbol it has no data for or had more than half of its orders rejected; 2 for bad input: the codes
of :mod:`copilot_quant.cli.exit_codes`. After the table, each run's rejected and partly filled orders are
summarised (as ``backtest`` does).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from copilot_quant.backtest.order_outcomes import RunOrders
from copilot_quant.cli import options
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE
from copilot_quant.cli.reporting import friendly_errors, print_error
from copilot_quant.cli.run_summary import print_order_outcomes
from copilot_quant.cli.strategy_set import (
    NAMED_SPEC_HELP,
    StrategyEntry,
    load_strategies,
    print_header,
    split_strategy_tokens,
)
from copilot_quant.cli.strategy_spec import param_option
from copilot_quant.cli.words import bar_time, cli_words
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    from copilot_quant.parity import AccountParityReport, ParityReport, RunSummary

__all__ = ["PARITY_FAILED", "diff_table", "error_summary", "print_report", "register", "side_by_side"]

#: Exit code when the backtest and the live run differ (a runtime failure).
PARITY_FAILED = RUNTIME_FAILURE

_MAX_DIFF_ROWS = 40

#: ``copilot-quant parity --help`` (typer keeps a docstring's line breaks).
PARITY_HELP = (
    "Backtest a strategy (or several on one account), run it live against the simulated gateway on the same "
    "bars, and compare (each strategy and the account).\n\n"
    "Exits 1 when the runs differ, and when identical runs prove little: nothing filled, the strategy raised "
    "on more than half of its bars, or a run's orders were mostly rejected or for a symbol not in --symbols."
)


def _console() -> Console:
    return Console(highlight=False, width=120)


def side_by_side(report: ParityReport) -> Table:
    """Both runs' headline figures in two columns."""
    table = Table(
        title=f"{report.strategy} on {', '.join(report.symbols)}: backtest vs live", title_justify="left"
    )
    table.add_column("")
    table.add_column("Backtest", justify="right")
    table.add_column("Live (simulated gateway)", justify="right")
    b, live = report.backtest, report.live
    rows = [
        ("Bars", f"{report.bars}", f"{report.bars}"),
        ("Orders", f"{len(b.orders)}", f"{len(live.orders)}"),
        ("Fills", f"{len(b.fills)}", f"{len(live.fills)}"),
        ("Commissions", f"{b.commissions:,.2f}", f"{live.commissions:,.2f}"),
        ("Final cash", f"{b.final_cash:,.2f}", f"{live.final_cash:,.2f}"),
        ("Final equity", f"{b.final_equity:,.2f}", f"{live.final_equity:,.2f}"),
        ("Strategy errors", _error_cell(b), _error_cell(live)),
    ]
    for label, left, right in rows:
        style = "" if left == right else "red"
        table.add_row(label, left, right, style=style)
    return table


def _error_cell(run: RunSummary) -> str:
    count = len(run.strategy_errors)
    return f"{count} on {run.errored_bars} of {run.bars_given} bars" if count else "0"


def error_summary(run: RunSummary) -> str | None:
    """One line about the strategy's errors in ``run`` (as ``backtest`` prints it), or ``None`` if none."""
    if not run.strategy_errors:
        return None
    first = run.strategy_errors[0]
    where = first.hook if first.bar is None else f"{first.hook} at {bar_time(first.bar)}"
    return (
        f"{run.name}: {len(run.strategy_errors)} strategy error(s) on {run.errored_bars} of "
        f"{run.bars_given} bars; first ({where}): {first.error}"
    )


def diff_table(report: ParityReport) -> Table:
    """The differences, one row per field that differs (at most the first 40)."""
    table = Table(title="Differences", title_justify="left")
    for column in ("What", "#", "Field", "Backtest", "Live"):
        table.add_column(column)
    for row in report.diffs.head(_MAX_DIFF_ROWS).itertuples(index=False):
        table.add_row(
            str(row.kind),
            str(row.index),
            str(row.field),
            escape(_cell(row.backtest)),
            escape(_cell(row.live)),
        )
    return table


def _cell(value: object) -> str:
    # pandas stores a missing value (no error bar on one side, an order only one run has) as None or NaN
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return bar_time(value) if isinstance(value, datetime) else str(value)


def print_report(report: ParityReport, console: Console) -> None:
    """Both results side by side, the strategy's errors in one line per run, then the verdict (and the
    diff table when the runs differ). Identical runs of a strategy that raised are not called clean."""
    console.print(side_by_side(report))
    for run in (report.backtest, report.live):
        line = error_summary(run)
        if line is not None:
            console.print(f"[yellow]{escape(line)}[/]", soft_wrap=True)
        print_order_outcomes(console, RunOrders.of(run.outcomes, report.symbols), prefix=f"{run.name}: ")
    if report.ok:
        b = report.backtest
        matched = f"{len(b.orders)} orders, {len(b.fills)} fills and the final equity match"
        weakness = report.weakness()
        if weakness is not None:
            console.print(
                f"[bold yellow]PARITY: identical, but not a pass[/] — {matched}, but {escape(weakness)}.",
                soft_wrap=True,
            )
            return
        if not report.strategy_raised:
            console.print(f"[bold green]PARITY: identical[/] — {matched} (no differences).")
            return
        run = report.backtest
        console.print(
            f"[bold yellow]PARITY: identical, but the strategy raised on {run.errored_bars} of "
            f"{run.bars_given} bars[/] in both runs (errors above) — {matched}.",
            soft_wrap=True,
        )
        return
    console.print(diff_table(report))
    more = len(report.diffs) - _MAX_DIFF_ROWS
    if more > 0:
        console.print(f"... and {more} more differences")
    console.print(f"[bold red]PARITY FAILED[/]: {len(report.diffs)} differences between backtest and live.")


def parity_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help=NAMED_SPEC_HELP),
    symbols: list[str] = options.symbols_option(),
    start: str = options.start_option(required=True),
    end: str = options.end_option(required=True),
    data: str = options.data_option(),
    capital: float = options.capital_option(" of both runs"),
    commission: str = options.commission_option(),
    slippage: float = options.slippage_option(),
    spread: str = options.spread_option(),
    volume_limit: float | None = options.volume_limit_option(),
    roll_days: int = options.roll_days_option(),
    auto_roll: bool = options.auto_roll_option(),
    params: list[str] = param_option(),
) -> None:
    """Backtest a strategy, run it live against the simulated gateway on the same bars, and compare (the
    command's help is :data:`PARITY_HELP`)."""
    from copilot_quant.backtest.participation import check_volume_limit

    console = _console()
    with friendly_errors():
        specs, names = split_strategy_tokens(strategy, symbols, list(ctx.args))
        options.check_dates(start, end)
        costs = options.parse_commission(commission)
        if capital <= 0:
            raise ConfigError(f"--capital must be positive, got {capital}.")
        check_volume_limit(volume_limit, "--volume-limit")
        quoted = options.parse_spread(spread)
        # built once here so bad parameters are reported now; both runs build their own instances
        entries = load_strategies(specs, params, account=capital)
        print_header(entries, console)
        settings = {
            "data": data,
            "capital": capital,
            "commission": costs,
            "slippage": slippage,
            "volume_limit": volume_limit,
            "spread": quoted,
            "roll_days": roll_days,
            "auto_roll": auto_roll,
        }
        with console.status("Backtest, then the live run against the simulated gateway ..."):
            report: ParityReport | AccountParityReport = _run(entries, names, start, end, settings)
    from copilot_quant.parity_report import AccountParityReport

    if isinstance(report, AccountParityReport):
        print_account_report(report, console)
    else:
        print_report(report, console)
    if not report.ok:
        raise typer.Exit(code=PARITY_FAILED)
    weakness = report.weakness()
    if weakness is not None:
        print_error(f"not a pass: {cli_words(weakness)}.")
        raise typer.Exit(code=RUNTIME_FAILURE)


def _run(
    entries: list[StrategyEntry], names: list[str], start: str, end: str, settings: dict[str, Any]
) -> ParityReport | AccountParityReport:
    """One strategy (no name or capital given): :func:`run_parity`, as before; several: the account's."""
    from copilot_quant.parity import ParityStrategy, run_account_parity, run_parity

    only = entries[0]
    if len(entries) == 1 and only.capital is None and only.name == only.loaded.cls.__name__:
        return run_parity(only.loaded.cls, names, start, end, strategy_kwargs=only.loaded.params, **settings)
    specs = [ParityStrategy(e.loaded.cls, e.loaded.params, name=e.name, capital=e.capital) for e in entries]
    return run_account_parity(specs, names, start, end, **settings)


def account_table(report: AccountParityReport) -> Table:
    """Each strategy and the account: orders, fills and final equity in both runs, and the verdict."""
    account = report.account
    table = Table(
        title=f"{len(report.strategies)} strategies on one account, {', '.join(account.symbols)}: backtest vs live",
        title_justify="left",
    )
    for column in ("", "Orders", "Fills", "Final equity (backtest)", "Final equity (live)", "Verdict"):
        table.add_column(column, justify="left" if column in ("", "Verdict") else "right")
    rows = [*report.strategies.items(), ("account", account)]
    for i, (name, part) in enumerate(rows):
        b, lv = part.backtest, part.live
        verdict = "[green]identical[/]" if part.ok else f"[red]{len(part.diffs)} differences[/]"
        table.add_row(
            f"[bold]{escape(name)}[/]" if name == "account" else escape(name),
            _pair(len(b.orders), len(lv.orders)),
            _pair(len(b.fills), len(lv.fills)),
            f"{b.final_equity:,.2f}",
            f"{lv.final_equity:,.2f}",
            verdict,
            end_section=i == len(rows) - 2,
        )
    return table


def _pair(backtest: int, live: int) -> str:
    return f"{backtest}" if backtest == live else f"[red]{backtest} / {live}[/]"


def print_account_report(report: AccountParityReport, console: Console) -> None:
    """The account table, each strategy's errors and order outcomes, the differences of each strategy
    that differs, then the verdict."""
    console.print(account_table(report))
    for name, part in report.strategies.items():
        for run in (part.backtest, part.live):
            line = error_summary(run)
            if line is not None:
                console.print(f"[yellow]{escape(name)}, {escape(line)}[/]", soft_wrap=True)
            print_order_outcomes(
                console, RunOrders.of(run.outcomes, part.symbols), prefix=f"{name}, {run.name}: "
            )
    if report.ok:
        account = report.account
        matched = (
            f"each strategy's orders, fills and equity match ({len(account.backtest.orders)} orders, "
            f"{len(account.backtest.fills)} fills on the account)"
        )
        weakness = report.weakness()
        if weakness is not None:
            console.print(
                f"[bold yellow]PARITY: identical, but not a pass[/] — {matched}, but {escape(weakness)}."
            )
        else:
            console.print(f"[bold green]PARITY: identical[/] — {matched}.")
        return
    for name, part in [*report.strategies.items(), ("account", report.account)]:
        if not part.ok:
            console.print(f"[bold]{escape(name)}[/]:")
            console.print(diff_table(part))
    differ = [name for name, part in report.strategies.items() if not part.ok]
    console.print(
        f"[bold red]PARITY FAILED[/]: {', '.join(differ) or 'the account'} differ(s) between backtest and live."
    )


def register(app: typer.Typer) -> None:
    """Add the `parity` command to ``app``."""
    app.command(
        "parity", context_settings={"allow_extra_args": True}, no_args_is_help=True, help=PARITY_HELP
    )(parity_command)
