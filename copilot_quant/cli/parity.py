"""`copilot-quant parity`: prove that a strategy trades the same live as in its backtest.

Runs :func:`copilot_quant.parity.run_parity` — a backtest, then the same strategy class live against the
simulated gateway replaying the same bars — and prints both results side by side and the table of
differences (none when parity holds). ``--param NAME=VALUE`` (``-p``) sets the strategy's constructor
arguments for both runs (:func:`copilot_quant.cli.strategy_spec.load_strategy`). Exit code 0 on parity,
1 when the runs differ (or the live run fails), 2 for bad input: the codes of
:mod:`copilot_quant.cli.exit_codes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from copilot_quant.cli.backtest import _check_dates, _split_tokens
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE
from copilot_quant.cli.reporting import friendly_errors
from copilot_quant.cli.strategy_spec import load_strategy, param_option
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    from copilot_quant.parity import ParityReport

__all__ = ["PARITY_FAILED", "diff_table", "print_report", "register", "side_by_side"]

#: Exit code when the backtest and the live run differ (a runtime failure).
PARITY_FAILED = RUNTIME_FAILURE

_MAX_DIFF_ROWS = 40


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
    ]
    for label, left, right in rows:
        style = "" if left == right else "red"
        table.add_row(label, left, right, style=style)
    return table


def diff_table(report: ParityReport) -> Table:
    """The differences, one row per field that differs (at most the first 40)."""
    table = Table(title="Differences", title_justify="left")
    for column in ("What", "#", "Field", "Backtest", "Live"):
        table.add_column(column)
    for row in report.diffs.head(_MAX_DIFF_ROWS).itertuples(index=False):
        table.add_row(
            str(row.kind), str(row.index), str(row.field), escape(str(row.backtest)), escape(str(row.live))
        )
    return table


def print_report(report: ParityReport, console: Console) -> None:
    """Both results side by side, then the verdict (and the diff table when the runs differ)."""
    console.print(side_by_side(report))
    if report.ok:
        console.print(
            f"[bold green]PARITY: identical[/] — {len(report.backtest.orders)} orders, "
            f"{len(report.backtest.fills)} fills and the final equity match (no differences)."
        )
        return
    console.print(diff_table(report))
    more = len(report.diffs) - _MAX_DIFF_ROWS
    if more > 0:
        console.print(f"... and {more} more differences")
    console.print(f"[bold red]PARITY FAILED[/]: {len(report.diffs)} differences between backtest and live.")


def parity_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    ctx: typer.Context,
    strategy: str = typer.Argument(
        ..., help="Strategy to check: path/to/strategy.py:ClassName or package.module:ClassName."
    ),
    symbols: list[str] = typer.Option([], "--symbols", "-s", help="Symbols: --symbols AAPL MSFT."),
    start: str = typer.Option(..., "--start", help="First day (New York time), e.g. 2010-01-01."),
    end: str = typer.Option(..., "--end", help="Last day, included, e.g. 2010-06-30."),
    data: str = typer.Option(
        "sample", "--data", "-d", help="Data source: sample, synthetic[:SEED], csv:PATH, store[:DIR]."
    ),
    capital: float = typer.Option(100_000.0, "--capital", help="Initial cash of both runs."),
    commission: float = typer.Option(0.001, "--commission", help="Commission rate per fill (0.001 = 0.1 %)."),
    slippage: float = typer.Option(0.0005, "--slippage", help="Market/stop slippage rate (0.0005 = 0.05 %)."),
    volume_limit: float | None = typer.Option(
        None,
        "--volume-limit",
        help="Fill at most this fraction of each bar's volume per symbol, e.g. 0.1 (0 < x <= 1; default: no limit). Applied by both runs.",
    ),
    params: list[str] = param_option(),
) -> None:
    """Backtest a strategy, run it live against the simulated gateway on the same bars, and compare."""
    from copilot_quant.backtest.participation import check_volume_limit
    from copilot_quant.parity import run_parity

    console = _console()
    with friendly_errors():
        spec, names = _split_tokens(strategy, symbols, list(ctx.args))
        _check_dates(start, end)
        if capital <= 0:
            raise ConfigError(f"--capital must be positive, got {capital}.")
        check_volume_limit(volume_limit, "--volume-limit")
        # built once here so bad parameters are reported now; both runs build their own instance
        loaded = load_strategy(spec, params)
        loaded.print_header(console)
        with console.status("Backtest, then the live run against the simulated gateway ..."):
            report = run_parity(
                loaded.cls,
                names,
                start,
                end,
                strategy_kwargs=loaded.params,
                data=data,
                capital=capital,
                commission=commission,
                slippage=slippage,
                volume_limit=volume_limit,
            )
    print_report(report, console)
    if not report.ok:
        raise typer.Exit(code=PARITY_FAILED)


def register(app: typer.Typer) -> None:
    """Add the `parity` command to ``app``."""
    app.command("parity", context_settings={"allow_extra_args": True}, no_args_is_help=True)(parity_command)
