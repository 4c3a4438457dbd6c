"""The health of TWS's links, one by one: its link to IB (1100/1101/1102), to its server (2110), and
each data farm by name (2103-2108, 2157/2158).

TWS reports each farm separately ("Market data farm connection is broken:usfarm", "… is OK:usfarm.nj",
"Sec-def data farm connection is OK:secdefil"), and a farm that is OK says nothing about another, nor about
the link to IB: 1100 (IB link lost) is cleared only by 1101/1102, never by a farm OK. "Inactive" farms
(2107/2108) are available on demand: harmless. During IB's nightly maintenance farms flap for minutes,
so a broken farm degrades the connection but never tears the socket down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["FarmState", "LinkHealth"]

IB_LINK_LOST = 1100
IB_LINK_RESTORED = frozenset({1101, 1102})
SERVER_LINK_BROKEN = 2110
SOCKET_PORT_RESET = 1300


class FarmState(StrEnum):
    OK = "ok"
    BROKEN = "broken"
    INACTIVE = "inactive"  # available on demand: not a problem


#: code -> (the kind of farm, its state); the farm's name comes from the message.
_FARM_CODES: dict[int, tuple[str, FarmState]] = {
    2103: ("market", FarmState.BROKEN),
    2104: ("market", FarmState.OK),
    2105: ("hmds", FarmState.BROKEN),
    2106: ("hmds", FarmState.OK),
    2107: ("hmds", FarmState.INACTIVE),
    2108: ("market", FarmState.INACTIVE),
    2157: ("secdef", FarmState.BROKEN),
    2158: ("secdef", FarmState.OK),
}


def farm_name(code: int, message: str) -> str:
    """The farm a farm code names: after the colon ("…broken:usfarm"), or after the last period for the
    "inactive" texts ("…upon demand.usfarm"); the farm's kind when the message names none."""
    text = message.strip()
    _head, colon, tail = text.rpartition(":")
    name = tail.strip() if colon else text.rpartition(".")[2].strip()
    if not name or " " in name:
        return _FARM_CODES[code][0]
    return name


@dataclass(slots=True)
class LinkHealth:
    """What TWS said about its links since the session started; :attr:`healthy` when nothing is broken."""

    ib_link: bool = True
    server_link: bool = True
    farms: dict[str, FarmState] = field(default_factory=dict)

    def on_code(self, code: int, message: str = "") -> bool:
        """Feed an IB system code; returns whether it was one about TWS's links (and was taken in)."""
        if code == IB_LINK_LOST:
            self.ib_link = False
        elif code in IB_LINK_RESTORED:
            self.ib_link = self.server_link = True
        elif code == SERVER_LINK_BROKEN:
            self.server_link = False
        elif code in _FARM_CODES:
            state = _FARM_CODES[code][1]
            self.farms[farm_name(code, message)] = state
            if state is FarmState.OK:
                self.server_link = True  # TWS reaches its farms again: its server link is back
        else:
            return False
        return True

    @property
    def healthy(self) -> bool:
        return self.ib_link and self.server_link and FarmState.BROKEN not in self.farms.values()

    def problems(self) -> list[str]:
        """What is broken, in words (empty when healthy)."""
        out = [] if self.ib_link else ["TWS has no connection to IB (1100)"]
        if not self.server_link:
            out.append("TWS has no connection to its server (2110)")
        out += [
            f"data farm {name} broken"
            for name, state in sorted(self.farms.items())
            if state is FarmState.BROKEN
        ]
        return out

    def reset(self) -> None:
        """A new session: TWS reports its links again."""
        self.ib_link = self.server_link = True
        self.farms.clear()
