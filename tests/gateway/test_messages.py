"""Golden tests: ib_async's own decoder reads every message the gateway's codec modules produce."""

from __future__ import annotations

import datetime as dt

import pytest
from copilot_quant.gateway.contracts import ContractInfo, parse_contract12
from copilot_quant.gateway.messages import connection, contracts, errors, historical, market_data
from copilot_quant.gateway.messages.historical import HistoricalBar
from copilot_quant.gateway.testing import decode_with_ib_async
from copilot_quant.gateway.wire import FieldReader, FrameError, encode_fields, split_fields


def test_error_message_carries_the_advanced_reject_field():
    result = decode_with_ib_async(errors.error(7, 200, "No security definition"))
    assert result.errors == []
    assert result.only("error") == (7, 200, "No security definition", "")


def test_managed_accounts_and_next_valid_id_have_exactly_three_fields():
    assert len(connection.managed_accounts(["DU1"])) == 3
    assert len(connection.next_valid_id(5)) == 3
    assert decode_with_ib_async(connection.next_valid_id(5)).only("nextValidId") == (5,)
    assert decode_with_ib_async(connection.managed_accounts(["DU1", "DU2"])).only("managedAccounts") == (
        "DU1,DU2",
    )


def test_handshake_reply_is_two_fields_with_a_new_york_time():
    reply = connection.handshake_reply(178, dt.datetime(2024, 1, 5, 15, 0, tzinfo=dt.UTC))
    assert reply == [178, "20240105 10:00:00 EST"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v157..178", (157, 178, "")), ("v100..226 +PACEAPI", (100, 226, "+PACEAPI")), ("v176", (176, 176, ""))],
)
def test_parse_handshake(text, expected):
    hs = connection.parse_handshake(text.encode())
    assert (hs.min_version, hs.max_version, hs.options) == expected


@pytest.mark.parametrize("text", ["", "157..178", "vx..y", "v178..100"])
def test_parse_handshake_rejects_garbage(text):
    with pytest.raises(FrameError):
        connection.parse_handshake(text.encode())


def test_current_time_decodes():
    assert decode_with_ib_async(connection.current_time(1700000000)).only("currentTime") == (1700000000,)


def test_contract_details_decode_completely_with_escaped_long_name():
    info = ContractInfo.for_symbol("AAPL").with_hours(
        "20240105:0400-20240105:2000", "20240105:0930-20240105:1600"
    )
    info = ContractInfo(**{**{f: getattr(info, f) for f in info.__slots__}, "long_name": "Caf\u00e9 \\ Co"})
    result = decode_with_ib_async(contracts.contract_details(3, info))
    assert result.errors == []
    req_id, cd = result.only("contractDetails")
    assert req_id == 3
    assert cd.contract.conId == 265598
    assert cd.contract.primaryExchange == "NASDAQ"
    assert cd.longName == "Caf\u00e9 \\ Co"
    assert cd.minTick == 0.01
    assert cd.timeZoneId == "US/Eastern"
    assert cd.stockType == "COMMON"
    assert cd.liquidHours.endswith("1600")
    assert decode_with_ib_async(contracts.contract_details_end(3)).only("contractDetailsEnd") == (3,)


def test_tick_messages_decode_to_the_wrapper_calls():
    price = decode_with_ib_async(market_data.tick_price(4, 1, 190.25, 300))
    assert price.only("priceSizeTick") == (4, 1, 190.25, 300.0)
    assert len(market_data.tick_price(4, 1, 190.25, 300)) == 7
    assert decode_with_ib_async(market_data.tick_size(4, 8, 1200)).only("tickSize") == (4, 8, 1200.0)
    assert decode_with_ib_async(market_data.market_data_type(4, 3)).only("marketDataType") == (4, 3)
    assert decode_with_ib_async(market_data.tick_req_params(4, 0.01)).only("tickReqParams") == (
        4,
        0.01,
        "9c0001",
        3,
    )
    assert decode_with_ib_async(market_data.tick_snapshot_end(4)).only("tickSnapshotEnd") == (4,)
    assert decode_with_ib_async(market_data.tick_string(4, 45, "1700000000")).only("tickString") == (
        4,
        45,
        "1700000000",
    )


def test_real_time_bar_decodes():
    fields = market_data.real_time_bar(9, 1700000000, 1.0, 2.0, 0.5, 1.5, 1000, 1.2, 10)
    assert decode_with_ib_async(fields).only("realtimeBar") == (
        9,
        1700000000,
        1.0,
        2.0,
        0.5,
        1.5,
        1000.0,
        1.2,
        10,
    )


def test_historical_data_and_update_decode():
    bars = [
        HistoricalBar("20240104", 10.0, 11.0, 9.0, 10.5, 1000, 10.2, 10),
        HistoricalBar("20240105", 10.5, 12.0, 10.0, 11.5, 2000, 11.2, 20),
    ]
    result = decode_with_ib_async(historical.historical_data(5, "a", "b", bars))
    assert result.errors == []
    decoded = [args[1] for name, args in result.calls if name == "historicalData"]
    assert [(b.date, b.open, b.high, b.low, b.close, b.volume) for b in decoded] == [
        ("20240104", 10.0, 11.0, 9.0, 10.5, 1000.0),
        ("20240105", 10.5, 12.0, 10.0, 11.5, 2000.0),
    ]
    assert result.only("historicalDataEnd") == (5, "a", "b")
    (req_id, bar) = decode_with_ib_async(historical.historical_update(5, bars[1])).only(
        "historicalDataUpdate"
    )
    assert req_id == 5
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.average) == (
        10.5,
        12.0,
        10.0,
        11.5,
        2000.0,
        11.2,
    )
    assert decode_with_ib_async(historical.head_timestamp(5, "20000103 09:30:00 US/Eastern")).only(
        "headTimestamp"
    ) == (
        5,
        "20000103 09:30:00 US/Eastern",
    )


def test_request_parsers_read_what_ib_async_sends():
    contract12 = ["0", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", ""]
    reader = FieldReader(["8", "4", *contract12, "0", "", "", ""])
    request = contracts.parse_contract_details_request(reader)
    assert request.req_id == 4
    assert request.contract.symbol == "AAPL"
    assert request.contract.exchange == "SMART"
    reader = FieldReader(["11", "9", *contract12, "0", "", "1", "0", ""])
    mkt = market_data.parse_mkt_data_request(reader)
    assert (mkt.req_id, mkt.snapshot, mkt.contract.currency) == (9, True, "USD")
    hist = historical.parse_historical_request(
        FieldReader(["12", *contract12, "0", "", "1 day", "5 D", "1", "TRADES", "1", "1", ""])
    )
    assert (hist.req_id, hist.bar_size, hist.duration, hist.keep_up_to_date) == (12, "1 day", "5 D", True)
    rtb = market_data.parse_real_time_bars_request(
        FieldReader(["3", "2", *contract12, "5", "MIDPOINT", "0", ""])
    )
    assert (rtb.req_id, rtb.bar_size, rtb.what_to_show) == (2, 5, "MIDPOINT")


def test_contract12_roundtrip_through_the_wire_format():
    payload = encode_fields([265598, "aapl", "STK", "", 0.0, "", "", "SMART", "NASDAQ", "USD", "AAPL", "NMS"])
    request = parse_contract12(FieldReader(split_fields(payload)))
    assert (request.con_id, request.symbol, request.primary_exchange, request.trading_class) == (
        265598,
        "AAPL",
        "NASDAQ",
        "NMS",
    )
