"""TWS API message ids, incoming (client → gateway) and outgoing (gateway → client), as ib_async 2.1.0 uses them."""

from __future__ import annotations

from enum import IntEnum

from copilot_quant.gateway.messages.versions import MIN_SERVER_VERSION, SERVER_VERSION

__all__ = ["MIN_CLIENT_VERSION", "SERVER_VERSION", "Fields", "In", "Out"]

#: The newest server version the gateway speaks, and the oldest (a client whose maximum is below it is
#: refused); every version between is served in its own layouts (see :mod:`.versions`).
MIN_CLIENT_VERSION = MIN_SERVER_VERSION

#: One outgoing message: its fields in order, message id first.
Fields = list[object]


class In(IntEnum):
    """Requests the gateway understands."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DETAILS = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_COMPLETED_ORDERS = 99


class Out(IntEnum):
    """Messages the gateway sends."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_STRING = 46
    CURRENT_TIME = 49
    REAL_TIME_BARS = 50
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    TICK_REQ_PARAMS = 81
    HEAD_TIMESTAMP = 88
    HISTORICAL_DATA_UPDATE = 90
    PNL = 94
    PNL_SINGLE = 95
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102
