"""Automatic order ids: ``O1``, ``O2`` ... in every process, and how a restarted engine moves them past the ids
its journal holds (:func:`continue_order_ids_after`, re-exported by :mod:`copilot_quant.model.orders`).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable

__all__ = ["continue_order_ids_after", "next_order_id"]

_ORDER_IDS = itertools.count(1)
_ORDER_IDS_LOCK = threading.Lock()  # the live engine's threads create orders too
_AUTO_ID = re.compile(r"O(\d+)")


def next_order_id() -> str:
    with _ORDER_IDS_LOCK:
        return f"O{next(_ORDER_IDS)}"


def continue_order_ids_after(order_ids: Iterable[str | None]) -> None:
    """Make automatic order ids (``O1``, ``O2`` ...) continue after the highest ``O<n>`` in ``order_ids``.

    Automatic ids count from ``O1`` in every process. The live engine calls this with the ids its journal
    holds, so that after a restart a new order never shares its id with an order adopted from IB
    (``strategy.cancel("O3")`` names one order). Ids never go back: a lower number changes nothing.
    """
    global _ORDER_IDS  # noqa: PLW0603 - the process-wide id sequence; only ever moved forward
    highest = max((int(m[1]) for i in order_ids if i and (m := _AUTO_ID.fullmatch(i))), default=0)
    with _ORDER_IDS_LOCK:
        upcoming = next(_ORDER_IDS)
        _ORDER_IDS = itertools.count(max(upcoming, highest + 1))
