"""The API versions the gateway serves, and the version gates of the fields it reads and writes.

The handshake settles one server version per connection (``min(client max, SERVER_VERSION)``); from then
on both directions use that version's layouts. A real TWS serves every version back to 100; the simulator
serves :data:`MIN_SERVER_VERSION` .. :data:`SERVER_VERSION` (ib_async's and ib_insync's whole range, IB's
own client from 10.19) and refuses anything older with IB's "Unsupported version" error.

Each gate below is the first version with the field, under the name of the feature IB's client gives it
(``server_versions.py`` of IB's API); only the gates inside the served range matter. Versions 159 and 175
also changed the unit of market-data and historical sizes for some contracts (shares rather than lots); the
simulator always reports shares.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ADVANCED_ORDER_REJECT",
    "AUTO_CANCEL_PARENT",
    "BOND_ISSUERID",
    "DURATION",
    "FA_PROFILE_DESUPPORT",
    "FRACTIONAL_SIZE_SUPPORT",
    "MANUAL_ORDER_TIME",
    "MIN_SERVER_VERSION",
    "PEGBEST_PEGMID_OFFSETS",
    "PENDING_PRICE_REVISION",
    "POST_TO_ATS",
    "SERVER_VERSION",
    "SIZE_RULES",
]

#: The newest version served: ib_async's maximum, and the last one before protobuf framing (201+).
SERVER_VERSION: Final = 178
#: The oldest version served: the minimum ib_async and ib_insync propose (``v157..``).
MIN_SERVER_VERSION: Final = 157

DURATION: Final = 158  # order duration (openOrder, completedOrder, placeOrder)
POST_TO_ATS: Final = 160  # order postToAts
AUTO_CANCEL_PARENT: Final = 162  # order autoCancelParent
FRACTIONAL_SIZE_SUPPORT: Final = 163  # contractDetails sizeMinTick (163 only)
SIZE_RULES: Final = 164  # contractDetails: no version field, minSize/sizeIncrement/suggestedSizeIncrement
ADVANCED_ORDER_REJECT: Final = 166  # error advancedOrderRejectJson; placeOrder advancedErrorOverride
MANUAL_ORDER_TIME: Final = 169  # placeOrder manualOrderTime; cancelOrder manualOrderCancelTime
PEGBEST_PEGMID_OFFSETS: Final = 170  # order minTradeQty, minCompeteSize, ... midOffsetAtHalf
BOND_ISSUERID: Final = 176  # reqContractDetails issuerId
FA_PROFILE_DESUPPORT: Final = 177  # faProfile leaves openOrder, completedOrder and placeOrder
PENDING_PRICE_REVISION: Final = 178  # execDetails pendingPriceRevision
