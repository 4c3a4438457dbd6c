"""Connection-level messages: handshake, START_API, managed accounts, next valid id, current time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from copilot_quant.gateway.messages.ids import Fields, Out
from copilot_quant.gateway.wire import FieldReader, FrameError

__all__ = [
    "Handshake",
    "current_time",
    "handshake_reply",
    "managed_accounts",
    "next_valid_id",
    "parse_handshake",
    "parse_start_api",
]

_VERSIONS = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$", re.DOTALL)
_EASTERN = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class Handshake:
    """The client's proposal: ``v<min>..<max>[ options]``."""

    min_version: int
    max_version: int
    options: str = ""


def parse_handshake(payload: bytes) -> Handshake:
    """Parse the framed version proposal that follows ``API\\0``; :class:`FrameError` if it is not one."""
    try:
        text = payload.decode().rstrip("\0")
    except UnicodeDecodeError:
        raise FrameError("handshake is not UTF-8 text") from None
    match = _VERSIONS.match(text)
    if match is None:
        raise FrameError(f"expected a version proposal such as 'v157..178', got {text[:40]!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if high < low:
        raise FrameError(f"version range {low}..{high} is empty")
    return Handshake(low, high, (match.group(3) or "").strip())


def handshake_reply(version: int, now: datetime) -> Fields:
    """Exactly two fields, ``serverVersion, connectionTime`` (time as TWS writes it, in New York time)."""
    local = now.astimezone(_EASTERN)
    return [version, f"{local:%Y%m%d %H:%M:%S} {local.tzname()}"]


def parse_start_api(reader: FieldReader) -> int:
    """``71, 2, clientId, optionalCapabilities`` → the client id."""
    reader.int()  # version
    client_id = reader.int()
    if reader.remaining:
        reader.str()  # optional capabilities, empty for ib_async
    return client_id


def managed_accounts(accounts: list[str]) -> Fields:
    """Exactly 3 fields: ib_async reads this strictly before the API is ready."""
    return [Out.MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> Fields:
    """Exactly 3 fields, like managedAccounts."""
    return [Out.NEXT_VALID_ID, 1, order_id]


def current_time(epoch_seconds: int) -> Fields:
    return [Out.CURRENT_TIME, 1, epoch_seconds]
