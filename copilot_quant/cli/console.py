"""`copilot-quant console`: the read-only operations console over an account's journal (post-mortem).

::

    copilot-quant console --journal-dir ~/.copilot_quant/journal --account DU1234567 [--port 8080]

It serves the same pages as ``copilot-quant live … --console PORT`` (overview, strategies, journal browser,
reconciliation reports) from the journal alone, with no control endpoints at all. The access token is kept in
``--token-file`` (default ``~/.copilot_quant/console.token``, mode 0600) and printed once, when created.
Exit codes: 0 after Ctrl-C, 2 for bad input (no such journal, a non-loopback ``--host`` without TLS), 1 when
the port cannot be served.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, USAGE_ERROR
from copilot_quant.cli.reporting import print_error
from copilot_quant.errors import ConfigError
from copilot_quant.journal.paths import check_account, default_journal_dir

if TYPE_CHECKING:
    from copilot_quant.console.server import ConsoleServer, ServeOptions
    from copilot_quant.live.engine import LiveStrategyEngine


def announce(server: ConsoleServer, console: Console) -> None:
    """Say where the console is; print the token (in the URL) only when it was just created."""
    if server.token.created:
        console.print(
            f"Console: {escape(server.url_with_token)}\n(token created in {escape(str(server.token.path))}, "
            "owner-only; it is printed this once)",
            soft_wrap=True,
        )
    else:
        console.print(
            f"Console: {escape(server.url)} (token in {escape(str(server.token.path))}; open "
            f"{escape(server.url)}?token=… once)",
            soft_wrap=True,
        )


def options(  # noqa: PLR0917 - one argument per CLI option
    host: str,
    port: int,
    token_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    force: bool,
    reports_dir: str | None = None,
) -> ServeOptions:
    from copilot_quant.console.server import ServeOptions

    serve = ServeOptions(host, port, token_file, tls_cert, tls_key, force, reports_dir)
    serve.check()
    return serve


def attach(engine: LiveStrategyEngine, serve: ServeOptions | None, console: Console) -> Callable[[], None]:
    """Next to a started engine: alerts when a channel is configured (``COPILOT_QUANT_ALERT_*``), and the
    console (with controls) when ``serve`` is given. Returns what stops them (call it before ``engine.stop``)."""
    from copilot_quant.alerts import AlertSettings, EngineAlerts
    from copilot_quant.console.server import ConsoleServer

    stoppers: list[Callable[[], None]] = []
    settings = AlertSettings.load()
    if settings.channels():
        alerts = EngineAlerts.from_settings(engine, settings).start()
        stoppers.append(alerts.stop)
        console.print(f"Alerts: {', '.join(c.name for c in alerts.dispatcher.channels)}")
    if serve is not None:
        server = ConsoleServer.for_engine(engine, serve).start()
        stoppers.append(server.stop)
        announce(server, console)

    def stop() -> None:
        for stopper in reversed(stoppers):
            stopper()

    return stop


def console_command(  # noqa: PLR0917 - typer maps each parameter to a CLI option
    account: str = typer.Option(
        ..., "--account", help="The IB account whose journal to show (e.g. DU1234567)."
    ),
    journal_dir: str | None = typer.Option(
        None, "--journal-dir", help="Where the journals are (default $COPILOT_QUANT_JOURNAL_DIR)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8080, "--port", help="Port to serve (0: a free one)."),
    token_file: str | None = typer.Option(None, "--token-file", help="Access token file (created 0600)."),
    tls_cert: str | None = typer.Option(None, "--tls-cert", help="TLS certificate (PEM) for https."),
    tls_key: str | None = typer.Option(None, "--tls-key", help="TLS private key (PEM)."),
    force_insecure_bind: bool = typer.Option(
        False,
        "--force-insecure-bind",
        help="Allow a non-loopback --host without TLS (trusted networks only).",
    ),
    reports_dir: str | None = typer.Option(
        None, "--reports-dir", help="Link the HTML reports (backtest, sweep, walk-forward) in this directory."
    ),
) -> None:
    """Serve the read-only operations console over an account's journal (no controls)."""
    from copilot_quant.console.server import ConsoleServer

    out = Console(highlight=False)
    try:
        name = check_account(account)
        directory = Path(journal_dir).expanduser() if journal_dir else default_journal_dir()
        serve = options(host, port, token_file, tls_cert, tls_key, force_insecure_bind, reports_dir)
        server = ConsoleServer.for_journal(directory / f"{name}.sqlite", serve)
    except ConfigError as exc:
        print_error(str(exc))
        raise typer.Exit(USAGE_ERROR) from None
    try:
        server.start()
    except ConfigError as exc:
        print_error(str(exc))
        raise typer.Exit(RUNTIME_FAILURE) from None
    announce(server, out)
    out.print("Read-only: no controls. Ctrl-C stops it.")
    server.serve_forever()  # returns after Ctrl-C


def register(app: typer.Typer) -> None:
    app.command("console")(console_command)
