"""Exit codes shared by every ``copilot-quant`` command.

====  ===================  ===========================================================================
code  name                 meaning
====  ===================  ===========================================================================
0     ``SUCCESS``          the command did what was asked
1     ``RUNTIME_FAILURE``  the input was fine but the run failed or says too little to pass: backtest and
                           live differ (``parity``, strategy error counts included), TWS/the gateway or a
                           data source cannot be reached, the live engine could not start, a gateway
                           error; and, for ``backtest``, ``demo`` and both runs of ``parity``: the
                           strategy raised on more than half of the bars it was given, sent any order for
                           a symbol the run has no data for, or more than half of its orders were
                           rejected (:mod:`copilot_quant.backtest.order_outcomes`); ``parity`` also when
                           nothing filled. A strategy that raised on fewer bars exits 0; the output says
                           on how many
2     ``USAGE_ERROR``      bad input: unknown option or argument (click's own usage errors are 2 too),
                           bad strategy spec, unknown symbol, bad dates, no data in the range, missing
                           journal, bad setting
====  ===================  ===========================================================================

Library errors are mapped by :func:`code_for`: the :class:`~copilot_quant.errors.CopilotQuantError`
subclasses that mean "something out there failed" (broker and connection errors, an unreachable data
source, the simulated gateway failing) are runtime failures; every other one names something the user
asked for wrongly.
"""

from __future__ import annotations

from copilot_quant.errors import BrokerError, DataUnavailableError, GatewayError

__all__ = ["RUNTIME_FAILURE", "SUCCESS", "USAGE_ERROR", "code_for"]

#: The command did what was asked.
SUCCESS = 0
#: The input was fine but the run failed (parity mismatch, connection failed, every bar errored ...).
RUNTIME_FAILURE = 1
#: Bad input or usage (click/typer use 2 for their own usage errors as well).
USAGE_ERROR = 2

_RUNTIME_ERRORS: tuple[type[Exception], ...] = (BrokerError, DataUnavailableError, GatewayError)


def code_for(exc: BaseException) -> int:
    """The exit code for a library error caught by a command: 1 for runtime failures, else 2."""
    return RUNTIME_FAILURE if isinstance(exc, _RUNTIME_ERRORS) else USAGE_ERROR
