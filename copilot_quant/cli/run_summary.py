"""What the CLI says about a run's orders after its metrics: rejections by reason, orders for symbols the
run has no data for, and orders that filled only partly before the rest was cancelled or expired.

The rule that fails a run is :meth:`copilot_quant.backtest.order_outcomes.RunOrders.failure`; the commands
(``backtest``, ``demo``, ``parity``) exit :data:`~copilot_quant.cli.exit_codes.RUNTIME_FAILURE` on it.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from copilot_quant.backtest.order_outcomes import OrderOutcome, RunOrders
from copilot_quant.cli.words import cli_words

__all__ = ["print_order_outcomes"]

_MAX_REASONS = 3


def _shares(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _partial_line(partial: list[OrderOutcome], total: int, prefix: str) -> str:
    filled = sum(o.filled for o in partial)
    asked = sum(o.quantity for o in partial)
    day = [o for o in partial if o.time_in_force == "day"]
    why = (
        "the rest of a DAY order expires at the session's close (on daily bars: after its one bar); send "
        "Order(..., time_in_force='gtc') (the bundled examples: --param time_in_force=gtc) to keep the "
        "remainder working on later bars"
        if day
        else "the rest was cancelled"
    )
    return (
        f"{prefix}{len(partial)} of {total} orders filled only partly ({_shares(filled)} of {_shares(asked)} "
        f"shares; the volume limit caps each bar's fills): {why}."
    )


def print_order_outcomes(console: Console, orders: RunOrders, prefix: str = "") -> None:
    """Print, in yellow, what went wrong with ``orders`` (nothing when every order filled or stays working).

    ``prefix`` names the run (``'live: '``) when several runs are reported together.
    """
    total = len(orders.outcomes)
    rejected = orders.rejected
    if rejected:
        reasons = orders.rejection_reasons()
        listed = "; ".join(
            f"{count} × {cli_words(reason)}" if count > 1 else cli_words(reason)
            for reason, count in reasons[:_MAX_REASONS]
        )
        more = f"; and {len(reasons) - _MAX_REASONS} other reasons" if len(reasons) > _MAX_REASONS else ""
        console.print(
            f"[yellow]{escape(prefix)}{len(rejected)} of {total} orders rejected: {escape(listed + more)}[/]",
            soft_wrap=True,
        )
    partial = orders.partly_filled
    if partial:
        console.print(f"[yellow]{escape(_partial_line(partial, total, prefix))}[/]", soft_wrap=True)
