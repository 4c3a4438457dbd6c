"""`copilot-quant live`: run a strategy class in paper (or live) trading through TWS / IB Gateway.

::

    copilot-quant live path/to/strategy.py:ClassName --symbols AAPL MSFT --paper --gateway --interval 1d \
        --param fast=10 --param slow=30

    # several strategies on one account, each with its own arguments, name and capital share
    copilot-quant live 'strategies.py:Trend(name="trend", capital=60000)' 'strategies.py:Pairs(name="pairs")' \
        --symbols AAPL MSFT

Several strategies (the spec syntax of :mod:`copilot_quant.cli.strategy_set`; ``capital=`` is an amount
live, the account's value being known only once connected) share the account; each order carries its
strategy's name as IB's ``orderRef``. The stop summary then gives each strategy's fills, position and P&L.

``--adopt-broker-positions`` takes IB's positions as the truth where the journal's books disagree; when
several strategies hold a symbol IB holds only part of, ``--adopt-to NAME`` (which implies it) says whose
book takes the difference — a name not among the run's strategies is refused before anything connects.

A one-line status (connection state, account value, positions, fills, errors, last bar) refreshes every
second; Ctrl-C (or SIGTERM) stops the engine, runs the strategy's ``on_stop``/``finalize`` and disconnects.

Safety rails: ``--live`` also needs ``--confirm-live`` (or ``COPILOT_QUANT_CONFIRM_LIVE=yes``); risk limits
``--max-order-qty``, ``--max-order-notional``, ``--max-position``, ``--max-daily-loss``,
``--max-orders-per-minute``, ``--price-band-pct``; ``--journal PATH`` picks the journal file (default: one
per account in ``$COPILOT_QUANT_JOURNAL_DIR``).

Kill switch: the engine watches its account's kill-switch file ``<journal dir>/<ACCOUNT>.kill``
(:func:`copilot_quant.risk.kill_file.default_kill_file`), or the ``--kill-switch-file`` given (then the
account's file is watched as well); ``copilot-quant kill --account ACCOUNT [--flatten]`` creates it and
the engine cancels all open orders (and closes positions) and halts within about a second. The file stays
after that, and ``live`` refuses to start while it exists (exit 1) — an old kill never stops, nor
silently fails to stop, a new session — until ``copilot-quant kill --account ACCOUNT --clear`` removes it.
Strategy classes are loaded, and built from the ``--param NAME=VALUE`` (``-p``) constructor arguments, by
:func:`copilot_quant.cli.strategy_spec.load_strategy`, as ``copilot-quant backtest`` does; bad parameters
are refused before anything connects.

Input is checked before anything connects where it can be (strategy spec, ``--param``, ``--interval``,
``--lookback-days``, ``--live`` without ``--confirm-live``, a live port in paper mode); symbols are checked
with IB right after connecting, before the journal or any data. Library messages are shown in CLI words
(``--confirm-live``, not ``confirm_live=True``).

Exit codes (:mod:`copilot_quant.cli.exit_codes`): 0 after a clean stop, 2 for bad input (strategy spec,
``--param``, ``--interval``, a symbol IB does not know, a live port in paper mode, ``--live`` without
confirmation), 1 when TWS/IB Gateway cannot be reached or the engine could not start trading once connected
(a kill-switch file left from an earlier kill is one reason). ``kill``: 0 once the file is written (or
cleared), 2 for bad input (no or an invalid account, ``--clear`` with ``--flatten``), 1 when the file cannot
be written or removed. ``kill --account`` for an account with no journal in the journal dir still writes the
file (a kill switch is never held back by a guess) but warns, in yellow, and lists the accounts that have
journals there: most likely the id is mistyped, or the engine uses another journal dir.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from copilot_quant.brokers.config import check_live_confirmed
from copilot_quant.brokers.ib_mapping import check_interval
from copilot_quant.cli import console as console_cli
from copilot_quant.cli import logs, options
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, SUCCESS, USAGE_ERROR, code_for
from copilot_quant.cli.reporting import error_console, print_error
from copilot_quant.cli.strategy_set import (
    NAMED_SPEC_HELP,
    load_strategies,
    print_header,
    split_strategy_tokens,
)
from copilot_quant.cli.strategy_spec import param_option
from copilot_quant.cli.words import bar_time, cli_words
from copilot_quant.errors import ConfigError, CopilotQuantError
from copilot_quant.journal.paths import default_journal_dir
from copilot_quant.risk.kill_file import (
    clear_kill_file,
    default_kill_file,
    read_kill_file,
    write_kill_file,
)

if TYPE_CHECKING:
    from copilot_quant.backtest.live_engine import LiveStrategyEngine
    from copilot_quant.console.server import ServeOptions


def _journal_accounts(directory: Path) -> list[str]:
    """The accounts that have a journal (``<ACCOUNT>.sqlite``) in ``directory``, sorted."""
    try:
        return sorted(p.stem for p in directory.glob("*.sqlite") if p.is_file())
    except OSError:
        return []


def _warn_without_journal(account: str) -> None:
    """Warn (yellow, stderr) when no engine has journaled ``account`` in the journal dir: the kill file for
    it is most likely watched by nobody (a mistyped id, or another journal dir)."""
    directory = default_journal_dir()
    accounts = _journal_accounts(directory)
    if account.upper() in (a.upper() for a in accounts):
        return
    others = (
        f"Accounts with journals there: {', '.join(accounts)}."
        if accounts
        else "There are no journals there at all: is COPILOT_QUANT_JOURNAL_DIR the one the engine uses?"
    )
    text = (
        f"no journal for {account} in {directory}: no engine has traded this account from this journal dir, so "
        f"most likely nothing watches this kill file. {others} Check the account id and run `kill` again; remove "
        f"this file with `copilot-quant kill --account {account} --clear`."
    )
    error_console().print(f"[bold yellow]Warning:[/] [yellow]{escape(text)}[/]")


def _market_data_note(problems: dict[str, str]) -> str:
    """`` | market data: AAPL …`` for each symbol whose quotes IB said are missing, delayed or partial."""
    if not problems:
        return ""
    said = "; ".join(f"{symbol} {text}" for symbol, text in sorted(problems.items()))
    return f" | [yellow]market data: {escape(said)}[/]"


def _status_line(summary: dict[str, Any], interval: str = "1d") -> str:
    positions = ", ".join(f"{s} {q:g}" for s, q in summary["positions"].items()) or "flat"
    state = summary["connection_state"]
    colour = "green" if state == "connected" else "yellow" if state in ("degraded", "reconnecting") else "red"
    last_bar = summary["last_bar"]
    problems = summary.get("connection_problems") or []
    why = f" ({escape('; '.join(problems))})" if problems else ""
    return (
        f"[{colour}]{state}[/]{why} | account {summary['account'] or '-'} | value ${summary['account_value']:,.2f}"
        f" | cash ${summary['cash_balance']:,.2f} | positions: {escape(positions)}"
        f" | fills {summary['total_fills']} | errors {summary['total_errors']}"
        f" | last bar {bar_time(last_bar, interval)}"
        + _market_data_note(summary.get("market_data_problems") or {})
        + (f" | [bold red]HALTED: {escape(str(summary['halted']))}[/]" if summary.get("halted") else "")
        + _blocked_note(summary.get("position_mismatches") or [])
    )


def _blocked_note(mismatches: list[dict[str, Any]]) -> str:
    """The symbols blocked because IB's position disagrees with the books (the alert says the rest)."""
    if not mismatches:
        return ""
    said = ", ".join(f"{m['symbol']} (IB {m['ib']:g}, books {m['journal']:g})" for m in mismatches)
    return f" | [bold red]NOT TRADED, position mismatch: {escape(said)}[/]"


