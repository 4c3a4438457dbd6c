"""The data source of the futures/forex gateway tests: the synthetic provider's futures chains (on the
tick grid, whole-contract volumes, CME sessions) and forex pairs (midpoints, no volume), from September
2026, so the December 2026 contracts are the front month when the tests' replays start."""

from __future__ import annotations

from copilot_quant.data.synthetic import SyntheticDataProvider


class FutFxFeed(SyntheticDataProvider):
    def __init__(self, start: str = "2026-09-01", periods: int = 60, seed: int = 5) -> None:
        super().__init__(seed=seed, start=start, periods=periods)
