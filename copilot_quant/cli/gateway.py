"""`copilot-quant gateway`: run the simulated IB Gateway until Ctrl-C; `gateway-ctl`: send it a fault drill.

Exit codes (:mod:`copilot_quant.cli.exit_codes`): 2 for a bad setting or control command, 1 when the gateway
cannot listen, the control port cannot be reached or the gateway failed to carry out a command.
"""

from __future__ import annotations

import os
import secrets
import threading

import typer
from rich.console import Console
from rich.markup import escape

from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, USAGE_ERROR, code_for
from copilot_quant.cli.options import SPREAD_HELP, parse_commission, parse_spread, parse_symbols
from copilot_quant.cli.reporting import print_error
from copilot_quant.cli.words import bar_time
from copilot_quant.errors import CopilotQuantError


def register(app: typer.Typer) -> None:
    """Add the `gateway` command to ``app``."""
    # extra args: `--symbols AAPL MSFT` leaves MSFT as a stray token, read as a symbol (as backtest does)
    app.command("gateway", context_settings={"allow_extra_args": True})(gateway)
    app.command("gateway-ctl")(gateway_ctl)


def gateway(  # noqa: PLR0917 - typer maps each parameter to a command-line option
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", help="Interface to listen on (loopback unless you mean otherwise)."
    ),
    port: int = typer.Option(4002, help="TCP port (IB Gateway paper uses 4002; 0 = any free port)."),
    data: str = typer.Option(
        "synthetic", help="Data source: sample, synthetic[:SEED], csv:DIR or store[:DIR]."
    ),
    symbols: list[str] = typer.Option(
        [],
        "--symbols",
        help="Symbols to offer: --symbols AAPL MSFT (or AAPL,MSFT; default: the data source's).",
    ),
    account: str | None = typer.Option(
        None,
        help="Account id shown to clients (default: the one saved in --state, else IB_PAPER_ACCOUNT, else a "
        "fresh DU… paper id for this run, so a fresh gateway is never taken for one an old journal knows).",
    ),
    cash: float = typer.Option(1_000_000.0, help="Starting cash in USD."),
    clock: str = typer.Option(
        "",
        "--clock",
        help="wall: a paper market trading in real time (the default); replay: the data replayed bar by "
        "bar, stepped or at --speed (implied by --speed, --start or --volume-limit).",
    ),
    hours: str = typer.Option(
        "",
        "--hours",
        help="Wall-clock market hours: always (default: open around the clock) or exchange (NYSE sessions "
        "and holidays).",
    ),
    speed: float = typer.Option(0.0, help="Bars per second the market replays at (0 = paused)."),
    bar_interval: str = typer.Option(
        "",
        "--bar-interval",
        help="Bar interval, 1m … 1h or 1d: the replay's step (default 1d), or how often bars complete on "
        "the wall clock (default 1m).",
    ),
    start: str = typer.Option(
        "",
        help="Replay start date, within the data (default: just after the data's last bar, or the clock "
        "saved in --state).",
    ),
    state: str = typer.Option(
        "",
        "--state",
        help="JSON file keeping account, orders, fills and the market clock across restarts.",
    ),
    partial_fill_size: float = typer.Option(0.0, help="Fill at most this many shares per price (0 = all)."),
    commission: str = typer.Option(
        "ibkr-fixed",
        "--commission",
        help="Commissions the account pays: ibkr-fixed ($0.005/share, $1 minimum, plus the SEC, FINRA TAF and CAT fees IB passes through), ibkr-tiered (IBKR Pro "
        "Tiered: volume tiers plus pass-through fees; commissionReport carries the total) or a rate of the "
        "traded value (0.001 = 0.1 %).",
    ),
    spread: str = typer.Option("auto", "--spread", help=SPREAD_HELP),
    volume_limit: float | None = typer.Option(
        None,
        "--volume-limit",
        help="Fill at most this fraction of each bar's volume per symbol, e.g. 0.1 (0 < x <= 1; default: no limit). The backtest's rule.",
    ),
    pacing: bool = typer.Option(False, help="Enforce IB's historical-data pacing rules (error 162)."),
    account_update_interval: float = typer.Option(
        180.0,
        "--account-update-interval",
        help="Seconds of market time between account-value refreshes (IB's Account window: 180; "
        "0 = at every step and fill).",
    ),
    live_account: bool = typer.Option(False, "--live-account", help="Present a live (U…) account id."),
    control_port: int = typer.Option(
        -1, "--control-port", help="Open a fault-drill control port on 127.0.0.1 (0 = any free port)."
    ),
    run_for: float = typer.Option(
        0.0, "--run-for", hidden=True, help="Stop after this many seconds (tests)."
    ),
) -> None:
    """Run a simulated IB Gateway that ib_async (and other TWS API clients) can connect to."""
    # Imported here so `copilot-quant --help` does not load pandas and the data layer.
    from copilot_quant.backtest.participation import check_volume_limit
    from copilot_quant.gateway.control import ControlServer
    from copilot_quant.gateway.server import GatewayConfig, GatewayServer
    from copilot_quant.model.costs import NoSlippage
    from copilot_quant.model.spread import spread_of, with_spread

    console = Console(highlight=False)
    # The replay's own settings choose it; anything else gets the market a newcomer can trade at once.
    mode = clock.strip().lower() or ("replay" if speed or start or volume_limit is not None else "wall")
    interval = bar_interval or ("1m" if mode == "wall" else "1d")
    try:
        offered = parse_symbols([*symbols, *ctx.args])
        account_id, fresh = gateway_account(account, state or None)
        check_volume_limit(volume_limit, "--volume-limit")
        config = GatewayConfig(
            host=host,
            port=port,
            data=data,
            symbols=offered or None,
            account=account_id,
            cash=cash,
            clock=mode,
            hours=hours.strip().lower() or "always",
            speed=speed or None,
            bar_interval=interval,
            start=start or None,
            state_file=state or None,
            partial_fill_size=partial_fill_size or None,
            commission=parse_commission(commission),
            # the backtest's --spread: quotes bid < ask, market orders fill at the touch
            slippage=with_spread(NoSlippage(), parse_spread(spread)),
            volume_limit=volume_limit,
            pacing=pacing,
            account_update_interval=account_update_interval,
            live_account=live_account,
        )
        server = GatewayServer(config).start()
        control = ControlServer(server, port=control_port).start() if control_port >= 0 else None
    except CopilotQuantError as exc:
        print_error(str(exc))
        raise typer.Exit(code_for(exc)) from None
    symbols_text = ", ".join(server.core.registry.symbols[:12]) or "any ticker (generated on request)"
    console.print(f"[bold green]Simulated IB Gateway[/] listening on [bold]{server.host}:{server.port}[/]")
    console.print(f"  account {server.broker.account_id}, data '{data}', symbols: {symbols_text}")
    console.print(f"  {escape(_account_text(server.broker.account_id, fresh, state))}", soft_wrap=True)
    quoted = spread_of(config.slippage)
    if quoted is not None:
        console.print(
            f"  spread {quoted.label()}: market orders fill at the touch (buy at the ask, sell at the bid)"
        )
    if mode == "wall":
        console.print(f"  {_wall_text(server.config.hours, interval)}")
    else:
        console.print(
            f"  replay, market time {bar_time(server.clock.now, interval)}, "
            f"{_clock_text(speed, control.port if control else None)}"
        )
    for notice in server.notices:
        console.print(f"  [yellow]Warning:[/] {escape(notice)}")
    console.print("  Point ib_async at it:")
    console.print(
        f"    from ib_async import IB; ib = IB(); ib.connect('{server.host}', {server.port}, clientId=1)"
    )
    if control is not None:
        console.print(
            f"  Fault drills: copilot-quant gateway-ctl --port {control.port} help   (drop, restart, lost, ...)"
        )
    console.print("  Ctrl-C to stop.")
    stop = threading.Event()
    try:
        stop.wait(run_for if run_for > 0 else None)
    except KeyboardInterrupt:
        pass
    finally:
        if control is not None:
            control.stop()
        server.stop()
        console.print("Gateway stopped.")


