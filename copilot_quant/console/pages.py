"""What each console page shows, as plain template contexts, from the engine (live) or the journal alone.

:class:`ConsoleState` is the one place that knows both sources: with an engine it reads the engine's state
(connection and its history, halted and why, last bars, risk rails, account, each strategy's book and P&L
curve) and the journal for the record; without one, the journal tells what it can (post-mortem).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from copilot_quant.console.reader import JournalFilter, JournalReader
from copilot_quant.risk.kill_file import KILL_FILE_SUFFIX, read_kill_file

if TYPE_CHECKING:
    from copilot_quant.console.watch import EngineWatch

__all__ = ["ConsoleState"]

_RECENT = 25


def _age(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _parse_time(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


class ConsoleState:
    """Page contexts (see the module docstring). ``watch`` is None for the read-only console."""

    def __init__(self, reader: JournalReader, watch: EngineWatch | None = None) -> None:
        self.reader = reader
        self.watch = watch

    @property
    def live(self) -> bool:
        return self.watch is not None

    def account(self) -> str:
        if self.watch is not None and self.watch.engine.connection.account:
            return str(self.watch.engine.connection.account)
        return self.reader.account()

    # ------------------------------------------------------------------ overview
    def overview(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        context: dict[str, Any] = {
            "now": now,
            "account": self.account(),
            "journal": str(self.reader.path),
            "counts": self.reader.counts(),
            "recent_events": self.reader.table("events", JournalFilter(), limit=_RECENT),
            "alerts": self.reader.table("alerts", JournalFilter(), limit=10),
        }
        context.update(self._live_overview(now) if self.watch is not None else self._journal_overview(now))
        return context

    def _journal_overview(self, now: datetime) -> dict[str, Any]:
        reader = self.reader
        last = reader.last_event("start", "stop", "halt", "resume", "kill_switch")
        running = last is not None and last["kind"] not in ("stop",)
        halted = last["detail"] if last is not None and last["kind"] in ("halt", "kill_switch") else None
        connection = [
            {"time": e["time"], "new": e["kind"], "reason": e["detail"]}
            for e in reader.table("events", JournalFilter(), limit=200)
            if e["kind"] in ("start", "stop", "connected", "disconnected", "reconnect", "reconcile")
        ][:20]
        bars = [
            {
                "symbol": r["symbol"],
                "time": r["time"],
                "age": _age(_parse_time(r["time"]), now),
                "what": "fill",
            }
            for r in reader.last_fill_by_symbol()
        ]
        kill_path = self.reader.path.with_suffix(KILL_FILE_SUFFIX)
        kill = read_kill_file(kill_path)
        return {
            "mode": "journal",
            "state": "last journaled: " + (last["kind"] if last else "nothing"),
            "running": running,
            "halted": halted,
            "connection_state": "not watched (read-only)",
            "connection": connection,
            "bars": bars,
            "rails": [],
            "kill_switch": f"file: {kill.describe()}"
            if kill is not None
            else f"no kill-switch file ({kill_path})",
            "cash": None,
            "equity": None,
            "strategies": [
                {"name": n, "pnl": None, "positions": reader.positions(n)} for n in reader.strategies()
            ],
        }

    def _live_overview(self, now: datetime) -> dict[str, Any]:
        assert self.watch is not None
        engine = self.watch.engine
        summary = self.watch.summary
        bars = []
        for symbol in engine.symbols:
            try:
                bar = engine.data_feed.get_latest_bar(symbol)
            except Exception:  # a feed mid-reconnect: say nothing rather than fail the page
                bar = None
            when = (
                bar.name.to_pydatetime() if bar is not None and hasattr(bar.name, "to_pydatetime") else None
            )
            close = float(bar["Close"]) if bar is not None else None
            bars.append(
                {"symbol": symbol, "time": when, "age": _age(when, now), "close": close, "what": "bar"}
            )
        limits = engine.risk.limits
        rails = [
            {"name": f.name, "value": getattr(limits, f.name)}
            for f in dataclasses.fields(limits)
            if getattr(limits, f.name) is not None
        ]
        engagement = engine.kill_switch.engagement
        files = [str(p) for p in engine.safety.kill_files()]
        history = [dataclasses.asdict(c) for c in reversed(self.watch.connection_history)]
        return {
            "mode": "engine",
            "state": "running" if engine.is_running() else "stopped",
            "running": engine.is_running(),
            "halted": engine.halted,
            "connection_state": engine.connection.state.value,
            "connection": history[:20],
            "bars": bars,
            "last_bar": engine.last_bar,
            "rails": rails,
            "kill_switch": (
                f"engaged: {engagement.reason} (flatten={engagement.flatten})" if engagement else None
            ),
            "kill_files": files,
            "cash": summary.get("cash_balance"),
            "equity": summary.get("account_value"),
            "strategies": [
                {"name": n, "pnl": s.get("pnl"), "positions": s.get("positions", {})}
                for n, s in summary.get("strategies", {}).items()
            ],
        }

    # ------------------------------------------------------------------ per strategy
    def strategy_names(self) -> list[str]:
        if self.watch is not None:
            return [s.name for s in self.watch.engine.strategy_slots]
        return self.reader.strategies()

    def strategy(self, name: str) -> dict[str, Any] | None:
        if name not in self.strategy_names():
            return None
        fills = self.reader.table("fills", JournalFilter(strategy=name), limit=50)
        if self.watch is None:
            curve = self.reader.equity_curve(name)
            return {
                "name": name,
                "summary": None,
                "positions": self.reader.positions(name),
                "open_orders": self.reader.open_orders(name),
                "fills": fills,
                "curve": curve,
                "curve_label": "P&L at fill prices, after commissions (from the journal)",
                "errors": self.reader.table("errors", JournalFilter(strategy=name), limit=50),
            }
        engine = self.watch.engine
        slot = next(s for s in engine.strategy_slots if s.name == name)
        summary = self.watch.summary.get("strategies", {}).get(name, {})
        orders = [
            {
                "order_id": o.order_id,
                "symbol": o.symbol,
                "side": str(o.side),
                "quantity": o.quantity,
                "order_type": str(o.order_type),
                "limit_price": o.limit_price,
                "state": str(o.status),
                "filled": o.filled_quantity,
            }
            for o in slot.open_orders()
        ]
        errors = [
            {"time": e["timestamp"], "message": e["error"]}
            for e in engine.errors
            if e["type"] == "strategy" and e.get("strategy") == name
        ][-50:]
        return {
            "name": name,
            "summary": summary,
            "positions": summary.get("positions", {}),
            "open_orders": orders,
            "fills": fills,
            "curve": list(self.watch.curves.get(name, ())),
            "curve_label": "P&L after commissions, marked at the last bar (sampled live)",
            "errors": errors,
        }
