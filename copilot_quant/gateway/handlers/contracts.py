"""reqContractDetails (9) → contractDetails (10) + contractDetailsEnd (52); unknown → error 200, no end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot_quant.gateway.messages.contracts import (
    contract_details,
    contract_details_end,
    parse_contract_details_request,
)
from copilot_quant.gateway.messages.errors import Code
from copilot_quant.gateway.messages.ids import In
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.client import ClientSession


def req_contract_details(session: ClientSession, reader: FieldReader) -> None:
    """Every matching contract (a futures root without a month lists its chain), then the end marker."""
    request = parse_contract_details_request(reader)
    found = session.core.resolve_all(request.contract, include_expired=request.include_expired)
    if not found:
        session.send_error(
            request.req_id,
            Code.NO_SECURITY_DEFINITION,
            f"No security definition has been found for the request ({request.contract.describe()})",
        )
        return
    trading, liquid = session.core.trading_hours()
    for info in found:
        # futures and pairs carry their own exchange's hours; stocks the market's
        described = info.with_hours(trading, liquid) if info.sec_type == "STK" else info
        session.send(contract_details(request.req_id, described, session.server_version))
    session.send(contract_details_end(request.req_id))


HANDLERS = {In.REQ_CONTRACT_DETAILS: req_contract_details}