def _stale_kill_file(console: Console, path: Path, account: str | None) -> bool:
    """Print why ``live`` will not start if the kill-switch file ``path`` exists; returns whether it does."""
    existing = read_kill_file(path)
    if existing is None:
        return False
    clear = (
        f"copilot-quant kill --account {account} --clear"
        if account and path == _account_kill_file(account)
        else f"copilot-quant kill --kill-switch-file {path} --clear"
    )
    console.print(
        f"[bold red]Error:[/] the kill-switch file {escape(existing.describe())} exists: an earlier kill "
        f"is still in force, and the engine would halt as soon as it started. Check why it was written, "
        f"then remove it (`{escape(clear)}`) and start again.",
        soft_wrap=True,
    )
    return True


def _account_kill_file(account: str | None) -> Path | None:
    try:
        return default_kill_file(account or "")
    except ConfigError:
        return None


def _arm_kill_files(engine: LiveStrategyEngine, console: Console) -> bool:
    """After connect(): have the engine watch the account's kill file (as well as a ``--kill-switch-file``
    of its own); False, after saying why, when a kill file already exists or none can be watched."""
    account = engine.connection.account
    account_file = _account_kill_file(account)
    own = engine.kill_switch_file
    if own is None and account_file is None:
        console.print(
            f"[bold red]Error:[/] IB reported no usable account id ({escape(repr(account))}), so the account's "
            "kill-switch file cannot be watched; pass --kill-switch-file FILE."
        )
        return False
    for path in dict.fromkeys(p for p in (own, account_file) if p is not None):
        if _stale_kill_file(console, path, account):
            return False
    if own is None:
        engine.kill_switch_file = account_file
        console.print(
            f"Kill switch: `copilot-quant kill --account {account}` (watching {escape(str(account_file))})",
            soft_wrap=True,
        )
        return True
    if account_file is not None and account_file != own:
        engine.watch_kill_file(account_file)
        console.print(
            f"Kill switch: {escape(str(own))} or `copilot-quant kill --account {account}` "
            f"({escape(str(account_file))})",
            soft_wrap=True,
        )
    return True


