"""How the command line shows log records: one handler, on the console the command prints to, one line per
event, at the level the event deserves.

Library code only calls :mod:`logging`; the CLI installs the handler (:func:`configure_logging`, from the
root callback) and, while ``live`` shows its status line, points it at that line's console
(:func:`logging_to`) so that records print above the line instead of being glued to it.

ib_async logs routine confirmations at ERROR: the answer to our own cancel (``Error 202 … Order Canceled``),
``cancelMktData: No reqId found`` after a reconnect, every failed connection attempt with the hint to open
the API port. copilot_quant reports each of these in its own words (the order's status, the reconnect
state machine, the command's one red ``Error:`` line), so :class:`IbAsyncLevels` gives them the level they
deserve (INFO or DEBUG) before the handler's threshold applies. Dask's nanny does the same at the end of
a local cluster's life: a worker process slow to exit (a loaded machine) is killed with a WARNING although
every result is in; that one is INFO too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler

from copilot_quant.cli.words import cli_words

__all__ = [
    "CliLogHandler",
    "IbAsyncLevels",
    "configure_logging",
    "held_back",
    "logging_to",
    "replay",
    "threshold_for",
]

#: (logger name, message pattern, level): ib_async (and Dask) records that are routine for copilot_quant.
_IB_ASYNC_LEVELS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    # the confirmation of a cancel we asked for; the order's CANCELLED status says it
    ("ib_async.wrapper", re.compile(r"^Error 202\b"), logging.INFO),
    ("ib_async.wrapper", re.compile(r"^Canceled order: "), logging.INFO),
    # no security definition / order rejected / cancel of an order IB no longer has: the engine reports the
    # unknown symbol or the rejected order itself, once
    ("ib_async.wrapper", re.compile(r"^Error (200|201|10147|10148)\b"), logging.INFO),
    # market data lines are re-requested after a reconnect; the old request id is gone by design
    ("ib_async.ib", re.compile(r"^cancelMktData: No reqId found"), logging.DEBUG),
    ("ib_async.ib", re.compile(r"^Unknown contract: "), logging.INFO),
    # each failed connection attempt: the connection layer retries and the command says the outcome
    ("ib_async.client", re.compile(r"^API connection failed: "), logging.DEBUG),
    ("ib_async.client", re.compile(r"^Make sure API port on TWS/IBG is open"), logging.DEBUG),
    # closing the CLI's own local cluster after its results are in: the nanny kills a worker process that
    # takes longer than Dask's few seconds to exit (a loaded machine); nothing is lost
    ("distributed.nanny", re.compile(r"^Worker process still alive after [\d.]+ seconds"), logging.INFO),
)
_RELEVELLED = tuple({name.partition(".")[0] for name, _, _ in _IB_ASYNC_LEVELS})


def ib_async_level(record: logging.LogRecord) -> int:
    """The level ``record`` deserves: its own, unless it is one of ib_async's routine records above."""
    if not record.name.startswith(_RELEVELLED):
        return record.levelno
    message = record.getMessage()
    for name, pattern, level in _IB_ASYNC_LEVELS:
        if record.name == name and pattern.search(message):
            return min(level, record.levelno)
    return record.levelno


class IbAsyncLevels(logging.Filter):
    """Re-level ib_async's routine records (see the module docstring), then apply ``threshold``.

    A handler's own level is checked before its filters run, with the record's original level; so the
    handler stays open (level 0) and this filter applies the command's threshold after re-levelling.
    """

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        level = ib_async_level(record)
        if level != record.levelno:
            record.levelno, record.levelname = level, logging.getLevelName(level)
        return record.levelno >= self.threshold


class CliLogHandler(RichHandler):
    """The command line's log handler (a :class:`~rich.logging.RichHandler` that knows it is ours); while
    :func:`held_back` runs, records that pass its filter are kept instead of printed."""

    held: list[logging.LogRecord] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.held is not None:
            self.held.append(record)
            return
        # the library's Python spellings in the command line's words (`see result.errors` ...)
        text = record.getMessage()
        worded = cli_words(text)
        if worded != text:
            record.msg, record.args = worded, None
        super().emit(record)


def threshold_for(verbosity: int) -> int:
    """``-v`` count → the lowest level shown: WARNING, then INFO (-v), then DEBUG (-vv)."""
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


def configure_logging(verbosity: int, console: Console | None = None) -> CliLogHandler:
    """Install the CLI's one handler on the root logger (replacing one installed before), on ``console``
    (default: stderr), showing records from :func:`threshold_for` ``(verbosity)`` up. Returns it."""
    threshold = threshold_for(verbosity)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, CliLogHandler)]:
        root.removeHandler(old)
    handler = CliLogHandler(
        console=console or Console(stderr=True, highlight=False),
        show_path=False,
        show_time=verbosity > 0,
        markup=False,
        rich_tracebacks=False,
    )
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(IbAsyncLevels(threshold))
    root.addHandler(handler)
    root.setLevel(threshold)
    return handler


def _cli_handler() -> CliLogHandler | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, CliLogHandler)), None)


@contextmanager
def held_back() -> Iterator[list[logging.LogRecord]]:
    """Keep the records logged meanwhile instead of printing them (yields the list they go to): for a step
    whose failure the command reports in one line of its own (``live``'s connection attempts), and whose
    records are worth showing only if it succeeds (:func:`replay`)."""
    handler = _cli_handler()
    held: list[logging.LogRecord] = []
    if handler is None:
        yield held
        return
    handler.held = held
    try:
        yield held
    finally:
        handler.held = None


def replay(records: list[logging.LogRecord]) -> None:
    """Print records :func:`held_back` kept."""
    handler = _cli_handler()
    if handler is not None:
        for record in records:
            handler.emit(record)


@contextmanager
def logging_to(console: Console) -> Iterator[None]:
    """Print log records on ``console`` meanwhile (the console of a rich ``Live`` status line, so records
    appear above the line); the handler's console is restored afterwards. No-op without the CLI handler."""
    handler = _cli_handler()
    if handler is None:
        yield
        return
    previous = handler.console
    handler.console = console
    try:
        yield
    finally:
        handler.console = previous