def gateway_account(account: str | None, state_file: str | None) -> tuple[str, bool]:
    """The account id the gateway presents, and whether it is a fresh one made up for this run.

    ``--account`` wins; else the account a ``--state`` file was saved for (so it resumes); else
    ``IB_PAPER_ACCOUNT`` (the engine checks that the gateway manages it); else a new random paper id
    ``DU`` + 7 digits. A fixed default id would make every fresh gateway look like the account an old
    journal remembers (``position mismatch AAPL: journal 50, broker 0`` at the next ``live``).
    """
    from copilot_quant.gateway.state import load_state

    if account:
        return account.strip(), False
    if state_file:
        saved = load_state(state_file)
        if saved is not None:
            return saved.account_id, False
    configured = os.environ.get("IB_PAPER_ACCOUNT", "").strip()
    if configured:
        return configured, False
    return f"DU{secrets.randbelow(9_000_000) + 1_000_000}", True


def _account_text(account: str, fresh: bool, state: str) -> str:
    """What the banner says about the account: fresh or kept, and where its journal will be."""
    from copilot_quant.journal.paths import default_journal_path

    journal = default_journal_path(account)
    if fresh and state:
        return (
            f"a fresh paper account, kept in {state} from now on (restart with the same --state to resume "
            f"it); `copilot-quant live` journals it in {journal}"
        )
    if fresh:
        return (
            f"a fresh paper account for this run (no --state): empty, and a `copilot-quant live` against it "
            f"starts a new journal, {journal}. Pass --state FILE to keep the account, its orders and positions "
            "across gateway restarts."
        )
    if state:
        return f"account, orders, fills and market time kept in {state}; `live` journals it in {journal}"
    return f"`copilot-quant live` journals this account in {journal}"


