"""The guide's import path for the live engine: ``from copilot_quant.backtest.live_engine import
LiveStrategyEngine``. The engine lives in :mod:`copilot_quant.live` as its parts; this module re-exports it."""

from copilot_quant.brokers.config import CONFIRM_LIVE_ENV
from copilot_quant.live.engine import LiveStrategyEngine
from copilot_quant.live.events import RecentList

__all__ = ["CONFIRM_LIVE_ENV", "LiveStrategyEngine", "RecentList"]
