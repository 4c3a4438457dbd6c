"""The error message (4) and the codes the gateway sends, with what each means to ib_async."""

from __future__ import annotations

from enum import IntEnum

from copilot_quant.gateway.messages import versions as sv
from copilot_quant.gateway.messages.ids import Fields, Out

__all__ = ["NO_REQUEST", "Code", "error"]

#: reqId of messages that belong to no request (farm status, connectivity, 326).
NO_REQUEST = -1


class Code(IntEnum):
    """IB error codes the gateway emits (ib_async treats 2100-2199 and 321 as warnings)."""

    MAX_TICKERS = 101
    HMDS = 162  # pacing violation, no data, query cancelled
    NO_SECURITY_DEFINITION = 200
    ORDER_REJECTED = 201
    ORDER_CANCELLED = 202
    UNKNOWN_TICKER_ID = 300
    VALIDATION = 321
    PROCESSING = 322
    CLIENT_ID_IN_USE = 326
    CONNECTIVITY_LOST = 1100
    RESTORED_DATA_LOST = 1101
    RESTORED_DATA_KEPT = 1102
    MARKET_FARM_BROKEN = 2103
    MARKET_FARM_OK = 2104
    HMDS_FARM_BROKEN = 2105
    HMDS_FARM_OK = 2106
    SECDEF_FARM_OK = 2158
    UNSUPPORTED_VERSION = 506
    COMPETING_SESSION = 10197


#: Default texts, as real TWS words them.
MESSAGES: dict[int, str] = {
    Code.CLIENT_ID_IN_USE: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    Code.NO_SECURITY_DEFINITION: "No security definition has been found for the request",
    Code.CONNECTIVITY_LOST: "Connectivity between IB and Trader Workstation has been lost.",
    Code.RESTORED_DATA_LOST: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    Code.RESTORED_DATA_KEPT: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    Code.MARKET_FARM_BROKEN: "Market data farm connection is broken:usfarm",
    Code.MARKET_FARM_OK: "Market data farm connection is OK:usfarm",
    Code.HMDS_FARM_BROKEN: "HMDS data farm connection is broken:ushmds",
    Code.HMDS_FARM_OK: "HMDS data farm connection is OK:ushmds",
    Code.SECDEF_FARM_OK: "Sec-def data farm connection is OK:secdefil",
    Code.COMPETING_SESSION: "No market data during competing live session",
}


def error(req_id: int, code: int, message: str | None = None, version: int = sv.SERVER_VERSION) -> Fields:
    """``4, 2, reqId, code, message[, advancedOrderRejectJson]`` (the last field from server version 166,
    where ib_async's strict unpacking needs it; an older client would read it as the next message)."""
    text = MESSAGES.get(code, "") if message is None else message
    fields: Fields = [Out.ERR_MSG, 2, req_id, int(code), text]
    if version >= sv.ADVANCED_ORDER_REJECT:
        fields.append("")
    return fields