def run_live(
    engine: LiveStrategyEngine,
    symbols: list[str],
    interval: str,
    lookback_days: int,
    *,
    console: Console,
    duration: float | None = None,
    refresh: float = 1.0,
    web_console: ServeOptions | None = None,
) -> int:
    """Connect, start, show the status line until Ctrl-C/SIGTERM (or ``duration`` s), then shut down cleanly.

    Between connecting and starting, the engine is set to watch its account's kill-switch file (unless it
    was given one; see the module docstring); a kill-switch file that already exists refuses the start.
    With ``web_console``, the operations console (with controls) is served once the engine runs; alerts go
    out when ``COPILOT_QUANT_ALERT_*`` configures a channel.
    """
    from rich.live import Live

    settings = engine.connection.settings
    if engine.kill_switch_file is not None and _stale_kill_file(console, engine.kill_switch_file, None):
        return RUNTIME_FAILURE  # known before connecting; the account's own file is checked once connected
    console.print(f"Connecting to {settings.describe()} ...")
    with logs.held_back() as attempts:  # each failed attempt is logged; the outcome is one line below
        connected = engine.connect()
    if not connected:
        reason = next((e["error"] for e in reversed(engine.errors)), "")
        print_error(
            f"{reason or f'could not connect to {settings.host}:{settings.port}'}. Is TWS/IB Gateway (or "
            "`copilot-quant gateway`) running with the API enabled on that port?"
        )
        return RUNTIME_FAILURE
    logs.replay(attempts)
    armed = _arm_kill_files(engine, console)
    if not armed:
        engine.disconnect()
        return RUNTIME_FAILURE
    if not engine.start(symbols, lookback_days=lookback_days, data_interval=interval):
        errors = "; ".join(e["error"] for e in engine.errors) or "see the log (-v)"
        console.print(f"[bold red]Error:[/] could not start: {escape(errors)}")
        engine.disconnect()
        # A symbol IB does not know is bad input, like in `backtest`; anything else failed at run time.
        return USAGE_ERROR if any(e["type"] == "symbol" for e in engine.errors) else RUNTIME_FAILURE
    journal = getattr(engine, "journal", None)
    if journal is not None:
        console.print(f"Journal: {escape(str(journal.path))}", soft_wrap=True)

    term = threading.Event()  # SIGTERM came; it interrupts the status loop once that runs
    looping = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        term.set()
        if looping.is_set():
            raise KeyboardInterrupt

    # installed at once: the engine trades from here on, and a SIGTERM must stop it cleanly, not kill it
    previous = signal.signal(signal.SIGTERM, on_term)
    try:  # the operations console (--console) and alerts (COPILOT_QUANT_ALERT_*)
        detach = console_cli.attach(engine, web_console, console)
    except ConfigError as exc:
        console.print(f"[bold red]Error:[/] console/alerts not started: {escape(str(exc))}")
        detach = None
    deadline = None if duration is None else time.monotonic() + duration
    try:
        # log records print on the status line's console, so rich keeps them above the line
        with logs.logging_to(console), Live(console=console, refresh_per_second=4, transient=False) as live:
            looping.set()
            if term.is_set():
                raise KeyboardInterrupt
            while deadline is None or time.monotonic() < deadline:
                live.update(_status_line(engine.get_performance_summary(), interval))
                if not engine.is_running():
                    break
                time.sleep(refresh)
        if not console.is_terminal:
            console.line()  # piped, rich leaves the last status line without a newline of its own
    except KeyboardInterrupt:
        console.print("Stopping ..." if console.is_terminal else "\nStopping ...")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if detach is not None:
            detach()
        engine.stop()
        summary = engine.get_performance_summary()
        engine.disconnect()
    console.print(
        f"Stopped. fills {summary['total_fills']}, errors {summary['total_errors']}, "
        f"bars processed {summary['bars_processed']}."
    )
    held = ", ".join(f"{s} {q:g}" for s, q in summary["positions"].items())
    if held:
        console.print(
            f"Still open in the account: {escape(held)}. Stopping closes no position; they stay at the broker "
            "(and in the journal) for the next run.",
            soft_wrap=True,
        )
    _print_strategies(console, summary)
    stops = [e["detail"] for e in engine.events if e["kind"] == "stop"]
    if stops and "still working at IB" in stops[-1]:  # what Ctrl-C left at IB, in the trader's words
        console.print(f"[yellow]{escape(stops[-1].split('; ', 1)[-1])}[/]", soft_wrap=True)
    return SUCCESS


