"""Commission and slippage models (the former path, kept for existing imports).

They live in :mod:`copilot_quant.model.costs`, shared by the backtest and the simulated gateway; these are
the same objects.
"""

from copilot_quant.model.costs import (
    CommissionModel,
    CostBreakdown,
    FixedSlippage,
    NoSlippage,
    PercentCommission,
    PercentSlippage,
    PerShareCommission,
    SlippageModel,
    ZeroCommission,
    commission_model,
    execution_commission,
    slippage_model,
)
from copilot_quant.model.fixed import FixedCommission, FixedRates
from copilot_quant.model.tiered import TieredCommission, TieredRates

__all__ = [
    "CommissionModel",
    "CostBreakdown",
    "FixedCommission",
    "FixedRates",
    "FixedSlippage",
    "NoSlippage",
    "PerShareCommission",
    "PercentCommission",
    "PercentSlippage",
    "SlippageModel",
    "TieredCommission",
    "TieredRates",
    "ZeroCommission",
    "commission_model",
    "execution_commission",
    "slippage_model",
]
