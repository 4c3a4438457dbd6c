"""What an IB error code on an order means for the order: a note, a refused cancel, or a rejection.

ib_async (2.1) treats every code outside its warning list as fatal for the order and marks the Trade
``Cancelled`` itself. Real TWS sends more informational codes than that list knows (10349 "TIF was set to
DAY based on order preset" on newer TWS) — the order keeps working at IB and can fill. The project keeps its
own list, :data:`INFORMATIONAL_ORDER_CODES`; an order is finished only by IB's own terminal status.

Two ib_async "warnings" are rejections of a *new* order (one IB has not acknowledged yet):
321 (the API is in read-only mode, or the request failed validation) and 110 (the price is off the
contract's tick grid). They get a named reason (:func:`rejection_reason`).
"""

from __future__ import annotations

__all__ = [
    "CANCEL_REFUSED",
    "INFORMATIONAL_ORDER_CODES",
    "ORDER_CANCELLED",
    "ORDER_WARNING_CODES",
    "PRICE_OFF_TICK",
    "READ_ONLY_API",
    "is_informational",
    "is_warning",
    "refuses_modification",
    "rejection_reason",
]

#: ib_async's warning list (tws-protocol-notes §10): the order stays live after these.
ORDER_WARNING_CODES = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})

#: Codes real TWS sends about an order that keeps working. ib_async does not know them and cancels the
#: Trade locally; the project ignores that local cancel. Add codes here as IB introduces them.
INFORMATIONAL_ORDER_CODES = frozenset(
    {
        399,  # order message: e.g. "will not be placed at the exchange until ..." (order held until open)
        404,  # shares not immediately available for short sale: held while IB locates them
        10349,  # "Order TIF was set to DAY based on order preset" (newer TWS)
    }
)

ORDER_CANCELLED = 202
#: IB's answers to a cancel request that came too late or for an order it no longer works (10147 not
#: found, 10148 cannot be cancelled (filled), 161 not in a cancellable state): they are about the request,
#: not the order, whose own status and execution reports decide how it ended.
CANCEL_REFUSED = frozenset({161, 10147, 10148})

READ_ONLY_API = 321
PRICE_OFF_TICK = 110

_NAMED_REJECTIONS = {
    READ_ONLY_API: (
        "IB refused the order (321): the API is in read-only mode or the request failed validation; "
        "in TWS/IB Gateway untick 'Read-Only API' (Configure > API > Settings) and check the order fields"
    ),
    PRICE_OFF_TICK: (
        "IB refused the order (110): its price is not on the contract's tick grid (minimum price "
        "increment); round the limit/stop price to the tick size"
    ),
}


def is_warning(code: int) -> bool:
    """A code ib_async and IB treat as a warning about an order (it stays live)."""
    return code in ORDER_WARNING_CODES or 2100 <= code < 2200


def is_informational(code: int) -> bool:
    """A code that never changes an order's status (a warning or a known informational message)."""
    return code in INFORMATIONAL_ORDER_CODES or (is_warning(code) and code not in _NAMED_REJECTIONS)


def rejection_reason(code: int, message: str) -> str | None:
    """The named reason for a code that rejects a new order (321, 110), or None."""
    named = _NAMED_REJECTIONS.get(code)
    return None if named is None else f"{named} (IB: {message})"


def refuses_modification(code: int) -> bool:
    """Whether ``code``, about an order whose modification is outstanding, refuses that modification: every
    code but IB's informational ones (104 "Can't modify a filled order", 105 "Order being modified does not
    match original order", 103, 201, 110 ...). The order itself keeps working with its earlier terms. Not
    202 (the order was cancelled) nor the answers to a cancel request: they are about the order or the cancel."""
    if code == ORDER_CANCELLED or code in CANCEL_REFUSED:
        return False
    return code not in INFORMATIONAL_ORDER_CODES and not 2100 <= code < 2200
