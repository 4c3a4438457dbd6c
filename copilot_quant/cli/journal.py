"""`copilot-quant journal`: show the trade journal's orders, fills, errors and events, and export them.

The journal is opened **read-only**, so inspecting the journal of a running engine is safe. Pick it with
``--path FILE`` or ``--account ID`` (the file ``<account>.sqlite`` in ``$COPILOT_QUANT_JOURNAL_DIR``,
default ``~/.copilot_quant/journal``); with neither, the only journal in that directory is used. The
options go before or after the sub-command::

    copilot-quant journal --account DU1234567 orders --status active
    copilot-quant journal fills --since 2024-06-03 --export fills.parquet
    copilot-quant journal orders --strategy fast        # one strategy's orders (fills likewise)
    copilot-quant journal strategies                    # per strategy: orders, fills, position, P&L

With several strategies on one account each order carries its strategy's name; a fill belongs to its
order's strategy, and a fill of no journaled order (a trade made in TWS) is shown as ``(external)``,
never as a strategy's (:mod:`copilot_quant.cli.journal_strategies`). An adjustment that adopted IB's
position (``copilot-quant live --adopt-broker-positions``, :mod:`copilot_quant.journal.adjustments`) is an
order tagged ``adjustment`` whose reason says what was adopted, and a fill marked ``(adjustment)``: a record
of the books brought to IB's position, not an execution at IB.

Times are shown in the exchange zone (America/New_York); ``--since`` reads naive times there too. A mistake
(no journal there, both ``--path`` and ``--account``, a bad ``--since``) is one red line and exit code 2, as for
every command (:mod:`copilot_quant.cli.exit_codes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from copilot_quant.cli.journal_strategies import (
    EXTERNAL,
    check_strategy,
    owner_of_fill,
    owners,
    strategy_summaries,
)
from copilot_quant.cli.reporting import friendly_errors
from copilot_quant.errors import ConfigError
from copilot_quant.journal import TradeJournal, default_journal_dir, default_journal_path
from copilot_quant.journal.adjustments import is_adjustment

app = typer.Typer(
    name="journal",
    help="Show the trade journal (orders, fills, errors, events) and export it to CSV or Parquet.",
    no_args_is_help=True,
)

_TZ = ZoneInfo("America/New_York")
_PATH_HELP = "Journal file (default: the --account's file in $COPILOT_QUANT_JOURNAL_DIR)."
_ACCOUNT_HELP = "IB account whose journal to open, e.g. DU1234567."
_SINCE_HELP = "Only rows at or after this time, e.g. 2024-06-03 or '2024-06-03 09:30' (New York time)."
_EXPORT_HELP = "Also write the rows shown to this file (*.csv or *.parquet)."
_STRATEGY_HELP = "Only this strategy's rows (its name, as the engine tagged its orders; '(external)' for fills of no order)."


def _console() -> Console:
    # Wide and fixed, so that full order refs fit and output is the same in a terminal and in tests.
    return Console(highlight=False, soft_wrap=False, width=200)


@app.callback()
def _group(
    ctx: typer.Context,
    path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
    account: str | None = typer.Option(None, "--account", help=_ACCOUNT_HELP),
) -> None:
    ctx.obj = {"path": path, "account": account}


def _journal_path(ctx: typer.Context, path: Path | None, account: str | None) -> Path:
    group = ctx.obj if isinstance(ctx.obj, dict) else {}
    path = path or group.get("path")
    account = account or group.get("account")
    if path is not None and account is not None:
        raise ConfigError("pass either --path or --account, not both")
    if path is not None:
        return Path(path)
    if account is not None:
        return default_journal_path(account)
    directory = default_journal_dir()
    found = sorted(directory.glob("*.sqlite")) if directory.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(
            f"no journal in {directory}; pass --path FILE or --account ID "
            "(or set $COPILOT_QUANT_JOURNAL_DIR to where the engine writes its journals)"
        )
    names = ", ".join(p.stem for p in found)
    raise ConfigError(f"several journals in {directory} ({names}); choose one with --account")


def _open(ctx: typer.Context, path: Path | None, account: str | None, export: Path | None) -> TradeJournal:
    """The journal, read-only, once ``--export`` (if given) names a format we can write."""
    if export is not None:
        from copilot_quant.journal.export import FORMATS

        if export.suffix.lower() not in FORMATS:
            raise ConfigError(
                f"--export {export}: cannot tell the format from the file name; "
                "name the file *.csv or *.parquet"
            )
    return TradeJournal(_journal_path(ctx, path, account), read_only=True)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    from copilot_quant.data.dates import to_utc

    return to_utc(value).to_pydatetime()


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _export(rows: Sequence[Any], target: Path | None, console: Console) -> None:
    if target is None:
        return
    import pandas as pd

    from copilot_quant.journal.export import write_frame

    records = [{k: _plain(v) for k, v in dataclasses.asdict(r).items()} for r in rows]
    frame = pd.DataFrame.from_records(records)
    write_frame(frame, target)
    console.print(f"Exported {len(rows)} row(s) to {target}")


def _show(table: Table, rows: Sequence[Any], what: str, console: Console) -> None:
    if rows:
        console.print(table)
    else:
        console.print(f"No {what} to show.")


@app.command("orders")
def orders_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, "--status", help="active, working, done, or a state (intent, submitted, filled, cancelled …)."
    ),
    symbol: str | None = typer.Option(None, "--symbol", help="Only this symbol."),
    strategy: str | None = typer.Option(None, "--strategy", help=_STRATEGY_HELP),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    export: Path | None = typer.Option(None, "--export", help=_EXPORT_HELP),
    path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
    account: str | None = typer.Option(None, "--account", help=_ACCOUNT_HELP),
) -> None:
    """Orders: intent, strategy, broker id, state, fills and the reject/cancel reason."""
    console = _console()
    with friendly_errors(), _open(ctx, path, account, export) as journal:
        rows = journal.orders(status, symbol=symbol, since=_since(since))
        if strategy is not None:
            check_strategy(strategy, owners(journal.orders()).values())
            by_ref = owners(rows)
            rows = [o for o in rows if by_ref[o.order_ref] == strategy]
        table = Table(title=f"{len(rows)} order(s) in {journal.path} (times in New York)")
        for column in ("Created", "Order ref", "Strategy", "Side", "Qty", "Symbol", "Type", "Price", "State"):
            table.add_column(column, justify="right" if column in ("Qty", "Price") else "left", no_wrap=True)
        for column in ("Filled", "Avg price", "Broker id"):
            table.add_column(column, justify="right", no_wrap=True)
        table.add_column("Reason", overflow="fold")
        for o in rows:
            price = " / ".join(_num(p) for p in (o.limit_price, o.stop_price) if p is not None) or "-"
            table.add_row(
                _when(o.created_at),
                o.order_ref,
                o.strategy or "-",
                o.side.value,
                _num(o.quantity),
                o.symbol,
                o.order_type.value,
                price,
                o.state.value,
                _num(o.filled),
                _num(o.avg_price) if o.filled else "-",
                "-" if o.broker_order_id is None else str(o.broker_order_id),
                o.reason or "",
            )
        _show(table, rows, "orders", console)
        _export(rows, export, console)


@app.command("fills")
def fills_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    ctx: typer.Context,
    symbol: str | None = typer.Option(None, "--symbol", help="Only this symbol."),
    strategy: str | None = typer.Option(None, "--strategy", help=_STRATEGY_HELP),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    export: Path | None = typer.Option(None, "--export", help=_EXPORT_HELP),
    path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
    account: str | None = typer.Option(None, "--account", help=_ACCOUNT_HELP),
) -> None:
    """Executions with their commissions and strategy, one row per broker execution id."""
    console = _console()
    with friendly_errors(), _open(ctx, path, account, export) as journal:
        rows = journal.fills(_since(since), symbol=symbol)
        by_ref = owners(journal.orders())
        if strategy is not None:
            check_strategy(strategy, [*by_ref.values(), EXTERNAL])
            rows = [f for f in rows if owner_of_fill(f, by_ref) == strategy]
        table = Table(title=f"{len(rows)} fill(s) in {journal.path} (times in New York)")
        for column in (
            "Time",
            "Exec id",
            "Order ref",
            "Strategy",
            "Side",
            "Qty",
            "Symbol",
            "Price",
            "Commission",
            "Realized",
        ):
            table.add_column(
                column, justify="right" if column in ("Qty", "Price", "Commission", "Realized") else "left"
            )
        for f in rows:
            table.add_row(
                _when(f.time),
                f.exec_id,
                f.order_ref or "(not ours)",
                _owner_cell(owner_of_fill(f, by_ref)) + (" (adjustment)" if is_adjustment(f.exec_id) else ""),
                f.side.value,
                _num(f.quantity),
                f.symbol,
                _num(f.price),
                _money(f.commission),
                _money(f.realized_pnl),
            )
        _show(table, rows, "fills", console)
        if rows:
            fees = sum(f.commission or 0.0 for f in rows)
            console.print(
                f"{len(rows)} fill(s), {sum(f.notional for f in rows):,.2f} traded, commission {fees:,.2f}"
            )
        adjusting = sum(1 for f in rows if is_adjustment(f.exec_id))
        if adjusting:
            console.print(
                f"{adjusting} (adjustment) row(s): the books brought to IB's position (--adopt-broker-positions), "
                "not executions at IB; `orders` gives each one's reason."
            )
        _export(rows, export, console)


def _owner_cell(owner: str) -> str:
    return f"[yellow]{escape(owner)}[/]" if owner == EXTERNAL else escape(owner)


@app.command("strategies")
def strategies_command(
    ctx: typer.Context,
    strategy: str | None = typer.Option(None, "--strategy", help=_STRATEGY_HELP),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
    account: str | None = typer.Option(None, "--account", help=_ACCOUNT_HELP),
) -> None:
    """Per strategy: orders, fills, net position and realized P&L from its journaled fills; trades made
    outside the engine are shown as (external), never as a strategy's."""
    console = _console()
    with friendly_errors(), _open(ctx, path, account, None) as journal:
        when = _since(since)
        summaries = strategy_summaries(journal.orders(since=when), journal.fills(when))
        if strategy is not None:
            check_strategy(strategy, [s.name for s in summaries])
            summaries = [s for s in summaries if s.name == strategy]
        table = Table(title=f"Strategies in {journal.path} (P&L from the journal's fills)")
        for column in ("Strategy", "Orders", "Fills", "Net position", "Realized P&L", "Commission", "Net"):
            table.add_column(column, justify="left" if column in ("Strategy", "Net position") else "right")
        for s in summaries:
            held = ", ".join(f"{sym} {_num(q)}" for sym, q in s.positions.items()) or "flat"
            book = s.book
            table.add_row(
                _owner_cell(s.name),
                str(s.orders),
                str(s.fills) + (f" (+{s.adjustments} adj.)" if s.adjustments else ""),
                escape(held),
                _money(book.realized_pnl),
                _money(book.commissions),
                _money(book.realized_pnl - book.commissions),
            )
        _show(table, summaries, "strategies", console)
        if any(s.adjustments for s in summaries):
            console.print(
                "adj.: adjustments that brought a book to IB's position (--adopt-broker-positions); they move "
                "the book and its P&L but are not executions at IB."
            )
        if any(s.name == EXTERNAL for s in summaries):
            console.print(
                "[yellow](external)[/]: fills of no order the engine placed (a trade in TWS or another "
                "program); they are in the account, never in a strategy's book."
            )


