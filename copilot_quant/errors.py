"""One exception tree for the whole project.

Every error a user can meet derives from :class:`CopilotQuantError`, so ``except CopilotQuantError``
catches everything the library raises on purpose. Messages say what was wrong *and* how to fix it.

::

    CopilotQuantError
    ├── ConfigError                 bad settings, environment variables or arguments
    ├── DataError                   data missing, malformed or unavailable
    │   ├── UnknownSymbolError      no data for a symbol
    │   └── DataUnavailableError    source unreachable and nothing cached
    ├── OrderError
    │   ├── OrderValidationError    an Order that can never be valid (raised at construction)
    │   └── OrderRejected           a valid order refused (buying power, risk limit, broker reject)
    ├── BrokerError                 broker-side failures
    │   ├── ConnectionLost          the link to IB/the gateway dropped
    │   └── NotConnectedError       an operation needs a connection that is not there
    ├── StrategyError               a strategy could not be loaded or behaved illegally
    ├── JournalError                the trade journal cannot be opened or written (trading must halt)
    └── GatewayError                the simulated gateway could not start or was misused
"""

from __future__ import annotations


class CopilotQuantError(Exception):
    """Base class of every error copilot_quant raises on purpose."""


class ConfigError(CopilotQuantError, ValueError):
    """A setting, environment variable or argument has an invalid value."""


class DataError(CopilotQuantError):
    """Market data is missing, malformed or cannot be obtained."""


class UnknownSymbolError(DataError, KeyError):
    """A data source has no data for the requested symbol."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataUnavailableError(DataError):
    """The data source cannot be reached and nothing usable is cached."""


class BarGridError(DataError):
    """Intraday bars that are not on IB's bar grid (e.g. Yahoo's hourly bars, 09:30–10:30 …): a backtest on
    them would trade other bars than IB serves live (see :mod:`copilot_quant.data.bar_grid`)."""


class OrderError(CopilotQuantError):
    """Base class for order problems."""


class OrderValidationError(OrderError, ValueError):
    """An order's fields are invalid; raised when the :class:`Order` is built."""


class OrderRejected(OrderError):
    """A valid order was refused (insufficient buying power, risk limit, broker rejection)."""

    def __init__(self, message: str, order: object | None = None) -> None:
        super().__init__(message)
        self.order = order


class BrokerError(CopilotQuantError):
    """The broker failed to do what was asked."""


class ConnectionLost(BrokerError, ConnectionError):
    """The connection to IB (or the simulated gateway) was lost."""


class NotConnectedError(BrokerError, ConnectionError):
    """An operation needs a live connection; call ``connect()`` first."""


class StrategyError(CopilotQuantError):
    """A strategy could not be loaded, or it returned something that is not a list of orders."""


class JournalError(CopilotQuantError):
    """The trade journal cannot be opened, read or written (read-only or full disk, corrupt file, misuse)."""


class GatewayError(CopilotQuantError):
    """The simulated IB Gateway could not start or was used incorrectly."""
