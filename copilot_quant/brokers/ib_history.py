"""IB historical bars: one paced, retried request, and a clear warning when a range comes back empty."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import pandas as pd
from ib_async import IB, BarDataList, Contract, RequestError

from copilot_quant.brokers.ib_contracts import bar_kind
from copilot_quant.brokers.pacing import HistoricalPacer
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.errors import DataError, DataUnavailableError, UnknownSymbolError

__all__ = ["request_bars", "warn_no_bars"]

log = logging.getLogger(__name__)

_PACING_RETRIES = 3
_NO_DATA = 162
_NO_SECURITY = 200


def _new_york(stamp: pd.Timestamp) -> str:
    return f"{stamp.tz_convert(EXCHANGE_TZ):%Y-%m-%d %H:%M}"


def warn_no_bars(
    symbol: str,
    interval: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    *,
    answer: pd.DataFrame,
    ib_said: str,
) -> None:
    """Say why a history request came back empty (the empty frame itself is a valid answer, not an error)."""
    wanted = (
        f"{_new_york(lo) if lo is not None else 'the first bar'} to "
        f"{_new_york(hi) if hi is not None else 'now'} (New York time)"
    )
    if ib_said:
        why = ib_said
    elif answer.empty:
        why = "IB returned no bars"
    elif lo is not None and lo > answer.index[-1] and (hi is None or hi >= pd.Timestamp.now(tz="UTC")):
        # Asked up to now, and IB's newest bar is older than the start: the source's clock is behind.
        why = (
            f"IB's data ends at {_new_york(answer.index[-1])} (the {len(answer)} bars it returned start at "
            f"{_new_york(answer.index[0])}); a simulated gateway serves data only up to its market time"
        )
    else:
        why = (
            f"the {len(answer)} bars IB returned cover {_new_york(answer.index[0])} to "
            f"{_new_york(answer.index[-1])}, none in that range"
        )
    log.warning(
        "no %s bars for %s from %s: %s; check the date range and the symbol", interval, symbol, wanted, why
    )


async def request_bars(  # noqa: PLR0917 - IB's request fields, in IB's order
    ib: IB,
    pacer: HistoricalPacer,
    contract: Contract,
    end: datetime | str,
    duration: str,
    bar_size: str,
    *,
    keep_up_to_date: bool,
    request_timeout: float,
) -> tuple[BarDataList, str]:
    """IB's TRADES bars (regular hours, UTC stamps; a forex pair's MIDPOINT bars, as it has no trades),
    and IB's message when it answered "no data" (error 162; the bars are then empty). Paced by ``pacer``;
    a pacing violation is retried with backoff."""
    request = (contract.conId, str(end), duration, bar_size, keep_up_to_date)
    for attempt in range(_PACING_RETRIES + 1):
        wait = pacer.reserve(contract.conId, request)
        if wait > 0:
            log.info("pacing: waiting %.1fs before requesting %s %s", wait, contract.symbol, bar_size)
            await asyncio.sleep(wait)
        started = time.monotonic()
        try:
            bars = await ib.reqHistoricalDataAsync(
                contract,
                end,
                duration,
                bar_size,
                bar_kind(contract),
                useRTH=True,
                formatDate=2,
                keepUpToDate=keep_up_to_date,
                timeout=request_timeout,
            )
        except RequestError as exc:
            text = exc.message.lower()
            if exc.code == _NO_DATA and "pacing" in text and attempt < _PACING_RETRIES:
                log.warning("IB pacing violation for %s; retrying", contract.symbol)
                await asyncio.sleep(pacer.violation_backoff * (attempt + 1))
                continue
            if exc.code == _NO_DATA and "no data" in text:
                return BarDataList(), f"IB error {exc.code}: {exc.message}"
            if exc.code == _NO_SECURITY:
                raise UnknownSymbolError(f"IB knows no US stock {contract.symbol!r}") from None
            raise DataError(
                f"IB refused the {bar_size} history of {contract.symbol}: error {exc.code} {exc.message}"
            ) from None
        if not bars and time.monotonic() - started >= request_timeout * 0.95:
            raise DataUnavailableError(
                f"IB did not answer the {bar_size} history request for {contract.symbol} within "
                f"{request_timeout:.0f}s; retry later or raise request_timeout"
            )
        return bars, ""
    raise DataUnavailableError(f"IB kept refusing {contract.symbol} history for pacing; retry later")