@app.command("errors")
def errors_command(
    ctx: typer.Context,
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    export: Path | None = typer.Option(None, "--export", help=_EXPORT_HELP),
    path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
    account: str | None = typer.Option(None, "--account", help=_ACCOUNT_HELP),
) -> None:
    """Errors reported by the broker or the engine."""
    console = _console()
    with friendly_errors(), _open(ctx, path, account, export) as journal:
        rows = journal.errors(_since(since))
        table = Table(title=f"{len(rows)} error(s) in {journal.path} (times in New York)")
        for column in ("Time", "Code", "Order ref", "Message"):
            table.add_column(column, justify="right" if column == "Code" else "left")
        for e in rows:
            table.add_row(_when(e.time), str(e.code), e.order_ref or "-", e.message)
        _show(table, rows, "errors", console)
        # a refused order (risk limit, halted trading, market closed) is an order state, not a broker
        # error: point to it, since "why did my order not go?" is what brings people here
        rejected = journal.orders("rejected", since=_since(since))
        if rejected:
            console.print(
                f"{len(rejected)} order(s) were rejected (last: {escape(rejected[-1].reason or '-')}); "
                "see `copilot-quant journal orders --status rejected`."
            )
        _export(rows, export, console)


@app.command("events")
def events_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    ctx: typer.Context,
    kind: str | None = typer.Option(None, "--kind", help="Only this kind (start, stop, reconnect, halt …)."),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    export: Path | None = typer.Option(None, "--export", help=_EXPORT_HELP),
    path: Path | None = typer.Option(None, "--path", help=_PATH_HELP),
    account: str | None = typer.Option(None, "--account", help=_ACCOUNT_HELP),
) -> None:
    """Engine events: start, stop, reconnects, reconciliations, halts and the kill switch."""
    console = _console()
    with friendly_errors(), _open(ctx, path, account, export) as journal:
        rows = journal.events(_since(since), kind=kind)
        table = Table(title=f"{len(rows)} event(s) in {journal.path} (times in New York)")
        for column in ("Time", "Kind", "Detail"):
            table.add_column(column)
        for e in rows:
            table.add_row(_when(e.time), e.kind, e.detail)
        _show(table, rows, "events", console)
        _export(rows, export, console)


def register(root: typer.Typer) -> None:
    """Add the `journal` command group to ``root``."""
    root.add_typer(app, name="journal")
