"""Contract details: request 9 → contractDetails (10) per match, then contractDetailsEnd (52)."""

from __future__ import annotations

from dataclasses import dataclass

from copilot_quant.gateway.contracts import ContractInfo, ContractRequest, parse_contract12
from copilot_quant.gateway.messages import versions as sv
from copilot_quant.gateway.messages.ids import Fields, Out
from copilot_quant.gateway.wire import FieldReader

__all__ = [
    "ContractDetailsRequest",
    "contract_details",
    "contract_details_end",
    "escape_text",
    "parse_contract_details_request",
]


@dataclass(frozen=True, slots=True)
class ContractDetailsRequest:
    req_id: int
    contract: ContractRequest
    include_expired: bool = False


def parse_contract_details_request(reader: FieldReader) -> ContractDetailsRequest:
    """``9, 8, reqId, contract12, includeExpired, secIdType, secId[, issuerId]``."""
    reader.int()  # version
    req_id = reader.int()
    contract = parse_contract12(reader)
    include_expired = reader.bool() if reader.remaining else False
    reader.skip(min(reader.remaining, 3))  # secIdType, secId, issuerId: not modelled
    return ContractDetailsRequest(req_id, contract, include_expired)


def escape_text(text: str) -> str:
    """Text as TWS sends it from sv 153: non-ASCII as ``\\uXXXX`` and backslashes doubled.

    ib_async runs ``unicode-escape`` on longName, so an unescaped backslash would be mangled.
    """
    out = text.replace("\\", "\\\\")
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04x}" for c in out)


def contract_details(req_id: int, info: ContractInfo, version: int = sv.SERVER_VERSION) -> Fields:
    """contractDetails (10) in ``version``'s layout: below 164 a message version (8) after the id and the
    obsolete mdSizeMultiplier after minTick; at 163 one sizeMinTick instead of the three size rules of
    164+; nothing added after 178."""
    old = version < sv.SIZE_RULES
    head: Fields = [Out.CONTRACT_DATA, 8] if old else [Out.CONTRACT_DATA]
    fields = [
        *head,
        req_id,
        info.wire_symbol,
        info.sec_type,
        info.last_trade_date,  # lastTradeDateOrContractMonth (a future's last trade date)
        0.0,  # strike
        "",  # right
        info.exchange,
        info.currency,
        info.local_symbol or info.symbol,
        info.trading_class,  # marketName
        info.trading_class,
        info.con_id,
        info.min_tick,
        *([1] if old else []),  # mdSizeMultiplier
        info.multiplier,
        info.order_types,
        info.valid_exchanges,
        1,  # priceMagnifier
        0,  # underConId
        escape_text(info.long_name),
        info.primary_exchange,
        info.contract_month,
        info.industry,
        info.category,
        info.subcategory,
        info.time_zone_id,
        info.trading_hours,
        info.liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        info.ib_symbol if info.sec_type == "FUT" else "",  # underSymbol
        "IND" if info.sec_type == "FUT" else "",  # underSecType
        info.market_rule_ids,
        info.last_trade_date,  # realExpirationDate
        info.stock_type,
    ]
    if version == sv.FRACTIONAL_SIZE_SUPPORT:
        fields.append("1")  # sizeMinTick
    elif not old:
        # minSize, sizeIncrement, suggestedSizeIncrement: whole contracts and units; stocks suggest lots of 100
        fields += ["1", "1", "100" if info.sec_type == "STK" else "1"]
    return fields


def contract_details_end(req_id: int) -> Fields:
    return [Out.CONTRACT_DATA_END, 1, req_id]
