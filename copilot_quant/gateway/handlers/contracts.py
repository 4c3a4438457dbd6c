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
    request = parse_contract_details_request(reader)
    info = session.core.resolve(request.contract)
    if info is None:
        session.send_error(
            request.req_id,
            Code.NO_SECURITY_DEFINITION,
            f"No security definition has been found for the request ({request.contract.describe()})",
        )
        return
    trading, liquid = session.core.trading_hours()
    session.send(contract_details(request.req_id, info.with_hours(trading, liquid), session.server_version))
    session.send(contract_details_end(request.req_id))


HANDLERS = {In.REQ_CONTRACT_DETAILS: req_contract_details}
