"""Contracts, historical bars, market data and real-time bars through the real ib_async client."""

from __future__ import annotations

import datetime as dt

import pytest
from copilot_quant.gateway.testing import connected_ib
from ib_async import Stock

pytestmark = pytest.mark.timeout(60)


def test_qualify_contracts_fills_in_the_real_conid_and_details(ib):
    aapl = Stock("AAPL", "SMART", "USD")
    (qualified,) = ib.qualifyContracts(aapl)
    assert qualified.conId == 265598
    assert qualified.primaryExchange == "NASDAQ"
    (details,) = ib.reqContractDetails(Stock("IBM", "SMART", "USD"))
    assert details.contract.conId == 8314
    assert details.minTick == 0.01
    assert details.timeZoneId == "US/Eastern"
    assert details.stockType == "COMMON"
    assert details.longName
    assert "CLOSED" in details.tradingHours or "-" in details.tradingHours


def test_unknown_symbol_gives_error_200_and_none(ib):
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    assert ib.qualifyContracts(Stock("NOPE", "SMART", "USD")) == [None]
    assert 200 in errors


def test_daily_history_ends_with_the_last_closed_bar_and_never_the_future(gateway, ib):
    aapl = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(aapl)
    bars = ib.reqHistoricalData(aapl, "", "5 D", "1 day", "TRADES", True)
    assert len(bars) == 5
    assert all(isinstance(b.date, dt.date) for b in bars)
    last_close_day = gateway.clock.now.tz_convert("America/New_York").date()
    assert bars[-1].date == last_close_day
    gateway.clock.step()
    after = ib.reqHistoricalData(aapl, "", "5 D", "1 day", "TRADES", True)
    assert after[-1].date > last_close_day
    assert after[-1].date == gateway.clock.now.tz_convert("America/New_York").date()


def test_history_with_an_end_date_returns_bars_up_to_that_date(ib):
    msft = Stock("MSFT", "SMART", "USD")
    ib.qualifyContracts(msft)
    bars = ib.reqHistoricalData(
        msft, dt.datetime(2012, 6, 29, 23, 0, tzinfo=dt.UTC), "1 M", "1 day", "TRADES", True
    )
    assert 18 <= len(bars) <= 23
    assert bars[-1].date == dt.date(2012, 6, 29)


