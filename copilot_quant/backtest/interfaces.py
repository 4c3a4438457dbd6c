"""The two narrow ports, ``IDataFeed`` and ``IBroker`` (the guide's import path).

They live in :mod:`copilot_quant.model.ports` (and the bar shape in :mod:`copilot_quant.model.bars`), at the
bottom of the tree where ``data/`` and ``risk/`` can use them; these are the same objects.
"""

from copilot_quant.model.bars import BAR_COLUMNS, SUPPORTED_INTERVALS, combine_symbols
from copilot_quant.model.ports import IBroker, IDataFeed

__all__ = ["BAR_COLUMNS", "SUPPORTED_INTERVALS", "IBroker", "IDataFeed", "combine_symbols"]