def _print_strategies(console: Console, summary: dict[str, Any]) -> None:
    """Each strategy's fills, own position and P&L (after commissions, marked at the last bar), when the
    account had several (or one with a capital share)."""
    strategies = summary.get("strategies") or {}
    if len(strategies) < 2 and not any(
        abs(s["capital"] - summary["account_value"]) > 0.005 for s in strategies.values()
    ):
        return
    console.print("Per strategy:")
    for name, s in strategies.items():
        held = ", ".join(f"{sym} {q:g}" for sym, q in s["positions"].items()) or "flat"
        console.print(
            f"  {escape(name)}: fills {s['fills']}, {escape(held)}, P&L {s['pnl']:,.2f} "
            f"(realized {s['realized_pnl']:,.2f}, commissions {s['commissions']:,.2f}), "
            f"equity {s['equity']:,.2f} of capital {s['capital']:,.2f}, errors {s['errors']}",
            soft_wrap=True,
        )


def kill(
    account: str | None = typer.Option(
        None,
        "--account",
        help="The IB account (e.g. DU1234567) of the running `copilot-quant live`: writes its kill-switch "
        "file <journal dir>/<ACCOUNT>.kill.",
    ),
    kill_switch_file: str | None = typer.Option(
        None, "--kill-switch-file", help="Instead of --account: the file given to `live --kill-switch-file`."
    ),
    flatten: bool = typer.Option(False, "--flatten", help="Also close every position."),
    reason: str = typer.Option("manual kill from the command line", help="Recorded in the journal."),
    clear: bool = typer.Option(
        False, "--clear", help="Remove the kill-switch file instead (after a kill, before the next `live`)."
    ),
) -> None:
    """Engage the kill switch of a running `copilot-quant live` (or --clear it before the next start).

    The engine cancels all open orders, optionally flattens, and halts new orders within about a second.
    The file stays: `live` will not start for the account until `kill --account ACCOUNT --clear`.
    With --account, a warning says so when no journal of that account exists in the journal dir (likely a
    mistyped id); the file is written all the same.
    """
    out = Console(highlight=False, soft_wrap=True)
    try:
        if (account is None) == (kill_switch_file is None):
            raise ConfigError("give --account ACCOUNT (e.g. --account DU1234567) or --kill-switch-file FILE")
        if clear and flatten:
            raise ConfigError("--clear removes the kill-switch file; it cannot be combined with --flatten")
        path = default_kill_file(account) if account is not None else Path(str(kill_switch_file))
        if clear:
            removed = clear_kill_file(path)
            if removed is None:
                out.print(f"No kill-switch file at {escape(str(path))}; nothing to clear.")
            else:
                out.print(
                    f"Removed the kill-switch file {escape(removed.describe())}. A new `copilot-quant live` "
                    "may start; an engine that is still running stays halted until it is restarted."
                )
            return
        earlier = read_kill_file(path)
        written = write_kill_file(path, reason, flatten)
    except ConfigError as exc:
        print_error(str(exc))
        raise typer.Exit(USAGE_ERROR) from None
    except OSError as exc:
        print_error(f"cannot {'remove' if clear else 'write'} {path}: {exc}")
        raise typer.Exit(RUNTIME_FAILURE) from None
    restart = f"--account {account}" if account is not None else f"--kill-switch-file {written}"
    who = (
        f"An engine trading {account.strip().upper()} from this journal dir halts"
        if account is not None
        else "An engine watching it (`live --kill-switch-file`) halts"
    )
    out.print(
        f"Kill switch file written: {escape(str(written))} "
        f"({'cancel all and flatten' if flatten else 'cancel all'}). "
        f"{escape(who)} within about a second. Before the next `copilot-quant live`, remove it "
        f"with `{escape(f'copilot-quant kill {restart} --clear')}`."
    )
    if account is not None:
        _warn_without_journal(account.strip())
    if earlier is not None and flatten and not earlier.flatten:
        out.print(
            f"The file already existed ({escape(earlier.describe())}); an engine that halted on it "
            "now also closes every position."
        )


