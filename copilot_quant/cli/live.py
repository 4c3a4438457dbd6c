"""`copilot-quant live`: run a strategy class in paper (or live) trading through TWS / IB Gateway.

::

    copilot-quant live path/to/strategy.py:ClassName --symbols AAPL MSFT --paper --gateway --interval 1d

A one-line status (connection state, account value, positions, fills, errors, last bar) refreshes every
second; Ctrl-C (or SIGTERM) stops the engine, runs the strategy's ``on_stop``/``finalize`` and disconnects.

Safety rails: ``--live`` also needs ``--confirm-live`` (or ``COPILOT_QUANT_CONFIRM_LIVE=yes``); risk limits
``--max-order-qty``, ``--max-order-notional``, ``--max-position``, ``--max-daily-loss``,
``--max-orders-per-minute``, ``--price-band-pct``; ``--journal PATH`` picks the journal file (default: one
per account in ``$COPILOT_QUANT_JOURNAL_DIR``); creating the ``--kill-switch-file`` engages the kill switch
(cancel all open orders; write ``flatten`` into it to also close positions).
Strategy classes are loaded by :func:`copilot_quant.cli.backtest.load_strategy_class`, the same loader
``copilot-quant backtest`` uses.

Exit codes (:mod:`copilot_quant.cli.exit_codes`): 0 after a clean stop, 2 for bad input (strategy spec,
symbols, a live port in paper mode, ``--live`` without confirmation), 1 when TWS/IB Gateway cannot be
reached or the engine could not start trading once connected.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, SUCCESS, code_for
from copilot_quant.errors import CopilotQuantError

if TYPE_CHECKING:
    from copilot_quant.backtest.live_engine import LiveStrategyEngine


def _status_line(summary: dict[str, Any]) -> str:
    positions = ", ".join(f"{s} {q:g}" for s, q in summary["positions"].items()) or "flat"
    state = summary["connection_state"]
    colour = "green" if state == "connected" else "yellow" if state in ("degraded", "reconnecting") else "red"
    last_bar = summary["last_bar"]
    return (
        f"[{colour}]{state}[/] | account {summary['account'] or '-'} | value ${summary['account_value']:,.2f}"
        f" | cash ${summary['cash_balance']:,.2f} | positions: {escape(positions)}"
        f" | fills {summary['total_fills']} | errors {summary['total_errors']}"
        f" | last bar {last_bar if last_bar is not None else '-'}"
        + (f" | [bold red]HALTED: {escape(str(summary['halted']))}[/]" if summary.get("halted") else "")
    )


def run_live(
    engine: LiveStrategyEngine,
    symbols: list[str],
    interval: str,
    lookback_days: int,
    *,
    console: Console,
    duration: float | None = None,
    refresh: float = 1.0,
) -> int:
    """Connect, start, show the status line until Ctrl-C/SIGTERM (or ``duration`` s), then shut down cleanly."""
    from rich.live import Live

    settings = engine.connection.settings
    console.print(f"Connecting to {settings.describe()} ...")
    if not engine.connect():
        console.print(
            f"[bold red]Error:[/] could not connect to {settings.host}:{settings.port}. Is TWS/IB Gateway "
            "(or `copilot-quant gateway`) running with the API enabled on that port?"
        )
        return RUNTIME_FAILURE
    if not engine.start(symbols, lookback_days=lookback_days, data_interval=interval):
        errors = "; ".join(e["error"] for e in engine.errors) or "see the log (-v)"
        console.print(f"[bold red]Error:[/] could not start: {escape(errors)}")
        engine.disconnect()
        return RUNTIME_FAILURE

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while deadline is None or time.monotonic() < deadline:
                live.update(_status_line(engine.get_performance_summary()))
                if not engine.is_running():
                    break
                time.sleep(refresh)
    except KeyboardInterrupt:
        console.print("Stopping ...")
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.stop()
        summary = engine.get_performance_summary()
        engine.disconnect()
    console.print(
        f"Stopped. fills {summary['total_fills']}, errors {summary['total_errors']}, "
        f"bars processed {summary['bars_processed']}."
    )
    return SUCCESS


def kill(
    kill_switch_file: str = typer.Option(
        ..., "--kill-switch-file", help="The file the running `copilot-quant live` watches."
    ),
    flatten: bool = typer.Option(False, "--flatten", help="Also close every position."),
    reason: str = typer.Option("manual kill from the command line", help="Recorded in the journal."),
) -> None:
    """Engage the kill switch of a running `copilot-quant live --kill-switch-file FILE`.

    The engine cancels all open orders, optionally flattens, and halts new orders within about a second.
    """
    from pathlib import Path

    path = Path(kill_switch_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{reason}{' flatten' if flatten else ''}\n", encoding="utf-8")
    except OSError as exc:
        Console(stderr=True, highlight=False).print(f"[bold red]Error:[/] cannot write {path}: {exc}")
        raise typer.Exit(RUNTIME_FAILURE) from None
    Console(highlight=False).print(
        f"Kill switch file written: {path} ({'cancel all and flatten' if flatten else 'cancel all'}). "
        "The engine halts within about a second; delete the file before restarting it."
    )


def register(app: typer.Typer) -> None:
    """Add the `live` and `kill` commands to ``app``."""
    app.command("kill")(kill)

    @app.command("live")
    def live(  # noqa: PLR0917 - typer maps parameters to options
        strategy: str = typer.Argument(..., help="path/to/strategy.py:ClassName or package.module:ClassName"),
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
            None, "--kill-switch-file", help="Engage the kill switch when this file appears."
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
            None, "--price-band-pct", help="Risk: limit/stop at most this %% from the last price."
        ),
    ) -> None:
        """Run a strategy live (paper by default) until Ctrl-C, with a status line."""
        from copilot_quant.backtest.live_engine import LiveStrategyEngine
        from copilot_quant.cli.backtest import load_strategy_class
        from copilot_quant.risk import RiskLimits

        console = Console(highlight=False)
        names = [p.strip().upper() for s in [*(symbols or []), *(more_symbols or [])] for p in s.split(",")]
        names = [n for n in names if n]
        try:
            if not names:
                raise CopilotQuantError("no symbols given; add --symbols AAPL MSFT")
            cls = load_strategy_class(strategy)
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
            )
            engine.add_strategy(cls())
            if not paper:
                console.print("[bold red]LIVE trading: orders go to your real-money account.[/]")
            code = run_live(engine, names, interval, lookback_days, console=console, duration=duration)
        except CopilotQuantError as exc:
            Console(stderr=True, highlight=False).print(f"[bold red]Error:[/] [red]{escape(str(exc))}[/]")
            raise typer.Exit(code=code_for(exc)) from exc
        if code:
            raise typer.Exit(code=code)
