"""The ``copilot-quant`` command line: backtest, demo, sweep, data, gateway, live, journal, parity.

Each sub-command lives in its own module and registers itself on :data:`app`. Every command exits 0 on
success, 1 on a runtime failure and 2 on bad input or usage (:mod:`copilot_quant.cli.exit_codes`).
"""

from __future__ import annotations

import typer

from copilot_quant import __version__
from copilot_quant.cli import backtest, batch, console, data, gateway, journal, live, parity, sweep

app = typer.Typer(
    name="copilot-quant",
    help="Backtest a strategy honestly and fast, then run the same class in paper or live trading with IBKR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"copilot-quant {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v for INFO logs, -vv for DEBUG."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    from copilot_quant.cli.logs import configure_logging

    configure_logging(verbose)


for _module in (backtest, sweep, batch, data, gateway, live, journal, parity, console):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
