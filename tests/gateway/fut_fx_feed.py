"""A data source for the futures/forex gateway tests: futures contracts near 5000 on their tick grid, forex
pairs near 1.08 on the half-pip grid (midpoints, no volume), stocks as the synthetic provider makes them.

The gateway asks its data source for bars by instrument key (``MESZ6``, ``EUR.USD``); this stands in for
the synthetic futures/forex data of ``--data synthetic`` so the tests fix their own prices.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.model.ports import IDataFeed


class FutFxFeed(IDataFeed):
    serves_any_symbol = True

    def __init__(self, start: str = "2026-09-01", periods: int = 60, seed: int = 5) -> None:
        self._stocks = SyntheticDataProvider(seed=seed, start=start, periods=periods)
        self._scaled = SyntheticDataProvider(
            seed=seed, start=start, periods=periods, start_price=5000.0, annual_volatility=0.15
        )
        self._registry = InstrumentRegistry(reference=pd.Timestamp(start).date())

    def symbols(self) -> list[str]:
        return []

    def get_historical_data(
        self,
        symbol: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        inst = self._registry.resolve(symbol)
        if inst.kind is AssetClass.STOCK:
            return self._stocks.get_historical_data(symbol, start_date, end_date, interval)
        frame = self._scaled.get_historical_data(symbol, start_date, end_date, interval).copy()
        prices = ["Open", "High", "Low", "Close"]
        if inst.kind is AssetClass.FOREX:
            frame[prices] = frame[prices] * (1.08 / 5000.0)
            frame["Volume"] = 0.0  # forex has no trade volume
        else:
            frame["Volume"] = (frame["Volume"] // 1000).clip(lower=1)  # whole contracts
        for column in prices:
            frame[column] = [inst.round_price(p) for p in frame[column]]
        frame["High"] = frame[prices].max(axis=1)
        frame["Low"] = frame[prices].min(axis=1)
        return frame
