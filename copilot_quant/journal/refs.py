"""Order references: unique, sortable ids the journal issues and IB carries as ``orderRef``.

``cq-<account>-<ULID>``: the account makes a ref meaningless in another account's journal, the ULID
(48-bit millisecond time + 80 random bits, Crockford base 32) makes refs unique across processes and
restarts and sort roughly by creation time. The engine recognises its own orders at the broker by the
``cq-<account>-`` prefix.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

__all__ = ["REF_PREFIX", "is_journal_ref", "new_order_ref"]

REF_PREFIX = "cq"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(now: datetime) -> str:
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def new_order_ref(account: str, now: datetime | None = None) -> str:
    return f"{REF_PREFIX}-{account}-{_ulid(now or datetime.now(UTC))}"


def is_journal_ref(order_ref: str | None, account: str | None = None) -> bool:
    """Whether ``order_ref`` was issued by a copilot_quant journal (of ``account``, when given)."""
    if not order_ref:
        return False
    prefix = f"{REF_PREFIX}-{account}-" if account else f"{REF_PREFIX}-"
    return order_ref.startswith(prefix) and len(order_ref) >= len(prefix) + 26
