"""The live engine's error log keeps whose a strategy error is, as the backtest's errors do."""

from __future__ import annotations

from copilot_quant.live.events import EngineEvents, ErrorLog


def test_a_strategy_error_names_its_strategy_and_an_engine_error_names_none() -> None:
    log = ErrorLog(EngineEvents(), max_errors=10, max_logged_errors=0)
    log.strategy_failed("Fast", ValueError("boom"), "ValueError: boom", "in on_data")
    log.strategy_failed("Slow", KeyError("x"), "KeyError: 'x'", "in on_fill")
    log.record("connection lost", "connection")
    entries = list(log.entries)
    assert [(e["type"], e.get("strategy")) for e in entries] == [
        ("strategy", "Fast"),
        ("strategy", "Slow"),
        ("connection", None),
    ]
    assert log.by_strategy == {"Fast": 1, "Slow": 1}