def test_intraday_history_is_dated_by_bar_start_in_new_york_time(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        aapl = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(aapl)
        bars = ib.reqHistoricalData(aapl, "", "1800 S", "5 mins", "TRADES", True, formatDate=1)
        assert bars
        first = bars[0].date
        assert isinstance(first, dt.datetime)
        assert first.tzinfo is not None
        assert first.astimezone(dt.UTC).minute % 5 == 0
        last_start = bars[-1].date.astimezone(dt.UTC)
        assert last_start + dt.timedelta(minutes=5) <= minute_gateway.clock.now.to_pydatetime()
        epoch_bars = ib.reqHistoricalData(aapl, "", "1800 S", "5 mins", "TRADES", True, formatDate=2)
        assert [b.date for b in epoch_bars] == [b.date.astimezone(dt.UTC) for b in bars]


def test_midpoint_history_has_no_volume(ib):
    ibm = Stock("IBM", "SMART", "USD")
    ib.qualifyContracts(ibm)
    bars = ib.reqHistoricalData(ibm, "", "3 D", "1 day", "MIDPOINT", True)
    assert len(bars) == 3
    assert all(b.volume == -1 for b in bars)


def test_invalid_bar_size_is_a_validation_error_and_returns_nothing(ib):
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    ibm = Stock("IBM", "SMART", "USD")
    ib.qualifyContracts(ibm)
    assert len(ib.reqHistoricalData(ibm, "", "3 D", "7 mins", "TRADES", True)) == 0
    assert 321 in codes


def test_intraday_request_on_daily_only_data_returns_no_data_162(ib):
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    ibm = Stock("IBM", "SMART", "USD")
    ib.qualifyContracts(ibm)
    assert len(ib.reqHistoricalData(ibm, "", "1 D", "1 min", "TRADES", True)) == 0
    assert 162 in codes


def test_keep_up_to_date_appends_a_bar_per_clock_step(gateway, ib):
    aapl = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(aapl)
    bars = ib.reqHistoricalData(aapl, "", "5 D", "1 day", "TRADES", True, keepUpToDate=True)
    count = len(bars)
    gateway.clock.step(2)
    ib.sleep(0.2)
    assert len(bars) == count + 2
    replayed = gateway.core.market.replayed_frame("AAPL")
    assert bars[-1].close == pytest.approx(replayed["Close"].iloc[-1])
    assert bars[-1].open == pytest.approx(replayed["Open"].iloc[-1])
    ib.cancelHistoricalData(bars)


def test_keep_up_to_date_minute_bars_extend_the_forming_five_minute_bar(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        aapl = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(aapl)
        bars = ib.reqHistoricalData(aapl, "", "3600 S", "5 mins", "TRADES", True, keepUpToDate=True)
        before = len(bars)
        minute_gateway.clock.step(5)
        ib.sleep(0.2)
        assert before < len(bars) <= before + 2
        assert bars[-1].high >= max(bars[-1].open, bars[-1].close)


def test_head_timestamp_is_the_first_session_of_the_data(ib):
    ibm = Stock("IBM", "SMART", "USD")
    ib.qualifyContracts(ibm)
    head = ib.reqHeadTimeStamp(ibm, "TRADES", True, formatDate=1)
    assert head.year == 2000


def test_streaming_market_data_follows_the_clock(gateway, ib):
    aapl = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(aapl)
    ticker = ib.reqMktData(aapl)
    ib.sleep(0.1)
    assert ticker.last == pytest.approx(gateway.core.market.quotes["AAPL"].last)
    assert ticker.marketDataType == 1
    assert ticker.minTick == 0.01
    (bar,) = [b for b in gateway.clock.step() if b.symbol == "AAPL"]
    ib.sleep(0.2)
    assert ticker.last == pytest.approx(bar.close)
    assert ticker.bid <= ticker.ask
    assert ticker.high == pytest.approx(bar.high)
    assert ticker.low == pytest.approx(bar.low)
    assert ticker.volume > 0
    ib.cancelMktData(aapl)
    ib.sleep(0.1)
    assert gateway.call(lambda: dict(gateway.core.session_for(1).subs.market_data)) == {}


def test_snapshot_ends_with_tick_snapshot_end(ib):
    msft = Stock("MSFT", "SMART", "USD")
    ib.qualifyContracts(msft)
    (ticker,) = ib.reqTickers(msft)
    assert ticker.last > 0
    assert ticker.close > 0


def test_delayed_market_data_type_uses_delayed_ticks(gateway, ib):
    ib.reqMarketDataType(3)
    ibm = Stock("IBM", "SMART", "USD")
    ib.qualifyContracts(ibm)
    ticker = ib.reqMktData(ibm)
    ib.sleep(0.1)
    gateway.clock.step()
    ib.sleep(0.2)
    assert ticker.marketDataType == 3
    assert ticker.last > 0
    assert {t.tickType for t in ticker.ticks} & {68, 66, 67}


def test_a_fixed_quote_spread_puts_bid_below_ask(sample_feed):
    from copilot_quant.gateway.testing import running_gateway
    from copilot_quant.model.costs import NoSlippage

    # a price distance shown in the quotes only: with a slippage model that carries no spread model
    with running_gateway(data=sample_feed, spread=0.02, slippage=NoSlippage()) as gw, connected_ib(gw) as ib:
        aapl = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(aapl)
        ticker = ib.reqMktData(aapl)
        gw.clock.step()
        ib.sleep(0.2)
        assert ticker.ask - ticker.bid == pytest.approx(0.02)


def test_real_time_bars_arrive_with_each_step(gateway, ib):
    goog = Stock("GOOG", "SMART", "USD")
    ib.qualifyContracts(goog)
    bars = ib.reqRealTimeBars(goog, 5, "TRADES", False)
    ib.sleep(0.1)  # the subscription has no reply; let the gateway register it before the market moves
    gateway.clock.step(3)
    ib.sleep(0.2)
    assert len(bars) == 3
    assert all(b.time.second % 5 == 0 for b in bars)
    assert bars[-1].close == pytest.approx(gateway.core.market.quotes["GOOG"].last)
    ib.cancelRealTimeBars(bars)


def test_pacing_rejects_an_identical_request_within_15_seconds(sample_feed):
    from copilot_quant.gateway.testing import running_gateway

    with running_gateway(data=sample_feed, pacing=True) as gw, connected_ib(gw) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
        aapl = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(aapl)
        assert len(ib.reqHistoricalData(aapl, "", "5 D", "1 day", "TRADES", True)) == 5
        assert len(ib.reqHistoricalData(aapl, "", "5 D", "1 day", "TRADES", True)) == 0
        assert 162 in codes
