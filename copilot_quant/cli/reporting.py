"""How every ``copilot-quant`` command reports a failure: one red line on stderr and an exit code.

Messages are escaped before rich renders them: a path such as ``data/[2024]/aapl.csv`` or a reason in
square brackets is shown as written, never taken for markup (which would drop it or raise MarkupError).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from copilot_quant.cli.exit_codes import code_for
from copilot_quant.cli.words import cli_words
from copilot_quant.errors import CopilotQuantError

__all__ = ["error_console", "friendly_errors", "print_error"]


def error_console() -> Console:
    # Built per call so output goes to the stream typer's test runner (or the user's terminal) has now;
    # soft wrap keeps paths on one line, so they can be copied.
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """Print ``message`` (plain text, not markup) as one red ``Error:`` line on stderr."""
    one_line = " ".join(str(message).split())  # whatever the message's layout
    error_console().print(f"[bold red]Error:[/] [red]{escape(one_line)}[/]")


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Report a library error as one line, in the command line's words (:func:`~copilot_quant.cli.words.cli_words`),
    and exit with its code (2 for bad input, 1 for a runtime failure such as an unreachable data source or
    gateway), instead of a traceback."""
    try:
        yield
    except CopilotQuantError as exc:
        print_error(cli_words(str(exc)))
        raise typer.Exit(code=code_for(exc)) from exc
