"""The volume participation rule (the former path, kept for existing imports).

It lives in :mod:`copilot_quant.model.participation`, shared by the backtest and the simulated gateway;
these are the same objects.
"""

from copilot_quant.model.participation import (
    VolumeAllowance,
    bar_allowance,
    check_volume_limit,
    fill_size,
    is_whole,
)

__all__ = [
    "VolumeAllowance",
    "bar_allowance",
    "check_volume_limit",
    "fill_size",
    "is_whole",
]