def _wall_text(hours: str, interval: str) -> str:
    """The banner's line for the wall-clock paper market."""
    when = "open around the clock" if hours == "always" else "open in NYSE sessions (holidays closed)"
    return (
        f"paper market on the wall clock, {when}: a trade every second, 5 s real-time bars, {interval} bars "
        "complete in real time (--clock replay to replay data instead)"
    )


def _clock_text(speed: float, control_port: int | None) -> str:
    """How the market clock moves, in the banner's words."""
    if speed:
        return f"clock running at {speed:g} bar{'' if speed == 1 else 's'} per second"
    if control_port is None:
        return "clock paused: it moves only when stepped (start with --speed N to run N bars per second)"
    return (
        "clock paused: step it with `copilot-quant gateway-ctl --port "
        f"{control_port} step` or run it with `... speed N`"
    )


def gateway_ctl(
    command: list[str] = typer.Argument(
        ..., help="A control command, e.g. drop, restart, 'refuse 10', help."
    ),
    port: int = typer.Option(..., "--port", help="The gateway's --control-port."),
    host: str = typer.Option("127.0.0.1", help="Host of the control port."),
) -> None:
    """Send a fault-drill command to a running `copilot-quant gateway --control-port PORT`."""
    from copilot_quant.gateway.control import send_command

    try:
        reply = send_command(port, " ".join(command), host=host)
    except CopilotQuantError as exc:  # the control port cannot be reached
        print_error(str(exc))
        raise typer.Exit(code_for(exc)) from None
    ok = reply.startswith("ok")
    Console(highlight=False, stderr=not ok).print(
        escape(reply.replace("; ", "\n")) if ok else f"[bold red]{escape(reply)}[/]"
    )
    if not ok:
        raise typer.Exit(USAGE_ERROR if _is_usage_reply(reply) else RUNTIME_FAILURE)


def _is_usage_reply(reply: str) -> bool:
    """True when the gateway refused the command itself (unknown, empty, or wrong arguments), not its effect."""
    return any(part in reply for part in ("unknown command", "empty command", "usage:"))