def check_adopt_to(name: str | None, strategies: list[str]) -> str | None:
    """The strategy ``--adopt-to`` names (None without it), checked against the run's strategy names."""
    if name is None:
        return None
    if name not in strategies:
        listed = ", ".join(repr(s) for s in strategies)
        raise ConfigError(
            f"--adopt-to {name!r}: no strategy of this run has that name; the strategies are {listed} "
            "(a strategy's name is its class name unless its spec gives name=...)"
        )
    return name


def register(app: typer.Typer) -> None:
    """Add the `live` and `kill` commands to ``app``."""
    app.command("kill")(kill)

    @app.command("live")
    def live(  # noqa: PLR0917 - typer maps parameters to options
        strategy: str = typer.Argument(..., help=NAMED_SPEC_HELP),
        more_symbols: list[str] = typer.Argument(None, hidden=True),
        symbols: list[str] = typer.Option(
            None, "--symbols", "-s", help="Symbols to trade: --symbols AAPL MSFT (or AAPL,MSFT)."
        ),
        paper: bool = typer.Option(True, "--paper/--live", help="Paper (default) or live trading."),
        gateway: bool = typer.Option(False, "--gateway", help="IB Gateway ports (4002/4001) instead of TWS."),
        host: str | None = typer.Option(None, "--host", help="Override IB_HOST (default 127.0.0.1)."),
        port: int | None = typer.Option(
            None, "--port", help="Override IB_PORT (default from the port table)."
        ),
        client_id: int | None = typer.Option(None, "--client-id", help="Override IB_CLIENT_ID (default 1)."),
        interval: str = typer.Option(
            "1d", "--interval", help="Bar interval: 1m 2m 5m 15m 30m 1h 1d 1wk 1mo."
        ),
        lookback_days: int = typer.Option(
            30, "--lookback-days", help="History loaded before trading starts."
        ),
        update_interval: float = typer.Option(
            60.0, "--update-interval", help="Longest wait between checks (s)."
        ),
        duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds."),
        confirm_live: bool = typer.Option(
            False, "--confirm-live", help="Confirm real-money trading (needed with --live)."
        ),
        journal: str | None = typer.Option(None, "--journal", help="Journal file (default: per account)."),
        kill_switch_file: str | None = typer.Option(
            None,
            "--kill-switch-file",
            help="Engage the kill switch when this file appears (default: <journal dir>/<ACCOUNT>.kill, "
            "which `copilot-quant kill --account ACCOUNT` writes; that one is watched in any case).",
        ),
        max_order_qty: float | None = typer.Option(None, "--max-order-qty", help="Risk: shares per order."),
        max_order_notional: float | None = typer.Option(
            None, "--max-order-notional", help="Risk: value of one order."
        ),
        max_position: float | None = typer.Option(None, "--max-position", help="Risk: shares per symbol."),
        max_daily_loss: float | None = typer.Option(None, "--max-daily-loss", help="Risk: loss per day."),
        max_orders_per_minute: int | None = typer.Option(
            None, "--max-orders-per-minute", help="Risk: order rate."
        ),
        price_band_pct: float | None = typer.Option(
            None, "--price-band-pct", help="Risk: limit/stop at most this % from the last price."
        ),
        flatten_on_stop: bool = typer.Option(
            False,
            "--flatten-on-stop",
            help="On stop (Ctrl-C, --duration): cancel the strategy's working orders and close its own "
            "positions at market. Without it they stay at IB.",
        ),
        roll_days: int = options.roll_days_option(),
        auto_roll: bool = options.auto_roll_option(),
        adopt_broker_positions: bool = typer.Option(
            False,
            "--adopt-broker-positions",
            help="Where IB's positions disagree with the journal's books, take IB's as the truth: journal "
            "adjustments (tag 'adjustment', see `copilot-quant journal orders`) so the books equal IB. "
            "Without it such a symbol is not traded until they agree.",
        ),
        adopt_to: str | None = typer.Option(
            None,
            "--adopt-to",
            metavar="NAME",
            help="With several strategies: adopt IB's positions (as --adopt-broker-positions) and put each "
            "whole difference on strategy NAME's book. Without it a symbol several strategies hold while IB "
            "holds part of it is not adopted (whose book would shrink is the trader's call).",
        ),
        params: list[str] = param_option(),
        web_port: int | None = typer.Option(
            None, "--console", help="Serve the operations console (with controls) on this port of 127.0.0.1."
        ),
        web_token_file: str | None = typer.Option(
            None,
            "--console-token-file",
            help="The console's access token file (default ~/.copilot_quant/console.token).",
        ),
    ) -> None:
        """Run a strategy live (paper by default) until Ctrl-C, with a status line."""
        from copilot_quant.backtest.live_engine import LiveStrategyEngine
        from copilot_quant.risk import RiskLimits

        console = Console(highlight=False)
        try:
            if not [*(symbols or []), *(more_symbols or [])]:
                raise CopilotQuantError("no symbols given; add --symbols AAPL MSFT")
            specs, names = split_strategy_tokens(strategy, list(symbols or []), list(more_symbols or []))
            # Everything that can be checked without IB is checked before connecting.
            check_interval(interval)
            if lookback_days < 1:
                raise ConfigError(f"--lookback-days must be at least 1, got {lookback_days}")
            check_live_confirmed(paper, confirm_live)
            web = (
                None
                if web_port is None
                else console_cli.options("127.0.0.1", web_port, web_token_file, None, None, False)
            )
            # bad parameters fail here, before anything connects
            entries = load_strategies(specs, params, account=None)
            adopter = check_adopt_to(adopt_to, [entry.name for entry in entries])
            limits = RiskLimits(
                max_order_quantity=max_order_qty,
                max_order_notional=max_order_notional,
                max_position_per_symbol=max_position,
                max_daily_loss=max_daily_loss,
                max_orders_per_minute=max_orders_per_minute,
                price_band_pct=price_band_pct,
            )
            engine = LiveStrategyEngine(
                paper_trading=paper,
                host=host,
                port=port,
                client_id=client_id,
                use_gateway=gateway,
                update_interval=update_interval,
                risk_limits=limits,
                journal=journal,
                confirm_live=confirm_live,
                kill_switch_file=kill_switch_file,
                flatten_on_stop=flatten_on_stop,
                roll_days=roll_days,
                auto_roll=auto_roll,
                # a named adopter is asked for below: the flag alone would adopt without a name at start
                adopt_broker_positions=adopt_broker_positions and adopter is None,
            )
            for entry in entries:
                engine.add_strategy(entry.instance, capital=entry.capital)
            if adopter is not None:  # due at once: start()'s reconciliation adopts onto that book
                engine.adopt_broker_positions(strategy=adopter)
            print_header(entries, console)
            if not paper:
                console.print("[bold red]LIVE trading: orders go to your real-money account.[/]")
            code = run_live(
                engine, names, interval, lookback_days, console=console, duration=duration, web_console=web
            )
        except CopilotQuantError as exc:
            print_error(cli_words(str(exc)))
            raise typer.Exit(code=code_for(exc)) from exc
        if code:
            raise typer.Exit(code=code)
